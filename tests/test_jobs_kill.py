"""Issue 11: `fr-tui run` killed with SIGKILL at any point of a job, then run again, ends
with the same merged file and exactly one batch per part and round on the server.

Each kill is timed on observable state (the history's rows, the job's folder, the
sandbox's held requests), never on a timer. The job has flaky rows, so it has a second
round: one batch per (part, round) is checked over both.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import history_rows, run, spawn, wait_until
from job_helpers import (
    job_batches_on_server,
    jobs_in_history,
    merged_lines,
    parts_in_history,
    slots_of,
    write_input,
)

FAST = ("--poll-interval", "0.02")


def job_status(home: Path) -> str | None:
    jobs = jobs_in_history(home)
    return jobs[0]["status"] if jobs else None


def planning_now(home: Path) -> bool:
    return any((home / "data" / "jobs").glob("*/.plan-tmp-round-1-*"))


def intent_prepared(home: Path) -> bool:
    return bool(history_rows(home, "SELECT 1 FROM intents WHERE state = 'prepared'"))


def part_running(home: Path) -> bool:
    return bool(history_rows(home, "SELECT 1 FROM job_parts WHERE state = 'running'"))


def claimed(sandbox: Any) -> bool:
    faults = sandbox.app.injector.faults
    return faults is not None and faults.count == 0


HOLD_UPLOAD = {"latency": 60, "path_prefix": "/v1/files", "methods": ["POST"], "count": 1}
HOLD_DOWNLOAD = {"latency": 60, "path_prefix": "/v1/files", "methods": ["GET"], "count": 1}
# a batch's GET: the first parts are all created in one step, before anything is polled, so
# while a poll is held no create is on its way (a kill there would leave a create the
# server may yet make, which is settled only after reconcile.SETTLE_SECONDS)
HOLD_POLL = {"latency": 60, "path_prefix": "/v1/batches/", "methods": ["GET"], "count": 1}

# point -> (rows, faults before the run, the state to kill at)
POINTS: dict[str, tuple[int, dict[str, Any], Callable[[Any, Path], bool]]] = {
    "planning": (60_000, {}, lambda sandbox, home: planning_now(home)),
    "intent_written": (1_200, HOLD_UPLOAD, lambda sandbox, home: intent_prepared(home)),
    "during_upload": (1_200, HOLD_UPLOAD, lambda sandbox, home: claimed(sandbox)),
    "create_sent_no_answer": (
        1_200,
        {"create_delay": 60, "count": 1, "path_prefix": "/v1/batches", "methods": ["POST"]},
        lambda sandbox, home: sandbox.app.injector.held_creates == 1,
    ),
    "polling": (1_200, HOLD_POLL, lambda sandbox, home: part_running(home) and claimed(sandbox)),
    "during_download": (1_200, HOLD_DOWNLOAD, lambda sandbox, home: claimed(sandbox)),
    "merging": (60_000, {}, lambda sandbox, home: job_status(home) == "merging"),
}


def run_args(sandbox: Any, path: Path, rows: int) -> list[str]:
    return ["--base-url", sandbox.base_url, "run", str(path), "--max-rows", str(rows // 3), *FAST]


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_anywhere_in_a_job_then_run_again(
    point: str, sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    rows, faults, until = POINTS[point]
    path = write_input(tmp_path / "in.jsonl", rows, "sandbox/flaky-20")
    sandbox.set_faults(faults)
    proc = spawn(*run_args(sandbox, path, rows), home=fr_home)
    try:
        wait_until(lambda: until(sandbox, fr_home) or proc.poll() is not None, 120, point)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sandbox.set_faults({})  # what the server held goes on now, its sender gone

    again = run(*run_args(sandbox, path, rows), "--json", home=fr_home, timeout=240)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["status"] == "completed" and result["ok"] == rows
    job_id = result["job_id"]
    assert len(jobs_in_history(fr_home)) == 1  # resumed, not started again
    lines = merged_lines(result["output_path"])
    assert [line["custom_id"] for line in lines] == [f"row-{i:05d}" for i in range(rows)]
    # exactly one batch per part and round on the server
    on_server = job_batches_on_server(sandbox.base_url, job_id)
    slots = slots_of(fr_home, job_id)
    assert len(on_server) == len(slots), (point, len(on_server), slots)
    tokens = [b["metadata"]["fr_tui_submit"] for b in on_server]
    made = history_rows(
        fr_home,
        "SELECT token, job_round, job_part FROM intents WHERE job_id = ? AND batch_id IS NOT NULL",
        (job_id,),
    )
    assert {(r["job_round"], r["job_part"]) for r in made if r["token"] in tokens} == slots
    assert max(p["round"] for p in parts_in_history(fr_home, job_id)) == 2
    # the merged file is a function of the answers: made again, it is the same bytes
    merged = Path(result["output_path"])
    before = merged.read_bytes()
    merged.unlink()
    remade = run(*run_args(sandbox, path, rows), home=fr_home, timeout=240)
    assert remade.returncode == 0, remade.stderr
    assert merged.read_bytes() == before
    assert len(job_batches_on_server(sandbox.base_url, job_id)) == len(slots)
