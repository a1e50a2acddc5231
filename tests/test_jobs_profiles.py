"""A job and the profile it belongs to: `run` refuses a profile it cannot talk to before it
records anything; a job with nothing on the server cancels without a client (one with
batches names the profile its cancel needs); a hint to resume a job names its profile;
`jobs` says whose each job is. Against sandboxes over real HTTP."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from fault_helpers import run, spawn, wait_until
from job_helpers import (
    job_batches_on_server,
    jobs_in_history,
    make_job,
    parts_running,
    write_input,
)
from test_cost_cli import write_config

FAST = ("--poll-interval", "0.02")
NO_KEY = {"FASTROUTER_API_KEY": ""}  # the default profile has no key


def slow_profile(home: Path, base_url: str, key: str = 'api_key_env = "SLOW_KEY"') -> None:
    """A `slow` profile on `base_url` beside the default one (the real service)."""
    write_config(home, f'[profiles.default]\n\n[profiles.slow]\nbase_url = "{base_url}"\n{key}\n')


def test_run_refuses_a_profile_it_cannot_talk_to_before_it_records_a_job(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    slow_profile(fr_home, sandbox.base_url, 'api_key = "sk-slow-key"')
    path = write_input(tmp_path / "tui7.jsonl", 20, "openai/gpt-4.1-nano")
    done = run("run", str(path), *FAST, home=fr_home, **NO_KEY)
    assert done.returncode == 2, done.stderr
    assert "no API key for profile 'default'" in done.stderr
    assert "made job" not in done.stderr
    assert jobs_in_history(fr_home) == []
    assert not (fr_home / "data" / "jobs").exists() or not list(
        (fr_home / "data" / "jobs").iterdir()
    )
    # a base URL no client can use is refused the same way, with nothing recorded
    bad = run("--base-url", "api.example.com", "run", str(path), *FAST, home=fr_home)
    assert bad.returncode == 2, bad.stderr
    assert "api.example.com" in bad.stderr and "http" in bad.stderr
    assert "Traceback" not in bad.stderr and jobs_in_history(fr_home) == []
    assert sandbox.app.store.batches == {}
    # the profile that has a key runs it
    ok = run("--profile", "slow", "run", str(path), *FAST, "--json", home=fr_home, **NO_KEY)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["profile"] == "slow"


def test_a_job_with_nothing_on_the_server_cancels_without_a_key(
    tmp_path: Path, fr_home: Path
) -> None:
    # what `run` left before it checked the key: a job of the default profile (no key),
    # planning, that no process can drive
    path = write_input(tmp_path / "tui7.jsonl", 20, "openai/gpt-4.1-nano")
    store, job = make_job(
        path,
        max_rows=10,
        job_id="job-20260101-stuck0",
        origin="https://api.fastrouter.ai",
        profile="default",
    )
    cancel = run("job", "cancel", job.id, home=fr_home, **NO_KEY)
    assert cancel.returncode == 0, cancel.stderr
    assert "cancelled" in cancel.stdout
    status = json.loads(run("job", "status", job.id, "--json", home=fr_home).stdout)
    assert status["status"] == "cancelled" and status["batches"] == []
    listed = run("jobs", home=fr_home).stdout
    assert "cancelled" in listed and "planning" not in listed


def test_a_job_with_batches_needs_its_profile_to_cancel_and_hints_name_it(
    slow_sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    slow_profile(fr_home, slow_sandbox.base_url)
    path = write_input(tmp_path / "tui7.jsonl", 40, "openai/gpt-4.1-nano")
    args = ("--profile", "slow", "run", str(path), "--max-rows", "10", "--max-in-flight", "2")
    driver = spawn(*args, *FAST, home=fr_home, SLOW_KEY="sk-slow-key")
    try:
        wait_until(lambda: parts_running(fr_home, 2), 60, "two running parts")
    finally:
        driver.send_signal(signal.SIGKILL)  # its terminal went away: nothing drives it now
        driver.communicate(timeout=30)
    job_id = jobs_in_history(fr_home)[0]["id"]
    status = run("job", "status", job_id, home=fr_home)
    assert f"nothing drives it now: fr-tui --profile slow run {path}" in status.stdout
    # its batches run on the slow server: the cancel needs the slow profile's key
    refused = run("job", "cancel", job_id, home=fr_home, **NO_KEY)
    assert refused.returncode == 2, refused.stderr
    assert "profile 'slow'" in refused.stderr and "--profile slow" in refused.stderr
    assert jobs_in_history(fr_home)[0]["status"] == "running"
    cancel = run("--profile", "slow", "job", "cancel", job_id, home=fr_home, SLOW_KEY="sk-x")
    assert cancel.returncode == 0, cancel.stderr
    assert jobs_in_history(fr_home)[0]["status"] == "cancelled"
    made = job_batches_on_server(slow_sandbox.base_url, job_id)
    assert len(made) == 2 and {b["status"] for b in made} <= {"cancelling", "cancelled"}


def test_jobs_say_whose_each_job_is(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    from fr_tui.sandbox.server import SandboxServer

    path = write_input(tmp_path / "in.jsonl", 10, "openai/gpt-4.1-nano")
    with SandboxServer(state_dir=tmp_path / "second", tick=0.01) as other:
        two = other.base_url
        write_config(
            fr_home,
            f'[profiles.default]\n\n[profiles.one]\nbase_url = "{sandbox.base_url}"\n\n'
            f'[profiles.two]\nbase_url = "{other.base_url}"\n',
        )
        for profile in ("one", "two"):
            done = run("--profile", profile, "run", str(path), *FAST, home=fr_home)
            assert done.returncode == 0, done.stderr
    listed = json.loads(run("jobs", "--json", home=fr_home).stdout)["jobs"]
    assert sorted(j["profile"] for j in listed) == ["one", "two"]
    assert {j["origin"] for j in listed} == {sandbox.base_url, two}
    lines = run("jobs", home=fr_home).stdout.splitlines()
    assert len(lines) == 2
    assert sorted(line.rsplit(" ", 1)[-1] for line in lines) == ["one", "two"], lines
