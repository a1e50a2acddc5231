"""The TUI drives unfinished jobs while it is open: one loop (an app worker) that takes
the lock of each job nobody else drives and steps it (core/jobs.py), one job at a time.

Never two drivers: a job whose lock another process holds (a `fr-tui run`, another TUI)
is only watched; its row still refreshes from history. The jobs' batches are polled by
the batch poller like every running batch, so the engines here read their statuses from
history (poll=False) instead of polling them a second time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fr_tui.core.clients import NoClientError
from fr_tui.core.errors import ApiError
from fr_tui.core.jobs import JobEngine
from fr_tui.core.jobs_control import job_lock, merge_what_ended
from fr_tui.core.jobs_store import BLOCKED, CANCELLED, COMPLETED, PART_RUNNING, Job, JobStore
from fr_tui.core.locks import WorkLock
from fr_tui.core.records import BatchRecord
from fr_tui.core.store import StoreError
from fr_tui.tui.costs import costs
from fr_tui.tui.messages import JobsChanged


class JobsDriver:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.interval: float | None = None  # None: the poller's fast pace
        self.held: dict[str, tuple[WorkLock, JobEngine]] = {}
        self.elsewhere: set[str] = set()  # driven by another process: watched
        self._seen: dict[str, float] = {}  # a watched job's updated_at when last shown
        self.errors: dict[str, str] = {}  # why a job is not moving (no key, server errors)
        self._wake: asyncio.Event | None = None
        self._worker: Any = None
        self._running = False

    @property
    def pace(self) -> float:
        if self.interval is not None:
            return self.interval
        poller = getattr(self.app, "poller", None)
        return float(getattr(poller, "fast", 1.0) or 1.0)

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._worker = self.app.run_worker(
            self._loop(), group="jobs-driver", exclusive=True, exit_on_error=False
        )

    def stop(self) -> None:
        self._running = False
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        for job_id in list(self.held):
            self.let_go(job_id)

    def kick(self) -> None:
        """A job was made or changed: step now."""
        if self._wake is not None:
            self._wake.set()

    def drives(self, job_id: str) -> bool:
        return job_id in self.held

    async def _loop(self) -> None:
        self._wake = asyncio.Event()
        while self._running:
            try:
                busy = await self.step_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                self.errors["*"] = f"jobs: {exc}"
                busy = False
            self._wake.clear()
            if busy:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, self.pace))
            except TimeoutError:
                pass

    async def step_all(self) -> bool:
        """One step of every unfinished job this app may drive; returns whether any moved."""
        store = self.app.store
        if store.read_only:
            return False
        changed: list[str] = []
        moved = False
        for job in await asyncio.to_thread(JobStore(store).jobs):
            if job.id in self.elsewhere and self._seen.get(job.id) != job.updated_at:
                # another process moved it (its batches' polls do not show a plan, a
                # merge or the end): its row is read again
                self._seen[job.id] = job.updated_at
                changed.append(job.id)
            if job.terminal:
                self.elsewhere.discard(job.id)
                self.let_go(job.id)
                if job.status == CANCELLED and not job.output_path:
                    await self._merge_cancelled(job, changed)
                continue
            engine = self._engine_for(job)
            if engine is None:
                continue
            try:
                step = await engine.advance()
            except ApiError as exc:
                self._error(job.id, exc.message, changed)
                continue
            except (OSError, StoreError) as exc:
                self._error(job.id, str(exc), changed)
                continue
            if self.errors.pop(job.id, None) is not None:
                changed.append(job.id)
            if step.progressed or step.job.status != job.status:
                changed.append(job.id)
                moved = moved or step.progressed
                self._watch_batches(step.job)
            if step.job.terminal or step.job.status == BLOCKED:
                self._ended(step.job)
        if changed:
            self.app.broadcast(JobsChanged(changed))
        return moved

    def _engine_for(self, job: Job) -> JobEngine | None:
        held = self.held.get(job.id)
        if held is not None:
            return held[1]
        as_batch = _as_batch(job)  # the job's own server and profile
        try:
            client = self.app.client_for(as_batch)
        except NoClientError as exc:
            self.errors[job.id] = str(exc)
            return None
        lock = job_lock(self.app.store, job.id)
        try:
            if not lock.acquire(wait=False):
                self.elsewhere.add(job.id)
                return None
        except OSError as exc:
            self.errors[job.id] = f"cannot lock the job: {exc}"
            return None
        self.elsewhere.discard(job.id)
        # once per job and app: the job's catalog (a cached file) and prices
        basis = costs(self.app).basis(as_batch)
        engine = JobEngine(client, self.app.store, self.app.paths, job.id, poll=False, costs=basis)
        self.held[job.id] = (lock, engine)
        return engine

    async def _merge_cancelled(self, job: Job, changed: list[str]) -> None:
        """A cancelled job's merged result, once its parts' batches have stopped (their
        last answers downloaded), so its results open like any job's."""
        try:
            client = self.app.client_for(_as_batch(job))
            merged = await merge_what_ended(
                client, self.app.store, self.app.paths, job, once_stopped=True
            )
        except NoClientError:
            return  # offline: its results wait for its server
        except (ApiError, OSError, StoreError) as exc:
            self._error(job.id, str(exc), changed)
            return
        if merged.output_path:
            changed.append(job.id)

    def _error(self, job_id: str, message: str, changed: list[str]) -> None:
        if self.errors.get(job_id) != message:
            self.errors[job_id] = message
            changed.append(job_id)

    def _watch_batches(self, job: Job) -> None:
        """New batches of the job: polled at once and fast for a while."""
        poller = getattr(self.app, "poller", None)
        if poller is None:
            return
        for part in JobStore(self.app.store).parts(job.id, job.round):
            if part.state == PART_RUNNING and part.batch_id:
                poller.watch(part.batch_id)

    def _ended(self, job: Job) -> None:
        self.let_go(job.id)
        if job.status == BLOCKED:
            text, severity = f"Job {job.label} is blocked: {job.reason}", "error"
        elif job.status == COMPLETED and not (job.failed or job.missing):
            text, severity = (
                f"Job {job.label} completed: all {job.total or 0:,} rows ok.",
                "information",
            )
        elif job.status == COMPLETED:
            text = (
                f"Job {job.label} completed: {job.ok or 0:,} ok, {job.failed or 0:,} failed, "
                f"{job.missing or 0:,} missing."
            )
            severity = "warning"
        else:
            text, severity = f"Job {job.label} {job.status}: {job.reason or ''}", "warning"
        try:
            self.app.notify(text, title="Job finished", severity=severity, timeout=10)
            self.app.bell()
        except Exception:  # noqa: BLE001 - a headless app without a screen yet
            pass

    def let_go(self, job_id: str) -> None:
        held = self.held.pop(job_id, None)
        if held is not None:
            job = JobStore(self.app.store).get(job_id)
            held[0].release(remove=job is not None and job.terminal)


def _as_batch(job: Job) -> BatchRecord:
    """A job as one of its batches, for the client and costs of its server and profile."""
    return BatchRecord(id=job.id, status="", origin=job.origin, profile=job.profile)


def job_note(driver: JobsDriver | None, job: Job) -> str | None:
    """Who drives a job, or why it does not move, for its row and details."""
    if job.terminal or driver is None:
        return None
    if job.id in driver.errors:
        return f"⚠ {driver.errors[job.id]}"
    if job.id in driver.elsewhere:
        return "driven by another fr-tui process: watching"
    return None
