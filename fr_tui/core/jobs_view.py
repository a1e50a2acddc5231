"""How a job reads: its progress (parts done, rows ok / failed / missing, round, in
flight, ETA, cost so far) from history, the `--json` document of `run` and `job status`,
and the sentence that says why rows were left. Shared by the CLI and the TUI; reads only.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fr_tui.core.config import SANDBOX_ORIGIN, Config, profile_for_origin
from fr_tui.core.jobs_store import (
    CANCELLED,
    PART_DONE,
    PART_RUNNING,
    PART_SPLIT,
    PART_UNRUNNABLE,
    PART_WAITING,
    TERMINAL,
    Job,
    JobPart,
    JobSettings,
    JobStore,
)
from fr_tui.core.records import BatchRecord
from fr_tui.core.retry_kinds import RETRY_KINDS
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import json_money, money, parse_money, plural


@dataclass
class PartView:
    part: JobPart
    batch: BatchRecord | None

    @property
    def label(self) -> str:
        return f"part {self.part.part}" + (
            f" (half of {self.part.parent_part})" if self.part.parent_part else ""
        )


@dataclass
class JobProgress:
    job: Job
    parts: list[PartView]  # the current round's parts (split ones left out)
    all_batches: list[str] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    missing: int = 0
    in_flight: int = 0
    waiting: int = 0
    parts_done: int = 0
    cost: Decimal | None = None
    eta: float | None = None  # seconds, for the current round

    @property
    def parts_total(self) -> int:
        return len(self.parts)


def _batch_counts(part: JobPart, batch: BatchRecord | None) -> tuple[int, int, int]:
    """(ok, failed, missing) rows of a part, from its batch's request_counts; a part whose
    batch failed as a whole (or that cannot run) has every row failed."""
    if part.state == PART_UNRUNNABLE:
        return 0, part.rows, 0
    if batch is None or part.state not in (PART_DONE, PART_RUNNING):
        return 0, 0, 0
    if batch.status == "failed" and not batch.request_completed:
        return (0, part.rows, 0) if part.state == PART_DONE else (0, 0, 0)
    ok = batch.request_completed or 0
    failed = batch.request_failed or 0
    missing = 0
    if part.state == PART_DONE:
        missing = max(0, part.rows - ok - failed)
    return ok, failed, missing


def job_progress(store: HistoryStore, job: Job, *, now: float | None = None) -> JobProgress:
    jobs = JobStore(store)
    now = time.time() if now is None else now
    parts = [p for p in jobs.parts(job.id, job.round) if p.state != PART_SPLIT]
    records = jobs.batch_records(job)
    views = [PartView(p, records.get(p.batch_id) if p.batch_id else None) for p in parts]
    progress = JobProgress(job, views, jobs.batch_ids(job.id))
    # what ended batches cost: a running one's figure is not its cost yet (a server may
    # say 0 until it ends, which read as "$0.00 so far" beside thousands of rows ok)
    amounts = [parse_money(r.cost) for r in records.values() if r.cost is not None and r.terminal]
    progress.cost = sum((a for a in amounts if a is not None), Decimal(0)) if amounts else None
    if job.status in TERMINAL and job.output_path:
        # merged: the merged file's counts, kept with the job
        progress.ok, progress.failed, progress.missing = (
            job.ok or 0,
            job.failed or 0,
            job.missing or 0,
        )
        progress.parts_done = sum(1 for v in views if v.part.state in (PART_DONE, PART_UNRUNNABLE))
        return progress
    # rows settled in earlier rounds, plus what this round's batches say so far (a job
    # that ended without its merge, cancelled or failed, counts what its parts answered)
    ok, failed, missing = job.ok or 0, job.failed or 0, job.missing or 0
    done_rows = 0
    started: list[float] = []
    for view in views:
        a, b, c = _batch_counts(view.part, view.batch)
        ok, failed, missing = ok + a, failed + b, missing + c
        done_rows += a + b + c
        state = view.part.state
        if state in (PART_DONE, PART_UNRUNNABLE):
            progress.parts_done += 1
        elif state == PART_RUNNING:
            progress.in_flight += 1
        elif state == PART_WAITING:
            progress.waiting += 1
        if view.batch is not None and view.batch.created_at:
            started.append(float(view.batch.created_at))
        if state == PART_RUNNING and view.batch is not None and not view.batch.terminal:
            done_rows -= c  # running: missing rows are not known yet
    if job.status in TERMINAL:  # whatever no batch answered is missing for good
        progress.ok, progress.failed = ok, failed
        progress.missing = max(0, (job.total or 0) - ok - failed)
        progress.in_flight = progress.waiting = 0
        return progress
    progress.ok, progress.failed, progress.missing = ok, failed, missing
    round_rows = sum(v.part.rows for v in views)
    if started and 0 < done_rows < round_rows:
        elapsed = max(1.0, now - min(started))
        progress.eta = (round_rows - done_rows) / (done_rows / elapsed)
    return progress


def left_text(job: Job) -> str | None:
    """Why rows were left without an ok answer: "3 server_error (still failing after 3
    rounds), 12 invalid_request (not retried)"."""
    if not job.left:
        return None
    parts = []
    for kind, count in sorted(job.left.items(), key=lambda kv: (-kv[1], kv[0])):
        if job.status == CANCELLED:
            why = "the job was cancelled" if kind == "missing" else "not retried: cancelled"
        elif kind in job.settings.retry_kinds:
            why = f"still failing after {plural(job.round, 'round')}"
        elif kind in RETRY_KINDS:
            why = "not retried"
        else:
            why = "cannot run"
        parts.append(f"{count:,} {kind} ({why})")
    return ", ".join(parts)


def part_state(job: Job, part: JobPart, batch: BatchRecord | None) -> str:
    """A part's state as it stands: a cancelled job's part that was running when the job
    stopped reads as its batch's state (cancelling, cancelled, completed...) until its last
    answers are merged (`job results`, or the TUI, settle it to done); it is not running."""
    if job.status == CANCELLED and part.state == PART_RUNNING and batch is not None:
        return batch.status if batch.terminal or batch.status == "cancelling" else part.state
    return part.state


def part_details(store: HistoryStore, job: Job) -> list[dict[str, Any]]:
    """Each part of each round: its rows, state, batch and what its batch says."""
    jobs = JobStore(store)
    records = jobs.batch_records(job)
    details = []
    for part in jobs.parts(job.id):
        record = records.get(part.batch_id or "")
        details.append(
            {
                "round": part.round,
                "part": part.part,
                "rows": part.rows,
                "state": part_state(job, part, record),
                "batch_id": part.batch_id,
                "batch_status": record.status if record else None,
                "note": part.note,
            }
        )
    return details


def command_for(config: Config, job: Job, command: str, *, explicit: bool = False) -> str:
    """`fr-tui COMMAND` as it must be typed to reach `job`'s server: `fr-tui --profile slow
    COMMAND` (`--sandbox` for the embedded sandbox's; `explicit=False`: no option for the
    profile a plain `fr-tui` uses)."""
    if job.origin == SANDBOX_ORIGIN:
        option = "--sandbox "
    else:
        profile = profile_for_origin(config, job.origin, job.profile)
        if profile is None:
            option = f"--base-url {shlex.quote(job.origin)} "
        elif profile.name == config.active_profile and not explicit:
            option = ""
        else:
            option = f"--profile {shlex.quote(profile.name)} "
    return f"fr-tui {option}{command}"


def resume_command(config: Config, job: Job) -> str:
    """What drives `job` again from a shell (a run on another server would start another
    job): `fr-tui --profile slow run FILE`."""
    return command_for(config, job, f"run {shlex.quote(job.input_path)}")


def job_json(store: HistoryStore, job: Job, output_path: str | None = None) -> dict[str, Any]:
    """The document `run --json` and `job status --json` print."""
    progress = job_progress(store, job)
    first_round = JobStore(store).parts(job.id, 1)
    return {
        "job_id": job.id,
        "status": job.status,
        "profile": job.profile,
        "origin": job.origin,
        "parts": sum(1 for p in first_round if p.state != PART_SPLIT),
        "rounds": job.round,
        "batches": progress.all_batches,
        "total": job.total,
        "ok": progress.ok,
        "failed": progress.failed,
        "missing": progress.missing,
        "output_path": output_path or job.output_path,
        "name": job.label,
        "reason": job.reason,
        "input_path": job.input_path,
        "left": dict(job.left),
        "in_flight": progress.in_flight,
        "waiting_on_token_limit": progress.waiting,
        "cost": json_money(progress.cost),
        "estimate_high": json_money(job.estimate_high),
        "created_at": int(job.created_at),
        "finished_at": int(job.finished_at) if job.finished_at else None,
    }


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "eta -"
    seconds = int(seconds)
    if seconds < 60:
        return f"eta {seconds}s"
    if seconds < 3600:
        return f"eta {seconds // 60}m{seconds % 60:02d}s"
    return f"eta {seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def progress_line(progress: JobProgress) -> str:
    """One line: `job-… running · round 2 · parts 3/5 · ✓ 11,640 ✗ 360 ? 0 · 2 in flight
    · eta 12s · $0.04` (an ended job: its rounds, rows and cost)."""
    job = progress.job
    counts = f"✓ {progress.ok:,} ✗ {progress.failed:,} ? {progress.missing:,}"
    bits = [f"{job.id} {job.status}"]
    if job.status in TERMINAL:
        bits += [plural(job.round, "round"), counts]
    else:
        bits += [
            f"round {job.round}",
            f"parts {progress.parts_done}/{progress.parts_total}",
            counts,
            f"{progress.in_flight} in flight",
        ]
        if progress.waiting:
            bits.append(f"{progress.waiting} waiting on the token limit")
        bits.append(eta_text(progress.eta))
    if progress.cost is not None:
        bits.append(money(progress.cost))
    return " · ".join(bits)


_FLAGS = {  # a job's settings, by the `run` flag that gives each
    "max_rows": "--max-rows",
    "max_bytes": "--max-bytes",
    "max_tokens": "--max-enqueued-tokens",
    "max_in_flight": "--max-in-flight",
    "rounds": "--rounds",
    "retry_kinds": "--retry-kinds",
}


def kept_settings(job: Job, asked: JobSettings) -> list[str]:
    """A job goes on with the settings it was made with: those of them that differ from
    the ones asked for now, as the flags that would give them (`--rounds 3`)."""
    return [
        f"{flag} {_setting_text(getattr(job.settings, name))}"
        for name, flag in _FLAGS.items()
        if getattr(job.settings, name) != getattr(asked, name)
    ]


def _setting_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{model}={n}" for model, n in value.items())
    return str(value)


__all__ = [
    "JobProgress",
    "command_for",
    "PartView",
    "eta_text",
    "job_json",
    "job_progress",
    "kept_settings",
    "left_text",
    "part_details",
    "part_state",
    "progress_line",
    "resume_command",
]
