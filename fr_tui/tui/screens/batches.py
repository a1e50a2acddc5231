"""Batches (key 2): every batch in history, newest first, kept current by the poller.

Rows are keyed by batch id and updated in place (only the cells whose text changed), so
the cursor and scroll position survive every refresh. Columns have fixed widths and the
less important ones drop out on narrow terminals.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from fr_tui.core.intents import Intent, IntentLog
from fr_tui.core.models import Batch
from fr_tui.core.result_sets import ResultSetRef
from fr_tui.core.store import BatchRecord
from fr_tui.core.units import plural
from fr_tui.tui import batch_actions, batch_marks, job_rows, server_batches
from fr_tui.tui.job_driver import job_note
from fr_tui.tui.messages import BatchesChanged, BatchFinished, JobsChanged, PollStatus
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.batch_format import (
    Column,
    ago,
    batch_cells,
    column_width,
    columns_for,
    cost_text,
    duration,
    endpoint_text,
    filters_for,
    matches_filter,
    rows_missing,
    status_role,
    timing_text,
    unknown_cells,
)
from fr_tui.tui.widgets.cost_lines import SpendLine
from fr_tui.tui.widgets.job_format import job_cells, job_time_text
from fr_tui.tui.widgets.live_table import LiveTable
from fr_tui.tui.widgets.verdict import role_styles

UNKNOWN_PREFIX = "unknown:"
# the keys that act on the highlighted batch or job
ROW_ACTIONS = ("details", "open_results", "retry", "cancel", "copy_id", "mark", "compare")


def batch_row_keys(records: list[BatchRecord]) -> list[str]:
    """Each batch's row key: its id, or id and server when two servers used the same id."""
    seen = Counter(r.id for r in records)
    return [r.id if seen[r.id] == 1 else f"{r.id} @ {r.origin}" for r in records]


class BatchesScreen(Screen[None]):
    DEFAULT_CSS = """
    BatchesScreen #batches-indicator { height: 1; padding: 0 1; color: $text-muted; }
    BatchesScreen #batches-indicator.-warning { color: $warning; text-style: bold; }
    BatchesScreen #batches-indicator.-paused { color: $accent; }
    BatchesScreen #batches-table { height: 1fr; }
    BatchesScreen #batches-hint { height: 1; padding: 0 1; color: $text-muted; }
    BatchesScreen #batches-hint.-warning { color: $warning; }
    BatchesScreen #batches-find { dock: bottom; display: none; }
    BatchesScreen #batches-find.-shown { display: block; }
    BatchesScreen #batches-empty { padding: 1 2; color: $text-muted; display: none; }
    BatchesScreen #batches-empty.-shown { display: block; }
    """
    # of equal rank in the footer: those that apply to the row come first (AppFooter)
    FOOTER_BY_STATE = ("open_results", "retry", "cancel")
    # Most important first: the footer keeps as many as fit, help lists them all.
    BINDINGS: ClassVar[list[Any]] = [
        Binding("l", "lookup_unknown", "Look up", tooltip="Ask the server about a lost create"),
        Binding("x", "forget_unknown", "Forget", tooltip="Drop the lost-create entry"),
        Binding("enter", "details", "Details", tooltip="Everything about the batch or job"),
        Binding("space", "toggle_job", "Expand", tooltip="Show or hide a job's batches"),
        Binding("o", "open_results", "Results", tooltip="Downloading them first if needed"),
        Binding("R", "retry", "Retry", tooltip="Resubmit the failed and missing rows"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the batch (asks first)"),
        Binding("f", "cycle_filter", "Filter", tooltip="all / active / done / failed / profile"),
        Binding("slash", "find", "Find", tooltip="By name or id"),
        Binding("r", "refresh", "Refresh", tooltip="Poll the running batches now"),
        Binding("m", "mark", "Mark", tooltip="Mark this batch to compare another with it (=)"),
        Binding(
            "equals_sign",
            "compare",
            "Compare with…",
            tooltip="Compare the marked batch or job (m) with this one",
        ),
        Binding("p", "pause", "Pause", tooltip="Pause or resume auto-refresh"),
        Binding("i", "import_batches", "Import", show=False, tooltip="Batches the server lists"),
        Binding("y", "copy_id", "Copy id", show=False, tooltip="OSC 52, works over SSH"),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
        Binding("g", "cursor('top')", "Top", show=False),
        Binding("G", "cursor('bottom')", "Bottom", show=False),
        Binding("escape", "close_find", "Close find", show=False),
    ]

    # Tests replace this (or pass clock=) so relative times don't change under them.
    default_clock: ClassVar[Callable[[], float]] = time.time

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.clock: Callable[[], float] = clock or type(self).default_clock
        self.filter_mode = "all"
        self.find_text = ""
        self.records: dict[str, BatchRecord] = {}
        self.unknown: list[Intent] = []
        self.importable: list[Batch] = []
        self.job_rows = job_rows.JobRows()  # jobs: one row each, their batches under them
        self._colours: dict[str, str] = {}
        self._poll_ok = True
        self._poll_error: str | None = None
        self._paused = False
        self.marked: ResultSetRef | None = None  # A of the next comparison (m, then =)

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("", markup=False, id="batches-indicator")
        yield SpendLine(id="batches-spend")
        yield Static(
            "No batches yet. Submit a file from Files (key 1, then s) or with `fr-tui submit`.",
            id="batches-empty",
        )
        yield LiveTable(id="batches-table")
        yield Static("", markup=False, id="batches-hint")
        yield Input(
            placeholder="find: name or id (enter to keep, escape to clear)", id="batches-find"
        )
        yield AppFooter()

    @property
    def table(self) -> LiveTable:
        return self.query_one("#batches-table", LiveTable)

    @property
    def _columns(self) -> tuple[Column, ...]:
        return self.table.columns_shown

    @property
    def store(self) -> Any:
        return self.app.store

    def on_mount(self) -> None:
        self._colours = self._theme_colours()
        self._set_columns(columns_for(self.app.size.width))
        self.reload()
        self.set_interval(1.0, self.tick, name="batches-tick")
        poller = getattr(self.app, "poller", None)
        if poller is not None:
            self._paused = bool(getattr(poller, "paused", False))
            self._poll_error = getattr(poller, "last_error", None)
            self._poll_ok = self._poll_error is None
        self._update_indicator()
        pending = getattr(self.app, "pending_batch_select", None)
        if pending:
            self.select_batch(pending)
        self.check_server_list()

    def _theme_colours(self) -> dict[str, str]:
        return role_styles(self.app)

    # ----------------------------------------------------------------- data -> table

    def reload(self) -> None:
        """Read history again and apply it to the table (in place)."""
        records = self.store.batches()
        self.unknown = IntentLog(self.store).unknown()
        self.job_rows.load(self.store, self.clock())
        self.apply(records)

    def _visible(self, records: list[BatchRecord]) -> list[BatchRecord]:
        needle = self.find_text.lower()
        out = []
        for record in records:
            if not matches_filter(record, self.filter_mode):
                continue
            if needle and needle not in record.label.lower() and needle not in record.id.lower():
                continue
            out.append(record)
        return out

    def apply(self, records: list[BatchRecord]) -> None:
        """Bring the table in line with `records` (history order, newest first)."""
        now = self.clock()
        columns = self._columns
        self.records = dict(zip(batch_row_keys(records), records, strict=True))
        keys = {id(r): k for k, r in self.records.items()}
        rows: dict[str, tuple[Any, ...]] = {}
        if self.filter_mode in ("all", "failed") and not self.find_text:
            for entry in self.unknown:
                values = unknown_cells(entry, now, self._colours)
                rows[f"{UNKNOWN_PREFIX}{entry.token}"] = tuple(values[c.key] for c in columns)
        visible = [(keys[id(r)], r) for r in self._visible(records)]
        driver = getattr(self.app, "jobs_driver", None)
        width = column_width(columns, "progress")
        for key, item, branch in self.job_rows.arrange(visible, self.filter_mode, self.find_text):
            if isinstance(item, BatchRecord):
                values = batch_cells(item, now, self._colours, width, branch)
            else:
                progress = self.job_rows.progress[item.id]
                expanded = item.id in self.job_rows.expanded
                note = job_note(driver, item)
                values = job_cells(progress, expanded, self._colours, now, note, width)
            if self.marked == batch_marks.ref_of(item):
                values["name"] = batch_marks.marked_name(values["name"])
            rows[key] = tuple(values[c.key] for c in columns)
        order = list(rows)
        with self.app.batch_update():
            self.table.show(rows, order)
        empty = not records and not self.unknown and not self.job_rows.jobs
        self.query_one("#batches-empty").set_class(empty, "-shown")
        self._update_hint()

    def redraw(self) -> None:
        """Apply the records already read again (a filter, find, mark or expansion changed)."""
        self.apply(list(self.records.values()))
        self.refresh_bindings()

    def _set_columns(self, columns: tuple[Column, ...]) -> None:
        keep = self.highlighted_key()
        if self.table.set_columns(columns) and (self.records or self.unknown):
            self.redraw()
            if keep:
                self.select_batch(keep)

    def on_resize(self, event: Resize) -> None:
        self._set_columns(columns_for(event.size.width))

    def tick(self) -> None:
        """Once a second: relative times and the 'updated N s ago' indicator."""
        now = self.clock()
        table = self.table
        keys = [c.key for c in self._columns]
        changed = []
        for row_key in table.order:
            times = self._times(row_key, now)
            if times is None:
                continue
            cells = list(table.cells[row_key])
            for column, text in zip(("created", "time"), times, strict=True):
                if column in keys:
                    cells[keys.index(column)] = text
            changed.append((row_key, tuple(cells)))
        with self.app.batch_update():
            table.update_rows(changed)
        self._update_indicator()

    def _times(self, row_key: str, now: float) -> tuple[Any, Any] | None:
        """A row's Created and Time cells now (a batch's or a job's); None for others."""
        record = self.records.get(row_key)
        if record is not None:
            return ago(record.created_at, now), timing_text(record, now)
        job = self.job_rows.job_of(row_key)
        progress = self.job_rows.progress.get(job.id) if job is not None else None
        if progress is None:
            return None
        return ago(progress.job.created_at, now), job_time_text(progress, now)

    # ----------------------------------------------------------------- poller messages

    @on(BatchesChanged)
    @on(JobsChanged)
    def _on_changed(self, message: BatchesChanged | JobsChanged) -> None:
        self.reload()
        self._update_indicator()
        self.query_one(SpendLine).refresh_spend()

    @on(BatchFinished)
    def _on_finished(self, message: BatchFinished) -> None:
        self.reload()
        self.query_one(SpendLine).refresh_spend()

    @on(PollStatus)
    def _on_poll_status(self, message: PollStatus) -> None:
        self._poll_ok = message.ok
        self._poll_error = message.error
        self._paused = message.paused
        self._update_indicator()

    def _update_indicator(self) -> None:
        indicator = self.query_one("#batches-indicator", Static)
        poller = getattr(self.app, "poller", None)
        last_ok = getattr(poller, "last_ok_at", None)
        own = [r for r in self.records.values() if r.id not in self.job_rows.members]
        active = sum(1 for r in own if not r.terminal)
        jobs = self.job_rows.jobs.values()
        active += sum(1 for j in jobs if not j.terminal)
        jobs_text = f"{plural(len(jobs), 'job')}, " if jobs else ""
        parts = [f"{plural(len(own), 'batch', 'batches')}, {jobs_text}{active} active"]
        if self.filter_mode != "all":
            parts.append(f"filter: {self.filter_mode}")
        if self.find_text:
            parts.append(f"find: {self.find_text}")
        updated = f"updated {duration(self.clock() - last_ok)} ago" if last_ok else "not polled yet"
        warning = not self._poll_ok and self._poll_error
        if self._paused:
            state = f"‖ paused (p resumes) · {updated}"
        elif warning:
            state = f"⚠ refresh failing: {self._poll_error} · {updated}"
        else:
            state = f"● live · {updated}" if active else "● idle: nothing running"
        indicator.update(" · ".join([state, *parts]))
        indicator.set_class(bool(warning) and not self._paused, "-warning")
        indicator.set_class(self._paused, "-paused")

    def _update_hint(self) -> None:
        hint = self.query_one("#batches-hint", Static)
        key = self.highlighted_key()
        warn = False
        if key is None:
            text = ""
        elif key.startswith(UNKNOWN_PREFIX):
            text = "Outcome unknown: the create answer was lost. l look up on the server · x forget"
            warn = True
        elif (job := self.job_rows.job_of(key)) is not None:
            text, warn = self.job_rows.hint(job, getattr(self.app, "jobs_driver", None))
        else:
            record = self.records.get(key)
            if record is None:
                text = ""
            else:
                # what needs the user first: the end of a long line is cut at 80 columns
                bits = [record.id, endpoint_text(record), cost_text(record)]
                if record.poll_error and not record.terminal:
                    bits.insert(0, f"⚠ {record.poll_error}")
                    warn = True
                elif status_role(record) == "warning" and record.status == "completed":
                    problems = []
                    if record.request_failed:
                        problems.append(f"{plural(record.request_failed, 'row')} failed")
                    if missing := rows_missing(record):
                        problems.append(f"{missing:,} missing")
                    if record.id in self.job_rows.members:  # its job's next round took them
                        bits.insert(0, f"{', '.join(problems)}: its job retries them")
                    else:
                        bits.insert(0, f"{', '.join(problems)}: R retries them")
                        warn = True
                text = " · ".join(bits)
        hint.update(batch_marks.hint(self, text))
        hint.set_class(warn, "-warning")

    @on(DataTable.RowHighlighted, "#batches-table")
    def _on_highlight(self, event: DataTable.RowHighlighted) -> None:
        self._update_hint()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#batches-table")
    def _on_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    # ----------------------------------------------------------------- selection

    def highlighted_key(self) -> str | None:
        return self.table.cursor_key()

    def highlighted(self) -> BatchRecord | None:
        key = self.highlighted_key()
        return self.records.get(key) if key else None

    def select_batch(self, batch_id: str) -> None:
        if batch_id not in self.table.order:
            self.filter_mode = "all"
            self.find_text = ""
            self.reload()
        if batch_id in self.table.order:
            self.table.move_cursor(row=self.table.order.index(batch_id))

    def _unknown_entry(self) -> Intent | None:
        key = self.highlighted_key()
        if not key or not key.startswith(UNKNOWN_PREFIX):
            return None
        token = key.removeprefix(UNKNOWN_PREFIX)
        return next((u for u in self.unknown if u.token == token), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """False hides a key that has nothing to act on here; None dims one that does
        not apply to the highlighted row (why_not says why, when the key is pressed)."""
        if action in ("lookup_unknown", "forget_unknown"):
            return self._unknown_entry() is not None
        job = self.job_rows.job_of(self.highlighted_key())
        if action == "toggle_job":
            return job is not None
        if job is None and action in ROW_ACTIONS and self.highlighted() is None:
            return None if self._unknown_entry() is None else False
        return None if self.why_not(action) else True

    def why_not(self, action: str) -> str | None:
        if (job := self.job_rows.job_of(self.highlighted_key())) is not None:
            return job_rows.why_not(action, job)
        record = self.highlighted()
        if record is None:
            return None
        return batch_actions.why_not(action, record, self.job_rows.members.get(record.id))

    # ----------------------------------------------------------------- actions

    def action_cursor(self, where: str) -> None:
        table = self.table
        if where == "down":
            table.action_cursor_down()
        elif where == "up":
            table.action_cursor_up()
        elif where == "top":
            table.move_cursor(row=0)
        elif where == "bottom":
            table.move_cursor(row=max(0, table.row_count - 1))

    def _need_record(self) -> BatchRecord | None:
        record = self.highlighted()
        if record is None:
            if self._unknown_entry() is not None:
                self.notify("Outcome unknown: press l to look it up, x to forget it.")
            else:
                self.notify("No batch selected.")
        return record

    def _highlighted_job(self) -> Any:
        return self.job_rows.job_of(self.highlighted_key())

    def action_toggle_job(self) -> None:
        job = self._highlighted_job()
        if job is not None:
            self.job_rows.toggle(job.id)
            self.redraw()

    def action_details(self) -> None:
        if (job := self._highlighted_job()) is not None:
            from fr_tui.tui.screens.job_details import JobDetailsScreen

            self.app.push_screen(JobDetailsScreen(job.id))
            return
        if self._unknown_entry() is not None:
            self.action_lookup_unknown()
            return
        record = self._need_record()
        if record is None:
            return
        from fr_tui.tui.screens.batch_details import BatchDetailsScreen

        self.app.push_screen(BatchDetailsScreen(record.id, origin=record.origin))

    def action_refresh(self) -> None:
        poller = getattr(self.app, "poller", None)
        if poller is not None:
            poller.refresh_now()
        self.reload()
        self.notify("Refreshing…", timeout=2)

    def action_pause(self) -> None:
        poller = getattr(self.app, "poller", None)
        if poller is None:
            return
        paused = poller.toggle_pause()
        self._paused = paused
        self._update_indicator()
        self.notify("Auto-refresh paused." if paused else "Auto-refresh resumed.", timeout=3)

    def action_cancel(self) -> None:
        if (job := self._highlighted_job()) is not None:
            job_rows.request_cancel(self, job)
            return
        record = self._need_record()
        if record is not None:
            batch_actions.request_cancel(self, record)

    def action_open_results(self) -> None:
        if (job := self._highlighted_job()) is not None:
            job_rows.open_results(self, job)
            return
        record = self._need_record()
        if record is not None:
            batch_actions.open_results(self, record)

    def action_retry(self) -> None:
        record = self._need_record()
        if record is not None:
            batch_actions.retry(self, record)

    def action_copy_id(self) -> None:
        if (job := self._highlighted_job()) is not None:
            job_rows.copy_id(self, job)
            return
        record = self._need_record()
        if record is not None:
            batch_actions.copy_id(self, record)

    def action_mark(self) -> None:
        batch_marks.mark(self)

    def action_compare(self) -> None:
        batch_marks.compare(self)

    def action_cycle_filter(self) -> None:
        filters = filters_for(list(self.records.values()))
        at = filters.index(self.filter_mode) if self.filter_mode in filters else -1
        self.filter_mode = filters[(at + 1) % len(filters)]
        self.redraw()
        self._update_indicator()
        self.notify(f"Showing: {self.filter_mode}", timeout=2)

    def action_find(self) -> None:
        find = self.query_one("#batches-find", Input)
        find.add_class("-shown")
        find.focus()

    @on(Input.Changed, "#batches-find")
    def _on_find_changed(self, event: Input.Changed) -> None:
        self.find_text = event.value.strip()
        self.redraw()
        self._update_indicator()

    @on(Input.Submitted, "#batches-find")
    def _on_find_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_close_find(self) -> None:
        find = self.query_one("#batches-find", Input)
        if find.has_class("-shown"):
            find.value = ""
            find.remove_class("-shown")
            self.table.focus()
            return
        back = getattr(self.app, "action_back", None)
        if callable(back):
            back()

    # ----------------------------------------------------------------- server list, unknowns

    def check_server_list(self) -> None:
        self.run_worker(
            server_batches.offer_import(self),
            group="batches-list",
            exclusive=True,
            exit_on_error=False,
        )

    def action_import_batches(self) -> None:
        self.run_worker(
            server_batches.import_missing(self),
            group="batches-list",
            exclusive=True,
            exit_on_error=False,
        )

    def action_lookup_unknown(self) -> None:
        entry = self._unknown_entry()
        if entry is not None:
            self.run_worker(
                server_batches.look_up(self, entry), group="batches-lookup", exit_on_error=False
            )

    def action_forget_unknown(self) -> None:
        entry = self._unknown_entry()
        if entry is None:
            return
        IntentLog(self.store).forget(entry.token)
        self.reload()
        self.notify("Forgotten.")
