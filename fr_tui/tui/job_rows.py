"""Jobs in the Batches list: one row per job (keyed `job:<id>`), placed by when it was
made among the batches, with its batches hidden under it until the row is expanded
(space). What can be done to a job from the list lives here too: its details, its
results, cancel (asks first), copy its id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from textual.screen import Screen

from fr_tui.core.clients import NoClientError
from fr_tui.core.errors import ApiError
from fr_tui.core.jobs_control import ServerNeeded, cancel_job
from fr_tui.core.jobs_store import CANCELLED, FAILED, Job, JobStore
from fr_tui.core.jobs_view import (
    JobProgress,
    command_for,
    job_progress,
    left_text,
    progress_line,
)
from fr_tui.core.records import BatchRecord
from fr_tui.core.store import HistoryStore
from fr_tui.tui.job_driver import job_note
from fr_tui.tui.messages import JobsChanged
from fr_tui.tui.modals.confirm import ConfirmModal

JOB_PREFIX = "job:"


def job_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


class JobRows:
    """The jobs of one history, their progress, and which are expanded."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.progress: dict[str, JobProgress] = {}
        self.members: dict[str, str] = {}  # batch id -> its job's id
        self.expanded: set[str] = set()
        # an ended job's progress does not change: read once (a long history has many)
        self._ended: dict[str, tuple[float, JobProgress]] = {}

    def load(self, store: HistoryStore, now: float) -> None:
        jobs = JobStore(store)
        self.jobs = {job.id: job for job in jobs.jobs()}
        self.progress = {}
        for job in self.jobs.values():
            kept = self._ended.get(job.id)
            if kept is not None and kept[0] == job.updated_at:
                self.progress[job.id] = kept[1]
                continue
            self.progress[job.id] = job_progress(store, job, now=now)
            if job.terminal:
                self._ended[job.id] = (job.updated_at, self.progress[job.id])
        self.members = jobs.job_batch_ids()

    def job_of(self, key: str | None) -> Job | None:
        if key is None or not key.startswith(JOB_PREFIX):
            return None
        return self.jobs.get(key.removeprefix(JOB_PREFIX))

    def matches(self, job: Job, mode: str, needle: str) -> bool:
        if needle and needle not in job.label.lower() and needle not in job.id.lower():
            return False
        if mode.startswith("profile:"):
            return job.profile == mode.removeprefix("profile:")
        if mode == "active":
            return not job.terminal
        if mode == "done":
            return job.terminal
        if mode == "failed":
            return job.status in (FAILED, CANCELLED) or bool(job.failed or job.missing)
        return True

    def arrange(
        self,
        records: Iterable[tuple[str, BatchRecord]],
        mode: str,
        needle: str,
    ) -> list[tuple[str, Job | BatchRecord, str]]:
        """(row key, job or batch, branch) in list order: newest first, a job's batches
        (all its attempts, oldest first) right under it when it is expanded, each with the
        tree glyph it hangs from (├, └ for the last; "" for a row of its own)."""
        top: list[tuple[float, str, Job | BatchRecord]] = []
        children: dict[str, list[tuple[str, BatchRecord]]] = {}
        for key, record in records:
            owner = self.members.get(record.id)
            if owner is not None and owner in self.jobs:
                children.setdefault(owner, []).append((key, record))
            else:
                top.append((float(record.created_at or record.submitted_at), key, record))
        for job in self.jobs.values():
            if self.matches(job, mode, needle):
                top.append((job.created_at, job_key(job.id), job))
        top.sort(key=lambda item: -item[0])  # stable: history's order among equals
        rows: list[tuple[str, Job | BatchRecord, str]] = []
        for _, key, item in top:
            rows.append((key, item, ""))
            if isinstance(item, Job) and item.id in self.expanded:
                mine = sorted(children.get(item.id, []), key=lambda kr: kr[1].submitted_at)
                rows.extend((k, r, "├") for k, r in mine[:-1])
                rows.extend((k, r, "└") for k, r in mine[-1:])
        return rows

    def toggle(self, job_id: str) -> bool:
        """Expand or collapse a job; returns whether it is expanded now."""
        if job_id in self.expanded:
            self.expanded.discard(job_id)
            return False
        self.expanded.add(job_id)
        return True

    def hint(self, job: Job, driver: Any) -> tuple[str, bool]:
        """The line under the list for a highlighted job, and whether it warns."""
        progress = self.progress.get(job.id)
        bits = [progress_line(progress) if progress else job.id]
        note = job_note(driver, job)
        if note:
            bits.append(note)
        if job.reason and not job.terminal:
            bits.append(job.reason)
        left = left_text(job)
        if left:
            bits.append(f"left: {left}")
        warn = bool(note and note.startswith("⚠")) or job.status == "blocked"
        return " · ".join(bits), warn


# ----------------------------------------------------------------- actions on a job


def open_results(screen: Screen[Any], job: Job) -> None:
    from fr_tui.tui.screens.job_results import JobResultsScreen

    screen.app.push_screen(JobResultsScreen(job.id))


def why_not(action: str, job: Job) -> str | None:
    """Why `action` does not apply to `job` now (the words a notification and help use)."""
    if action == "cancel" and job.terminal:
        return "It has ended: nothing to cancel."
    if action == "retry" and job.status == "cancelled":
        return "A cancelled job does not run again; its file can run as a new job (s, j)."
    if action == "retry":
        return "A job retries its failed rows by itself, round after round."
    return None


def copy_id(screen: Screen[Any], job: Job) -> None:
    screen.app.copy_to_clipboard(job.id)
    screen.app.notify(f"Copied {job.id}", title="Copied")


def request_cancel(screen: Screen[Any], job: Job, done: Callable[[], None] | None = None) -> None:
    app = screen.app
    if job.terminal:
        app.notify(f"Job {job.label} has already ended ({job.status}).", severity="warning")
        return

    def answered(yes: bool | None) -> None:
        if yes:
            screen.run_worker(
                _cancel(app, job, done), group=f"cancel-{job.id}", exit_on_error=False
            )

    body = (
        f"Cancel job {job.id} ({job.label})?\n"
        "Its running batches are cancelled and nothing more is submitted. Rows already "
        "answered stay in its results."
    )
    app.push_screen(ConfirmModal("Cancel job", body, "Cancel job"), answered)


async def _cancel(app: Any, job: Job, done: Callable[[], None] | None) -> None:
    driver = getattr(app, "jobs_driver", None)
    try:
        client = app.client_for(
            BatchRecord(id=job.id, status="", origin=job.origin, profile=job.profile)
        )
        no_client = ""
    except NoClientError as exc:  # a job with nothing on its server cancels without one
        client, no_client = None, str(exc)
    if driver is not None and driver.drives(job.id):
        driver.let_go(job.id)  # this app drives it: the cancel takes the lock and ends it
    try:
        after, elsewhere = await cancel_job(client, app.store, app.paths, job.id)
    except ServerNeeded:
        again = command_for(app.config, job, f"job cancel {job.id}", explicit=True)
        app.notify(
            f"Cannot cancel: its batches on {job.origin} need profile {job.profile!r}, and "
            f"{no_client}. Give it a key (settings), then cancel again ({again}).",
            severity="error",
        )
        return
    except ApiError as exc:
        app.notify(f"Cancel failed: {exc.message}", severity="error")
        return
    note = " (another process drives it: it stops it)" if elsewhere else ""
    app.notify(f"Job {after.label}: {after.status}{note}.", title="Cancel requested")
    app.broadcast(JobsChanged([job.id]))
    if done is not None:
        done()
