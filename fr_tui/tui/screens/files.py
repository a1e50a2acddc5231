"""Files: a tree of JSONL files, a virtual preview of the highlighted one, validation that
streams its problems into a gutter, a problems panel and a summary, and submit.

The index scan and the validation run in thread workers that only write to a `FileCheck`
object; a 0.1 s timer on the UI thread picks up what they found. So the UI never waits
on a file, and nothing crosses threads but plain appends and attribute writes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from fr_tui.core.jsonl import LineIndex
from fr_tui.core.paths import SAMPLES_DIR, short_path
from fr_tui.core.units import plural
from fr_tui.tui.file_check import FileCheck
from fr_tui.tui.screens.files_submit import SubmitFromFiles
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.file_summary import file_summary
from fr_tui.tui.widgets.jsonl_view import ERROR_MARK, WARNING_MARK, JsonlView

if TYPE_CHECKING:
    # the validator is imported when the first file is checked; the tree and the lower
    # panes when they are mounted, just after the first frame (_mount_rest)
    from textual.widgets import DirectoryTree, Tree

    from fr_tui.core.validate import Limits, Problem, Report
    from fr_tui.tui.widgets.jsonl_tree import JsonlTree
    from fr_tui.tui.widgets.problems_panel import ProblemsPanel

# Highlighting a file this small validates it at once; bigger ones wait for enter.
AUTO_VALIDATE_BYTES = 8 << 20
# Bigger lines show their start as text (the validator does not read lines over 100 MiB).
DETAIL_MAX_BYTES = 64 << 20
TICK_SECONDS = 0.1
# How often the open file is looked at (one stat): edited in another window, it is read
# and checked again, so the preview never shows lines the file no longer has.
DISK_CHECK_SECONDS = 1.0


class FilesScreen(SubmitFromFiles, Screen[None]):
    DEFAULT_CSS = """
    FilesScreen #files-body { layout: horizontal; height: 1fr; }
    FilesScreen #tree-pane { width: 32; height: 1fr; border-right: vkey $panel-lighten-2; }
    FilesScreen JsonlTree { height: 1fr; background: $surface; }
    FilesScreen #preview-pane { width: 1fr; height: 1fr; }
    FilesScreen #summary { height: auto; max-height: 4; padding: 0 1; background: $panel; }
    FilesScreen #lower { height: 45%; min-height: 12; layout: horizontal; }
    FilesScreen #problems-pane { width: 1fr; }
    FilesScreen #detail-pane { width: 1fr; border-left: vkey $panel-lighten-2; }
    FilesScreen #detail { height: 1fr; }
    FilesScreen .pane-title { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    FilesScreen .pane-title.-focused { background: $accent; color: $text; text-style: bold; }
    FilesScreen:nocolor .pane-title.-focused { text-style: bold reverse; }
    FilesScreen:nocolor JsonlTree:focus > .tree--cursor { text-style: bold reverse; }
    FilesScreen #find-bar { display: none; height: 1; border: none; padding: 0 1; }
    FilesScreen.-finding #find-bar { display: block; }
    FilesScreen.-narrow #files-body { layout: vertical; }
    FilesScreen.-narrow #tree-pane { width: 1fr; height: 5; border-right: none; }
    FilesScreen.-narrow #lower { height: 7; min-height: 7; }
    FilesScreen.-no-tree #tree-pane { display: none; }
    """
    # Most important first: the footer keeps as many as fit, help lists them all. (In
    # the tree enter opens the file, in the problems it jumps to the line: both widgets
    # take enter themselves; in the preview it validates again.)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "s",
            "submit",
            "Submit",
            tooltip="Upload the file and create a batch (over one batch's limits: a job)",
        ),
        Binding("enter,v", "validate", "Validate", tooltip="Open the file and check every line"),
        Binding("n", "next_problem", "Next problem"),
        Binding("N", "previous_problem", "Prev problem"),
        Binding("slash", "find", "Find", tooltip="Text in the file (enter: next match)"),
        Binding("a", "toggle_all_files", "All files", tooltip="Show every file, or JSONL only"),
        Binding("r,f5", "reload_tree", "Reload", tooltip="Read the folders again (new files)"),
        Binding("t", "toggle_tree", "Tree", tooltip="Hide or show the file tree"),
        Binding("escape", "close_find", "Close find", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.focus_tree_when_mounted = False
        self.current_path: Path | None = None
        self.index: LineIndex | None = None
        self.run: FileCheck | None = None
        self.report: Report | None = None
        self.problem_lines: list[int] = []  # 1-based, sorted, unique
        self.problems_by_line: dict[int, list[Problem]] = {}
        self._index_cancel: threading.Event | None = None
        self._submit_when_valid = False
        self._find_text = ""
        self._resumed_before = False
        self._said_gone: Path | None = None  # the open file vanished: said once

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="files-body"):
            yield Vertical(id="tree-pane")  # the tree comes just after (_mount_rest)
            with Vertical(id="preview-pane"):
                yield Static(id="summary")
                yield JsonlView(id="jsonl-view")
                yield Input(
                    compact=True,
                    placeholder="find (enter: next match, escape: close)",
                    id="find-bar",
                )
        yield AppFooter()

    async def _mount_rest(self) -> None:
        """The tree and the problems and line panes, just after the first frame: a
        DirectoryTree lists its folder in a worker anyway, so nothing shows later than it
        would, and the first frame neither imports nor styles them."""
        from fr_tui.tui.widgets.json_pane import JsonPane
        from fr_tui.tui.widgets.jsonl_tree import JsonlTree
        from fr_tui.tui.widgets.problems_panel import ProblemsPanel

        await self.query_one("#tree-pane").mount(JsonlTree(self._root(), id="tree"))
        await self.query_one("#preview-pane").mount(
            Horizontal(
                Vertical(
                    Static("Problems", id="problems-title", classes="pane-title"),
                    ProblemsPanel(id="problems"),
                    id="problems-pane",
                ),
                Vertical(
                    Static("Line", id="detail-title", classes="pane-title"),
                    JsonPane(id="detail"),
                    id="detail-pane",
                ),
                id="lower",
            )
        )

    @property
    def tree(self) -> JsonlTree | None:
        return self.query_one_optional("#tree")  # type: ignore[return-value]

    def browse(self, folder: Path) -> None:
        """Show `folder` in the tree."""
        tree = self.tree
        if tree is not None:
            tree.path = folder

    def _root(self) -> Path:
        start = getattr(self.app, "start_path", None)
        if start is None:
            return Path.cwd()
        start = Path(start)
        return start.parent if start.is_file() else start

    @property
    def view(self) -> JsonlView:
        return self.query_one(JsonlView)

    @property
    def panel(self) -> ProblemsPanel:
        return self.query_one("#problems")  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_rest)
        self._ticker = self.set_interval(TICK_SECONDS, self._tick, pause=True)
        self.set_interval(DISK_CHECK_SECONDS, self._reread_if_changed)
        self._show_summary()
        start = getattr(self.app, "start_path", None)
        if start is not None and Path(start).is_file():
            self.open_path(Path(start), validate=True)
            self.view.focus()
        else:
            self.focus_tree_when_mounted = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # typing in find: enter goes to the next match, not to Validate
        return not (action == "validate" and isinstance(self.focused, Input))

    def on_screen_resume(self) -> None:
        # back from another screen: files may have come or gone meanwhile
        if self._resumed_before:
            self.action_reload_tree(quiet=True)
        self._resumed_before = True

    def on_descendant_focus(self) -> None:
        self._show_focused_pane()

    def on_descendant_blur(self) -> None:
        self._show_focused_pane()

    def _show_focused_pane(self) -> None:
        """The title of the pane that has focus lights up (the JSON and problems panes
        have no cursor of their own to show it)."""
        for pane in self.query("#problems-pane, #detail-pane"):
            pane.query_one(".pane-title").set_class(pane.has_focus_within, "-focused")

    def on_unmount(self) -> None:
        self._stop_work()
        if self.index is not None:
            self.index.close()

    # ------------------------------------------------------------------ opening

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.open_path(event.path, validate=True)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        entry = event.node.data
        path = getattr(entry, "path", None)
        if path is None or path == self.current_path:
            return
        try:
            if not path.is_file():
                return
            small = path.stat().st_size <= AUTO_VALIDATE_BYTES
        except OSError:
            return
        self.open_path(path, validate=small)

    @property
    def lower_ready(self) -> bool:
        """The problems and detail panes are mounted lazily, just after the first frame."""
        return self.query_one_optional("#problems") is not None

    def open_path(self, path: Path, *, line: int | None = None, validate: bool = True) -> None:
        """Preview `path` (first rows at once), then index the rest and maybe validate."""
        path = Path(path)
        if not self.lower_ready:
            self.set_timer(0.02, lambda: self.open_path(path, line=line, validate=validate))
            return
        if path != self.current_path or self.index is None or self.index.changed_on_disk():
            self._stop_work()
            if self.index is not None:
                self.index.close()
            try:
                index = LineIndex(path)
                index.scan_head(200)
            except OSError as exc:
                self.notify(f"Cannot open {path.name}: {exc.strerror or exc}", severity="error")
                return
            self.current_path = path
            self.index = index
            self.report = None
            self.run = None
            self._clear_problems()
            self.view.set_index(index)
            if not index.complete:
                self._index_cancel = threading.Event()
                self._build_index(index, self._index_cancel)
                self._ticker.resume()
        if validate and (self.run is None or self.run.cancel.is_set()):
            self.start_validation()
        elif self.run is not None and self.run.checks is not None:
            self._reestimate(self.run)  # batches may have ended since: they teach it
        if line is not None:
            self.view.goto(line - 1)
        self._show_summary()

    def _reread_if_changed(self) -> None:
        path, index = self.current_path, self.index
        if path is None or index is None or self.app.screen is not self:
            return  # a dialog on top holds its own check of the file (it refuses a stale one)
        if not index.changed_on_disk():
            return
        try:
            small = path.stat().st_size <= AUTO_VALIDATE_BYTES
        except OSError:
            if self._said_gone != path:
                self._said_gone = path
                self.notify(f"{path.name} is gone from disk; the preview shows it as it was.")
            return
        self.notify(f"{path.name} changed on disk: read and checked again.", timeout=3)
        self.open_path(path, line=self.view.cursor + 1, validate=small)

    @work(thread=True, exclusive=True, group="files-index", exit_on_error=False)
    def _build_index(self, index: LineIndex, cancel: threading.Event) -> None:
        try:
            index.build(cancel=cancel)
        except (OSError, ValueError):
            pass  # the file went away or the index was closed: the view keeps what it has

    def start_validation(self) -> None:
        if self.current_path is None:
            return
        if self.run is not None:
            self.run.cancel.set()
        self._clear_problems()
        self.report = None
        self.run = FileCheck(self.current_path)
        self._validate(self.run, self._limits())
        self._ticker.resume()
        self._show_summary()

    def _limits(self) -> Limits:
        from fr_tui.core.validate import Limits

        profile = getattr(self.app, "profile", None)
        if profile is None:
            return Limits()
        return Limits(max_rows=profile.max_rows, max_bytes=profile.max_bytes)

    @work(thread=True, exclusive=True, group="files-validate", exit_on_error=False)
    def _validate(self, run: FileCheck, limits: Limits) -> None:
        from fr_tui.tui.costs import costs

        run.run(costs(self.app).basis(), limits)
        try:
            self.app.call_from_thread(self._tick)
        except RuntimeError:
            pass  # the app is closing

    def _stop_work(self) -> None:
        if self._index_cancel is not None:
            self._index_cancel.set()
        if self.run is not None and not self.run.finished:
            self.run.cancel.set()

    def _clear_problems(self) -> None:
        self.problem_lines = []
        self.problems_by_line = {}
        self.panel.clear_problems()
        self.view.set_marks({})
        self._update_problems_title()

    # ------------------------------------------------------------------ streaming

    def _tick(self) -> None:
        """Pick up what the workers found since the last tick."""
        busy = False
        if self.index is not None:
            self.view.sync_line_count()
            busy = not self.index.complete and not (
                self._index_cancel is not None and self._index_cancel.is_set()
            )
        run = self.run
        if run is not None:
            count = len(run.problems)
            if count:
                fresh = run.problems[:count]
                del run.problems[:count]
                self._add_problems(fresh)
            if not run.finished:
                busy = True
            elif not run.handled:
                run.handled = True
                self._finish_run(run)
        self._show_summary()
        if not busy:
            self._ticker.pause()

    def _add_problems(self, problems: list[Problem]) -> None:
        view = self.view
        for problem in problems:
            line = problem.line
            bucket = self.problems_by_line.get(line)
            if bucket is None:
                self.problems_by_line[line] = [problem]
                insort(self.problem_lines, line)
            else:
                bucket.append(problem)
            view.add_mark(line - 1, problem.severity)
        self.panel.add_problems(problems)
        self._update_problems_title()
        if any(problem.line == view.cursor + 1 for problem in problems):
            self._show_detail(view.cursor)  # the line on show has a new problem

    def _finish_run(self, run: FileCheck) -> None:
        if run is not self.run:
            return
        if run.error:
            self.notify(run.error, severity="error")
        self.report = run.report
        if run.report is not None:
            from fr_tui.core.validate_report import WARNING_CODES

            severity = {c: "warning" if c in WARNING_CODES else "error" for c in run.report.counts}
            self.panel.set_counts(run.report.counts, severity)
        self._update_problems_title()
        self._show_summary()
        if self._submit_when_valid and run.report is not None and run.report.complete:
            self._submit_when_valid = False
            self._open_submit()

    def _update_problems_title(self) -> None:
        if not self.lower_ready:
            return
        errors, warnings = self.panel.totals()
        if self.report is not None:
            errors, warnings = self.report.errors_total, self.report.warnings_total
        title = (
            f"Problems: {ERROR_MARK} {plural(errors, 'error')}  "
            f"{WARNING_MARK} {plural(warnings, 'warning')}"
        )
        if self.report is not None and self.report.complete and not (errors or warnings):
            title = "Problems: none"
        if self.run is None and self.current_path is not None:
            title = "Problems: enter checks the file"
        self.query_one("#problems-title", Static).update(title)

    def _show_summary(self) -> None:
        self.query_one("#summary", Static).update(self._summary())

    def _hint(self) -> str:
        hint = "Highlight a .jsonl file: it opens and is checked (enter checks big ones)."
        tree = self.tree
        here = Path(tree.path).resolve() if tree is not None else self._root().resolve()
        if here == SAMPLES_DIR:
            return f"{hint}\nThese are fr-tui's sample files; `fr-tui FOLDER` opens yours."
        return f"{hint}\nSample files: {short_path(SAMPLES_DIR)}"

    def _summary(self) -> Text:
        index = self.index
        if self.current_path is None or index is None:
            return Text(self._hint(), style="dim")
        run = self.run
        progress = None
        if self.report is None and run is not None and run.error is None:
            progress = (*run.progress, sum(self.panel.totals()))
        estimate = run.estimate if run is not None else None
        return file_summary(self.app, self.current_path, index, self.report, progress, estimate)

    # ------------------------------------------------------------------ detail

    @on(JsonlView.CursorMoved)
    def _cursor_moved(self, event: JsonlView.CursorMoved) -> None:
        self._show_detail(event.line)
        if self.lower_ready and event.line + 1 in self.problems_by_line:
            self.panel.show_line(event.line + 1)  # the current problem stays in view

    def _show_detail(self, line: int) -> None:
        if not self.lower_ready:
            return
        from fr_tui.tui.widgets.json_pane import JsonPane, PaneLine

        title = self.query_one("#detail-title", Static)
        pane = self.query_one("#detail", JsonPane)
        index = self.index
        if index is None or line >= len(index):
            title.update("Line")
            pane.show([], None)
            return
        title.update(f"Line {line + 1}")
        head: list[PaneLine] = []
        for problem in self.problems_by_line.get(line + 1, []):
            mark = ERROR_MARK if problem.severity == "error" else WARNING_MARK
            head.append(PaneLine(f"{mark} {problem.message}", problem.severity))
            if problem.hint:
                head.append(PaneLine(f"  {problem.hint}", "hint"))
        start, end = index.span(line)
        if end - start > DETAIL_MAX_BYTES:
            raw = index.read_line(line)[:DETAIL_MAX_BYTES].decode("utf-8", "replace")
            pane.show([*head, PaneLine(raw + " …(cut)", "plain")], None)
            return
        pane.show(head, lambda: index.read_line(line), size=end - start)

    # ------------------------------------------------------------------ problems

    def on_problems_panel_jump(self, event: ProblemsPanel.Jump) -> None:
        self.view.goto(event.line - 1)
        self.view.focus()

    def _jump_to_problem(self, line: int) -> None:
        self.view.goto(line - 1)
        self.panel.show_line(line)

    def action_next_problem(self) -> None:
        self._step_problem(forward=True)

    def action_previous_problem(self) -> None:
        self._step_problem(forward=False)

    def _step_problem(self, *, forward: bool) -> None:
        lines = self.problem_lines
        if not lines:
            if self.run is None:
                self.notify("Not validated yet: press enter on the file first.")
            else:
                self.notify("No problems found so far.")
            return
        here = self.view.cursor + 1
        if forward:
            i = bisect_right(lines, here)
            if i == len(lines):
                i = 0
                self.notify("Wrapped to the first problem.", timeout=2)
        else:
            i = bisect_left(lines, here) - 1
            if i < 0:
                i = len(lines) - 1
                self.notify("Wrapped to the last problem.", timeout=2)
        self._jump_to_problem(lines[i])

    # ------------------------------------------------------------------ find

    def action_find(self) -> None:
        if self.index is None:
            self.notify("Open a file first.")
            return
        self.add_class("-finding")
        find_bar = self.query_one("#find-bar", Input)
        find_bar.value = self._find_text
        find_bar.focus()

    @on(Input.Submitted, "#find-bar")
    def _find_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._find_text = event.value
        self.find_next(event.value)

    def find_next(self, needle: str) -> int | None:
        if self.index is None or not needle:
            return None
        start = self.view.cursor + 1
        found = self.index.find(needle, start)
        if found is None and start > 0:
            found = self.index.find(needle, 0)
            if found is not None:
                self.notify("Search wrapped to the top.", timeout=2)
        if found is None:
            self.notify(f"Not found: {needle}", severity="warning", timeout=3)
            return None
        self.view.goto(found)
        return found

    def action_close_find(self) -> None:
        if self.has_class("-finding"):
            self.remove_class("-finding")
            self.view.focus()

    # ------------------------------------------------------------------ actions

    def action_toggle_all_files(self) -> None:
        tree = self.tree
        if tree is None:
            return
        tree.show_all = not tree.show_all
        tree.reload()
        self.notify("Showing all files." if tree.show_all else "Showing JSONL files only.")

    def action_reload_tree(self, quiet: bool = False) -> None:
        tree = self.tree
        if tree is None:
            return
        tree.reload_node(tree.root)  # keeps what was open and highlighted
        if not quiet:
            self.notify(f"Reloaded {short_path(Path(tree.path))}.", timeout=2)

    def action_toggle_tree(self) -> None:
        self.toggle_class("-no-tree")
        if self.has_class("-no-tree"):
            self.view.focus()

    def action_validate(self) -> None:
        if self.current_path is None:
            self.notify("Highlight a file first.")
            return
        if self.index is not None and self.index.changed_on_disk():
            self.open_path(self.current_path)  # edited since it opened: read it again
            return
        self.start_validation()
