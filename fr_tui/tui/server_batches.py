"""The batches a server lists, next to the history: offering and importing the ones
history lacks (every page of `GET /v1/batches`), and looking up a create whose answer
was lost. Run in workers of the Batches screen, on the app's one client."""

from __future__ import annotations

from typing import Any

from fr_tui.core.errors import ApiError, NotSupportedError
from fr_tui.core.models import Batch
from fr_tui.core.store import UnknownCreate
from fr_tui.core.units import plural
from fr_tui.core.workflow import find_unknown_create


def _profile_name(app: Any, default: str | None = None) -> str | None:
    return getattr(getattr(app, "profile", None), "name", default)


async def not_in_history(screen: Any) -> list[Batch] | None:
    """Batches the server lists (every page) that history lacks; None when there is no
    client or the server cannot list them."""
    client = getattr(screen.app, "client", None)
    if client is None:
        return None
    try:
        batches = await client.list_all_batches()
    except (NotSupportedError, ApiError):
        return None
    known = {r.id for r in screen.store.batches()}
    return [b for b in batches if b.id not in known]


async def offer_import(screen: Any) -> None:
    """Batches the server knows but history doesn't (submitted elsewhere, or lost)."""
    found = await not_in_history(screen)
    if not found:
        return
    screen.importable = found
    screen.notify(
        f"{plural(len(found), 'batch', 'batches')} on the server "
        f"{'are' if len(found) != 1 else 'is'} not in your history: press i to import.",
        timeout=8,
    )


async def import_missing(screen: Any) -> None:
    """Import what the server lists and history lacks, asking the server again (the
    list of a minute ago may be stale); say so when there is nothing to import."""
    app = screen.app
    client = getattr(app, "client", None)
    if client is None:
        screen.notify("No API key: cannot ask the server.", severity="warning")
        return
    screen.notify("Asking the server for its batches…", timeout=2)
    found = await not_in_history(screen)
    if found is None:
        screen.notify("This server does not list batches: nothing to import.")
        return
    screen.importable = []
    if not found:
        screen.notify("Nothing to import: every batch the server lists is in your history.")
        return
    for batch in found:
        screen.store.import_batch(batch, profile=_profile_name(app), base_url=client.base_url)
    screen.reload()
    poller = getattr(app, "poller", None)
    if poller is not None:
        poller.refresh_now()
    screen.notify(f"Imported {plural(len(found), 'batch', 'batches')}.")


async def look_up(screen: Any, entry: UnknownCreate) -> None:
    app = screen.app
    client = getattr(app, "client", None)
    if client is None:
        screen.notify("No API key: cannot look it up.", severity="error")
        return
    try:
        batch = await find_unknown_create(client, entry.input_file_id, entry.created_at)
    except NotSupportedError:
        screen.notify(
            "This server cannot list batches, so the lost create cannot be looked up. "
            "Check the provider's dashboard, then forget it with x.",
            severity="warning",
            timeout=10,
        )
        return
    except ApiError as exc:
        screen.notify(f"Look-up failed: {exc.message}", severity="error")
        return
    if batch is None:
        screen.notify(
            f"The server lists no batch made from {entry.input_file_id} since that "
            f"create was sent (profile {_profile_name(app, '?')}): most likely none was made. "
            "Check the provider's dashboard before submitting again; x forgets this entry.",
            severity="warning",
            timeout=10,
        )
        return
    screen.store.import_batch(batch, profile=_profile_name(app), base_url=client.base_url)
    screen.store.resolve_unknown(entry.rowid, batch.id)
    screen.reload()
    screen.select_batch(batch.id)
    poller = getattr(app, "poller", None)
    if poller is not None:
        poller.watch(batch.id)
    screen.notify(f"Found it: {batch.id} ({batch.status}). It is in your history now.")
