"""Issue 11: a job under the provider's limits and the user's hand: the enqueued-token
limit (wait, then split), cancel (also while another process drives), two processes on
one job, and a create the server cannot account for."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from fault_helpers import TinyBatchServer, run, spawn, wait_until
from job_helpers import (
    job_batches_on_server,
    jobs_in_history,
    merged_lines,
    parts_in_history,
    parts_running,
    slots_of,
    write_input,
)

FAST = ("--poll-interval", "0.02")


def part_tokens(path: Path, first: int, count: int) -> int:
    """The prompt tokens of `count` rows from `first` as the sandbox counts them."""
    from fr_tui.core.tokens import estimate_prompt_tokens

    lines = path.read_text().splitlines()[first : first + count]
    return sum(
        estimate_prompt_tokens(json.loads(line)["body"], "/v1/chat/completions") for line in lines
    )


def limited_sandbox(tmp_path: Path, limit: int, tick: float = 0.01) -> Any:
    from fr_tui.sandbox.server import SandboxServer

    server = SandboxServer(state_dir=tmp_path / "limited", tick=tick, max_enqueued_tokens=limit)
    server.start()
    return server


def token_refusals(server: Any) -> list[dict[str, Any]]:
    return [
        b
        for b in server.app.store.batches.values()
        if any(e["code"] == "token_limit_exceeded" for e in (b["errors"] or {}).get("data", []))
    ]


class SteppedClock:
    """The sandbox's clock, held still until `go()`, then one tick per 20 ms: the first
    parts are all created before any of them is validated, however slow the machine."""

    def __init__(self, tick: float) -> None:
        self.now = time.time()
        self.tick = tick
        self.moving = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def __call__(self) -> float:
        return self.now

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            if self.moving.is_set():
                self.now += self.tick


def test_parts_over_the_token_limit_wait_for_the_running_ones(
    tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 300, "openai/gpt-4.1-nano")
    biggest = max(part_tokens(path, start, 100) for start in (0, 100, 200))
    server = limited_sandbox(tmp_path, biggest * 3 // 2)  # one part fits, two do not
    clock = SteppedClock(server.app.store.tick)
    server.app.store.clock = clock
    args = ["--base-url", server.base_url, "run", str(path), "--max-rows", "100", "--json"]
    proc = spawn(*args, *FAST, home=fr_home)
    try:
        wait_until(lambda: len(server.app.store.batches) == 3, 60, "three parts created")
        clock.moving.set()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        result = json.loads(out)
        assert (result["ok"], result["rounds"]) == (300, 1)  # waiting is not a round
        refused = token_refusals(server)
        assert len(refused) == 2  # the two that went with the first, once each
        parts = parts_in_history(fr_home, result["job_id"])
        assert sorted(p["attempts"] for p in parts) == [1, 2, 2]
        assert all(p["state"] == "done" for p in parts)
        assert len(job_batches_on_server(server.base_url, result["job_id"])) == 5
    finally:
        clock.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()


def test_a_part_over_the_limit_on_its_own_is_split_in_halves(tmp_path: Path, fr_home: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", 40, "openai/gpt-4.1-nano")
    whole = part_tokens(path, 0, 40)
    server = limited_sandbox(tmp_path, whole * 3 // 4)  # the whole part cannot run; a half can
    try:
        done = run(
            "--base-url", server.base_url, "run", str(path), "--json", *FAST,
            home=fr_home, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["ok"] == 40
        parts = parts_in_history(fr_home, result["job_id"])
        split = [p for p in parts if p["state"] == "split"]
        halves = [p for p in parts if p["parent_part"] == 1]
        assert len(split) == 1 and [h["rows"] for h in halves] == [20, 20]
        assert [h["first_row"] for h in halves] == [0, 20]
        lines = merged_lines(result["output_path"])
        assert [line["custom_id"] for line in lines] == [f"row-{i:05d}" for i in range(40)]
        assert {line["outcome"] for line in lines} == {"ok"}
    finally:
        server.stop()


def test_a_row_over_the_limit_alone_is_left_with_the_reason(tmp_path: Path, fr_home: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", 2, "openai/gpt-4.1-nano")
    server = limited_sandbox(tmp_path, 3)  # less than any one row
    try:
        done = run(
            "--base-url", server.base_url, "run", str(path), *FAST, home=fr_home, timeout=120
        )
        assert done.returncode == 4, done.stderr
        assert "2 token_limit_exceeded (cannot run)" in done.stdout
        job = jobs_in_history(fr_home)[0]
        lines = merged_lines(job["output_path"])
        assert [line["error"]["code"] for line in lines] == ["token_limit_exceeded"] * 2
        assert {line["outcome"] for line in lines} == {"failed"}
    finally:
        server.stop()


def test_cancel_while_another_process_drives_the_job(
    slow_sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 60, "openai/gpt-4.1-nano")
    args = ["--base-url", slow_sandbox.base_url, "run", str(path), "--max-rows", "10"]
    driver = spawn(*args, "--max-in-flight", "2", *FAST, home=fr_home)
    try:
        wait_until(lambda: parts_running(fr_home, 2), 60, "two running parts")
        job_id = jobs_in_history(fr_home)[0]["id"]
        cancel = run("--base-url", slow_sandbox.base_url, "job", "cancel", job_id, home=fr_home)
        assert cancel.returncode == 0, cancel.stderr
        assert "the process driving it stops it" in cancel.stdout
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 1, err
    assert "cancelled" in out
    made = job_batches_on_server(slow_sandbox.base_url, job_id)
    assert len(made) == 2  # nothing was created after the cancel
    assert {b["status"] for b in made} <= {"cancelling", "cancelled"}
    # its parts stopped with their batches: `job status` does not call them running
    said = run("job", "status", job_id, home=fr_home).stdout.splitlines()
    parts = [line.split() for line in said if line.strip().startswith("round ")]
    stopped = [p for p in parts if p[7] != "-"]  # round N part N ROWS rows STATE BATCH ...
    assert len(stopped) == 2 and all(p[6] == p[8] != "running" for p in stopped), said
    details = json.loads(run("job", "status", job_id, "--json", home=fr_home).stdout)
    with_batch = [d for d in details["part_details"] if d["batch_id"]]
    assert [d["state"] for d in with_batch] == [d["batch_status"] for d in with_batch]
    assert {d["state"] for d in with_batch} <= {"cancelling", "cancelled"}
    again = run("--base-url", slow_sandbox.base_url, "job", "cancel", job_id, home=fr_home)
    assert again.returncode == 0 and "cancelled already" in again.stdout
    rerun = run(*args, *FAST, home=fr_home)
    assert rerun.returncode == 1 and "ran as" in rerun.stderr  # a cancelled job stays so
    # its results: what the cancelled batches answered, merged; the rest missing
    wait_until(
        lambda: (
            {b["status"] for b in job_batches_on_server(slow_sandbox.base_url, job_id)}
            == {"cancelled"}
        ),
        60,
        "the cancels to end",
    )
    results = run(
        "--base-url", slow_sandbox.base_url, "job", "results", job_id, "--json", home=fr_home
    )
    assert results.returncode == 1, results.stderr  # the job was cancelled
    summary = json.loads(results.stdout)
    assert summary["total"] == 60 and summary["missing"] >= 40
    lines = merged_lines(summary["output_path"])
    assert [line["custom_id"] for line in lines] == [f"row-{i:05d}" for i in range(60)]
    assert {line["outcome"] for line in lines[20:]} == {"missing"}


def test_a_second_run_watches_and_takes_over_when_the_first_dies(
    slow_sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    args = ["--base-url", slow_sandbox.base_url, "run", str(path), "--max-rows", "10", *FAST]
    first = spawn(*args, home=fr_home)
    second = None
    try:
        wait_until(lambda: parts_running(fr_home, 3), 60, "the three parts running")
        second = spawn(*args, "--json", home=fr_home)
        watching = second.stderr.readline() if second.stderr else ""
        while "resuming" in watching:
            watching = second.stderr.readline() if second.stderr else ""
        assert "driven by another fr-tui process; watching it" in watching
        job_id = jobs_in_history(fr_home)[0]["id"]
        made_before = len(job_batches_on_server(slow_sandbox.base_url, job_id))
        assert made_before == 3  # the watcher made none
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert "driving it here" in err
        assert json.loads(out)["ok"] == 30
        assert len(job_batches_on_server(slow_sandbox.base_url, job_id)) == len(
            slots_of(fr_home, job_id)
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_create_the_server_cannot_account_for_blocks_the_job(
    tmp_path: Path, fr_home: Path
) -> None:
    """The create was made but its answer lost, and the server cannot list batches: the
    job stops (exit 3, saying why) and never creates that part again on its own."""
    path = write_input(tmp_path / "in.jsonl", 5, "openai/gpt-4.1-nano")
    with TinyBatchServer() as server:
        creates = []

        def lost_answer(request: Any) -> tuple[int, dict[str, str], bytes]:
            creates.append(server.default("POST", "/v1/batches", request.body))
            return 500, {"Content-Type": "application/json"}, b'{"error": {"message": "oops"}}'

        server.routes[("POST", "/v1/batches")] = lost_answer
        server.routes[("GET", "/v1/batches")] = lambda request: (404, {}, b"{}")
        args = ["--base-url", server.base_url, "run", str(path), *FAST]
        first = run(*args, home=fr_home)
        assert first.returncode == 3, first.stderr
        assert "cannot list batches" in first.stdout + first.stderr
        again = run(*args, home=fr_home)
        assert again.returncode == 3
        assert len(creates) == 1  # never a second create for the same part
        assert jobs_in_history(fr_home)[0]["status"] == "blocked"


def test_flaky_rows_fail_once_and_the_sandbox_remembers_across_restarts(
    tmp_path: Path, fr_home: Path
) -> None:
    from fr_tui.sandbox.server import SandboxServer

    path = write_input(tmp_path / "in.jsonl", 200, "sandbox/flaky-30")
    state = tmp_path / "state"
    counts = []
    for _ in range(2):
        with SandboxServer(state_dir=state, tick=0.01) as server:
            done = run(
                "--base-url", server.base_url, "submit", str(path), "--wait", "--force",
                "--json", "--poll-interval", "0.02", home=fr_home,
            )  # fmt: skip
            counts.append(json.loads(done.stdout)["request_counts"])
    assert 30 < counts[0]["failed"] < 90  # about 30% of the rows, the first time
    assert counts[1] == {"total": 200, "completed": 200, "failed": 0}  # then never again


def test_one_limit_holds_a_parts_models_together_as_the_server_counts_them(
    tmp_path: Path, fr_home: Path
) -> None:
    # the tour's file: two models in a part, each under the limit, together over it; the
    # sandbox (like a provider that counts them together) refused it and the job split it
    nano = write_input(tmp_path / "nano.jsonl", 40, "openai/gpt-4.1-nano")
    mini = write_input(tmp_path / "mini.jsonl", 40, "openai/gpt-4o-mini")
    path = tmp_path / "two.jsonl"
    lines = [json.loads(line) for line in nano.read_text().splitlines()]
    for i, line in enumerate(json.loads(line) for line in mini.read_text().splitlines()):
        line["custom_id"] = f"mini-{i:05d}"
        lines.append(line)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    limit = part_tokens(path, 0, 30) + 1  # 30 rows' worth, whatever their model
    server = limited_sandbox(tmp_path, limit)
    try:
        args = ["--base-url", server.base_url, "run", str(path), "--json"]
        done = run(*args, "--max-enqueued-tokens", str(limit), "--max-in-flight", "1", *FAST,
                   home=fr_home, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] == 80
        assert token_refusals(server) == []  # no part was refused, none was split
        parts = parts_in_history(fr_home, json.loads(done.stdout)["job_id"])
        assert all(p["tokens"] <= limit for p in parts) and len(parts) >= 3
    finally:
        server.stop()
