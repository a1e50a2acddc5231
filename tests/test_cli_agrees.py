"""The CLI agrees with the TUI (issue 10, items 17-24): whole processes, real sandbox."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SECRET = "sk-v1-0123456789abcdef-SECRET"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fr_tui", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_env(sandbox: object) -> dict[str, str]:
    return {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": SECRET}  # type: ignore[attr-defined]


def test_validate_a_directory_says_so(tmp_path: Path) -> None:
    done = run("validate", str(tmp_path))
    assert done.returncode == 2
    assert "is a directory" in done.stderr and "Traceback" not in done.stderr


def test_bad_arguments_print_the_subcommands_usage(samples: Path) -> None:
    for args in (
        ("validate", str(samples / "chat.jsonl"), "extra.jsonl"),
        ("validate", "--bogus", str(samples / "chat.jsonl")),
        ("status", "fr_batch-x", "--nope"),
    ):
        done = run(*args)
        assert done.returncode == 2
        assert f"usage: fr-tui {args[0]}" in done.stderr, done.stderr
        assert "COMMAND" not in done.stderr  # not the top level's usage


def test_endpoint_is_checked_against_the_rows_before_any_upload(samples: Path) -> None:
    # Nothing listens on this port: an upload would be a network error (exit 3).
    env = {"FASTROUTER_BASE_URL": f"http://127.0.0.1:{free_port()}", "FASTROUTER_API_KEY": SECRET}
    done = run("submit", str(samples / "chat.jsonl"), "--endpoint", "/v1/embeddings", env=env)
    assert done.returncode == 1, done.stderr
    assert "does not match the rows' url /v1/chat/completions" in done.stderr
    # The same endpoint written without /v1 is the rows' url: accepted (then the
    # network error shows it went on to upload).
    same = run("submit", str(samples / "chat.jsonl"), "--endpoint", "chat/completions", env=env)
    assert same.returncode == 3, same.stderr


def test_split_refuses_invalid_rows_and_writes_nothing(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "parts"
    done = run("split", str(samples / "broken.jsonl"), "--max-rows", "3", "-o", str(out))
    assert done.returncode == 1
    assert "not split" in done.stderr and "line 2" in done.stderr
    assert not out.exists() or not list(out.iterdir())
    # A valid file over the limit still splits into valid parts.
    done = run("split", str(samples / "chat.jsonl"), "--max-rows", "5", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    for part in json.loads(done.stdout)["parts"]:
        assert run("validate", part).returncode == 0


def test_rows_not_ok_exit_code_4(samples: Path, sandbox: object, tmp_path: Path) -> None:
    env = api_env(sandbox)
    waited = run(
        "submit",
        str(samples / "server_fails.jsonl"),
        "--force",
        "--wait",
        "--json",
        "--poll-interval",
        "0.05",
        env=env,
    )
    assert waited.returncode == 4, waited.stderr
    batch_id = json.loads(waited.stdout)["batch_id"]
    out = tmp_path / "rows.csv"
    results = run("results", batch_id, "-o", str(out), env=env)
    assert results.returncode == 4, results.stderr
    assert "3 failed, 1 missing" in results.stdout
    # every row ok: 0
    ok = run("submit", str(samples / "chat.jsonl"), "--wait", "--poll-interval", "0.05", env=env)
    assert ok.returncode == 0, ok.stderr
    # Costs in the CSV are digits, never 8.675e-05.
    with out.open(newline="") as handle:
        costs = [row["cost"] for row in csv.DictReader(handle) if row["cost"]]
    assert costs and all("e" not in cost.lower() for cost in costs)
    assert all(float(cost) > 0 for cost in costs)


def test_status_shows_endpoint_model_and_metadata(samples: Path, sandbox: object) -> None:
    env = api_env(sandbox)
    done = run("submit", str(samples / "chat.jsonl"), "--json", "--metadata", "team=evals", env=env)
    batch_id = json.loads(done.stdout)["batch_id"]
    status = run("status", batch_id, env=env)
    assert status.returncode == 0, status.stderr
    assert "endpoint: /v1/chat/completions" in status.stdout
    # every model of the file, as the TUI's details name them (the server's `model` is one)
    assert "models: anthropic/claude-4.5-sonnet (6 rows), openai/gpt-4.1-nano (6 rows)" in (
        status.stdout
    )
    assert "team=evals" in status.stdout


def test_error_lines_have_one_period(sandbox: object) -> None:
    from fr_tui.core.errors import error_for_status

    body = {"error": {"message": "No batch found with id 'batch_missing'.", "code": "x"}}
    for status in (400, 401, 402, 404, 413, 429, 500):
        message = error_for_status(status, body, "/v1/batches/batch_missing").message
        assert ".." not in message and "'batch_missing'" in message
    done = run("status", "batch_missing", env=api_env(sandbox))
    assert done.returncode == 3
    assert ".." not in done.stderr and "Check the id" in done.stderr


def test_sandbox_prints_its_banner_once(fr_home: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fr_tui", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("the sandbox did not start")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert (out + err).count("fr-tui sandbox") == 1, out + err


def test_sandbox_on_port_0_says_the_port_it_got(fr_home: Path) -> None:
    import re

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "fr_tui", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()  # the first line: where it listens
        found = re.search(r"http://127\.0\.0\.1:(\d+) ", banner)
        assert found and found.group(1) != "0", banner
        models = httpx.get(f"http://127.0.0.1:{found.group(1)}/v1/models", timeout=10)
        assert models.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_results_of_a_batch_that_still_runs_say_so_with_its_own_code(
    sandbox: object, samples: Path
) -> None:
    """Not a failed batch (1), not a usage error (2): the batch still runs, as when
    `submit --wait` stops waiting (124). A script can wait and ask again."""
    env = api_env(sandbox)
    submitted = run(
        "submit", str(samples / "chat.jsonl"), "--json",
        "--metadata", "sandbox_fault=hang_validating", env=env,
    )  # fmt: skip
    batch_id = json.loads(submitted.stdout)["batch_id"]
    for command in ("results", "retry"):
        done = run(command, batch_id, env=env)
        assert done.returncode == 124, done.stderr
        assert f"{batch_id} is still validating" in done.stderr
