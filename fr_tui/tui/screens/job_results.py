"""A job's merged rows in the results viewer: the same filters, find, detail view, copy
and export as a batch's results (ResultsScreen), over the job's merged file, read from
disk (offline once merged). There is no retry key: the job retried by itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from textual import on, work
from textual.widgets import Static

from fr_tui.core.jobs_results import open_job_results
from fr_tui.core.jobs_store import CANCELLED, Job, JobStore
from fr_tui.core.jobs_view import job_progress, progress_line
from fr_tui.tui.messages import JobsChanged
from fr_tui.tui.results_loading import LoadedResults
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.app_header import AppHeader


class JobResultsScreen(ResultsScreen):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.job: Job | None = None

    def crumbs(self, previous: Any) -> list[str]:
        same_job = getattr(previous, "job_id", None) == self.job_id
        label = self.job.label if self.job else self.job_id
        return ["Results"] if same_job else [label, "Results"]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return False
        return super().check_action(action, parameters)

    @on(JobsChanged)
    def _job_changed(self, message: JobsChanged) -> None:
        if self.job_id in message.ids and self.joined is None:
            self.load()

    @work(exclusive=True, group="results-load", exit_on_error=False)
    async def load(self) -> None:
        job = JobStore(self.app.store).get(self.job_id)
        view = self.view
        if job is None:
            view.set_note(f"No job {self.job_id} in the history.")
            self.set_status("Unknown job")
            return
        self.job = job
        self.query_one("#results-title", Static).update(
            f"{job.label} · {job.id} · job {job.status}"
        )
        self.query_one(AppHeader).refresh()
        if not job.output_path or not _is_file(job.output_path):
            line = progress_line(job_progress(self.app.store, job))
            when = (
                "once the batches it cancelled have stopped"
                if job.status == CANCELLED
                else "when the job ends"
            )
            view.set_note(f"The merged result comes {when}. {line}")
            self.set_status(f"job {job.status}")
            return
        self.set_status("Reading the merged result…")
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                self.app.call_from_thread(
                    self.set_status, f"Reading the merged result… {100 * done // max(total, 1)}%"
                )

        try:
            joined = await asyncio.to_thread(open_job_results, job, progress)
        except OSError as exc:
            view.set_note(f"Could not read the merged result: {exc}")
            self.set_status("Read error")
            return
        self._loaded.append(LoadedResults(joined, False, opened=[joined]))
        self.show_joined(joined)


def _is_file(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()
