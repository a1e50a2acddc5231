"""The batch poller: keeps every unfinished batch in history current, whatever screen is shown.

One async loop (an app worker), so rounds never overlap. Each round polls only the batches
that are due, at most `concurrency` at a time, and never the same batch twice in a round.
A batch's pace adapts: fast for a while after it is submitted or changes status, the base
interval normally, slower once it has been running for hours, and backing off after errors.
A 429 pauses all polling for its Retry-After, since rate limits are per account.
Batches are told apart by (origin, id), as history keys them: two servers may hand out
the same id.
"""

from __future__ import annotations

import asyncio
import copy
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.core.clients import NoClientError
from fr_tui.core.errors import ApiError, RateLimitedError
from fr_tui.core.jobs_store import JobStore
from fr_tui.core.store import BatchRecord
from fr_tui.core.workflow import fetch_results, poll_batch, run_notify_command
from fr_tui.tui.messages import BatchesChanged, BatchFinished, PollStatus

if TYPE_CHECKING:
    from fr_tui.core.api import BatchClient

# How long a batch counts as "just changed" (polled at the fast pace) after a submit or a
# status change, in multiples of the base interval.
FAST_WINDOW_INTERVALS = 6
# A batch running for longer than these ages (seconds) is polled 2x / 4x less often.
SLOW_AFTER = 3600.0
SLOWER_AFTER = 6 * 3600.0
MAX_BACKOFF = 300.0

BatchKey = tuple[str, str]  # (origin, batch id)


@dataclass
class _Pace:
    next_due: float = 0.0
    fast_until: float = 0.0
    errors: int = 0
    last_polled: float | None = None
    status: str | None = None


@dataclass
class PollerStats:
    """What the poller did; the benchmark and the tests read it."""

    rounds: int = 0
    polls: int = 0
    errors: int = 0
    last_round_seconds: float = 0.0
    max_in_flight: int = 0
    loops: int = 0  # turns of the loop, paused or not
    polls_per_batch: Counter[BatchKey] = field(default_factory=Counter)
    # ((origin, batch id), clock time) of every poll, kept short: the bench checks spacing.
    log: list[tuple[BatchKey, float]] = field(default_factory=list)


def outcome_text(record: BatchRecord) -> tuple[str, str]:
    """(notification text, severity) for a batch that just ended."""
    label = record.label
    failed = record.request_failed or 0
    total = record.request_total
    partial = " Partial results: press o on it." if record.output_file_id else ""
    if record.status == "completed":
        missing = max(0, (total or 0) - (record.request_completed or 0) - failed)
        if failed or missing:
            bad = " and ".join(
                part
                for part in (
                    f"{failed:,} failed" if failed else "",
                    f"{missing:,} never answered" if missing else "",
                )
                if part
            )
            return (f"{label} completed: of {total:,} rows, {bad}.", "warning")
        counted = f" ({total} rows)" if total else ""
        return (f"{label} completed{counted}.", "information")
    if record.status == "cancelled":
        return (f"{label} was cancelled.{partial}", "warning")
    if record.status == "expired":
        return (f"{label} expired before finishing.{partial}", "error")
    if record.status == "failed":
        reason = ""
        if record.errors:
            first = record.errors[0]
            line = f" (line {first['line']})" if first.get("line") else ""
            reason = f": {first.get('message') or first.get('code')}{line}"
        return (f"{label} failed{reason}.", "error")
    return (f"{label} ended: {record.status}.", "warning")


class BatchPoller:
    def __init__(self, app: Any, *, concurrency: int = 8) -> None:
        self.app = app
        self.concurrency = concurrency
        # None: follow app.config.poll_interval. Tests and the bench set it small.
        self.interval: float | None = None
        self.fast_interval: float | None = None
        self.paused = False
        self.stats = PollerStats()
        self.last_ok_at: float | None = None
        self.last_error: str | None = None
        self.rate_limited_until = 0.0
        # The pace clock (monotonic seconds); tests move a clock of their own instead
        # of waiting out a Retry-After or a back-off.
        self.clock: Callable[[], float] = time.monotonic
        self._pace: dict[BatchKey, _Pace] = {}
        self._wake: asyncio.Event | None = None
        self._running = False
        self._worker: Any = None
        # No-retry copies of the app's clients, one per server (see _client_for).
        self._poll_clients: weakref.WeakKeyDictionary[BatchClient, BatchClient] = (
            weakref.WeakKeyDictionary()
        )

    # ----------------------------------------------------------------- pace

    @property
    def base_interval(self) -> float:
        if self.interval is not None:
            return self.interval
        config = getattr(self.app, "config", None)
        return float(getattr(config, "poll_interval", 10.0) or 10.0)

    @property
    def fast(self) -> float:
        if self.fast_interval is not None:
            return self.fast_interval
        return max(min(1.0, self.base_interval), self.base_interval / 4)

    def pace_for(self, record: BatchRecord, now: float) -> float:
        """Seconds until this batch's next poll after a successful one."""
        pace = self._pace.setdefault(record.key, _Pace())
        if now < pace.fast_until:
            return self.fast
        base = self.base_interval
        started = record.created_at
        age = time.time() - started if started else 0.0
        if age > SLOWER_AFTER:
            return base * 4
        if age > SLOW_AFTER:
            return base * 2
        return base

    # ----------------------------------------------------------------- control

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._worker = self.app.run_worker(
            self._loop(), group="batch-poller", exclusive=True, exit_on_error=False
        )

    def stop(self) -> None:
        self._running = False
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    @property
    def running(self) -> bool:
        return self._running

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def refresh_now(self) -> None:
        """Poll every unfinished batch at once (errors forgiven, rate limits still honoured)."""
        for pace in self._pace.values():
            pace.next_due = 0.0
            pace.errors = 0
        self._kick()

    def watch(self, origin: str, batch_id: str) -> None:
        """A batch just submitted or cancelled: poll it now and fast for a while."""
        now = self.clock()
        pace = self._pace.setdefault((origin, batch_id), _Pace())
        pace.next_due = 0.0
        pace.fast_until = now + self.base_interval * FAST_WINDOW_INTERVALS
        self._kick()

    def pause(self) -> None:
        self.paused = True
        self._post(PollStatus(ok=self.last_error is None, at=time.time(), paused=True))

    def resume(self) -> None:
        self.paused = False
        self._post(PollStatus(ok=self.last_error is None, at=time.time(), paused=False))
        self._kick()

    def toggle_pause(self) -> bool:
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    # ----------------------------------------------------------------- loop

    def _shared_client(self, record: BatchRecord) -> BatchClient:
        """The app's client for the record's own server and profile, whichever profile is
        active. Raises NoClientError."""
        pick = getattr(self.app, "client_for", None)  # a bare app (tests, bench): one client
        shared = pick(record) if callable(pick) else getattr(self.app, "client", None)
        if shared is None:
            raise NoClientError("No API key: batches are not being refreshed.")
        return shared

    def _client_for(self, record: BatchRecord) -> BatchClient:
        """A copy of `_shared_client` that does not retry by itself: the poller is the
        retry loop, and must show failures at once rather than hide them for a minute."""
        shared = self._shared_client(record)
        client = self._poll_clients.get(shared)
        if client is None:
            client = copy.copy(shared)
            client.max_attempts = 1
            self._poll_clients[shared] = client
        return client

    async def _loop(self) -> None:
        self._wake = asyncio.Event()
        while self._running:
            self.stats.loops += 1
            wait = self.base_interval
            if not self.paused:
                try:
                    wait = await self.run_round()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                    self.last_error = f"poller: {exc}"
                    self._post(PollStatus(ok=False, at=time.time(), error=self.last_error))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, wait))
            except TimeoutError:
                pass

    async def run_round(self) -> float:
        """Poll the due batches once; returns seconds until the next one is due."""
        store = self.app.store
        now = self.clock()
        if now < self.rate_limited_until:
            return self.rate_limited_until - now
        active = await asyncio.to_thread(store.active)
        known = {r.key for r in active}
        for gone in [k for k in self._pace if k not in known]:
            del self._pace[gone]
        due: list[BatchRecord] = []
        for record in active:
            pace = self._pace.setdefault(record.key, _Pace(status=record.status))
            if pace.next_due <= now:
                due.append(record)
        if not due:
            return self._next_wait(now)
        started = self.clock()
        semaphore = asyncio.Semaphore(self.concurrency)
        in_flight = 0
        changed: list[str] = []
        errors: list[str] = []
        finished: list[tuple[BatchRecord, str | None]] = []

        async def one(record: BatchRecord) -> None:
            nonlocal in_flight
            try:
                client = self._client_for(record)
            except NoClientError as exc:
                await self._unreachable(record, str(exc), changed, errors)
                return
            async with semaphore:
                if self.clock() < self.rate_limited_until:
                    return
                in_flight += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, in_flight)
                try:
                    await self._poll_one(client, record, changed, errors, finished)
                finally:
                    in_flight -= 1

        await asyncio.gather(*(one(r) for r in due))
        self.stats.rounds += 1
        self.stats.last_round_seconds = self.clock() - started
        ok = not errors
        if ok:
            self.last_ok_at = time.time()
            self.last_error = None
        else:
            self.last_error = errors[-1]
        if changed:
            self._post(BatchesChanged(changed))
        for record, old in finished:
            self._finished(record, old)
        self._post(PollStatus(ok=ok, at=time.time(), error=self.last_error, paused=self.paused))
        return self._next_wait(self.clock())

    async def _unreachable(
        self, record: BatchRecord, message: str, changed: list[str], errors: list[str]
    ) -> None:
        """No client for the batch's server (no profile for it, or no key): say so on the
        batch rather than let it look live, and ask again later."""
        pace = self._pace.setdefault(record.key, _Pace())
        pace.next_due = self.clock() + MAX_BACKOFF
        errors.append(message)
        if record.poll_error != message:
            await asyncio.to_thread(
                self.app.store.mark_poll_error, record.origin, record.id, message
            )
            changed.append(record.id)

    def _next_wait(self, now: float) -> float:
        dues = [p.next_due for p in self._pace.values()]
        wait = min(dues) - now if dues else self.base_interval
        if now < self.rate_limited_until:
            wait = max(wait, self.rate_limited_until - now)
        return max(0.01, min(wait, self.base_interval))

    async def _poll_one(
        self,
        client: BatchClient,
        record: BatchRecord,
        changed: list[str],
        errors: list[str],
        finished: list[tuple[BatchRecord, str | None]],
    ) -> None:
        store = self.app.store
        pace = self._pace.setdefault(record.key, _Pace())
        polled_at = self.clock()
        pace.last_polled = polled_at
        self.stats.polls += 1
        self.stats.polls_per_batch[record.key] += 1
        self.stats.log.append((record.key, polled_at))
        if len(self.stats.log) > 20000:
            del self.stats.log[:10000]
        try:
            batch, old = await poll_batch(client, store, record.id, origin=record.origin)
        except ApiError as exc:
            self.stats.errors += 1
            pace.errors += 1
            message = exc.message
            if isinstance(exc, RateLimitedError):
                delay = exc.retry_after if exc.retry_after is not None else self.base_interval
                self.rate_limited_until = max(self.rate_limited_until, self.clock() + delay)
                message = f"{message} (waiting {delay:.0f}s)"
            backoff = min(MAX_BACKOFF, self.base_interval * 2 ** min(pace.errors, 8))
            pace.next_due = polled_at + backoff
            errors.append(message)
            await asyncio.to_thread(store.mark_poll_error, record.origin, record.id, message)
            if record.poll_error != message:
                changed.append(record.id)
            return
        pace.errors = 0
        now = self.clock()
        if batch.status != (old or record.status):
            pace.fast_until = now + self.base_interval * FAST_WINDOW_INTERVALS
        new_counts = batch.request_counts
        if (
            batch.status != record.status
            or record.poll_error
            or (new_counts.completed if new_counts else None) != record.request_completed
            or (new_counts.failed if new_counts else None) != record.request_failed
            or (new_counts.total if new_counts else None) != record.request_total
        ):
            changed.append(record.id)
        pace.status = batch.status
        pace.next_due = polled_at + self.pace_for(record, now)
        if batch.terminal and not record.notified:
            fresh = store.get(record.origin, record.id)
            if fresh is not None:
                finished.append((fresh, old))

    # ----------------------------------------------------------------- endings

    def _finished(self, record: BatchRecord, old: str | None) -> None:
        self._pace.pop(record.key, None)
        text, severity = outcome_text(record)
        app = self.app
        config = getattr(app, "config", None)
        # A job's batches end by the dozen: the job says once when it ends (job_driver.py).
        if JobStore(app.store).job_of_batch(record.id) is None:
            try:
                app.notify(text, title="Batch finished", severity=severity, timeout=10)
                app.bell()
            except Exception:  # noqa: BLE001 - a headless app without a screen yet
                pass
            run_notify_command(
                getattr(config, "notify_command", None), record.id, record.status, text
            )
        app.store.mark_notified(record.origin, record.id)
        self._post(BatchFinished(record, old))
        if getattr(config, "auto_download", False) and (
            record.output_file_id or record.error_file_id
        ):
            app.run_worker(
                self._download(record), group=f"download-{record.id}", exit_on_error=False
            )

    async def _download(self, record: BatchRecord) -> None:
        try:
            client = self._shared_client(record)
        except NoClientError:
            return
        dest: Path = record.results_folder(self.app.paths)
        try:
            output, error = await fetch_results(client, self.app.store, record, dest)
        except ApiError as exc:
            self.app.notify(
                f"Could not download the results of {record.label}: {exc.message}",
                severity="warning",
            )
            return
        except OSError as exc:
            self.app.notify(
                f"Could not save the results of {record.label}: {exc}", severity="warning"
            )
            return
        self._post(BatchesChanged([record.id]))
        from fr_tui.tui.costs import costs

        fresh = self.app.store.get(record.origin, record.id) or record
        await asyncio.to_thread(costs(self.app).learn_from, fresh, output, error)
        self._post(BatchesChanged([record.id]))  # the spend line counts the actual cost

    def _post(self, message: Any) -> None:
        broadcast = getattr(self.app, "broadcast", None)
        if callable(broadcast):
            broadcast(message)
        else:
            self.app.post_message(message)
