"""Finish what interrupted submits left in history, by asking the server.

An intent with no living owner (its lock can be taken, see core.locks) is settled:

- `prepared` / `uploaded`: it stopped before the create was sent, so no batch can exist:
  `abandoned`, quietly.
- `creating` / `unknown`: the create may have happened. Every page of `GET /v1/batches` is
  read, looking for the intent's token in a batch's metadata (or, for servers that drop
  metadata, its input file id). Found: the batch is recorded, once, and the intent is
  `resolved`. A complete listing without it: `not_created`, once the create is old enough
  that the server cannot still be working on it (SETTLE_SECONDS; until then it stays
  `unknown`). A server that cannot list, or no connection: it stays `unknown`, shown in
  `fr-tui list` and the Batches screen until found, proved absent, or forgotten.

Only intents of the client's origin are settled: one for another server waits for a
session on that server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass

from fr_tui.core.api import BatchClient
from fr_tui.core.errors import ApiError, NotSupportedError
from fr_tui.core.intents import (
    ABANDONED,
    CREATING,
    FINAL,
    IN_FLIGHT,
    NOT_CREATED,
    PREPARED,
    RESOLVED,
    SUBMIT_KEY,
    UNKNOWN,
    UPLOADED,
    Intent,
    IntentLog,
)
from fr_tui.core.locks import WorkLock
from fr_tui.core.models import Batch
from fr_tui.core.store import HistoryStore, StoreError

log = logging.getLogger("fr_tui.reconcile")

# A create request the server received but had not acted on when its sender died may
# still be acted on for a while; a listing is only proof of absence after this long.
SETTLE_SECONDS = 120.0


@dataclass
class ReconcileOutcome:
    intent: Intent
    state: str  # RESOLVED | NOT_CREATED | UNKNOWN | ABANDONED
    batch: Batch | None = None
    reason: str = ""

    def line(self) -> str | None:
        """One line for the user, or None for what needs no mention."""
        label = self.intent.input_path or self.intent.label
        if self.state == RESOLVED and self.batch is not None:
            return f"recovered {self.batch.id} from an interrupted submit of {label}"
        if self.state == NOT_CREATED:
            return f"no batch was created for the interrupted submit of {label}"
        if self.state == UNKNOWN:
            return (
                f"outcome unknown for the interrupted submit of {label}: {self.reason} "
                "(kept in `fr-tui list`; it is checked again next time)"
            )
        return None


async def reconcile(
    client: BatchClient,
    store: HistoryStore,
    *,
    intents: IntentLog | None = None,
    only: Iterable[str] | None = None,
    settle: float = SETTLE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> list[ReconcileOutcome]:
    """Settle the dead intents of `client.origin` (or just the tokens in `only`).
    Returns what changed or is newly unknown; never raises for the server's sake."""
    if store.read_only:
        return []
    intents = intents or IntentLog(store)
    wanted = set(only) if only is not None else None
    try:
        candidates = intents.in_states(IN_FLIGHT | {UNKNOWN}, client.origin)
    except StoreError as exc:
        log.warning("cannot read intents: %s", exc)
        return []
    held: list[tuple[Intent, WorkLock]] = []
    outcomes: list[ReconcileOutcome] = []
    try:
        for candidate in candidates:
            if wanted is not None and candidate.token not in wanted:
                continue
            lock = intents.lock_for(candidate.token)
            try:
                if not lock.acquire(wait=False):
                    continue  # its owner is alive and working on it
            except OSError as exc:  # no lock folder to write: nothing can be settled
                log.warning("cannot lock intent %s: %s", candidate.token, exc)
                continue
            # Re-read under the lock: the owner records its outcome before letting go.
            fresh = intents.get(candidate.token)
            if fresh is None or fresh.state in FINAL:
                lock.release()
                continue
            held.append((fresh, lock))
        lookups = []
        for intent, _ in held:
            if intent.state in (PREPARED, UPLOADED):
                intents.set_state(
                    intent.token, ABANDONED, message="fr-tui stopped before the create was sent"
                )
                intent.state = ABANDONED
                outcomes.append(ReconcileOutcome(intent, ABANDONED))
            else:
                lookups.append(intent)
        if lookups:
            outcomes += await _look_up(client, intents, lookups, settle, clock())
    finally:
        for intent, lock in held:
            lock.release(remove=intent.state in FINAL)
    return outcomes


async def _look_up(
    client: BatchClient,
    intents: IntentLog,
    lookups: list[Intent],
    settle: float,
    now: float,
) -> list[ReconcileOutcome]:
    try:
        found = await find_batches(client, lookups)
    except ApiError as exc:
        reason = (
            "this server cannot list batches, so it cannot be looked up"
            if isinstance(exc, NotSupportedError)
            else f"the server could not be asked ({exc.message})"
        )
        outcomes = []
        for intent in lookups:
            if intent.state == CREATING:  # newly found dead: say so once
                intents.set_state(intent.token, UNKNOWN, message=reason)
                intent.state = UNKNOWN
                outcomes.append(ReconcileOutcome(intent, UNKNOWN, reason=reason))
        return outcomes
    outcomes = []
    for intent in lookups:
        batch = found.get(intent.token)
        if batch is not None:
            intents.resolve(intent, batch, base_url=client.base_url)
            outcomes.append(ReconcileOutcome(intent, RESOLVED, batch))
        elif now - intent.updated_at >= settle:
            intents.set_state(
                intent.token,
                NOT_CREATED,
                message="the server's complete batch list has no batch for it",
            )
            intent.state = NOT_CREATED
            outcomes.append(ReconcileOutcome(intent, NOT_CREATED))
        elif intent.state == CREATING:
            reason = "the server does not list it yet; it may still be making it"
            intents.set_state(intent.token, UNKNOWN, message=reason)
            intent.state = UNKNOWN
            outcomes.append(ReconcileOutcome(intent, UNKNOWN, reason=reason))
    return outcomes


async def find_batches(client: BatchClient, lookups: list[Intent]) -> dict[str, Batch]:
    """token -> the server's batch for it, in one pass over every page of the list: by
    the token in the batch's metadata, or by its input file id where metadata is lost."""
    by_token = {i.token for i in lookups}
    by_file = {i.input_file_id: i.token for i in lookups if i.input_file_id}
    found: dict[str, Batch] = {}
    async with aclosing(client.all_batches()) as listing:
        async for batch in listing:
            token = (batch.metadata or {}).get(SUBMIT_KEY)
            if not (isinstance(token, str) and token in by_token):
                token = by_file.get(batch.input_file_id or "")
            if token is not None and token not in found:
                found[token] = batch
                if len(found) == len(by_token):
                    break
    return found
