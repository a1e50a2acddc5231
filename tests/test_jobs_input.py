"""Issue 11: a job is planned from the content it was made from. The job keeps the
signature its input had when it was hashed, so planning need not hash it again; a file
that lost that signature is hashed again, and planned only when its content is the same."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from fault_helpers import KEY
from job_helpers import make_job, write_input

from fr_tui.core.api import BatchClient
from fr_tui.core.jobs import JobEngine
from fr_tui.core.jobs_store import FAILED, RUNNING, Job, JobStore
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.userfiles import FileSignature
from fr_tui.core.workflow import signed_sha256


def plan_step(sandbox: Any, store: HistoryStore, job: Job) -> Job:
    async def step() -> Job:
        async with BatchClient(sandbox.base_url, KEY, origin="sandbox") as client:
            engine = JobEngine(client, store, get_paths(), job.id, poll=False)
            return (await engine.advance()).job

    return asyncio.run(step())


def test_a_job_plans_without_hashing_its_input_again(
    sandbox: Any, tmp_path: Path, fr_home: Path, monkeypatch: Any
) -> None:
    path = write_input(tmp_path / "in.jsonl", 100, "openai/gpt-4.1-nano")
    store, job = make_job(path)
    hashed = []
    monkeypatch.setattr(
        "fr_tui.core.jobs_plan.signed_sha256", lambda p: hashed.append(p) or signed_sha256(p)
    )
    job = plan_step(sandbox, store, job)
    assert job.status == RUNNING and job.total == 100
    assert hashed == []
    assert len(JobStore(store).parts(job.id)) == 3


def test_a_touched_input_with_the_same_content_is_hashed_again_and_planned(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 100, "openai/gpt-4.1-nano")
    store, job = make_job(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # touched: another mtime
    job = plan_step(sandbox, store, job)
    assert job.status == RUNNING and job.total == 100
    assert job.input_signature == FileSignature.of(path)  # vouched for anew


def test_an_input_whose_content_changed_fails_the_job_and_writes_no_part(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 100, "openai/gpt-4.1-nano")
    store, job = make_job(path)
    write_input(path, 100, "openai/gpt-4.1-mini")  # the same rows, another model
    job = plan_step(sandbox, store, job)
    assert job.status == FAILED
    assert job.reason == f"{path} changed since the job was made"
    assert JobStore(store).parts(job.id) == []


def test_a_job_made_before_signatures_were_kept_is_hashed_then_planned(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 100, "openai/gpt-4.1-nano")
    store, job = make_job(path, signed=False)
    assert job.input_signature is None
    job = plan_step(sandbox, store, job)
    assert job.status == RUNNING and job.total == 100
    assert job.input_signature == FileSignature.of(path)


def test_a_plan_made_while_the_file_was_checked_is_the_one_the_job_runs(
    sandbox: Any, tmp_path: Path, fr_home: Path, monkeypatch: Any
) -> None:
    # `run` checks, estimates and plans a new file in one read; the job then runs the
    # parts it found in its folder and never plans again
    from fr_tui.core.config import Profile
    from fr_tui.core.jobs_plan import job_dir, plan_limits
    from fr_tui.core.jobs_rows import round_dir
    from fr_tui.core.prepare import UNLIMITED, CostBasis, prepare_submit

    path = write_input(tmp_path / "in.jsonl", 100, "openai/gpt-4.1-nano")
    store, job = make_job(path)
    basis = CostBasis("sandbox", Profile(name="sandbox"))
    alone = prepare_submit(path, basis, limits=UNLIMITED)
    folder = round_dir(job_dir(get_paths(), job.id), 1)
    planned = prepare_submit(
        path,
        basis,
        limits=UNLIMITED,
        plan_into=(folder, plan_limits(job.settings), job.input_signature),
    )
    assert planned.plan is not None and [p.rows for p in planned.plan.parts] == [40, 40, 20]
    assert planned.report.to_json() == alone.report.to_json()
    assert planned.estimate.cost_range_text() == alone.estimate.cost_range_text()

    def no_second_plan(*args: object, **kwargs: object) -> None:
        raise AssertionError("planned twice")

    monkeypatch.setattr("fr_tui.core.jobs_plan.plan_file", no_second_plan)
    job = plan_step(sandbox, store, job)
    assert job.status == RUNNING and job.total == 100


def test_a_cancelled_jobs_left_rows_say_it_was_cancelled() -> None:
    # not "still failing after 1 round": the rows never came back because of the cancel
    from fr_tui.core.jobs_store import JobSettings as Settings
    from fr_tui.core.jobs_view import left_text

    job = Job(
        id="job-x",
        origin="sandbox",
        input_path="/data/in.jsonl",
        input_sha256="a" * 64,
        settings=Settings(max_rows=10, max_bytes=1 << 20),
        status="cancelled",
        left={"missing": 44_064, "server_error": 3_103},
    )
    assert left_text(job) == (
        "44,064 missing (the job was cancelled), 3,103 server_error (not retried: cancelled)"
    )
