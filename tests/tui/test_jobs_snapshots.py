"""Snapshots of the jobs in the TUI at 80x24: the job rows in the Batches list (one
expanded), a running job's details, and a job's merged results."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App

from fr_tui.core.config import load_config
from fr_tui.core.jobs_store import Job, JobPart, JobSettings, JobStore, part_batch_name
from fr_tui.core.models import Batch
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.tui.screens.batches import BatchesScreen
from fr_tui.tui.screens.job_details import JobDetailsScreen
from fr_tui.tui.screens.job_results import JobResultsScreen

NOW = 1_750_000_000.0
DONE_JOB = "job-20250615-c0ffee"
RUNNING_JOB = "job-20250615-beef00"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


class Harness(App[None]):
    def __init__(self, screen_factory: Callable[[], Any]) -> None:
        super().__init__()
        self.paths = get_paths()
        self.store = HistoryStore(self.paths.history_db)
        self.config = load_config()
        self.client = None
        self.poller = None
        self._factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self._factory())


def batch(batch_id: str, status: str, created: float, total: int, done: int, **extra: Any) -> Batch:
    data: dict[str, Any] = {
        "id": batch_id,
        "status": status,
        "endpoint": "/v1/chat/completions",
        "created_at": int(created),
        "in_progress_at": int(created) + 30,
        "request_counts": {"total": total, "completed": done, "failed": extra.pop("failed", 0)},
        **extra,
    }
    if status == "completed":
        data["completed_at"] = int(created) + 1800
        data["usage"] = {"cost": 0.42}
    return Batch.parse(data)


def part_batch(store: HistoryStore, job: Job, part: JobPart, made: Batch) -> None:
    """A part's batch, as a job's create leaves it: the record and its intent."""
    store.record_created(made, origin="sandbox", profile="sandbox", name=part_batch_name(job, part))
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO intents (token, origin, state, batch_id, created_at, updated_at, "
            "job_id, job_part, job_round) VALUES (?, 'sandbox', 'done', ?, ?, ?, ?, ?, ?)",
            (
                f"t-{made.id}",
                made.id,
                made.created_at,
                made.created_at,
                job.id,
                part.part,
                part.round,
            ),
        )


def fill(store: HistoryStore, merged: Path | None = None) -> None:
    jobs = JobStore(store)
    for index in range(3):
        created = NOW - 9000 - index * 900
        store.record_created(
            batch(
                f"batch_{index:04d}",
                "completed",
                created,
                500,
                500,
                completed_at=int(created) + 600,
            ),
            origin="sandbox",
            profile="sandbox",
            name=f"nightly-{index}",
        )
    settings = JobSettings(max_rows=50_000, max_bytes=200 << 20)
    done = Job(
        id=DONE_JOB, origin="sandbox", input_path="/data/reviews-2025.jsonl", input_sha256="a" * 64,
        settings=settings, status="completed", profile="sandbox", round=2, total=120_000,
        ok=119_990, failed=8, missing=2, left={"invalid_request": 8, "missing": 2},
        output_path=str(merged) if merged else "/data/jobs/merged.jsonl", endpoint="/v1/chat/completions",
        created_at=NOW - 7200, finished_at=NOW - 3300,
    )  # fmt: skip
    jobs.add(done)
    done_parts = [
        JobPart(DONE_JOB, 1, i + 1, f"round-1/parts/part-{i + 1:05d}.jsonl", i * 40_000, 40_000, 9_000_000,
                state="done", attempts=1)
        for i in range(3)
    ] + [JobPart(DONE_JOB, 2, 1, "round-2/plan/parts/part-00001.jsonl", 0, 420, 94_000, state="done", attempts=1)]  # fmt: skip
    jobs.add_parts(done_parts)
    for part in done_parts:
        made = batch(
            f"batch_done_r{part.round}p{part.part}",
            "completed",
            NOW - 7100 + part.round * 1900,
            part.rows,
            part.rows,
        )
        jobs.set_part(part, batch_id=made.id)
        part_batch(store, done, part, made)
    running = Job(
        id=RUNNING_JOB, origin="sandbox", input_path="/data/eval-set.jsonl", input_sha256="b" * 64,
        settings=settings, status="running", profile="sandbox", round=1, total=200_000, ok=0,
        failed=0, missing=0, endpoint="/v1/chat/completions", created_at=NOW - 1200,
        estimate_high=None,
    )  # fmt: skip
    jobs.add(running)
    states = ["done", "done", "running", "waiting"]
    parts = [
        JobPart(RUNNING_JOB, 1, i + 1, f"round-1/parts/part-{i + 1:05d}.jsonl", i * 50_000, 50_000, 11_000_000,
                state=states[i], attempts=1 if i < 3 else 1,
                note="over the enqueued-token limit: waits for the running parts" if i == 3 else None)
        for i in range(4)
    ]  # fmt: skip
    jobs.add_parts(parts)
    for part in parts:
        if part.state == "done":
            made = batch(
                f"batch_run_p{part.part}", "completed", NOW - 1150, 50_000, 49_990, failed=10
            )
        elif part.state == "running":
            made = batch(f"batch_run_p{part.part}", "in_progress", NOW - 600, 50_000, 20_000)
        else:
            made = batch(f"batch_run_p{part.part}", "failed", NOW - 1100, 50_000, 0,
                         errors={"data": [{"code": "token_limit_exceeded", "message": "Enqueued token limit reached"}]})  # fmt: skip
        jobs.set_part(part, batch_id=made.id)
        part_batch(store, running, part, made)


def test_snapshot_job_rows_in_the_batches_list(snap_compare: Any, utc: None) -> None:
    fill(HistoryStore(get_paths().history_db))

    async def run_before(pilot: Any) -> None:
        await pilot.pause(0.1)
        screen = pilot.app.screen
        screen.select_batch(f"job:{DONE_JOB}")
        await pilot.press("space")
        await pilot.pause(0.05)

    app = Harness(lambda: BatchesScreen(clock=lambda: NOW))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_job_details(snap_compare: Any, utc: None) -> None:
    fill(HistoryStore(get_paths().history_db))
    app = Harness(lambda: JobDetailsScreen(RUNNING_JOB, clock=lambda: NOW))
    assert snap_compare(app, terminal_size=(80, 24))


def test_snapshot_job_results(snap_compare: Any, tmp_path: Path, utc: None) -> None:
    merged = tmp_path / "merged.jsonl"
    lines = []
    for i in range(12):
        cid = f"review-{i:03d}"
        if i in (4, 9):
            line = {"custom_id": cid, "outcome": "failed", "batch_id": "batch_done_r1p1", "round": 1,
                    "response": {"status_code": 400, "body": {"error": {"message": "Invalid 'messages': empty content", "code": "invalid_request"}}},
                    "error": None}  # fmt: skip
        elif i == 7:
            line = {"custom_id": cid, "outcome": "missing", "batch_id": "batch_done_r2p1", "round": 2, "response": None, "error": None}  # fmt: skip
        else:
            body = {"model": "openai/gpt-4.1-nano", "choices": [{"message": {"role": "assistant", "content": f"Review {i} is positive."}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 6, "cost": 0.0000034}}  # fmt: skip
            line = {"custom_id": cid, "outcome": "ok", "batch_id": "batch_done_r1p1", "round": 2 if i == 2 else 1,
                    "response": {"status_code": 200, "body": body}, "error": None}  # fmt: skip
        lines.append(json.dumps(line))
    merged.write_text("\n".join(lines) + "\n")
    fill(HistoryStore(get_paths().history_db), merged)

    async def run_before(pilot: Any) -> None:
        screen = pilot.app.screen
        for _ in range(200):
            if getattr(screen, "joined", None) is not None:
                break
            await pilot.pause(0.02)
        await pilot.press("j", "j")

    app = Harness(lambda: JobResultsScreen(DONE_JOB))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
