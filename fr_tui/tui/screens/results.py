"""Results of one batch, joined to its inputs: what worked, what failed, what never came back.

The screen paints at once with an empty table; a worker downloads the output/error files
if they are not here yet (a past batch opens from local files, with no network), joins
them with the input file in a thread, merges the results of retry batches over the
parent's failures, then fills the table. Export, copy and retry work on the joined rows.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from fr_tui.core.errors import ApiError
from fr_tui.core.results import MISSING_KEY, JoinedResults
from fr_tui.core.store import BatchRecord
from fr_tui.core.units import plural
from fr_tui.tui import batch_actions
from fr_tui.tui.messages import BatchesChanged, BatchFinished
from fr_tui.tui.results_loading import LoadedResults, ResultsLoader, file_warnings, needs_download
from fr_tui.tui.view_find import FindInView
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.result_view import ResultView, clip

BASE_FILTERS = ("all", "ok", "failed", MISSING_KEY)
_MAX_GROUP_LINES = 3


def format_count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "-"


def summary_text(joined: JoinedResults, cost_text: str | None = None) -> str:
    counts = joined.counts
    parts = [
        f"✓ {format_count(counts['ok'])} ok",
        f"✗ {format_count(counts['failed'])} failed",
        f"? {format_count(counts['missing'])} missing",
        f"of {format_count(counts['total'])} · tokens {format_count(joined.tokens_in)} in / {format_count(joined.tokens_out)} out",
    ]
    if cost_text:  # the batch's own actual cost beside its estimate (tui/costs.py)
        parts[-1] += f" · {cost_text}"
    return "  ".join(parts)


def groups_text(joined: JoinedResults, width: int) -> str:
    groups = joined.error_groups()
    if not groups:
        return "No failures: every input row has a successful result."
    lines = []
    for _key, code, message, count in groups[:_MAX_GROUP_LINES]:
        text = f"{code}: {message}" if message else code
        lines.append(clip(f"{count:>6,}× {text}", max(10, width)).rstrip())
    if len(groups) > _MAX_GROUP_LINES:
        lines.append(
            f"  … {len(groups) - _MAX_GROUP_LINES} more kinds of failure (f filters by kind)"
        )
    return "\n".join(lines)


class ResultsScreen(FindInView, Screen[None]):
    FIND_ID = "results-find"

    DEFAULT_CSS = """
    ResultsScreen #results-title { height: 1; background: $panel; color: $text; padding: 0 1; text-style: bold; }
    ResultsScreen #results-head { height: auto; }
    ResultsScreen #results-summary { height: auto; max-height: 2; padding: 0 1; }
    ResultsScreen #results-groups { height: auto; max-height: 4; padding: 0 1; color: $text-error; }
    ResultsScreen #results-status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    ResultsScreen #results-find { dock: bottom; display: none; }
    ResultsScreen #results-find.-active { display: block; }
    """

    # Most important first (after the table's own enter): the footer keeps what fits.
    BINDINGS = [
        Binding("R", "retry", "Retry", tooltip="Resubmit the failed and missing rows"),
        Binding("f", "cycle_filter", "Filter", tooltip="all / ok / failed / missing / by error"),
        Binding("slash", "find", "Find", tooltip="A custom_id or any text"),
        Binding("x", "export", "Export", tooltip="CSV or JSONL, the filter's rows or all"),
        Binding("y", "copy", "Copy", tooltip="The answer, or the row as JSON (OSC 52)"),
        Binding("n", "find_next", "Next match", show=False),
        Binding("N", "find_previous", "Prev match", show=False),
        Binding("escape", "back", "Back", show=False, tooltip="Close or clear find, or go back"),
    ]

    def __init__(self, batch_id: str, *, origin: str | None = None) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.origin = origin  # None: found by id (see FrTuiApp.find_record)
        self.record: BatchRecord | None = None
        self.made_by_job: str | None = None  # the job that made the batch (it retries its rows)
        self.joined: JoinedResults | None = None
        self.merged_children: list[str] = []
        self.cost_text: str | None = None  # actual cost beside the estimate, once known
        self.filters: list[str] = list(BASE_FILTERS)
        self.filter_index = 0
        self.find_text = ""
        self._match_rows: list[int] = []
        self._match_positions: list[int] = []
        self._loaded: list[LoadedResults] = []
        self._status = "Loading…"
        self.inputs_missing = False

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static(self.batch_id, markup=False, id="results-title")
        with Vertical(id="results-head"):
            yield Static("", markup=False, id="results-summary")
            yield Static("", markup=False, id="results-groups")
        yield ResultView(id="results-view")
        yield Static(self._status, markup=False, id="results-status")
        yield Input(
            placeholder="find custom_id or text; enter to search, escape to close",
            id="results-find",
        )
        yield AppFooter()

    @property
    def view(self) -> ResultView:
        return self.query_one(ResultView)

    def on_mount(self) -> None:
        self.view.focus()
        self.load()

    def crumbs(self, previous: Any) -> list[str]:
        label = self.record.label if self.record else self.batch_id
        same_batch = getattr(previous, "batch_id", None) == self.batch_id
        return ["Results"] if same_batch else [label, "Results"]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None dims what cannot apply yet: nothing to export or retry before the rows
        are loaded, nothing to retry when every row succeeded."""
        if action in ("export", "copy", "cycle_filter", "find") and self.joined is None:
            return None
        if action == "retry":
            joined = self.joined
            if joined is None or self.inputs_missing or not joined.error_groups():
                return None
            if self.made_by_job is not None:
                return None
        return True

    def why_not(self, action: str) -> str | None:
        if action == "retry" and self.made_by_job is not None:
            return batch_actions.retried_by_job(self.made_by_job)
        return None

    @on(BatchesChanged)
    @on(BatchFinished)
    def _batch_changed(self, message: BatchesChanged | BatchFinished) -> None:
        """The title line (status, lineage) stays live; a batch that ended while this
        screen waited for it gets its results loaded."""
        record = self.app.store.lookup(self.batch_id, self.origin)
        if record is None:
            return
        was_terminal = self.record is not None and self.record.terminal
        self.record = record
        self._show_title(record)
        if record.terminal and not was_terminal and self.joined is None:
            self.load()

    def on_resize(self) -> None:
        if self.joined is not None:  # the failure lines are cut to the width
            groups = groups_text(self.joined, self.size.width - 2)
            self.query_one("#results-groups", Static).update(groups)

    def on_unmount(self) -> None:
        for loaded in self._loaded:
            loaded.close()
        self._loaded.clear()

    def set_status(self, text: str) -> None:
        self._status = text
        self.query_one("#results-status", Static).update(text)

    def _refresh_status(self) -> None:
        joined = self.joined
        if joined is None:
            return
        view = self.view
        name = self.filter_label(self.filters[self.filter_index])
        parts = [f"filter {name}: {plural(len(view.rows), 'row')}"]
        if view.rows:
            parts.append(f"row {view.cursor + 1:,}/{len(view.rows):,}")
        if self.find_text:
            parts.append(f"find '{self.find_text}': {len(self._match_positions):,} here")
        if self.merged_children:
            parts.append(
                f"merged {plural(len(self.merged_children), 'retry batch', 'retry batches')}"
            )
        self.set_status(" · ".join(parts))

    # -- loading -----------------------------------------------------------------

    @work(exclusive=True, group="results-load", exit_on_error=False)
    async def load(self) -> None:
        app: Any = self.app
        view = self.view
        record = app.store.lookup(
            self.batch_id, self.origin, prefer=getattr(app.client, "origin", None)
        )
        if record is None:
            view.set_note(f"No batch {self.batch_id} in the history.")
            self.set_status("Unknown batch")
            return
        self.origin = record.origin
        loader = ResultsLoader(app)
        client = loader.client_for(record)
        self.made_by_job = batch_actions.job_of(app, record)
        self.record = record
        self._show_title(record)
        if not record.terminal and client is not None:
            try:
                from fr_tui.core.workflow import poll_batch

                await poll_batch(client, app.store, self.batch_id, origin=record.origin)
                record = app.store.get(record.origin, self.batch_id) or record
                self.record = record
                self._show_title(record)
            except ApiError as exc:
                self.notify(exc.message, title="Could not refresh the batch", severity="warning")
        output, error, failure = await loader.ensure_files(record, self.set_status)
        if failure:
            self.notify(failure, title="Download failed", severity="error")
        if output is None and error is None:
            if not record.terminal:
                view.set_note(f"The batch is {record.status}: results come when it finishes.")
            elif needs_download(record, output, error):
                view.set_note(
                    "Results are not downloaded and there is no connection to fetch them."
                )
            else:
                view.set_note("This batch has no output or error file.")
            self.set_status(f"status {record.status}")
            return
        self.inputs_missing, warnings = file_warnings(record)
        for title, message in warnings:
            self.notify(message, title=title, severity="warning", timeout=10)
        self.set_status("Joining results with the input file…")
        last = [0.0]

        def progress(done: int, total: int) -> None:
            # call_from_thread waits for the UI: at most ten updates a second, or the
            # round trips cost more than the join itself.
            now = time.monotonic()
            if now - last[0] < 0.1:
                return
            last[0] = now
            self.app.call_from_thread(
                self.set_status, f"Joining results… {100 * done // max(total, 1)}%"
            )

        try:
            loaded = await asyncio.to_thread(
                loader.join, record, output, error, self.inputs_missing, progress
            )
        except OSError as exc:
            view.set_note(f"Could not read the results: {exc}")
            self.set_status("Read error")
            return
        self._loaded.append(loaded)
        for note in loaded.notes:
            self.notify(note, title="Retry not merged", severity="warning", timeout=10)
        self.merged_children = loaded.merged_children
        self.show_joined(loaded.joined)
        self._show_cost(loader, record, loaded)  # after the rows: it may walk every row

    @work(thread=True, exclusive=True, group="results-cost", exit_on_error=False)
    def _show_cost(self, loader: ResultsLoader, record: BatchRecord, loaded: Any) -> None:
        text = loader.cost_text(record, loaded)
        if text is not None:
            self.app.call_from_thread(self._cost_known, text)

    def _cost_known(self, text: str) -> None:
        self.cost_text = text
        if self.joined is not None:
            self.query_one("#results-summary", Static).update(summary_text(self.joined, text))

    def _show_title(self, record: BatchRecord) -> None:
        store = self.app.store
        bits = [record.label, record.id, record.status.replace("_", " ")]
        if record.parent_batch_id:
            parent = store.get(record.origin, record.parent_batch_id)
            bits.append(f"retry of {parent.label if parent else record.parent_batch_id}")
        children = store.children(record.origin, record.id)
        if children:
            running = sum(1 for child in children if not child.terminal)
            retried = f"retried in {plural(len(children), 'batch', 'batches')}"
            bits.append(f"{retried} ({running} running)" if running else retried)
        self.query_one("#results-title", Static).update(" · ".join(bits))
        self.query_one(AppHeader).refresh()
        self.refresh_bindings()

    def show_joined(self, joined: JoinedResults) -> None:
        self.joined = joined
        self.query_one("#results-summary", Static).update(summary_text(joined, self.cost_text))
        self.query_one("#results-groups", Static).update(groups_text(joined, self.size.width - 2))
        self.filters = [
            *BASE_FILTERS,
            *(key for key, *_ in joined.error_groups() if key != MISSING_KEY),
        ]
        self.filter_index = 0
        self.view.note = "No rows in this filter."
        self.view.set_data(joined, range(len(joined)))
        self._recompute_matches()
        self._refresh_status()
        self.refresh_bindings()

    # -- filter and find -----------------------------------------------------------

    def filter_label(self, kind: str) -> str:
        if kind in BASE_FILTERS:
            return kind
        return f"“{kind[:40]}{'…' if len(kind) > 40 else ''}”"

    def apply_filter(self, index: int) -> None:
        joined = self.joined
        if joined is None:
            return
        self.filter_index = index % len(self.filters)
        kind = self.filters[self.filter_index]
        rows = range(len(joined)) if kind == "all" else joined.filter(kind)
        self.view.set_rows(rows, keep_row=self.view.current_row)
        self._recompute_matches()
        self._refresh_status()

    def action_cycle_filter(self) -> None:
        self.apply_filter(self.filter_index + 1)

    @on(Input.Submitted, "#results-find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._close_find()
        self.search(event.value.strip())

    def search(self, text: str) -> None:
        joined = self.joined
        self.show_matches(text, joined.search(text) if joined is not None and text else [])

    @on(ResultView.CursorMoved)
    def _cursor_moved(self) -> None:
        self._refresh_status()

    # -- detail, copy, back -------------------------------------------------------

    @on(ResultView.Chosen)
    def _chosen(self, event: ResultView.Chosen) -> None:
        if self.joined is None:
            return
        from fr_tui.tui.screens.result_detail import ResultDetailScreen

        self.app.push_screen(ResultDetailScreen(self.joined, event.row))

    def copy_text(self, row: int) -> tuple[str, str]:
        """What `y` copies for row: (text, what it is)."""
        joined = self.joined
        assert joined is not None
        if joined.outcome(row) == "ok":
            answer = joined.response_text(row)
            if answer:
                return answer, "answer"
        from fr_tui.core.export import export_record

        return msgspec.json.encode(export_record(joined, row)).decode(), "row JSON"

    def action_copy(self) -> None:
        row = self.view.current_row
        if self.joined is None or row is None:
            self.notify("Nothing to copy yet", severity="warning")
            return
        text, what = self.copy_text(row)
        self.app.copy_to_clipboard(text)
        cid = self.joined.custom_ids[row] or f"row {row + 1}"
        self.notify(f"Copied the {what} of {cid} ({len(text):,} chars)", title="Copied")

    def action_back(self) -> None:
        if self.find_is_open():
            self._close_find()
            return
        if self.find_text:  # a find's matches: escape clears them before it leaves
            self.show_matches("", [])
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- export and retry -----------------------------------------------------------

    def action_export(self) -> None:
        if self.joined is None:
            self.notify("The results are not loaded yet", severity="warning")
            return
        from fr_tui.tui.modals.export import ExportModal

        kind = self.filters[self.filter_index]
        shown = None if kind == "all" else (self.filter_label(kind), len(self.view.rows))
        default = Path.cwd() / f"{self.batch_id}-results.csv"
        self.app.push_screen(ExportModal(default, len(self.joined), shown), self._export_chosen)

    def _export_chosen(self, choice: tuple[Path, str, bool] | None) -> None:
        if choice is not None:
            path, fmt, only_shown = choice
            self.export(path, fmt, list(self.view.rows) if only_shown else None)

    @work(exclusive=True, group="results-export", exit_on_error=False)
    async def export(self, path: Path, fmt: str, rows: list[int] | None = None) -> None:
        from fr_tui.core.export import export_rows
        from fr_tui.tui.modals.export import export_in_thread

        joined = self.joined
        assert joined is not None
        await export_in_thread(self, path, lambda: export_rows(joined, path, fmt, rows))  # type: ignore[arg-type]
        self._refresh_status()

    def action_retry(self) -> None:
        joined, record = self.joined, self.record
        if joined is None or record is None:
            self.notify("The results are not loaded yet", severity="warning")
            return
        if self.inputs_missing:
            self.notify(
                "The input file is gone: there is nothing to copy the rows from",
                title="Retry",
                severity="warning",
            )
            return
        if not joined.error_groups():
            self.notify("Nothing to retry: every row succeeded", title="Retry")
            return
        batch_actions.retry(self, record, joined)
