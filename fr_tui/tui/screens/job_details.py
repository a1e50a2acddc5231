"""One job in full: status, round, rows ok / failed / missing, ETA and cost so far, why
rows were left, who drives it; then its parts in every round with their batches and
attempts, and what waits on the provider's enqueued-token limit. `enter` on a part opens
its batch; `o` the job's results; `c` cancels the job. Updates live as the job moves."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import DataTable, Static

from fr_tui.core.jobs_store import PART_WAITING, Job, JobPart, JobStore
from fr_tui.core.jobs_view import eta_text, job_progress, left_text, part_state
from fr_tui.core.records import BatchRecord
from fr_tui.core.units import money, plural
from fr_tui.tui import job_rows
from fr_tui.tui.job_driver import job_note
from fr_tui.tui.messages import BatchesChanged, JobsChanged
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.batch_format import (
    Column,
    ago,
    column_width,
    columns_for,
    progress_text,
    status_text,
)
from fr_tui.tui.widgets.job_format import job_role, job_status_text
from fr_tui.tui.widgets.live_table import LiveTable
from fr_tui.tui.widgets.verdict import role_styles

PART_COLUMNS = (
    Column("round", "Rnd", 3, 0),
    Column("part", "Part", 4, 0),
    Column("rows", "Rows", 7, 0),
    Column("state", "State", 10, 0),
    Column("batch", "Batch", 13, 0),
    Column("progress", "Progress", 14, 0),
    Column("attempts", "Try", 3, 0),
    Column("id", "Batch id", 34, 110),
    Column("note", "Note", 40, 150),
)
# spare width goes to Progress: `✓ 45,061 ✗ 4,939 ? 12` (a part of 50k rows) fits in 22
PART_ROOMS = (("progress", 22),)


class JobDetailsScreen(Screen[None]):
    DEFAULT_CSS = """
    JobDetailsScreen #job-head { padding: 0 1; text-style: bold; }
    JobDetailsScreen #job-head.-success { color: $success; }
    JobDetailsScreen #job-head.-warning { color: $warning; }
    JobDetailsScreen #job-head.-error { color: $error; }
    JobDetailsScreen:nocolor #job-head.-warning,
    JobDetailsScreen:nocolor #job-head.-error { text-style: bold reverse; }
    JobDetailsScreen #job-summary { padding: 0 1; height: auto; }
    JobDetailsScreen #job-parts-title { padding: 0 1; color: $accent; text-style: bold; }
    JobDetailsScreen #job-parts { height: 1fr; }
    JobDetailsScreen #job-hint { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("enter", "open_batch", "Batch", tooltip="The highlighted part's batch"),
        Binding("o", "open_results", "Results", tooltip="The job's merged rows"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the job (asks first)"),
        Binding("escape", "app.back", "Back", tooltip="To the Batches list"),
        Binding("y", "copy_id", "Copy id", show=False, tooltip="OSC 52, works over SSH"),
    ]

    default_clock: ClassVar[Callable[[], float]] = time.time

    def __init__(self, job_id: str, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.clock: Callable[[], float] = clock or type(self).default_clock
        self.job: Job | None = None
        self.parts: dict[str, JobPart] = {}
        self._shown: Any = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("", markup=False, id="job-head")
        yield Static("", markup=False, id="job-summary")
        yield Static("Parts", id="job-parts-title")
        yield LiveTable(id="job-parts")
        yield Static("", markup=False, id="job-hint")
        yield AppFooter()

    @property
    def table(self) -> LiveTable:
        return self.query_one("#job-parts", LiveTable)

    def on_mount(self) -> None:
        self._colours = role_styles(self.app)
        self._set_columns(self.app.size.width)
        self.reload()
        self.table.focus()
        self.set_interval(1.0, self.reload, name="job-details-tick")

    def _set_columns(self, width: int) -> None:
        if self.table.set_columns(columns_for(width, PART_COLUMNS, PART_ROOMS)):
            self._shown = None  # the rows went with the old columns: fill them again

    def on_resize(self, event: Resize) -> None:
        self._set_columns(event.size.width)
        self.reload()

    def crumbs(self, previous: Any) -> list[str]:
        return [self.job.label if self.job else self.job_id]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cancel", "open_results") and self.job is None:
            return None
        return None if self.why_not(action) else True

    def why_not(self, action: str) -> str | None:
        if action == "open_batch":
            part = self.highlighted_part()
            return None if part is not None and part.batch_id else "This part has no batch yet."
        if self.job is None:
            return None
        if action == "open_results" and not self.job.output_path:
            return "No merged results yet: a job writes them as it ends."
        return job_rows.why_not(action, self.job)

    @on(JobsChanged)
    @on(BatchesChanged)
    def _changed(self, message: JobsChanged | BatchesChanged) -> None:
        self.reload()

    # ----------------------------------------------------------------- rendering

    def reload(self) -> None:
        store = self.app.store
        job = JobStore(store).get(self.job_id)
        if job is None:
            self.query_one("#job-head", Static).update(f"Job {self.job_id} is not in history.")
            return
        self.job = job
        progress = job_progress(store, job, now=self.clock())
        parts = JobStore(store).parts(job.id)
        batches = {p.batch_id: store.get(job.origin, p.batch_id) for p in parts if p.batch_id}
        note = job_note(getattr(self.app, "jobs_driver", None), job)
        key = (job, progress.ok, progress.failed, progress.missing, progress.cost, note,
               [(p.slot, p.state, p.batch_id, p.attempts) for p in parts],
               [(b.status, b.request_completed, b.request_failed) for b in batches.values() if b],
               int(progress.eta or 0) // 5)  # fmt: skip
        if key == self._shown:
            return
        self._shown = key
        head = self.query_one("#job-head", Static)
        head.update(job_status_text(job, {}).plain + f"  {job.label}  ({job.id})")
        role = job_role(job)
        for name in ("success", "warning", "error"):
            head.set_class(role == name, f"-{name}")
        self.query_one("#job-summary", Static).update(self._summary(job, progress, note))
        self._fill(job, parts, batches)
        self.query_one(AppHeader).refresh()
        self.refresh_bindings()

    def _summary(self, job: Job, progress: Any, note: str | None) -> str:
        total = job.total or sum(v.part.rows for v in progress.parts)
        lines = [
            f"round {job.round} of up to {job.settings.rounds} · parts "
            f"{progress.parts_done}/{progress.parts_total} · {progress.in_flight} in flight"
            + (f" · {progress.waiting} waiting on the token limit" if progress.waiting else "")
            + ("" if job.terminal else f" · {eta_text(progress.eta)}"),
            f"✓ {progress.ok:,} ok · ✗ {progress.failed:,} failed · ? {progress.missing:,} "
            f"missing · of {total:,} rows",
            f"cost {money(progress.cost) if progress.cost is not None else '-'}"
            + ("" if job.terminal else " so far (ended batches)")
            + (f" · estimate ≤{money(job.estimate_high)}" if job.estimate_high is not None else "")
            + f" · {plural(len(progress.all_batches), 'batch', 'batches')} · made "
            f"{ago(job.created_at, self.clock())}",
            f"input {job.input_path}",
        ]
        if job.output_path:
            lines.append(f"merged {job.output_path}")
        left = left_text(job)
        if left:
            lines.append(f"left: {left}")
        if job.reason and job.status != "completed":
            lines.append(f"{job.status}: {job.reason}")
        if note:
            lines.append(note)
        return "\n".join(lines)

    def _fill(self, job: Job, parts: list[JobPart], batches: dict[Any, BatchRecord | None]) -> None:
        table = self.table
        columns = table.columns_shown
        progress_width = column_width(columns, "progress")
        keep = table.cursor_row
        table.clear()
        self.parts = {}
        for part in parts:
            batch = batches.get(part.batch_id)
            values: dict[str, Any] = {
                "round": str(part.round),
                "part": str(part.part),
                "rows": f"{part.rows:,}",
                "state": Text(part.state, style=self._colours.get("warning", ""))
                if part.state == PART_WAITING
                else part_state(job, part, batch),
                "batch": status_text(batch, self._colours) if batch else "-",
                "progress": "token limit"
                if part.state == PART_WAITING
                else progress_text(batch, progress_width)
                if batch
                else "-",
                "attempts": str(part.attempts),
                "id": Text(part.batch_id or "-"),
                "note": Text(part.note or ""),
            }
            key = f"{part.round}:{part.part}"
            self.parts[key] = part
            table.add_row(*(values[c.key] for c in columns), key=key)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1), animate=False)
        self._hint()

    def highlighted_part(self) -> JobPart | None:
        key = self.table.cursor_key()
        return self.parts.get(key) if key is not None else None

    def _hint(self) -> None:
        part = self.highlighted_part()
        text = ""
        if part is not None:
            text = f"part {part.part}, round {part.round}: {part.rows:,} rows, {part.state}"
            if part.parent_part:
                text += f" (a half of part {part.parent_part})"
            if part.note:
                text += f" · {part.note}"
        self.query_one("#job-hint", Static).update(text)

    @on(DataTable.RowHighlighted, "#job-parts")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._hint()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#job-parts")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_batch()

    # ----------------------------------------------------------------- actions

    def action_open_batch(self) -> None:
        part = self.highlighted_part()
        if part is None or not part.batch_id or self.job is None:
            self.notify("This part has no batch yet.")
            return
        from fr_tui.tui.screens.batch_details import BatchDetailsScreen

        self.app.push_screen(BatchDetailsScreen(part.batch_id, origin=self.job.origin))

    def action_open_results(self) -> None:
        if self.job is not None:
            job_rows.open_results(self, self.job)

    def action_cancel(self) -> None:
        if self.job is not None:
            job_rows.request_cancel(self, self.job, self.reload)

    def action_copy_id(self) -> None:
        if self.job is not None:
            job_rows.copy_id(self, self.job)
