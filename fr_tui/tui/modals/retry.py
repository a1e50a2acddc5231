"""Retry: preview a batch's failed and missing rows by reason, then resubmit them as a new
batch. The same modal opens from the Batches list, Batch details and Results (`R`).

It loads the joined results itself when it is not given them (downloading the result
files first, with visible progress), so `R` works wherever the batch is. Confirming
copies the chosen input lines to results/<batch>/retry-<n>.jsonl, validates that file
like any other input, submits it with metadata.parent_batch_id, and dismisses with the
new batch's id (None when nothing was submitted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static
from textual.widgets.selection_list import Selection

from fr_tui.core.errors import ApiError
from fr_tui.core.results import JoinedResults
from fr_tui.core.store import BatchRecord
from fr_tui.core.units import plural
from fr_tui.tui.results_loading import LoadedResults, ResultsLoader, file_warnings
from fr_tui.tui.widgets.toggles import CheckList

Group = tuple[str, str, str, int]  # key, code, message, rows


def group_label(code: str, message: str, count: int) -> Text:
    text = f"{code}: {message}" if message else code
    if len(text) > 60:
        text = text[:59] + "…"
    # A Text, not a str: server messages such as "[/v1/...]" are not markup.
    return Text(f"{count:>6,}× {text}")


def retried_by_default(key: str, code: str) -> bool:
    """Whether a kind of failure is chosen when the retry preview opens: the kinds a job
    retries by default (core/retry_kinds.py), and rows that never came back."""
    from fr_tui.core.retry_kinds import DEFAULT_RETRY_KINDS, failure_kind

    return key == "missing" or failure_kind(None, code) in DEFAULT_RETRY_KINDS


class RetryModal(ModalScreen[str | None]):
    """Dismisses with the id of the retry batch, or None (cancelled, nothing to retry,
    or written but not submitted)."""

    DEFAULT_CSS = """
    RetryModal { align: center middle; }
    RetryModal > #retry-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    RetryModal #retry-title { text-style: bold; }
    RetryModal SelectionList { height: auto; max-height: 10; margin: 1 0 0 0; display: none; }
    RetryModal.-ready SelectionList { display: block; }
    RetryModal #retry-preview { margin: 1 0 0 0; }
    RetryModal #retry-buttons { height: auto; margin: 1 0 0 0; }
    RetryModal Button { margin: 0 1 0 0; }
    """

    BINDINGS = [
        Binding("ctrl+s", "confirm", "Retry", id="retry.confirm"),
        Binding("escape", "cancel", "Cancel", id="retry.cancel"),
    ]

    def __init__(self, record: BatchRecord, joined: JoinedResults | None = None) -> None:
        super().__init__()
        self.record = record
        self.joined = joined
        self.groups: list[Group] = []
        self.phase = "loading"  # loading | ready | empty | working
        self._loaded: LoadedResults | None = None
        # the parent's estimate per row (low, high), to say what the chosen rows may cost
        self._per_row: tuple[Decimal | None, Decimal | None, str] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="retry-box"):
            yield Static(
                f"Retry the failed and missing rows of {self.record.label}",
                markup=False,
                id="retry-title",
            )
            yield CheckList(id="retry-groups")  # an unchosen kind's box is empty
            yield Static("Loading the results…", markup=False, id="retry-preview")
            with Horizontal(id="retry-buttons"):
                label = "Retry" if self.can_submit else "Write retry file"
                yield Button(label, variant="primary", id="retry-go", disabled=True)
                yield Button("Cancel", id="retry-cancel")

    @property
    def can_submit(self) -> bool:
        return getattr(self.app, "client", None) is not None

    def on_mount(self) -> None:
        self.query_one("#retry-cancel", Button).focus()
        self._load_parent_estimate()
        if self.joined is not None:
            self._show_groups(self.joined)
        else:
            self._load()

    def on_unmount(self) -> None:
        if self._loaded is not None:
            self._loaded.close()

    # -- loading ---------------------------------------------------------------------

    def status(self, text: str) -> None:
        self.query_one("#retry-preview", Static).update(text)

    @work(exclusive=True, group="retry-load", exit_on_error=False)
    async def _load(self) -> None:
        record = self.record
        loader = ResultsLoader(self.app)
        output, error, failure = await loader.ensure_files(record, self.status)
        if output is None and error is None:
            self._nothing(
                f"Could not download the results: {failure}"
                if failure
                else "The results are not here and there is no API key to download them."
                if getattr(self.app, "client", None) is None
                else f"{record.label} has no result files."
            )
            return
        inputs_missing, _warnings = file_warnings(record)
        if inputs_missing:
            self._nothing(
                f"The input file is gone ({record.input_path or 'unknown'}): there is "
                "nothing to copy the rows from."
            )
            return
        self.status("Joining the results with the input file…")
        try:
            loaded = await asyncio.to_thread(loader.join, record, output, error, False)
        except OSError as exc:
            self._nothing(f"Could not read the results: {exc}")
            return
        self._loaded = loaded
        self._show_groups(loaded.joined)

    @work(thread=True, exclusive=True, group="retry-estimate", exit_on_error=False)
    def _load_parent_estimate(self) -> None:
        """What a row of the parent cost (its actual cost per answered row, once known),
        else its estimate per row: what the chosen rows may cost again."""
        from fr_tui.core.costlog import batch_costs, stored_estimate

        record = self.record
        key = (record.origin, record.id)
        rows = batch_costs(self.app.store, [key]).get(key, [])
        actual = [r for r in rows if r.actual_cost is not None and r.ok_rows]
        if actual:
            answered = sum(r.ok_rows or 0 for r in actual)
            each = sum((r.actual_cost for r in actual), Decimal(0)) / answered
            self._per_row = (each, each, "what an answered row of the batch cost")
        else:
            estimate = stored_estimate(rows)
            count = record.input_rows or record.request_total
            if estimate is None or not count:
                return
            low = estimate.low / count if estimate.low is not None else None
            high = estimate.high / count if estimate.high is not None else None
            self._per_row = (low, high, "the batch's own estimate per row")
        self.app.call_from_thread(self._update_preview)

    def _cost_hint(self, rows: int) -> str:
        """ " About $0.0012 (what an answered row of the batch cost).", or ""."""
        from fr_tui.core.estimate import cost_range

        if self._per_row is None or not rows:
            return ""
        low, high, basis = self._per_row
        low, high = (v * rows if v is not None else None for v in (low, high))
        return f" About {cost_range(low, high)} ({basis})."

    def _nothing(self, message: str) -> None:
        self.phase = "empty"
        self.status(message)
        self.query_one("#retry-cancel", Button).label = "Close"

    def _show_groups(self, joined: JoinedResults) -> None:
        self.joined = joined
        self.groups = joined.error_groups()
        if not self.groups:
            self._nothing("Nothing to retry: every row succeeded.")
            return
        self.phase = "ready"
        groups = self.query_one("#retry-groups", SelectionList)
        # What a retry can fix is chosen (server errors, rate limits, expiry, missing
        # rows: the job's default kinds); a 400 or a blocked prompt fails the same way
        # again, so it waits for a deliberate space.
        groups.add_options(
            Selection(group_label(code, message, count), key, retried_by_default(key, code))
            for key, code, message, count in self.groups
        )
        groups.highlighted = 0
        self.add_class("-ready")
        self._update_preview()
        self.query_one("#retry-go", Button).focus()

    # -- choosing --------------------------------------------------------------------

    @property
    def chosen(self) -> list[str]:
        return list(self.query_one("#retry-groups", SelectionList).selected)

    def chosen_rows(self) -> int:
        chosen = set(self.chosen)
        return sum(count for key, _code, _message, count in self.groups if key in chosen)

    @on(SelectionList.SelectedChanged)
    def _update_preview(self) -> None:
        if self.phase != "ready":
            return
        rows = self.chosen_rows()
        kinds = len(self.chosen)
        after = (
            "They are validated, then submitted with metadata.parent_batch_id."
            if self.can_submit
            else "No API key: the file is written and validated, not submitted."
        )
        if not rows:
            self.status(
                "None of these kinds is chosen: they would most likely fail the same way "
                "again. Space chooses a kind anyway."
            )
        else:
            self.status(
                f"{plural(rows, 'row')} from {plural(kinds, 'kind')} of failure go into a "
                f"new input file.{self._cost_hint(rows)} {after} (space toggles a kind)"
                f"{self._left_out_text()}"
            )
        self.query_one("#retry-go", Button).disabled = rows == 0

    def _left_out_text(self) -> str:
        """The kinds not chosen, and why a retry of them is not chosen at first."""
        chosen = set(self.chosen)
        left = [code for key, code, _m, _n in self.groups if key not in chosen]
        if not left:
            return ""
        return (
            f"\nNot chosen: {', '.join(dict.fromkeys(left))} (a 400 or a refusal would most "
            "likely fail the same way again; space includes it)."
        )

    @on(Button.Pressed, "#retry-go")
    def action_confirm(self) -> None:
        if self.phase == "ready" and self.chosen_rows():
            self.phase = "working"
            self.query_one("#retry-go", Button).disabled = True
            self.query_one("#retry-groups", SelectionList).disabled = True
            self._retry(self.chosen)

    @on(Button.Pressed, "#retry-cancel")
    def action_cancel(self) -> None:
        if self.phase == "working":
            self.notify("The retry is being written and submitted: wait for it.", timeout=3)
            return
        self.dismiss(None)

    @work(exclusive=True, group="retry-submit", exit_on_error=False)
    async def _retry(self, groups: list[str]) -> None:
        assert self.joined is not None
        new_id = await build_validate_submit(
            self.app, self.record, self.joined, groups, self.status
        )
        self.dismiss(new_id)


def next_retry_path(folder: Path) -> Path:
    n = 1
    while (folder / f"retry-{n}.jsonl").exists():
        n += 1
    return folder / f"retry-{n}.jsonl"


async def build_validate_submit(
    app: Any,
    record: BatchRecord,
    joined: JoinedResults,
    groups: list[str],
    status: Callable[[str], None],
) -> str | None:
    """Write, check and (with a client) submit the retry file; returns the new batch id.
    The file goes through the step every submit does (core/prepare.py), for the parent's
    server and profile: validated with that server's catalog, estimated, and held to the
    profile's budgets (over one, the user is asked). Every outcome is told with a
    notification; `status` shows the steps."""
    from fr_tui.core.clients import NoClientError
    from fr_tui.core.export import NothingToRetry, build_retry_file
    from fr_tui.core.prepare import prepare_submit
    from fr_tui.core.store import StoreError
    from fr_tui.core.workflow import (
        DuplicateSubmitError,
        FileChangedError,
        UnrecordedBatchError,
        submit_file,
    )
    from fr_tui.tui.costs import costs
    from fr_tui.tui.modals.confirm import ConfirmModal

    folder: Path = record.results_folder(app.paths)
    folder.mkdir(parents=True, exist_ok=True)
    path = next_retry_path(folder)
    status(f"Writing {path.name}…")
    try:
        plan = await asyncio.to_thread(
            build_retry_file, joined, joined.input_path, path, groups=groups
        )
    except NothingToRetry:
        app.notify("None of the chosen rows can be retried", title="Retry", severity="warning")
        return None
    except (OSError, ValueError) as exc:
        app.notify(str(exc), title="Retry file failed", severity="error")
        return None
    status(f"Checking {path.name} ({plural(plan.rows, 'row')})…")
    basis = await asyncio.to_thread(costs(app).basis, record)
    try:
        prepared = await asyncio.to_thread(prepare_submit, path, basis)
    except OSError as exc:
        app.notify(str(exc), title="Retry file failed", severity="error")
        return None
    report, estimate = prepared.report, prepared.estimate
    if not report.valid:
        first = report.errors[0] if report.errors else None
        detail = f"line {first.line}: {first.message}" if first else "it is not valid"
        app.notify(
            f"{path} does not pass validation ({plural(report.errors_total, 'error')}; "
            f"{detail}). Not submitted.",
            title="Retry file invalid",
            severity="error",
            timeout=10,
        )
        return None
    try:
        client = app.client_for(record)  # the parent's own server and profile
    except NoClientError as exc:
        app.notify(
            f"{plural(plan.rows, 'row')} written to {path} and validated. Not submitted: {exc}.",
            title="Retry file ready",
        )
        return None
    if not prepared.budget.ok:
        go_on = await app.push_screen_wait(
            ConfirmModal(
                "Over budget",
                f"Retrying {plural(plan.rows, 'row')} of {record.label} is estimated at "
                f"{estimate.cost_text()}: {prepared.budget.message}.\n\nSubmit anyway?",
                "Submit anyway",
            )
        )
        if not go_on:
            status(f"Retry file {path} written; not submitted (over budget)")
            return None
    status(f"Submitting {plural(plan.rows, 'row')} (estimate {estimate.cost_range_text()})…")
    options: dict[str, Any] = {
        "profile": record.profile or basis.profile.name,
        "endpoint": record.endpoint,
        "metadata": {"parent_batch_id": record.id},
        "name": f"retry of {record.label}",
        "parent_batch_id": record.id,
        "rows": plan.rows,
        "estimate": estimate,  # kept with the intent: spend, budgets, corrections
        "expect": prepared.signature,
    }
    try:
        try:
            new = await submit_file(client, app.store, path, **options)
        except DuplicateSubmitError as exc:
            again = await app.push_screen_wait(
                ConfirmModal("Retried before", f"{exc}.\n\nSubmit it again anyway?", "Submit")
            )
            if not again:
                status(f"Retry file {path} written; not submitted")
                return None
            new = await submit_file(
                client, app.store, path, allow_duplicate=True, sha256=exc.sha256, **options
            )
    except (ApiError, StoreError, UnrecordedBatchError, FileChangedError) as exc:
        app.notify(str(exc), title="Retry submit failed", severity="error", timeout=10)
        status(f"Retry file {path} written; submit failed")
        return None
    skipped = (
        f" ({plural(plan.skipped, 'row')} without a custom_id left out)" if plan.skipped else ""
    )
    app.notify(
        f"Batch {new.id}: {plural(plan.rows, 'row')} from {path.name}{skipped}",
        title="Retry submitted",
    )
    return new.id
