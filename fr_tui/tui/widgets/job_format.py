"""How a job reads on screen: its status with a glyph, a compact progress (round, parts,
rows ok / failed / missing), its time (ETA while it runs), its cost so far. Like
batch_format.py, every status carries a word and a glyph (NO_COLOR reads the same)."""

from __future__ import annotations

from rich.text import Text

from fr_tui.core.jobs_store import Job
from fr_tui.core.jobs_view import JobProgress
from fr_tui.core.units import money
from fr_tui.tui.widgets.batch_format import ago, bar_text, counts_text, duration

JOB_LOOK: dict[str, tuple[str, str]] = {
    "planning": ("○", "accent"),
    "running": ("◐", "accent"),
    "merging": ("◑", "accent"),
    "blocked": ("⚠", "error"),
    "completed": ("✓", "success"),
    "failed": ("✗", "error"),
    "cancelled": ("⊘", "warning"),
}


def rows_not_ok(job: Job) -> int:
    return (job.failed or 0) + (job.missing or 0)


def job_role(job: Job) -> str:
    if job.status == "completed" and rows_not_ok(job):
        return "warning"
    return JOB_LOOK.get(job.status, ("?", "warning"))[1]


def job_status_text(job: Job, colours: dict[str, str], note: str | None = None) -> Text:
    glyph = JOB_LOOK.get(job.status, ("?", ""))[0]
    if job.status == "completed" and rows_not_ok(job):
        glyph = "!"
    text = Text(f"{glyph} {job.status}", style=colours.get(job_role(job), ""))
    if note and note.startswith("⚠"):
        return Text("⚠ ", style=colours.get("warning", "")) + text
    return text


def job_progress_text(progress: JobProgress, width: int = 14) -> str:
    """Like a batch's: a bar and rows done/total while it runs, its rows ok / failed /
    missing once it has ended."""
    job = progress.job
    if job.terminal:
        return counts_text(progress.ok, progress.failed, progress.missing, width)
    if job.status == "planning" or not job.total:
        return "planning…"
    done = progress.ok + progress.failed + progress.missing
    return bar_text(done, job.total, width)


def job_time_text(progress: JobProgress, now: float) -> str:
    job = progress.job
    if job.terminal:
        end = job.finished_at
        return f"took {duration(end - job.created_at)}" if end else "-"
    if progress.eta is not None:
        return f"eta {duration(progress.eta)}"
    return duration(now - job.created_at)


def job_cost_text(progress: JobProgress) -> str:
    return "-" if progress.cost is None else money(progress.cost)


def job_cells(
    progress: JobProgress,
    expanded: bool,
    colours: dict[str, str],
    now: float,
    note: str | None = None,
    progress_width: int = 14,
) -> dict[str, object]:
    """The Batches list's cells for a job row, by column key."""
    job = progress.job
    return {
        "status": job_status_text(job, colours, note),
        "name": Text(("▾ " if expanded else "▸ ") + job.label),
        "progress": job_progress_text(progress, progress_width),
        "created": ago(job.created_at, now),
        "time": job_time_text(progress, now),
        "id": Text(job.id),
        "cost": job_cost_text(progress),
        "endpoint": (job.endpoint or "-").removeprefix("/v1/"),
        "profile": Text(job.profile or "-"),
    }
