"""What a job costs and what it did, as the user reads it: a cancelled job counts the rows
its parts answered, each part batch carries its share of the estimate (the running line,
spend, the daily budget), and a job's cost is credited to the models of its rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import history_rows, run, spawn, wait_until
from job_helpers import job_batches_on_server, jobs_in_history, parts_running, write_input

FAST = ("--poll-interval", "0.02")


@pytest.fixture
def paced_sandbox(tmp_path: Path) -> Iterator[Any]:
    """Batches that take a second or two: a job's parts can be caught running."""
    from fr_tui.sandbox.server import SandboxServer

    with SandboxServer(state_dir=tmp_path / "paced", tick=0.25) as server:
        yield server


def mixed_input(tmp_path: Path, per_model: int) -> Path:
    """`per_model` rows of openai/gpt-4.1-nano, then as many of anthropic/claude-3.5-haiku."""
    rows = []
    for model in ("openai/gpt-4.1-nano", "anthropic/claude-3.5-haiku"):
        part = write_input(tmp_path / "one-model.jsonl", per_model, model)
        for line in part.read_text().splitlines():
            request = json.loads(line)
            request["custom_id"] = f"{model.partition('/')[0]}-{request['custom_id']}"
            rows.append(json.dumps(request))
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


@contextmanager
def driving(sandbox: Any, home: Path, path: Path, *args: str) -> Iterator[Any]:
    """`fr-tui run PATH ARGS` in the background (killed if the test leaves it running)."""
    driver = spawn("--base-url", sandbox.base_url, "run", str(path), *args, *FAST, home=home)
    try:
        yield driver
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_a_cancelled_job_counts_the_rows_its_parts_answered(
    paced_sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    base = ("--base-url", paced_sandbox.base_url)
    with driving(
        paced_sandbox, fr_home, path, "--max-rows", "10", "--max-in-flight", "1"
    ) as driver:
        # the first part answered, the second one running
        wait_until(
            lambda: history_rows(fr_home, "SELECT 1 FROM job_parts WHERE state='done'"),
            60,
            "a part done",
        )
        wait_until(lambda: parts_running(fr_home, 1), 60, "the next part running")
        job_id = jobs_in_history(fr_home)[0]["id"]
        cancel = run(*base, "job", "cancel", job_id, home=fr_home)
        assert cancel.returncode == 0, cancel.stderr
        driver.communicate(timeout=60)
    wait_until(
        lambda: all(
            b["status"] in ("cancelled", "completed")
            for b in job_batches_on_server(paced_sandbox.base_url, job_id)
        ),
        60,
        "the cancels to end",
    )
    status = json.loads(run("job", "status", job_id, "--json", home=fr_home).stdout)
    assert status["status"] == "cancelled"
    assert status["ok"] >= 10  # the first part's rows at least: they were answered
    assert status["ok"] + status["failed"] + status["missing"] == 30
    text = run("job", "status", job_id, home=fr_home).stdout
    assert f"✓ {status['ok']:,} ✗ {status['failed']:,} ? {status['missing']:,}" in text
    listed = json.loads(run("jobs", "--json", home=fr_home).stdout)["jobs"][0]
    assert (listed["ok"], listed["missing"]) == (status["ok"], status["missing"])
    # the merged result says the same
    results = run(*base, "job", "results", job_id, "--json", home=fr_home)
    summary = json.loads(results.stdout)
    assert (summary["ok"], summary["failed"], summary["missing"]) == (
        status["ok"],
        status["failed"],
        status["missing"],
    )
    after = json.loads(run("job", "status", job_id, "--json", home=fr_home).stdout)
    assert (after["ok"], after["failed"], after["missing"]) == (
        status["ok"],
        status["failed"],
        status["missing"],
    )


def test_running_parts_of_a_job_count_their_share_of_the_estimate(
    paced_sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 40, "openai/gpt-4.1-nano")
    with driving(
        paced_sandbox, fr_home, path, "--max-rows", "20", "--max-in-flight", "2"
    ) as driver:
        wait_until(lambda: parts_running(fr_home, 2), 60, "both parts running")
        spend = json.loads(run("spend", "--json", home=fr_home).stdout)
        job = jobs_in_history(fr_home)[0]
        high = Decimal(str(job["estimate_high"]))
        assert spend["in_flight"]["batches"] == 2
        running = Decimal(str(spend["in_flight"]["cost_high"]))
        # the two halves of the job's estimate (each part estimated on its own rows)
        assert high * Decimal("0.9") <= running <= high * Decimal("1.1"), (running, high)
        text = run("spend", home=fr_home).stdout
        assert "running: 2 batches, up to $0.00 more" not in text
        driver.communicate(timeout=60)
    assert driver.returncode == 0


def test_a_mixed_job_is_credited_to_the_models_of_its_rows(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = mixed_input(tmp_path, 20)
    done = run(
        *("--base-url", sandbox.base_url, "run", str(path), "--max-rows", "30", *FAST),
        home=fr_home,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spend = json.loads(run("spend", "--by", "model", "--json", home=fr_home).stdout)
    groups = {g["key"]: g for g in spend["groups"]}
    # part 1 holds 20 nano rows and 10 haiku rows: each model gets its own rows' cost
    assert set(groups) == {"openai/gpt-4.1-nano", "anthropic/claude-3.5-haiku"}
    assert groups["openai/gpt-4.1-nano"]["rows"] == 20
    assert groups["anthropic/claude-3.5-haiku"]["rows"] == 20
    assert groups["openai/gpt-4.1-nano"]["batches"] == 1
    assert groups["anthropic/claude-3.5-haiku"]["batches"] == 2
    total = sum(Decimal(str(g["cost"])) for g in groups.values())
    assert Decimal(str(spend["total"])) > 0
    assert abs(total - Decimal(str(spend["total"]))) < Decimal("1e-9")
