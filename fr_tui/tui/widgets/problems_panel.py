"""A file's problems grouped by code, like the CLI report: one line per kind with its
count (`✖ 50,000 × provider is missing…`), expanded (enter) to the lines it was found on;
enter on a line jumps to it. Long messages wrap: a narrow pane shows them whole. Problems stream in while validation runs.

The validator keeps the first MAX_KEPT_PROBLEMS problems and counts the rest, so a group
can have more lines than it can list: `set_counts` gives it the true count at the end.
Only the group lines and the lines of expanded groups are options, so 50,000 identical
problems are one line until asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from fr_tui.tui.widgets.jsonl_view import ERROR_MARK, WARNING_MARK

if TYPE_CHECKING:
    from fr_tui.core.validate import Problem

OPEN, CLOSED = "▾", "▸"


def _mark(severity: str) -> tuple[str, str]:
    if severity == "error":
        return f"{ERROR_MARK} ", "bold $text-error"
    return f"{WARNING_MARK} ", "bold $text-warning"


def problem_text(problem: Problem) -> Content:
    # Content, not Rich Text: its styles take theme variables, and messages are never
    # read as markup.
    return Content.assemble(_mark(problem.severity), (f"L{problem.line} ", "bold"), problem.message)


@dataclass
class ProblemGroup:
    code: str
    severity: str
    kept: list[Problem] = field(default_factory=list)
    total: int = 0  # every problem of this code, kept or not
    message: str | None = None  # the message, while every kept one says the same
    expanded: bool = False

    @property
    def title(self) -> str:
        return self.message if self.message is not None else self.code.replace("_", " ")

    def add(self, problem: Problem) -> None:
        if not self.kept:
            self.message = problem.message
        elif self.message != problem.message:
            self.message = None
        self.kept.append(problem)
        self.total = max(self.total, len(self.kept))


class ProblemsPanel(OptionList):
    DEFAULT_CSS = """
    ProblemsPanel {
        height: 1fr;
        border: none;
        padding: 0;
        background: $surface;
    }
    """
    HELP_NAME = "problems"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
        Binding("enter", "select", "Open a kind or go to its line", show=False),
    ]

    @dataclass
    class Jump(Message):
        line: int  # 1-based

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups: dict[str, ProblemGroup] = {}
        self.problems: list[Problem] = []  # every kept problem, in arrival order
        self._rows: list[tuple[str, int]] = []  # per option: (code, -1 header | kept index)

    # -- data ------------------------------------------------------------------------

    def clear_problems(self) -> None:
        self.groups = {}
        self.problems = []
        self._rows = []
        self.clear_options()

    def add_problems(self, problems: list[Problem]) -> None:
        if not problems:
            return
        for problem in problems:
            group = self.groups.get(problem.code)
            if group is None:
                group = self.groups[problem.code] = ProblemGroup(problem.code, problem.severity)
            group.add(problem)
        self.problems.extend(problems)
        self._rebuild()

    def set_counts(self, counts: dict[str, int], severity_of: dict[str, str]) -> None:
        """The validator's true count per code (also codes with no kept problem)."""
        for code, count in counts.items():
            group = self.groups.get(code)
            if group is None:
                group = self.groups[code] = ProblemGroup(code, severity_of.get(code, "error"))
            group.total = max(count, len(group.kept))
        self._rebuild()

    def totals(self) -> tuple[int, int]:
        """(errors, warnings) counted so far."""
        errors = sum(g.total for g in self.groups.values() if g.severity == "error")
        warnings = sum(g.total for g in self.groups.values() if g.severity != "error")
        return errors, warnings

    # -- options ---------------------------------------------------------------------

    def _header(self, group: ProblemGroup) -> Content:
        return Content.assemble(
            (f"{OPEN if group.expanded else CLOSED} ", "dim"),
            _mark(group.severity),
            (f"{group.total:,} × ", "bold"),
            group.title,
        )

    def _rebuild(self) -> None:
        keep = self._rows[self.highlighted] if self.highlighted is not None and self._rows else None
        ordered = sorted(self.groups.values(), key=lambda g: (g.severity != "error",))
        options: list[Option] = []
        rows: list[tuple[str, int]] = []
        for group in ordered:
            options.append(Option(self._header(group)))
            rows.append((group.code, -1))
            if not group.expanded:
                continue
            for index, problem in enumerate(group.kept):
                options.append(Option(Content("   ") + problem_text(problem)))
                rows.append((group.code, index))
            hidden = group.total - len(group.kept)
            if hidden > 0:
                note = f"     … {hidden:,} more; only the first problems are listed"
                options.append(Option(Content.styled(note, "dim"), disabled=True))
                rows.append((group.code, -2))
        self._rows = rows
        with self.app.batch_update():
            self.clear_options()
            self.add_options(options)
            if keep in rows:
                self.highlighted = rows.index(keep)
            elif rows:
                self.highlighted = 0

    def toggle(self, code: str, expanded: bool | None = None) -> None:
        group = self.groups[code]
        group.expanded = (not group.expanded) if expanded is None else expanded
        self._rebuild()

    def show_line(self, line: int) -> bool:
        """Expand the group of the first problem on `line` (1-based) and highlight it,
        scrolled into view; False when no listed problem is on that line."""
        for code, group in self.groups.items():
            for index, problem in enumerate(group.kept):
                if problem.line == line:
                    if not group.expanded:
                        group.expanded = True
                        self._rebuild()
                    self.highlighted = self._rows.index((code, index))
                    return True
        return False

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if not 0 <= event.option_index < len(self._rows):
            return
        code, index = self._rows[event.option_index]
        if index == -1:
            self.toggle(code)
        elif index >= 0:
            self.post_message(self.Jump(self.groups[code].kept[index].line))
