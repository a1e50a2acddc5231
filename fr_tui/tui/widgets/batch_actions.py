"""Actions on one batch shared by the list and the details screen: cancel, open results
(downloading first), retry failed rows, copy the id. Network calls run in async workers
owned by the calling screen, on the app's one shared client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.screen import Screen

from fr_tui.core.clients import NoClientError
from fr_tui.core.errors import ApiError, NotSupportedError
from fr_tui.core.store import BatchRecord
from fr_tui.core.workflow import fetch_results
from fr_tui.tui.messages import BatchesChanged
from fr_tui.tui.modals.confirm import ConfirmModal


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
        poller.watch(record.id)
    _post_changed(app, record.id)


def results_on_disk(record: BatchRecord) -> bool:
    paths = [p for p in (record.output_path, record.error_path) if p]
    return bool(paths) and all(Path(p).exists() for p in paths)


def open_results(screen: Screen[Any], record: BatchRecord) -> None:
    """Open the results screen, downloading the files first when they are not here yet."""
    app = screen.app
    if results_on_disk(record):
        app.open_results(record.id, record.origin)
        return
    if not (record.output_file_id or record.error_file_id):
        if record.terminal:
            app.notify(f"{record.label} has no result files.", severity="warning")
        else:
            app.notify(
                f"{record.label} is still {record.status.replace('_', ' ')}: no results yet."
            )
        return
    app.notify(f"Downloading the results of {record.label}…")
    screen.run_worker(
        _download_then_open(app, record), group=f"download-{record.id}", exit_on_error=False
    )


async def _download_then_open(app: Any, record: BatchRecord) -> None:
    client = _client(app, record, "download results")
    if client is None:
        return
    try:
        await fetch_results(client, app.store, record, app.paths.results_for(record.id))
    except ApiError as exc:
        app.notify(f"Download failed: {exc.message}", severity="error")
        return
    except OSError as exc:
        app.notify(f"Could not save results: {exc}", severity="error")
        return
    _post_changed(app, record.id)
    app.open_results(record.id, record.origin)


def retry_failed(screen: Screen[Any], record: BatchRecord) -> None:
    """Retrying needs the joined results (which rows failed, and why): it happens on the
    results screen. Open it and say which key to press there."""
    app = screen.app
    failed = record.request_failed or 0
    if not record.terminal:
        app.notify(f"{record.label} is still running: retry once it has ended.")
        return
    if failed == 0 and record.status == "completed":
        app.notify(f"{record.label} has no failed rows to retry.")
        return
    open_results(screen, record)
    app.notify("In the results, press R to retry the failed rows as a new batch.")


def copy_id(screen: Screen[Any], record: BatchRecord) -> None:
    screen.app.copy_to_clipboard(record.id)
    screen.app.notify(f"Copied {record.id}")
