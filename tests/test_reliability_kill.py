"""Issue 9, case 1: `fr-tui submit` killed at any point never loses a batch and never
makes a second one.

Each test runs the real command against the sandbox, kills it at one point (found by
watching state: the history's intents, the sandbox's held requests, never a timer),
lets the sandbox finish whatever it received, then runs `fr-tui list` and a second
`submit` of the same file. Every batch the server made must be in history exactly once,
and the rerun must not make another.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_helpers import (
    KEY,
    SAMPLES,
    history_rows,
    intent_states,
    run,
    spawn,
    wait_until,
)


def server_batches(sandbox: Any) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{sandbox.base_url}/v1/batches",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    return list(answer.json()["data"])


def faults_claimed(sandbox: Any) -> bool:
    """The one request the current fault was for has reached the server."""
    return bool(sandbox.app.injector.faults is not None and sandbox.app.injector.faults.count == 0)


def in_history(home: Path, batch_id: str) -> int:
    return len(history_rows(home, "SELECT id FROM batches WHERE id = ?", (batch_id,)))


# (name, faults to set before the submit, what to wait for before the kill)
POINTS: dict[str, tuple[dict[str, Any], str]] = {
    # The intent is written; the upload is held by the server (nothing received yet).
    "before_upload": ({"latency": 60, "path_prefix": "/v1/files", "count": 1}, "prepared"),
    # The upload request is at the server, its body arriving.
    "during_upload": ({"latency": 60, "path_prefix": "/v1/files", "count": 1}, "claimed"),
    # The batch exists; its answer is held.
    "create_sent_no_answer": ({"create_delay": 60}, "held"),
    # The answer arrived (the submit is waiting on the batch with --wait).
    "after_answer": ({}, "recorded"),
}


def kill_at(sandbox: Any, home: Path, path: Path, point: str, sig: int = signal.SIGKILL) -> None:
    faults, until = POINTS[point]
    sandbox.set_faults(faults)
    extra = ["--wait", "--metadata", "sandbox_fault=hang_validating"] if until == "recorded" else []
    proc = spawn("--base-url", sandbox.base_url, "submit", str(path), *extra, home=home)
    try:
        if until == "prepared":
            wait_until(lambda: "prepared" in intent_states(home), what="the intent")
        elif until == "claimed":
            wait_until(lambda: faults_claimed(sandbox), what="the request at the server")
        elif until == "held":
            wait_until(lambda: sandbox.app.injector.held_creates == 1, what="the held answer")
        else:
            wait_until(lambda: history_rows(home, "SELECT id FROM batches"), what="the record")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sandbox.set_faults({})  # what the server held goes on now, its sender gone


def check_nothing_lost_or_doubled(sandbox: Any, home: Path, path: Path) -> dict[str, Any]:
    listed = run("--base-url", sandbox.base_url, "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    made = server_batches(sandbox)
    for batch in made:
        assert in_history(home, batch["id"]) == 1, (batch["id"], listed.stdout)
    assert json.loads(listed.stdout)["outcome_unknown"] == []
    rerun = run("--base-url", sandbox.base_url, "submit", str(path), "--json", home=home)
    after = server_batches(sandbox)
    assert len(after) == 1, f"{len(after)} batches for one file: {rerun.stderr}"
    if made:
        assert rerun.returncode == 1 and made[0]["id"] in rerun.stderr  # refused, named
    else:
        assert rerun.returncode == 0, rerun.stderr  # nothing was made: submitting is right
    for batch in after:
        assert in_history(home, batch["id"]) == 1
    return json.loads(listed.stdout)


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_anywhere_in_a_submit(
    point: str, sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    kill_at(sandbox, fr_home, path, point)
    listed = check_nothing_lost_or_doubled(sandbox, fr_home, path)
    if point == "create_sent_no_answer":
        recovered = [r for r in listed["reconciled"] if r["state"] == "resolved"]
        assert len(recovered) == 1 and recovered[0]["batch_id"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_between_create_and_answer(
    sig: int, sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    kill_at(sandbox, fr_home, path, "create_sent_no_answer", sig)
    check_nothing_lost_or_doubled(sandbox, fr_home, path)


def test_list_says_what_it_recovered(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    kill_at(sandbox, fr_home, path, "create_sent_no_answer")
    listed = run("--base-url", sandbox.base_url, "list", home=fr_home)
    batch_id = server_batches(sandbox)[0]["id"]
    assert f"recovered {batch_id} from an interrupted submit of {path}" in listed.stderr
    assert batch_id in listed.stdout
    again = run("--base-url", sandbox.base_url, "list", home=fr_home)
    assert "recovered" not in again.stderr  # said once


def test_a_batch_recovered_after_a_kill_keeps_its_estimate(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    """The estimate goes with the intent, before the upload: a submit killed while its
    create was answered still leaves a batch that counts for what it may cost (spend's
    running figure, and with it every later daily budget)."""
    path = tmp_path / "input.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    catalog = {"FR_TUI_CATALOG": "auto"}  # the same prices for the submit and the estimate
    estimated = run("--base-url", sandbox.base_url, "estimate", str(path), "--json",
                    home=fr_home, **catalog)  # fmt: skip
    high = json.loads(estimated.stdout)["cost_high"]
    assert high
    sandbox.set_faults({"create_delay": 60})
    proc = spawn(
        *("--base-url", sandbox.base_url, "submit", str(path)),
        *("--metadata", "sandbox_fault=hang_validating"),  # it stays running
        home=fr_home,
        **catalog,
    )
    try:
        wait_until(lambda: sandbox.app.injector.held_creates == 1, what="the held answer")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sandbox.set_faults({})
    listed = run("--base-url", sandbox.base_url, "list", home=fr_home)
    assert "recovered" in listed.stderr, listed.stderr
    spend = run("--base-url", sandbox.base_url, "spend", "--json", home=fr_home)
    assert json.loads(spend.stdout)["in_flight"] == {"batches": 1, "cost_high": high}
