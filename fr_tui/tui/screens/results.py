"""Results of one batch, joined to its inputs: what worked, what failed, what never came back.

The screen paints at once with an empty table; a worker downloads the output/error files
if they are not here yet (a past batch opens from local files, with no network), joins
them with the input file in a thread, merges the results of retry batches over the
parent's failures, then fills the table. Export, copy and retry work on the joined rows.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Any

import orjson
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from fr_tui.core.errors import ApiError
from fr_tui.core.results import MISSING_KEY, JoinedResults, join_results, merge_child
from fr_tui.core.store import BatchRecord
from fr_tui.core.workflow import ERROR_NAME, OUTPUT_NAME
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.result_view import ResultView, clip

BASE_FILTERS = ("all", "ok", "failed", MISSING_KEY)
_MAX_GROUP_LINES = 3
_MAX_RETRY_DEPTH = 8


def local_result_files(record: BatchRecord, dest: Path) -> tuple[Path | None, Path | None]:
    """The output and error files of `record` already on disk (None where absent)."""
    found: list[Path | None] = []
    for recorded, file_id, name in (
        (record.output_path, record.output_file_id, OUTPUT_NAME),
        (record.error_path, record.error_file_id, ERROR_NAME),
    ):
        candidates = [Path(recorded)] if recorded else []
        if file_id or not recorded:
            candidates.append(dest / name)
        found.append(next((p for p in candidates if p.is_file()), None))
    return found[0], found[1]


def needs_download(record: BatchRecord, output: Path | None, error: Path | None) -> bool:
    """A result file is missing, or here but not checked complete by this fr-tui (one
    downloaded by an older fr-tui is checked, and downloaded again if incomplete)."""
    for file_id, path, verified in (
        (record.output_file_id, output, record.output_verified_bytes),
        (record.error_file_id, error, record.error_verified_bytes),
    ):
        if not file_id:
            continue
        if path is None or verified is None or path.stat().st_size != verified:
            return True
    return False


def format_count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "-"


def summary_text(joined: JoinedResults) -> str:
    counts = joined.counts
    parts = [
        f"✓ {format_count(counts['ok'])} ok",
        f"✗ {format_count(counts['failed'])} failed",
        f"? {format_count(counts['missing'])} missing",
        f"of {format_count(counts['total'])} · tokens {format_count(joined.tokens_in)} in / {format_count(joined.tokens_out)} out",
    ]
    cost = joined.cost
    if cost is not None:
        parts[-1] += f" · cost ${cost:.4f}"
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


def ids_only_input(folder: Path, output: Path | None, error: Path | None) -> Path:
    """When the input file is gone: a stand-in input of bare custom_ids, one per result
    line, so the results still show (no row can be missing from it)."""
    folder.mkdir(parents=True, exist_ok=True)
    stand_in = folder / "inputs-from-results.jsonl"
    with stand_in.open("wb") as out:
        for path in (output, error):
            if path is None:
                continue
            with path.open("rb") as source:
                for raw in source:
                    try:
                        cid = orjson.loads(raw).get("custom_id")
                    except (orjson.JSONDecodeError, AttributeError):
                        continue
                    if isinstance(cid, str | int):
                        out.write(orjson.dumps({"custom_id": str(cid)}) + b"\n")
    return stand_in


class ResultsScreen(Screen[None]):
    DEFAULT_CSS = """
    ResultsScreen #results-title { height: 1; background: $panel; color: $text; padding: 0 1; text-style: bold; }
    ResultsScreen #results-head { height: auto; }
    ResultsScreen #results-summary { height: auto; max-height: 2; padding: 0 1; }
    ResultsScreen #results-groups { height: auto; max-height: 4; padding: 0 1; color: $text-error; }
    ResultsScreen #results-status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    ResultsScreen #results-find { dock: bottom; display: none; }
    ResultsScreen #results-find.-active { display: block; }
    """

    BINDINGS = [
        Binding("f", "cycle_filter", "Filter", id="results.filter"),
        Binding("slash", "find", "Find", id="results.find"),
        Binding("n", "find_next", "Next match", show=False, id="results.find_next"),
        Binding("N", "find_previous", "Prev match", show=False, id="results.find_previous"),
        Binding("y", "copy", "Copy", id="results.copy"),
        Binding("x", "export", "Export", id="results.export"),
        Binding("R", "retry", "Retry failed", id="results.retry"),
        Binding("escape", "back", "Back", id="results.back"),
    ]

    def __init__(self, batch_id: str, *, origin: str | None = None) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.origin = origin  # None: found by id (see FrTuiApp.find_record)
        self.record: BatchRecord | None = None
        self.joined: JoinedResults | None = None
        self.merged_children: list[str] = []
        self.filters: list[str] = list(BASE_FILTERS)
        self.filter_index = 0
        self.find_text = ""
        self._match_rows: list[int] = []
        self._match_positions: list[int] = []
        self._opened: list[JoinedResults] = []
        self._status = "Loading…"
        self.inputs_missing = False

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield AppHeader("Results")
        yield Static(f"Results · {self.batch_id}", markup=False, id="results-title")
        with Vertical(id="results-head"):
            yield Static("", markup=False, id="results-summary")
            yield Static("", markup=False, id="results-groups")
        yield ResultView(id="results-view")
        yield Static(self._status, markup=False, id="results-status")
        yield Input(
            placeholder="find custom_id or text; enter to search, escape to close",
            id="results-find",
        )
        yield Footer()

    @property
    def view(self) -> ResultView:
        return self.query_one(ResultView)

    def on_mount(self) -> None:
        self.view.focus()
        self.load()

    def on_resize(self) -> None:
        if self.joined is not None:  # the failure lines are cut to the width
            groups = groups_text(self.joined, self.size.width - 2)
            self.query_one("#results-groups", Static).update(groups)

    def on_unmount(self) -> None:
        for joined in self._opened:
            joined.close()
        self._opened.clear()

    def set_status(self, text: str) -> None:
        self._status = text
        self.query_one("#results-status", Static).update(text)

    def _refresh_status(self) -> None:
        joined = self.joined
        if joined is None:
            return
        view = self.view
        name = self.filter_label(self.filters[self.filter_index])
        parts = [f"filter {name}: {len(view.rows):,} rows"]
        if view.rows:
            parts.append(f"row {view.cursor + 1:,}/{len(view.rows):,}")
        if self.find_text:
            parts.append(f"find '{self.find_text}': {len(self._match_positions):,} here")
        if self.merged_children:
            parts.append(f"merged {len(self.merged_children)} retry batch(es)")
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
        client = self._client(record)
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
        output, error = await self._ensure_files(record)
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
        input_path = Path(record.input_path) if record.input_path else None
        self.inputs_missing = input_path is None or not input_path.is_file()
        if self.inputs_missing:
            self.notify(
                f"The input file is gone ({record.input_path or 'unknown'}): showing the results "
                "alone; rows that never came back cannot be known and retry is off.",
                title="Input file not found",
                severity="warning",
                timeout=10,
            )
        elif (
            # A cheap check, not a hash (that would cost the first paint on a big file):
            # rows are joined by custom_id either way, but an edited file may not match.
            input_path is not None
            and record.input_bytes is not None
            and input_path.stat().st_size != record.input_bytes
        ):
            self.notify(
                f"{input_path.name} changed since it was submitted: rows are joined by "
                "custom_id, so edited or new rows may not match their results.",
                title="Input file changed",
                severity="warning",
                timeout=10,
            )
        self.set_status("Joining results with the input file…")
        try:
            joined = await asyncio.to_thread(self._join_all, record, output, error)
        except OSError as exc:
            view.set_note(f"Could not read the results: {exc}")
            self.set_status("Read error")
            return
        self.show_joined(joined)

    def _show_title(self, record: BatchRecord) -> None:
        lineage = f" · retry of {record.parent_batch_id}" if record.parent_batch_id else ""
        self.query_one("#results-title", Static).update(
            f"Results · {record.label} · {record.id} · {record.status}{lineage}"
        )

    async def _ensure_files(self, record: BatchRecord) -> tuple[Path | None, Path | None]:
        """Local output/error files, downloading missing ones when there is a client."""
        app: Any = self.app
        dest: Path = app.paths.results_for(record.id)
        output, error = local_result_files(record, dest)
        client = self._client(record)
        if not needs_download(record, output, error):
            return output, error
        if client is None:
            return self._checked(record, output, error)
        from fr_tui.core.workflow import fetch_results

        def progress(done: int, total: int | None) -> None:
            share = f" {100 * done // total}%" if total else f" {done:,} bytes"
            self.set_status(f"Downloading results…{share}")

        self.set_status("Downloading results…")
        try:
            await fetch_results(
                client, app.store, record, dest, progress, on_note=self._download_note
            )
        except ApiError as exc:
            self.notify(exc.message, title="Download failed", severity="error")
        except OSError as exc:
            self.notify(str(exc), title="Download failed", severity="error")
        return self._checked(record, *local_result_files(record, dest))

    def _client(self, record: BatchRecord) -> Any:
        """The client for the batch's own server, or None (no profile or key for it)."""
        from fr_tui.core.clients import NoClientError

        pick = getattr(self.app, "client_for", None)
        if not callable(pick):  # a bare host app (the benchmark): its one client
            return getattr(self.app, "client", None)
        try:
            return pick(record)
        except NoClientError:
            return None

    def _download_note(self, text: str) -> None:
        self.notify(text, title="Downloading again", severity="warning", timeout=8)

    def _checked(
        self, record: BatchRecord, output: Path | None, error: Path | None
    ) -> tuple[Path | None, Path | None]:
        """Without a connection: only files that look whole are used; an incomplete one
        (cut short before fr-tui checked downloads) is never shown as the results."""
        from fr_tui.core.workflow import checked_complete

        kept: list[Path | None] = []
        for path, verified in (
            (output, record.output_verified_bytes),
            (error, record.error_verified_bytes),
        ):
            if path is not None and not checked_complete(path, verified):
                self.notify(
                    f"{path} is incomplete (an interrupted download); it is downloaded again "
                    "once the server can be reached.",
                    title="Incomplete results",
                    severity="warning",
                    timeout=10,
                )
                path = None
            kept.append(path)
        return kept[0], kept[1]

    def _join_all(
        self, record: BatchRecord, output: Path | None, error: Path | None
    ) -> JoinedResults:
        """Runs in a thread: the join, then every downloaded retry merged over it."""
        input_path: str | Path | None = record.input_path
        if self.inputs_missing:
            input_path = ids_only_input(self.app.paths.results_for(record.id), output, error)  # type: ignore[attr-defined]
        assert input_path is not None

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

        joined = join_results(input_path, output, error, on_progress=progress)
        self._opened.append(joined)
        self.merged_children = []
        return self._merge_children(joined, record.id, 0)

    def _merge_children(self, joined: JoinedResults, batch_id: str, depth: int) -> JoinedResults:
        app: Any = self.app
        if depth >= _MAX_RETRY_DEPTH:
            return joined
        for child in app.store.children(self.origin or "", batch_id):
            output, error = local_result_files(child, app.paths.results_for(child.id))
            if output is None and error is None:
                continue
            if not child.input_path or not Path(child.input_path).is_file():
                continue
            try:
                child_joined = join_results(child.input_path, output, error)
            except OSError:
                continue
            self._opened.append(child_joined)
            child_joined = self._merge_children(child_joined, child.id, depth + 1)
            joined = merge_child(joined, child_joined)
            self.merged_children.append(child.id)
        return joined

    def show_joined(self, joined: JoinedResults) -> None:
        self.joined = joined
        self.query_one("#results-summary", Static).update(summary_text(joined))
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

    def _recompute_matches(self) -> None:
        view = self.view
        positions = []
        for row in self._match_rows:
            at = view.position_of(row)
            if at >= 0:
                positions.append(at)
        self._match_positions = positions

    def action_find(self) -> None:
        find = self.query_one("#results-find", Input)
        find.add_class("-active")
        find.value = self.find_text
        find.focus()

    def _close_find(self) -> None:
        find = self.query_one("#results-find", Input)
        find.remove_class("-active")
        self.view.focus()

    @on(Input.Submitted, "#results-find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._close_find()
        self.search(event.value.strip())

    def search(self, text: str) -> None:
        self.find_text = text
        joined = self.joined
        self._match_rows = joined.search(text) if joined is not None and text else []
        self._recompute_matches()
        self._refresh_status()
        if text and not self._match_positions:
            self.notify(f"No row here matches '{text}'", severity="warning")
        elif text:
            self._jump(forward=True, inclusive=True)

    def _jump(self, *, forward: bool, inclusive: bool = False) -> None:
        positions = self._match_positions
        if not positions:
            if self.find_text:
                self.notify(f"No row here matches '{self.find_text}'", severity="warning")
            return
        cursor = self.view.cursor
        if forward:
            at = bisect_left(positions, cursor) if inclusive else bisect_right(positions, cursor)
            target = positions[at % len(positions)]
        else:
            at = bisect_left(positions, cursor) - 1
            target = positions[at % len(positions)]
        self.view.cursor = target

    def action_find_next(self) -> None:
        self._jump(forward=True)

    def action_find_previous(self) -> None:
        self._jump(forward=False)

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

        return orjson.dumps(export_record(joined, row)).decode(), "row JSON"

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
        find = self.query_one("#results-find", Input)
        if find.has_class("-active"):
            self._close_find()
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- export and retry -----------------------------------------------------------

    def action_export(self) -> None:
        if self.joined is None:
            self.notify("The results are not loaded yet", severity="warning")
            return
        from fr_tui.tui.modals.export import ExportModal

        default = Path.cwd() / f"{self.batch_id}-results.csv"
        self.app.push_screen(ExportModal(default, len(self.joined)), self._export_chosen)

    def _export_chosen(self, choice: tuple[Path, str] | None) -> None:
        if choice is not None:
            self.export(*choice)

    @work(exclusive=True, group="results-export", exit_on_error=False)
    async def export(self, path: Path, fmt: str) -> None:
        from fr_tui.core.export import export_rows

        joined = self.joined
        assert joined is not None
        self.set_status(f"Exporting to {path}…")
        try:
            written = await asyncio.to_thread(export_rows, joined, path, fmt)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            self.notify(str(exc), title="Export failed", severity="error")
            self._refresh_status()
            return
        self._refresh_status()
        self.notify(f"{written:,} rows written to {path}", title="Exported")

    def action_retry(self) -> None:
        joined = self.joined
        if joined is None:
            self.notify("The results are not loaded yet", severity="warning")
            return
        if self.inputs_missing:
            self.notify(
                "The input file is gone: there is nothing to copy the rows from",
                title="Retry",
                severity="warning",
            )
            return
        groups = joined.error_groups()
        if not groups:
            self.notify("Nothing to retry: every row succeeded", title="Retry")
            return
        from fr_tui.tui.modals.retry import RetryModal

        has_client = getattr(self.app, "client", None) is not None
        self.app.push_screen(RetryModal(groups, can_submit=has_client), self._retry_chosen)

    def _retry_chosen(self, groups: list[str] | None) -> None:
        if groups:
            self.retry(groups)

    @work(exclusive=True, group="results-retry", exit_on_error=False)
    async def retry(self, groups: list[str]) -> None:
        from fr_tui.tui.modals.retry import build_validate_submit

        await build_validate_submit(self, groups)
