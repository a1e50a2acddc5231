"""The jobs engine: one input file of any size, run to one merged result.

A job lives in history (core/jobs_store.py) and in its folder `jobs/<job_id>/` under the
data dir: `round-1/` (the plan: parts of the input, core/plan.py), `round-N/input/` and
`round-N/plan/` (a retry round's rows and their parts), `round-N/splits/` (halves of a
part the enqueued-token limit refused on its own), and `merged.jsonl`.

`JobEngine.advance()` is one idempotent step. It reads the job's state from history and
its folder, decides what comes next and does it, each action written down before it is
taken, so a process killed at any line leaves a state the next step finishes:

- plan the input when there are no parts yet (the plan appears whole or not at all);
- settle each part's slot (job, part, round) with the intents: a create whose answer was
  lost is looked up on the server (core/reconcile.py) and adopted, never made again; a
  slot whose outcome cannot be known (a server that cannot list) blocks the job;
- poll the running batches (bounded concurrency), download each ended one's results;
- a batch refused with `token_limit_exceeded` waits until the job's running parts end and
  goes again (a new attempt); refused when it was alone, it is split in halves;
- submit pending parts while fewer than `max_in_flight` run, each create through
  `submit_file(..., job=JobSlot(...))` (the durable intent with its metadata token);
- when every part of a round has ended, the rows that failed with a retried kind (or went
  missing) make the next round; after the last round, the merge (core/jobs_rows.py).

Whoever drives a job holds its lock for as long as it drives (core/jobs_control.py), so
two processes never drive one job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fr_tui.core.api import BatchClient
from fr_tui.core.errors import (
    ApiError,
    NotSupportedError,
    OutcomeUnknownError,
    RateLimitedError,
)
from fr_tui.core.intents import DONE, IN_FLIGHT, RESOLVED, UNKNOWN, Intent, IntentLog
from fr_tui.core.jobs_plan import job_dir, plan_first_round, plan_retry_round, split_in_halves
from fr_tui.core.jobs_rows import (
    MERGED_FILE,
    InputRows,
    JoinCache,
    PartAnswers,
    RowState,
    collect,
    open_part,
    write_merged,
    write_round_input,
)
from fr_tui.core.jobs_store import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    FAILED,
    MERGING,
    PART_DONE,
    PART_ENDED,
    PART_PENDING,
    PART_RUNNING,
    PART_UNRUNNABLE,
    PART_WAITING,
    PLANNING,
    RUNNING,
    Job,
    JobPart,
    JobStore,
    part_batch_name,
)
from fr_tui.core.paths import Paths
from fr_tui.core.reconcile import reconcile
from fr_tui.core.records import BatchRecord
from fr_tui.core.results_join import FAILED as FAILED_ROW
from fr_tui.core.results_join import MISSING as MISSING_ROW
from fr_tui.core.retry_kinds import TOKEN_LIMIT
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import JobSlot, fetch_results, poll_batch, submit_file

if TYPE_CHECKING:
    from fr_tui.core.estimate import Estimate
    from fr_tui.core.prepare import CostBasis
    from fr_tui.core.results import JoinedResults

log = logging.getLogger("fr_tui.jobs")

JOB_METADATA_KEY = "fr_tui_job"
POLL_CONCURRENCY = 8
# After a 429 on a create, creates wait this long unless the server said how long.
RATE_LIMIT_PAUSE = 30.0
CANCELLED_BY_USER = "cancelled by the user"


class JobBlocked(Exception):
    """A slot's create may have made a batch, and the server cannot say: the job waits
    for the user rather than risk a second batch."""


@dataclass
class Step:
    job: Job
    progressed: bool = False  # something changed: the next step may come at once
    notes: list[str] = field(default_factory=list)  # what the job waits on, for the user


class JobEngine:
    """Advances one job. `poll=False` leaves polling to someone else (the TUI's poller
    keeps every running batch current); the engine then reads statuses from history.
    `costs`: what the job's cost figures rest on (its server's catalog and prices, its
    profile): each part goes out with its own estimate (the running line, spend and the
    daily budget count it), and each part's rows are priced per model once read. Without
    it parts carry no estimate and rows without usage.cost stay unpriced."""

    def __init__(
        self,
        client: BatchClient,
        store: HistoryStore,
        paths: Paths,
        job_id: str,
        *,
        poll: bool = True,
        concurrency: int = POLL_CONCURRENCY,
        clock: Callable[[], float] = time.time,
        costs: CostBasis | None = None,
    ) -> None:
        self.client = client
        self.costs = costs
        self.store = store
        self.paths = paths
        self.job_id = job_id
        self.poll = poll
        self.concurrency = concurrency
        self.clock = clock
        self.jobs = JobStore(store)
        self.intents = IntentLog(store)
        self.dir = job_dir(paths, job_id)
        self._creates_paused_until = 0.0
        # slots whose last create may have made a batch nobody has found yet
        self._unsettled: set[tuple[int, int]] = set()
        self.polls = 0  # GETs made (the bench reads it)
        self.max_polls_in_flight = 0

    def job(self) -> Job:
        job = self.jobs.get(self.job_id)
        if job is None:
            raise KeyError(f"no job {self.job_id} in history")
        return job

    # ----------------------------------------------------------------- the step

    async def advance(self) -> Step:
        job = self.job()
        if job.terminal:
            return Step(job)
        step = Step(job)
        if job.cancel_requested:
            await self._cancel(job)
            step.progressed = True
        elif job.status == PLANNING:
            await self._plan(job)
            step.progressed = True
        elif job.status in (RUNNING, BLOCKED):
            try:
                step.progressed = await self._run_round(job, step.notes)
            except JobBlocked as exc:
                if job.status != BLOCKED or job.reason != str(exc):
                    self.jobs.update(job.id, status=BLOCKED, reason=str(exc))
                step.notes.append(str(exc))
        elif job.status == MERGING:
            await self._merge(job)
            step.progressed = True
        step.job = self.job()
        return step

    def _fail(self, job: Job, reason: str) -> None:
        self.jobs.update(job.id, status=FAILED, reason=reason, finished_at=self.clock())

    # ----------------------------------------------------------------- planning

    async def _plan(self, job: Job) -> None:
        reason = await plan_first_round(self.jobs, job, self.dir)
        if reason is not None:
            self._fail(job, reason)

    # ----------------------------------------------------------------- one round

    def _slot_intents(self, job: Job) -> dict[tuple[int, int], list[Intent]]:
        slots: dict[tuple[int, int], list[Intent]] = {}
        for intent in self.intents.for_job(job.id):
            if intent.job_round is None or intent.job_part is None:
                continue
            slots.setdefault((intent.job_round, intent.job_part), []).append(intent)
        return slots

    async def _run_round(self, job: Job, notes: list[str]) -> bool:
        parts = self.jobs.parts(job.id, job.round)
        live = [p for p in parts if p.state in (PART_PENDING, PART_RUNNING, PART_WAITING)]
        progressed = await self._settle_slots(job, live, notes)
        if job.status == BLOCKED:
            self.jobs.update(job.id, status=RUNNING, reason=None)
        running = [p for p in live if p.state == PART_RUNNING]
        records = await self._poll(job, running)
        for part in running:
            record = records.get(part.batch_id or "")
            if record is not None and record.terminal:
                await self._ended(job, part, record)
                progressed = True
        progressed = await self._submit_due(job, parts, notes) or progressed
        if parts and all(p.state in PART_ENDED for p in self.jobs.parts(job.id, job.round)):
            await self._end_round(job)
            progressed = True
        return progressed

    async def _settle_slots(self, job: Job, live: list[JobPart], notes: list[str]) -> bool:
        """Bring each live part in line with its intents: a batch the part does not know
        yet (its answer was recorded, or found by reconcile) is adopted; an interrupted
        create is looked up first. Parts whose create is still unsettled are marked so
        nothing is created for them."""
        progressed = False
        slots = self._slot_intents(job)
        self._unsettled = set()
        for part in live:
            intents = slots.get(part.slot, [])
            if not intents:
                continue
            newest = intents[-1]
            if newest.state in IN_FLIGHT or newest.state == UNKNOWN:
                newest = await self._look_up(newest, notes)
                if newest.state in IN_FLIGHT or newest.state == UNKNOWN:
                    self._unsettled.add(part.slot)
                    continue
            if newest.state in (DONE, RESOLVED) and newest.batch_id != part.batch_id:
                made = sum(1 for i in intents if i.state in (DONE, RESOLVED))
                self.jobs.set_part(
                    part, state=PART_RUNNING, batch_id=newest.batch_id, attempts=made, note=None
                )
                progressed = True
        return progressed

    async def _look_up(self, intent: Intent, notes: list[str]) -> Intent:
        """Settle an interrupted create of this job with the server (never create again
        while it may exist). Raises JobBlocked when the server cannot list batches."""
        await reconcile(
            self.client, self.store, intents=self.intents, only=[intent.token], clock=self.clock
        )
        fresh = self.intents.get(intent.token) or intent
        if fresh.state != UNKNOWN:
            return fresh
        try:
            await self.client.list_batches(limit=1)
        except NotSupportedError:
            raise JobBlocked(
                f"the create of part {intent.job_part} (round {intent.job_round}) may have "
                f"made a batch (input file {intent.input_file_id or '?'}), and this server "
                "cannot list batches to say: look it up (fr-tui list, or l in Batches), or "
                "forget it (x) to create the part again"
            ) from None
        except ApiError as exc:
            notes.append(f"cannot look up an interrupted create yet: {exc.message}")
            return fresh
        notes.append(
            f"an interrupted create of part {intent.job_part} is not listed by the server "
            "yet; it is created again only once the server has surely not made it"
        )
        return fresh

    async def _poll(self, job: Job, running: list[JobPart]) -> dict[str, BatchRecord]:
        """The batch records of running parts, polled first (at most `concurrency` at a
        time) when this engine polls."""
        records: dict[str, BatchRecord] = {}
        for part in running:
            record = self.store.get(job.origin, part.batch_id or "")
            if record is not None:
                records[record.id] = record
        due = [r for r in records.values() if not r.terminal]
        if not self.poll or not due:
            return records
        semaphore = asyncio.Semaphore(self.concurrency)
        in_flight = 0

        async def one(record: BatchRecord) -> None:
            nonlocal in_flight
            async with semaphore:
                in_flight += 1
                self.max_polls_in_flight = max(self.max_polls_in_flight, in_flight)
                try:
                    await poll_batch(self.client, self.store, record.id, origin=job.origin)
                    self.polls += 1
                finally:
                    in_flight -= 1
            fresh = self.store.get(job.origin, record.id)
            if fresh is not None:
                records[record.id] = fresh

        await asyncio.gather(*(one(r) for r in due))
        return records

    async def _ended(self, job: Job, part: JobPart, record: BatchRecord) -> None:
        """A part's batch ended: the token limit makes it wait (or split); otherwise its
        results are downloaded and joined (stored beside them), and the part is done."""
        if record.status == "failed" and any(e.get("code") == TOKEN_LIMIT for e in record.errors):
            if part.alone:
                await split_in_halves(self.jobs, job, part, self.dir)
            else:
                self.jobs.set_part(
                    part,
                    state=PART_WAITING,
                    note="over the enqueued-token limit: waits for the running parts",
                )
            return
        if record.output_file_id or record.error_file_id:
            dest = record.results_folder(self.paths)
            output, error = await fetch_results(self.client, self.store, record, dest)
            await asyncio.to_thread(self._read_part, record, self.dir / part.file, output, error)
        self.jobs.set_part(part, state=PART_DONE, note=None)

    def _read_part(
        self, record: BatchRecord, source: Path, output: Path | None, error: Path | None
    ) -> None:
        """Join a part's results (the join is stored beside them) and keep what its rows
        cost per model, as reading a batch's results does (spend credits each model)."""
        from fr_tui.core.results import join_results

        joined = join_results(source, output, error)
        try:
            self._record_cost(record, joined, (source, output, error))
        finally:
            joined.close()

    def _record_cost(
        self,
        record: BatchRecord,
        joined: JoinedResults,
        sources: tuple[Path, Path | None, Path | None],
    ) -> None:
        from fr_tui.core.actual import result_cost
        from fr_tui.core.costlog import record_actuals

        prices = self.costs.prices if self.costs is not None else None
        try:
            cost = result_cost(joined, prices, cache_for=sources)
        except (OSError, ValueError, ArithmeticError) as exc:  # a cost never stops a job
            log.warning("the cost of %s was not read: %s", record.id, exc)
            return
        record_actuals(self.store, record.origin, record.id, cost)

    def _estimate(self, path: Path) -> Estimate | None:
        """A part's own estimate (its rows, its models), or None without cost figures."""
        if self.costs is None:
            return None
        from fr_tui.core.prepare import estimate_file

        try:
            return estimate_file(path, self.costs)
        except (OSError, ValueError, ArithmeticError) as exc:  # a cost never stops a job
            log.warning("no estimate for %s: %s", path, exc)
            return None

    async def _submit_due(self, job: Job, parts: list[JobPart], notes: list[str]) -> bool:
        """Create batches for parts that may go now: waiting parts (alone, once nothing
        of the job runs), else pending ones while fewer than max_in_flight run."""
        in_flight = [p for p in parts if p.state == PART_RUNNING]
        waiting = [p for p in parts if p.state == PART_WAITING]
        ready = [p for p in parts if p.state == PART_PENDING and p.slot not in self._unsettled]
        if waiting:
            notes.append(
                f"{len(waiting)} part(s) wait on the enqueued-token limit for the running "
                "parts to end"
            )
            chosen = [] if in_flight else waiting[:1]
        else:
            room = max(0, job.settings.max_in_flight - len(in_flight))
            chosen = ready[:room]
        if chosen and self.clock() < self._creates_paused_until:
            notes.append("the server rate-limited a create: waiting before the next")
            return False
        made = False
        for part in chosen:
            if self.jobs.get(job.id) is None or self.job().cancel_requested:
                return made
            alone = not in_flight and len(chosen) == 1
            try:
                await self._create(job, part, alone)
            except RateLimitedError as exc:
                pause = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_PAUSE
                self._creates_paused_until = self.clock() + pause
                notes.append(f"the server rate-limited a create: waiting {pause:.0f}s")
                return made
            except OutcomeUnknownError as exc:
                # its intent says so: the next step looks the batch up before anything else
                notes.append(exc.message)
            made = True
        return made

    async def _create(self, job: Job, part: JobPart, alone: bool) -> None:
        estimate = await asyncio.to_thread(self._estimate, self.dir / part.file)
        record = await submit_file(
            self.client,
            self.store,
            self.dir / part.file,
            profile=job.profile or "",
            endpoint=job.endpoint,
            metadata={JOB_METADATA_KEY: job.id},
            name=part_batch_name(job, part),
            rows=part.rows,
            allow_duplicate=True,  # the slot is checked above: a job never repeats itself
            reconcile_first=False,
            job=JobSlot(job.id, part.part, part.round),
            intents=self.intents,
            estimate=estimate,
        )
        self.jobs.set_part(
            part,
            state=PART_RUNNING,
            batch_id=record.id,
            attempts=part.attempts + 1,
            alone=alone,
            note=None,
        )

    # ----------------------------------------------------------------- rounds and merge

    def _cache(self, job: Job) -> JoinCache:
        def opener(part: JobPart) -> PartAnswers:
            record = self.store.get(job.origin, part.batch_id) if part.batch_id else None
            return open_part(self.dir, part, record)

        return JoinCache(opener)

    def _state(self, job: Job, parts: list[JobPart], cache: JoinCache) -> RowState:
        rounds: dict[int, list[JobPart]] = {}
        for part in parts:
            rounds.setdefault(part.round, []).append(part)
        return collect(self.dir, int(job.total or 0), rounds, cache)

    async def _end_round(self, job: Job) -> None:
        """Every part of the round ended: the next round from the rows to retry, or the
        merge. Redone whole if interrupted (the files are made again, the same)."""
        parts = self.jobs.parts(job.id)
        cache = self._cache(job)
        try:
            state = await asyncio.to_thread(self._state, job, parts, cache)
        finally:
            cache.close()
        retry = (
            list(state.to_retry(job.settings.retry_kinds))
            if job.round < job.settings.rounds
            else []
        )
        if not retry:
            self.jobs.update(job.id, status=MERGING)
            return
        counts = state.counts()
        again = bytearray(state.outcome[row] for row in retry)
        nxt = job.round + 1
        first_parts = [p for p in parts if p.round == 1]
        path = await asyncio.to_thread(write_round_input, self.dir, nxt, first_parts, retry)
        parts_next = await plan_retry_round(job, self.dir, nxt, path)
        # ok, failed, missing: the rows settled for good (the round's rows are not)
        self.jobs.add_parts(
            parts_next,
            round=nxt,
            ok=counts["ok"],
            failed=counts["failed"] - again.count(FAILED_ROW),
            missing=counts["missing"] - again.count(MISSING_ROW),
        )

    async def _merge(self, job: Job) -> None:
        await self.merge(job, status=COMPLETED, reason=None, finished_at=self.clock())

    async def merge(self, job: Job, **job_columns: object) -> None:
        """Write the merged file and record its counts, why rows were left, its path
        (and `job_columns`) with the job."""
        path = self.dir / MERGED_FILE
        state = await asyncio.to_thread(self.write_merged, job, path)
        counts = state.counts()
        self.jobs.update(
            job.id,
            total=counts["total"],
            ok=counts["ok"],
            failed=counts["failed"],
            missing=counts["missing"],
            left=state.left(),
            output_path=str(path),
            **job_columns,
        )

    def write_merged(self, job: Job, path: Path) -> RowState:
        """Write the merged result of what the job's parts have answered (in a thread)."""
        parts = self.jobs.parts(job.id)
        ended = [p for p in parts if p.state in (PART_DONE, PART_UNRUNNABLE)]
        cache = self._cache(job)
        inputs = InputRows(self.dir, [p for p in parts if p.round == 1])
        try:
            state = self._state(job, ended, cache)
            write_merged(path, state, {p.slot: p for p in ended}, cache, inputs)
        finally:
            cache.close()
            inputs.close()
        return state

    async def read_ended(self) -> None:
        """Download what the job's running parts answered once their batches ended (the
        last results of a cancelled job)."""
        job = self.job()
        running = [p for p in self.jobs.parts(job.id) if p.state == PART_RUNNING]
        records = await self._poll(job, running)
        for part in running:
            record = records.get(part.batch_id or "")
            if record is not None and record.terminal and record.status != "failed":
                await self._ended(job, part, record)

    # ----------------------------------------------------------------- cancel

    async def _cancel(self, job: Job) -> None:
        """Stop a job: settle interrupted creates (a batch one made is cancelled too),
        cancel every running batch, and mark the job cancelled."""
        parts = self.jobs.parts(job.id)
        live = [p for p in parts if p.state in (PART_PENDING, PART_RUNNING, PART_WAITING)]
        try:
            await self._settle_slots(job, live, [])
        except JobBlocked:
            pass  # nothing to cancel that can be found
        await cancel_batches(self.client, self.store, job, [p.batch_id for p in live])
        self.jobs.update(
            job.id, status=CANCELLED, reason=CANCELLED_BY_USER, finished_at=self.clock()
        )


async def cancel_batches(
    client: BatchClient, store: HistoryStore, job: Job, batch_ids: list[str | None]
) -> list[str]:
    """Cancel those of the batches that still run (a batch that ended meanwhile is left
    alone); returns the ids cancelled."""
    cancelled = []
    for batch_id in batch_ids:
        if not batch_id:
            continue
        record = store.get(job.origin, batch_id)
        if record is None or record.terminal:
            continue
        try:
            batch = await client.cancel_batch(batch_id)
        except ApiError as exc:
            if exc.status == 400:  # it ended in the meantime
                await poll_batch(client, store, batch_id, origin=job.origin)
                continue
            raise
        store.update_from_api(batch, origin=job.origin)
        cancelled.append(batch_id)
    return cancelled


__all__ = [
    "CANCELLED_BY_USER",
    "JOB_METADATA_KEY",
    "JobBlocked",
    "JobEngine",
    "Step",
    "cancel_batches",
]
