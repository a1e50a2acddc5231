"""The list of a file's problems, streamed in while validation runs; enter jumps to one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from fr_tui.tui.widgets.jsonl_view import ERROR_MARK, WARNING_MARK

if TYPE_CHECKING:
    from fr_tui.core.validate import Problem

# More than this many rows in the panel helps nobody; the summary has the totals.
MAX_SHOWN = 2000


def problem_text(problem: Problem) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if problem.severity == "error":
        text.append(f"{ERROR_MARK} ", style="bold red")
    else:
        text.append(f"{WARNING_MARK} ", style="bold yellow")
    text.append(f"L{problem.line} ", style="bold")
    text.append(problem.message)
    return text


class ProblemsPanel(OptionList):
    DEFAULT_CSS = """
    ProblemsPanel {
        height: 1fr;
        border: none;
        padding: 0;
        background: $surface;
    }
    """

    @dataclass
    class Jump(Message):
        line: int  # 1-based

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.problems: list[Problem] = []
        self.hidden_count = 0

    def clear_problems(self) -> None:
        self.problems = []
        self.hidden_count = 0
        self.clear_options()

    def add_problems(self, problems: list[Problem]) -> None:
        room = MAX_SHOWN - len(self.problems)
        shown = problems[: max(room, 0)]
        self.hidden_count += len(problems) - len(shown)
        if not shown:
            return
        start = len(self.problems)
        self.problems.extend(shown)
        self.add_options([Option(problem_text(p), id=f"p{start + i}") for i, p in enumerate(shown)])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        if 0 <= index < len(self.problems):
            self.post_message(self.Jump(self.problems[index].line))
