"""What can be done to one batch, shared by the Batches list, Batch details and Results:
cancel, open the results, retry the failed and missing rows, copy the id; and whether
each applies to a batch (the screens' check_action dims the keys that do not). Network
calls run in async workers owned by the calling screen, on the app's one shared client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.screen import Screen

from fr_tui.core.clients import NoClientError
from fr_tui.core.errors import ApiError, NotSupportedError
from fr_tui.core.results import JoinedResults
from fr_tui.core.store import BatchRecord
from fr_tui.tui.messages import BatchesChanged
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.widgets.batch_format import rows_missing


def _post_changed(app: Any, batch_id: str) -> None:
    broadcast = getattr(app, "broadcast", None)
    message = BatchesChanged([batch_id])
    if callable(broadcast):
        broadcast(message)
    else:
        app.post_message(message)


def request_cancel(screen: Screen[Any], record: BatchRecord) -> None:
    app = screen.app
    if record.terminal:
        app.notify(f"{record.label} has already ended ({record.status}).", severity="warning")
        return
    if record.status == "cancelling":
        app.notify(f"{record.label} is already being cancelled.")
        return

    def answered(yes: bool | None) -> None:
        if yes:
            screen.run_worker(
                _cancel(app, record), group=f"cancel-{record.id}", exit_on_error=False
            )

    body = (
        f"Cancel batch {record.id} ({record.label})?\n"
        "Rows already answered stay available as partial results."
    )
    app.push_screen(ConfirmModal("Cancel batch", body, "Cancel batch"), answered)


def _client(app: Any, record: BatchRecord, doing: str) -> Any:
    """The client for the batch's own server and profile, or None (said to the user)."""
    try:
        return app.client_for(record)
    except NoClientError as exc:
        app.notify(f"Cannot {doing}: {exc}.", severity="error")
        return None


async def _cancel(app: Any, record: BatchRecord) -> None:
    client = _client(app, record, "cancel")
    if client is None:
        return
    try:
        batch = await client.cancel_batch(record.id)
    except NotSupportedError:
        app.notify("This server does not support cancelling batches.", severity="error")
        return
    except ApiError as exc:
        app.notify(f"Cancel failed: {exc.message}", severity="error")
        return
    app.store.update_from_api(batch, origin=record.origin)
    app.notify(f"{record.label}: {batch.status.replace('_', ' ')}.", title="Cancel requested")
    poller = getattr(app, "poller", None)
    if poller is not None:
        poller.watch(record.origin, record.id)
    _post_changed(app, record.id)


def retried_by_job(job_id: str) -> str:
    """Why a batch a job made is not retried on its own (see why_not)."""
    return (
        f"Not retried on its own. It is a batch of job {job_id}, which retries its rows "
        "itself: its answers are in the job's results (o on the job)."
    )


def why_not(action: str, record: BatchRecord, job_id: str | None = None) -> str | None:
    """Why `action` (cancel / retry) does not apply to `record` now, in the words a
    notification and help use; None when it does. A batch a job made (``job_id``) is
    not retried on its own: a later round of the job may have answered its failed rows
    already, and a retry would pay for them again."""
    if action == "retry" and job_id is not None:
        return retried_by_job(job_id)
    if action == "cancel":
        if record.terminal:
            return "It has ended: nothing to cancel."
        if record.status == "cancelling":
            return "It is already being cancelled."
    if action == "retry":
        if not record.terminal:
            return "It is still running: retry once it has ended."
        if not may_need_retry(record):
            return "Nothing to retry: every row is ok."
    return None


def may_need_retry(record: BatchRecord) -> bool:
    """Whether a retry can have rows: an ended batch that did not complete every row.
    (The counts can only rule a retry out; the joined results say exactly what.)"""
    if not record.terminal:
        return False
    if record.status != "completed" or not record.has_counts:
        return True
    return bool(record.request_failed) or rows_missing(record) > 0


def open_results(screen: Screen[Any], record: BatchRecord) -> None:
    """Open the results screen; it downloads the files first when they are not here."""
    app = screen.app
    on_disk = [p for p in (record.output_path, record.error_path) if p and Path(p).exists()]
    if not on_disk and not (record.output_file_id or record.error_file_id):
        if record.terminal:
            app.notify(f"{record.label} has no result files.", severity="warning")
        else:
            app.notify(
                f"{record.label} is still {record.status.replace('_', ' ')}: no results yet."
            )
        return
    app.open_results(record.id, record.origin)


def job_of(app: Any, record: BatchRecord) -> str | None:
    """The job that made this batch, if one did."""
    from fr_tui.core.jobs_store import JobStore

    return JobStore(app.store).job_of_batch(record.id)


def retry(screen: Screen[Any], record: BatchRecord, joined: JoinedResults | None = None) -> None:
    """The retry preview (loading the results first when `joined` is not given); a
    confirmed retry lands on the Batches list with the new batch selected."""
    app = screen.app
    if (job_id := job_of(app, record)) is not None:
        app.notify(retried_by_job(job_id), severity="warning")
        return
    if not record.terminal:
        app.notify(f"{record.label} is still running: retry once it has ended.")
        return
    if not may_need_retry(record):
        app.notify(f"{record.label}: every row succeeded, nothing to retry.")
        return
    from fr_tui.tui.modals.retry import RetryModal

    def done(new_id: str | None) -> None:
        if not new_id:
            return
        poller = getattr(app, "poller", None)
        if poller is not None:
            poller.watch(record.origin, new_id)  # a retry goes to its parent's server
        _post_changed(app, new_id)
        app.open_batches(select=new_id)

    app.push_screen(RetryModal(record, joined), done)


def copy_id(screen: Screen[Any], record: BatchRecord) -> None:
    screen.app.copy_to_clipboard(record.id)
    screen.app.notify(f"Copied {record.id}")
