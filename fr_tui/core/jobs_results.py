"""A job's merged result, joined for reading: the results viewer, `job results`, export.

The merged file (one line per input row, in input order, each with its own `outcome`) is
joined like a batch's result file (core/results.py: its index is stored beside it, so a
million rows reopen at once). Its input is the job's input file while that is still
there, the same size as when the job was made; else the merged file itself stands in
(every row still shows, by its custom_id; only the request is not there to show).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fr_tui.core.jobs_store import Job, JobStore
from fr_tui.core.result_sets import JobResultSet
from fr_tui.core.results import JoinedResults, join_results
from fr_tui.core.store import HistoryStore


def job_input(job: Job) -> Path | None:
    """The job's input file if it is still there as it was, else None."""
    path = Path(job.input_path)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if not path.is_file() or (job.input_bytes is not None and size != job.input_bytes):
        return None
    return path


def open_job_results(job: Job, on_progress: Any = None) -> JoinedResults:
    """The merged rows of a job that has its merged file (raises OSError otherwise)."""
    if not job.output_path:
        raise FileNotFoundError(f"{job.id} has no merged result yet")
    merged = Path(job.output_path)
    source = job_input(job) or merged
    return join_results(source, merged, None, on_progress=on_progress)


def job_result_set(store: HistoryStore, job_id: str) -> JobResultSet | None:
    """A job of history as one side of a comparison (core/compare.py); None when history
    has no such job. A job without its merged file yet says so when it is opened."""
    job = JobStore(store).get(job_id)
    if job is None:
        return None
    merged = (
        Path(job.output_path)
        if job.output_path
        else Path(job.input_path).with_name(f".{job.id}-not-merged-yet")
    )
    return JobResultSet(
        job.id, merged, job_input(job) or merged, label=job.label, origin=job.origin
    )


def results_json(job: Job, joined: JoinedResults) -> dict[str, Any]:
    """`job results --json`: what `results --json` says of a batch, for the job."""
    from fr_tui.core.export import summary_json

    summary = summary_json(job.id, job.status, joined, job.output_path, None)
    del summary["batch_id"], summary["error_path"]
    return {"job_id": job.id, **summary, "input_path": str(job_input(job) or "")}
