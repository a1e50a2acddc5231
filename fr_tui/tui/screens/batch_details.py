"""One batch in full: status, progress, timeline, usage and cost, errors (enter opens the
input file at that line), files, metadata, lineage (enter opens parent/child) and every
field the API returned. Updates live while the poller reports changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from fr_tui.core.costlog import batch_models
from fr_tui.core.models import TIMESTAMP_FIELDS
from fr_tui.core.store import BatchRecord
from fr_tui.core.units import plain_number, plural
from fr_tui.tui import batch_actions
from fr_tui.tui.messages import BatchesChanged, BatchFinished
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.batch_format import (
    cost_text,
    duration,
    endpoint_text,
    rows_missing,
    rows_not_ok,
    status_glyph,
    status_role,
    timing_text,
)

STAMP_LABELS = {
    "created_at": "created",
    "in_progress_at": "in progress",
    "finalizing_at": "finalizing",
    "completed_at": "completed",
    "failed_at": "failed",
    "expired_at": "expired",
    "cancelling_at": "cancelling",
    "cancelled_at": "cancelled",
    "expires_at": "expires",
}


def format_stamp(ts: int) -> str:
    try:
        return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # a timestamp no calendar can show
        return f"{ts} (not a valid time)"


def _number(value: object) -> str:
    """Usage numbers as digits (a server's 8.675e-05 reads 0.00008675)."""
    if isinstance(value, float):
        return plain_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


class BatchDetailsScreen(Screen[None]):
    DEFAULT_CSS = """
    BatchDetailsScreen #details-body { height: 1fr; padding: 0 1; }
    BatchDetailsScreen .details-title { text-style: bold; margin-top: 1; color: $accent; }
    BatchDetailsScreen #details-head { text-style: bold; }
    BatchDetailsScreen #details-head.-success { color: $success; }
    BatchDetailsScreen #details-head.-warning { color: $warning; }
    BatchDetailsScreen #details-head.-error { color: $error; }
    BatchDetailsScreen:nocolor #details-head { color: $text; }
    BatchDetailsScreen:nocolor #details-head.-warning,
    BatchDetailsScreen:nocolor #details-head.-error { text-style: bold reverse; }
    BatchDetailsScreen #details-progress { margin: 0 0; }
    BatchDetailsScreen OptionList { height: auto; max-height: 12; border: none; padding: 0; }
    BatchDetailsScreen OptionList:focus { background: $boost; }
    BatchDetailsScreen #details-raw { color: $text-muted; }
    """
    # of equal rank in the footer: those that apply to the row come first (AppFooter)
    FOOTER_BY_STATE = ("open_results", "retry", "cancel")
    # Most important first: the footer keeps as many as fit, help lists them all.
    BINDINGS: ClassVar[list[Any]] = [
        Binding("o", "open_results", "Results", tooltip="Downloading them first if needed"),
        Binding("R", "retry", "Retry", tooltip="Resubmit the failed and missing rows"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the batch (asks first)"),
        Binding("escape", "app.back", "Back", tooltip="To the Batches list"),
        Binding("y", "copy_id", "Copy id", show=False, tooltip="OSC 52, works over SSH"),
        Binding("r", "refresh", "Refresh", show=False, tooltip="Poll this batch now"),
        Binding("j", "scroll_body('down')", "Down", show=False),
        Binding("k", "scroll_body('up')", "Up", show=False),
        Binding("g", "scroll_body('home')", "Top", show=False),
        Binding("G", "scroll_body('end')", "Bottom", show=False),
    ]

    default_clock: ClassVar[Callable[[], float]] = time.time

    def __init__(
        self,
        batch_id: str,
        *,
        origin: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.origin = origin  # None: found by id (see FrTuiApp.find_record)
        self.clock: Callable[[], float] = clock or type(self).default_clock
        self.record: BatchRecord | None = None
        self.job_id: str | None = None  # the job that made it (its retries are the job's)
        self._shown: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with VerticalScroll(id="details-body"):
            yield Static("", id="details-head")
            yield ProgressBar(id="details-progress", show_eta=False)
            yield Static("", id="details-counts")
            yield Static("Timeline", classes="details-title")
            yield Static("", id="details-timeline")
            yield Static("Usage and cost", classes="details-title")
            yield Static("", id="details-usage")
            yield Static("Errors", classes="details-title", id="details-errors-title")
            yield OptionList(id="details-errors")
            yield Static("Files", classes="details-title")
            yield Static("", id="details-files")
            yield Static("Metadata", classes="details-title")
            yield Static("", id="details-metadata")
            yield Static("Lineage", classes="details-title")
            yield OptionList(id="details-lineage")
            yield Static("Everything the API returned", classes="details-title")
            yield Static("", id="details-raw")
        yield AppFooter()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(1.0, self._tick, name="details-tick")

    def action_scroll_body(self, where: str) -> None:
        """j / k / g / G as in the lists (a long batch does not fit 80x24)."""
        body = self.query_one("#details-body", VerticalScroll)
        getattr(body, f"scroll_{where}")(animate=False)

    def crumbs(self, previous: Any) -> list[str]:
        return [self.record.label if self.record else self.batch_id]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None dims a key that does not apply to this batch (it is shown, but off, and
        why_not says why when it is pressed)."""
        if action in ("cancel", "retry") and self.record is None:
            return None
        return None if self.why_not(action) else True

    def why_not(self, action: str) -> str | None:
        if self.record is None:
            return None
        return batch_actions.why_not(action, self.record, self.job_id)

    # ----------------------------------------------------------------- rendering

    def reload(self) -> None:
        client = getattr(self.app, "client", None)
        record = self.app.store.lookup(
            self.batch_id, self.origin, prefer=getattr(client, "origin", None)
        )
        if record is None:
            self.query_one("#details-head", Static).update(
                f"Batch {escape(self.batch_id)} is not in history."
            )
            return
        if self.record is None:
            self.job_id = batch_actions.job_of(self.app, record)
        self.record = record
        self.origin = record.origin
        children = self.app.store.children(record.origin, record.id)
        # The children's statuses too: the lineage lines show them, live.
        key = (
            record.to_dict(),
            record.raw,
            record.poll_error,
            [(c.id, c.status, c.request_completed, c.request_failed) for c in children],
        )
        if key == self._shown:
            return
        self._shown = key
        self._render_head(record)
        self._render_progress(record)
        self._render_timeline(record)
        self._render_usage(record)
        self._render_errors(record)
        self._render_files(record)
        self._render_metadata(record)
        self._render_lineage(record, children)
        self.query_one(AppHeader).refresh()
        self.refresh_bindings()
        raw = msgspec.json.format(msgspec.json.encode(record.raw, order="sorted"), indent=2)
        self.query_one("#details-raw", Static).update(escape(raw.decode()) if record.raw else "-")

    def _render_head(self, record: BatchRecord) -> None:
        head = self.query_one("#details-head", Static)
        role = status_role(record)
        word = record.status.replace("_", " ")
        models = batch_models(self.app.store, record)
        lines = [
            f"{status_glyph(record)} {escape(word)}  {escape(record.label)}",
            f"id {escape(record.id)} · {escape(endpoint_text(record))}"
            + (f" · model {escape(models[0][0])}" if len(models) == 1 else "")
            + f" · {timing_text(record, self.clock())}",
        ]
        if len(models) > 1:
            lines.append(
                "models "
                + ", ".join(f"{escape(name)} ({plural(rows, 'row')})" for name, rows in models)
            )
        if record.status in ("validating", "finalizing"):
            lines.append(f"{word.capitalize()} can take a while on a busy server; this is normal.")
        if record.poll_error and not record.terminal:
            lines.append(f"⚠ last refresh failed: {escape(record.poll_error)}")
        if record.status in ("expired", "cancelled") and record.output_file_id:
            lines.append("Partial results are available: press o to open them.")
        head.update("\n".join(lines))
        for name in ("success", "warning", "error"):
            head.set_class(role == name, f"-{name}")

    def _render_progress(self, record: BatchRecord) -> None:
        bar = self.query_one("#details-progress", ProgressBar)
        counts = self.query_one("#details-counts", Static)
        if record.request_total is None:
            bar.update(total=None)
            counts.update("Request counts: unknown (the API has not reported them)")
            return
        done = (record.request_completed or 0) + (record.request_failed or 0)
        bar.update(total=max(1, record.request_total), progress=done)
        # Once it ended the bar says nothing more (a 90% bar on a completed batch reads
        # as "not done"): the counts say what came back.
        bar.display = not record.terminal
        if record.terminal:
            counts.update(
                f"✓ {record.request_completed or 0:,} ok · ✗ {record.request_failed or 0:,} "
                f"failed · ? {rows_missing(record):,} missing · of {record.request_total:,}"
            )
        else:
            counts.update(
                f"{record.request_completed or 0:,} completed · "
                f"{record.request_failed or 0:,} failed · {record.request_total:,} total"
            )

    def _render_timeline(self, record: BatchRecord) -> None:
        created = record.created_at
        lines = []
        for name in TIMESTAMP_FIELDS:
            ts = record.timestamps.get(name)
            if not ts:
                continue
            after = f"  (+{duration(ts - created)})" if created and name != "created_at" else ""
            lines.append(f"{STAMP_LABELS[name]:<12} {format_stamp(ts)}{after}")
        if record.last_polled_at:
            lines.append(f"{'last polled':<12} {format_stamp(int(record.last_polled_at))}")
        self.query_one("#details-timeline", Static).update("\n".join(lines) or "-")

    def _render_usage(self, record: BatchRecord) -> None:
        usage = record.usage or {}
        lines = [f"cost {cost_text(record)}"]
        for key, value in usage.items():
            if key == "cost":
                continue  # the first line says it, as money
            if isinstance(value, dict):
                inner = ", ".join(f"{k} {_number(v)}" for k, v in value.items())
                lines.append(f"{key}: {inner}")
            else:
                lines.append(f"{key}: {_number(value)}")
        self.query_one("#details-usage", Static).update(escape("\n".join(lines)))

    def _render_errors(self, record: BatchRecord) -> None:
        errors = self.query_one("#details-errors", OptionList)
        errors.clear_options()
        title = self.query_one("#details-errors-title", Static)
        if not record.errors:
            # the batch's own errors; its rows' failures are in the results
            failed = rows_not_ok(record)
            rows = f" ({plural(failed, 'row')} failed or missing: see Results)" if failed else ""
            title.update(f"Batch errors: none{rows}")
            errors.display = False
            return
        title.update(f"Errors ({len(record.errors)}) · enter opens the input file at that line")
        errors.display = True
        options = []
        for index, error in enumerate(record.errors):
            line = error.get("line")
            where = f"line {line}" if line else "no line"
            text = f"{where}: {error.get('code') or 'error'}: {error.get('message') or ''}"
            if error.get("param"):
                text += f" ({error['param']})"
            options.append(Option(escape(text), id=f"error-{index}"))
        errors.add_options(options)
        errors.highlighted = 0

    def _render_files(self, record: BatchRecord) -> None:
        def row(label: str, file_id: str | None, path: str | None) -> str:
            here = path if path else "not downloaded" if file_id else ""
            return f"{label:<7} {file_id or '-'}  {here}".rstrip()

        lines = [
            row("input", record.input_file_id, record.input_path),
            row("output", record.output_file_id, record.output_path),
            row("errors", record.error_file_id, record.error_path),
        ]
        if record.input_rows is not None:
            lines.append(f"input rows {record.input_rows}")
        self.query_one("#details-files", Static).update(escape("\n".join(lines)))

    def _render_metadata(self, record: BatchRecord) -> None:
        metadata = record.metadata or {}
        text = "\n".join(f"{k}: {v}" for k, v in metadata.items()) or "-"
        self.query_one("#details-metadata", Static).update(escape(text))

    def _render_lineage(self, record: BatchRecord, children: list[BatchRecord]) -> None:
        lineage = self.query_one("#details-lineage", OptionList)
        lineage.clear_options()
        options = []
        if record.parent_batch_id:
            parent = self.app.store.get(record.origin, record.parent_batch_id)
            label = f" {parent.label} ({parent.status})" if parent else " (not in history)"
            options.append(
                Option(
                    escape(f"parent  {record.parent_batch_id}{label}"),
                    id=f"batch-{record.parent_batch_id}",
                )
            )
        for child in children:
            options.append(
                Option(
                    escape(f"retry   {child.id} {child.label} ({child.status})"),
                    id=f"batch-{child.id}",
                )
            )
        if not options:
            options.append(Option("none: no parent, no retries", disabled=True))
        lineage.add_options(options)
        lineage.highlighted = 0

    def _tick(self) -> None:
        if self.record is not None:
            self._render_head(self.record)

    # ----------------------------------------------------------------- events

    @on(BatchesChanged)
    def _on_changed(self, message: BatchesChanged) -> None:
        if self.batch_id in message.ids or any(
            self.record and i == self.record.parent_batch_id for i in message.ids
        ):
            self.reload()
        elif self.record is not None:
            # A new child (a retry of this batch) appears here too.
            self.reload()

    @on(BatchFinished)
    def _on_finished(self, message: BatchFinished) -> None:
        if message.record.id == self.batch_id:
            self.reload()

    @on(OptionList.OptionSelected, "#details-errors")
    def _on_error_selected(self, event: OptionList.OptionSelected) -> None:
        record = self.record
        if record is None or event.option.id is None:
            return
        error = record.errors[int(event.option.id.removeprefix("error-"))]
        line = error.get("line")
        if not record.input_path:
            self.notify("The input file of this batch is not known here.", severity="warning")
            return
        path = Path(record.input_path)
        if not path.exists():
            self.notify(f"The input file {path} is no longer there.", severity="warning")
            return
        self.app.open_file(path, line=line if isinstance(line, int) else None)

    @on(OptionList.OptionSelected, "#details-lineage")
    def _on_lineage_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id.startswith("batch-"):
            batch_id = event.option.id.removeprefix("batch-")
            if self.app.store.get(self.origin or "", batch_id) is None:
                self.notify(f"{batch_id} is not in history.", severity="warning")
                return
            self.app.push_screen(BatchDetailsScreen(batch_id, origin=self.origin, clock=self.clock))

    # ----------------------------------------------------------------- actions

    def _need(self) -> BatchRecord | None:
        if self.record is None:
            self.notify("This batch is not in history.", severity="warning")
        return self.record

    def action_cancel(self) -> None:
        if record := self._need():
            batch_actions.request_cancel(self, record)

    def action_open_results(self) -> None:
        if record := self._need():
            batch_actions.open_results(self, record)

    def action_retry(self) -> None:
        if record := self._need():
            batch_actions.retry(self, record)

    def action_copy_id(self) -> None:
        if record := self._need():
            batch_actions.copy_id(self, record)

    def action_refresh(self) -> None:
        poller = getattr(self.app, "poller", None)
        if poller is not None and self.origin is not None:
            poller.watch(self.origin, self.batch_id)
        self.reload()
