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

from fr_tui.core.jobs_store import Job
from fr_tui.core.results import JoinedResults, join_results


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


def results_json(job: Job, joined: JoinedResults) -> dict[str, Any]:
    counts = joined.counts
    return {
        "job_id": job.id,
        "status": job.status,
        "total": counts["total"],
        "ok": counts["ok"],
        "failed": counts["failed"],
        "missing": counts["missing"],
        "output_path": job.output_path,
        "input_path": str(job_input(job) or ""),
        "tokens_in": joined.tokens_in,
        "tokens_out": joined.tokens_out,
        "cost": joined.cost,
        "error_groups": [
            {"key": key, "code": code, "message": message, "count": count}
            for key, code, message, count in joined.error_groups()
        ],
    }
