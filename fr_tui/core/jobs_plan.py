"""A job's plans: its input cut into the first round's parts, a retry round's rows cut
into parts, and a part the enqueued-token limit refused on its own cut in halves. Each
plan appears whole or not at all (core/plan.py), and its parts are added to history in
one transaction, so a process killed while planning plans again on the next step.

`run` plans a new job's input while it checks and estimates it (one read, not two):
into a staging folder `jobs/.new-<job_id>-<pid>/` that becomes the job's folder once the
job is in history. A process killed before leaves a staging folder nobody adopts (the
next one removes it); killed after, the job plans again from its input."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from fr_tui.core.jobs_rows import round_dir
from fr_tui.core.jobs_store import (
    PART_SPLIT,
    PART_UNRUNNABLE,
    RUNNING,
    Job,
    JobPart,
    JobSettings,
    JobStore,
)
from fr_tui.core.paths import Paths
from fr_tui.core.plan import (
    Plan,
    PlanError,
    PlanLimits,
    load_plan,
    plan_file,
    remove_stale_temps,
    split_part,
)
from fr_tui.core.userfiles import FileSignature, describe
from fr_tui.core.workflow import signed_sha256

_STAGING_PREFIX = ".new-"


def plan_limits(settings: JobSettings) -> PlanLimits:
    return PlanLimits(settings.max_rows, settings.max_bytes, settings.max_tokens)


def unused_token_limits(settings: JobSettings, models: dict[str, int]) -> list[str]:
    """The models a per-model enqueued-token limit names that no row uses (a typo there
    would leave the model it meant without a limit)."""
    limits = settings.max_tokens
    return sorted(set(limits) - set(models)) if isinstance(limits, dict) else []


def job_dir(paths: Paths, job_id: str) -> Path:
    return paths.jobs_dir / job_id


def staging_dir(paths: Paths, job_id: str) -> Path:
    """Where a job about to be made is planned (staging folders of processes that died
    are removed first)."""
    paths.jobs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(paths.jobs_dir, _STAGING_PREFIX)
    return paths.jobs_dir / f"{_STAGING_PREFIX}{job_id}-{os.getpid()}"


def adopt_staging(staging: Path, paths: Paths, job_id: str) -> None:
    """The job is in history: its staged plan becomes its folder. If that fails, the
    staging folder goes and the job plans again from its input."""
    try:
        os.rename(staging, job_dir(paths, job_id))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def parts_of_plan(job: Job, round_: int, plan: Plan, folder: Path, first: int = 1) -> list[JobPart]:
    """The parts of a plan as a round's parts (files relative to the job's folder)."""
    parts = []
    start = 0
    for number, part in enumerate(plan.parts, first):
        parts.append(
            JobPart(
                job.id,
                round_,
                number,
                str(plan.part_path(part).relative_to(folder)),
                start,
                part.rows,
                part.bytes,
                sum(part.tokens.values()),
            )
        )
        start += part.rows
    return parts


async def plan_first_round(jobs: JobStore, job: Job, folder: Path) -> str | None:
    """Plan the job's input into its first round's parts (a whole plan left by a killed
    process is used as it is) and move the job to running; or say why it cannot be."""
    plan_folder = round_dir(folder, 1)
    plan = load_plan(plan_folder)
    if plan is None or plan.input_signature != job.input_signature:
        try:
            expect = await _vouched_signature(jobs, job)
            if expect is None:
                return f"{job.input_path} changed since the job was made"
            plan = await asyncio.to_thread(
                plan_file, job.input_path, plan_folder, plan_limits(job.settings), expect=expect
            )
        except PlanError as exc:
            return str(exc)
        except OSError as exc:
            return f"the input cannot be read: {describe(exc)}"
    parts = parts_of_plan(job, 1, plan, folder)
    total = int(plan.totals["rows"])
    # one transaction: the parts appear with the job's move to running
    jobs.add_parts(parts, status=RUNNING, round=1, total=total, ok=0, failed=0, missing=0)
    return None


async def _vouched_signature(jobs: JobStore, job: Job) -> FileSignature | None:
    """The input's signature while its content is still the job's (None when it is not).
    The job keeps the signature the file had when it was hashed; a file that no longer
    has it (touched, copied back, or a job made before signatures were kept) is hashed
    again and, when its content is the same, vouched for anew."""
    known = job.input_signature
    if known is not None and FileSignature.of(job.input_path) == known:
        return known
    sha, signature = await asyncio.to_thread(signed_sha256, Path(job.input_path))
    if sha != job.input_sha256:
        return None
    jobs.update(job.id, input_signature=signature)
    return signature


async def plan_retry_round(job: Job, folder: Path, round_: int, rows_file: Path) -> list[JobPart]:
    """The parts of a retry round made from the rows written to `rows_file`."""
    plan = await asyncio.to_thread(
        plan_file, rows_file, round_dir(folder, round_) / "plan", plan_limits(job.settings)
    )
    return parts_of_plan(job, round_, plan, folder)


async def split_in_halves(jobs: JobStore, job: Job, part: JobPart, folder: Path) -> None:
    """A part the token limit refused while it ran alone: two halves, each a part of its
    own (one row cannot be split: it can never run)."""
    if part.rows < 2:
        jobs.set_part(
            part,
            state=PART_UNRUNNABLE,
            note="this row alone is over the provider's enqueued-token limit",
        )
        return
    split_folder = round_dir(folder, job.round) / "splits" / f"part-{part.part:05d}"
    limits = PlanLimits((part.rows + 1) // 2, job.settings.max_bytes, None)
    plan = await asyncio.to_thread(split_part, folder / part.file, split_folder, limits)
    first = max(p.part for p in jobs.parts(job.id, job.round)) + 1
    halves = parts_of_plan(job, job.round, plan, folder, first)
    for half in halves:
        half.first_row += part.first_row
        half.parent_part = part.part
    names = " and ".join(str(h.part) for h in halves)
    with jobs.store.transaction(durable=True) as conn:
        jobs.add_parts(halves, conn=conn)
        jobs.set_part(part, conn=conn, state=PART_SPLIT, note=f"split into parts {names}")
