"""Who drives a job, and stopping one: the job's lock (`locks/job-<id>.lock`,
core/locks.py) is held by the one process that drives it, for as long as it drives (the
kernel lets go when that process ends, however it ends); `JobDriver` is that loop, and
`cancel_job` stops a job from any process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fr_tui.core.api import BatchClient
from fr_tui.core.intents import DONE, FINAL, RESOLVED, IntentLog
from fr_tui.core.jobs import CANCELLED_BY_USER, JobEngine, Step, cancel_batches
from fr_tui.core.jobs_store import (
    BLOCKED,
    CANCELLED,
    PART_PENDING,
    PART_RUNNING,
    PART_WAITING,
    TERMINAL,
    Job,
    JobStore,
)
from fr_tui.core.locks import WorkLock, lock_path, owner_alive
from fr_tui.core.paths import Paths
from fr_tui.core.store import HistoryStore


def job_lock(store: HistoryStore, job_id: str) -> WorkLock:
    return WorkLock(lock_path(store.path.parent / "locks", "job", job_id))


def driven_elsewhere(store: HistoryStore, job_id: str) -> bool:
    """Whether some process holds the job's lock (drives it) right now."""
    return owner_alive(lock_path(store.path.parent / "locks", "job", job_id))


class JobDriver:
    """Drives one job while holding its lock: `run()` steps until the job ends, is
    blocked, or `stop()` is called. `acquire()` says whether this process may drive it."""

    def __init__(self, engine: JobEngine, *, interval: float = 10.0) -> None:
        self.engine = engine
        self.interval = interval
        self.lock = job_lock(engine.store, engine.job_id)
        self._stop = asyncio.Event()

    def acquire(self) -> bool:
        return self.lock.acquire(wait=False)

    def release(self) -> None:
        job = self.engine.jobs.get(self.engine.job_id)
        self.lock.release(remove=job is not None and job.status in TERMINAL)

    def stop(self) -> None:
        self._stop.set()

    async def run(self, on_step: Callable[[Step], None] | None = None) -> Job:
        assert self.lock.held, "acquire() the job's lock first"
        while True:
            step = await self.engine.advance()
            if on_step is not None:
                on_step(step)
            if step.job.terminal or step.job.status == BLOCKED or self._stop.is_set():
                return step.job
            if step.progressed:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass


class ServerNeeded(Exception):
    """A cancel must reach the job's server (a batch of it may run, or a create's outcome
    is not known) and no client was given: nothing was changed."""


def needs_server(store: HistoryStore, job: Job) -> bool:
    """Whether cancelling `job` must reach its server: a batch of it may still run (a
    part's, or one a create made that no part holds yet), or a create is unsettled."""

    def may_run(batch_id: str | None) -> bool:
        record = store.get(job.origin, batch_id) if batch_id else None
        return bool(batch_id) and (record is None or not record.terminal)

    for intent in IntentLog(store).for_job(job.id):
        if intent.state not in FINAL or (
            intent.state in (DONE, RESOLVED) and may_run(intent.batch_id)
        ):
            return True
    return any(
        p.state in (PART_PENDING, PART_RUNNING, PART_WAITING) and may_run(p.batch_id)
        for p in JobStore(store).parts(job.id)
    )


async def cancel_job(
    client: BatchClient | None, store: HistoryStore, paths: Paths, job_id: str
) -> tuple[Job, bool]:
    """Cancel a job, from any process. Returns the job and whether another process drives
    it (the wish is written; it stops it at its next step; what runs is cancelled here too
    when there is a client). A job nobody drives that has nothing on the server is ended
    here without a client; one with batches needs `client` (ServerNeeded without)."""
    jobs = JobStore(store)
    job = jobs.get(job_id)
    if job is None:
        raise KeyError(job_id)
    if job.terminal:
        return job, False
    lock = job_lock(store, job_id)
    if not lock.acquire(wait=False):
        jobs.request_cancel(job_id)
        if client is not None:
            running = [p.batch_id for p in jobs.parts(job_id) if p.state == PART_RUNNING]
            await cancel_batches(client, store, job, running)
        return jobs.get(job_id) or job, True
    try:
        # under the lock: no process can create a batch of it meanwhile
        if not needs_server(store, job):
            jobs.update(job_id, status=CANCELLED, reason=CANCELLED_BY_USER, finished_at=time.time())
        elif client is None:
            raise ServerNeeded(job_id)
        else:
            jobs.request_cancel(job_id)
            await JobEngine(client, store, paths, job_id).advance()
    finally:
        after = jobs.get(job_id) or job
        lock.release(remove=after.terminal)
    return after, False


async def merge_what_ended(
    client: BatchClient,
    store: HistoryStore,
    paths: Paths,
    job: Job,
    *,
    once_stopped: bool = False,
) -> Job:
    """A cancelled job's merged result from what its parts answered: batches that ended
    since are downloaded first; rows no batch answered are missing. `once_stopped`: not
    while a part's batch is still stopping (the TUI asks again; its last answers come
    with its end)."""
    lock = job_lock(store, job.id)
    if not lock.acquire(wait=False):
        return job  # the driver is still settling it: ask again in a moment
    try:
        engine = JobEngine(client, store, paths, job.id)
        await engine.read_ended()
        if once_stopped and any(
            (record := store.get(job.origin, part.batch_id or "")) is None or not record.terminal
            for part in JobStore(store).parts(job.id)
            if part.state == PART_RUNNING
        ):
            return engine.job()
        await engine.merge(job)
    finally:
        lock.release()
    return engine.job()


__all__ = [
    "JobDriver",
    "ServerNeeded",
    "cancel_job",
    "driven_elsewhere",
    "job_lock",
    "merge_what_ended",
    "needs_server",
]
