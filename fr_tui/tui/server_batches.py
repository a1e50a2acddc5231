"""The batches a server lists, next to the history: offering and importing the ones
history lacks (every page of `GET /v1/batches`), and looking up a create whose answer
was lost. Run in workers of the Batches screen: listing and importing on the active
profile's client, a look-up on the client of the submit's own server."""

from __future__ import annotations

from typing import Any

from fr_tui.core.errors import ApiError, NotSupportedError
from fr_tui.core.intents import NOT_CREATED, RESOLVED, Intent
from fr_tui.core.models import Batch
from fr_tui.core.units import plural


def _profile_name(app: Any, default: str | None = None) -> str | None:
    return getattr(getattr(app, "profile", None), "name", default)


async def not_in_history(screen: Any) -> list[Batch] | None:
    """Batches the server lists (every page) that history lacks; None when there is no
    client or the server cannot list them."""
    client = getattr(screen.app, "client", None)
    if client is None:
        return None
    try:
        batches = [batch async for batch in client.all_batches()]
    except (NotSupportedError, ApiError):
        return None
    known = {r.id for r in screen.store.batches() if r.origin == client.origin}
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
        screen.store.import_batch(
            batch, origin=client.origin, profile=_profile_name(app), base_url=client.base_url
        )
    screen.reload()
    poller = getattr(app, "poller", None)
    if poller is not None:
        poller.refresh_now()
    screen.notify(f"Imported {plural(len(found), 'batch', 'batches')}.")


async def look_up(screen: Any, entry: Intent) -> None:
    """Settle one "outcome unknown" submit with its server's batch list (core/reconcile),
    through the client of the profile that reaches that server, whichever is active."""
    from fr_tui.core.clients import NoClientError
    from fr_tui.core.reconcile import reconcile

    try:
        client = screen.app.client_for(entry)
    except NoClientError as exc:
        screen.notify(f"Cannot look it up: {exc}.", severity="warning")
        return
    outcomes = await reconcile(client, screen.store, only=[entry.token])
    outcome = outcomes[0] if outcomes else None
    screen.reload()
    if outcome is None or outcome.state not in (RESOLVED, NOT_CREATED):
        why = outcome.reason if outcome else (entry.message or "")
        screen.notify(
            f"Still unknown: {why or 'the server does not list it yet'}. Check the "
            "provider's dashboard before submitting again; x forgets this entry.",
            severity="warning",
            timeout=10,
        )
        return
    if outcome.batch is None:
        screen.notify(
            "The server's full batch list has no batch for it: none was made.", timeout=10
        )
        return
    screen.select_batch(outcome.batch.id)
    poller = getattr(screen.app, "poller", None)
    if poller is not None:
        poller.watch(entry.origin, outcome.batch.id)
    screen.notify(
        f"Found it: {outcome.batch.id} ({outcome.batch.status}). It is in your history now."
    )
