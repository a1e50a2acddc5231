"""The headless commands as a user runs them: whole processes against a real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "sk-v1-0123456789abcdef-SECRET"


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fr_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def api(sandbox) -> dict[str, str]:
    """Talk to the test sandbox as if it were a real server, with a key."""
    return {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": SECRET}


def submit(path: Path, env: dict[str, str], *extra: str, code: int = 0) -> dict:
    done = run("submit", str(path), "--wait", "--json", "--poll-interval", "0.05", *extra, env=env)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("sample", ["chat.jsonl", "embeddings.jsonl"])
def test_round_trip(sample: str, samples: Path, api: dict[str, str], tmp_path: Path) -> None:
    result = submit(samples / sample, api)
    assert result["status"] == "completed" and result["batch_id"].startswith("fr_batch-")
    rows = [
        json.loads(line) for line in (samples / sample).read_text().splitlines() if line.strip()
    ]
    out = tmp_path / "joined.jsonl"
    done = run("results", result["batch_id"], "--json", "-o", str(out), env=api)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["ok"], summary["failed"], summary["missing"]) == (
        len(rows),
        len(rows),
        0,
        0,
    )
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in exported] == [r["custom_id"] for r in rows]
    status = json.loads(run("status", result["batch_id"], "--json", env=api).stdout)
    assert status["id"] == result["batch_id"] and status["request_counts"]["total"] == len(rows)
    listed = json.loads(run("list", "--json").stdout)
    assert result["batch_id"] in [b["id"] for b in listed["batches"]]


def test_failed_and_missing_rows_then_retry(samples: Path, api: dict[str, str]) -> None:
    result = submit(samples / "server_fails.jsonl", api, "--force", code=4)  # rows not ok
    summary = json.loads(run("results", result["batch_id"], "--json", env=api).stdout)
    assert summary["failed"] == 3 and summary["missing"] == 1 and summary["ok"] == 6
    done = run("retry", result["batch_id"], "--json", "--submit", env=api)
    assert done.returncode == 0, done.stderr
    retry = json.loads(done.stdout)
    assert retry["rows"] == 4 and retry["batch_id"]
    assert run("validate", retry["path"]).returncode in (0, 1)
    lines = Path(retry["path"]).read_text().splitlines()
    assert len(lines) == 4
    listed = json.loads(run("list", "--json").stdout)["batches"]
    child = next(b for b in listed if b["id"] == retry["batch_id"])
    assert child["parent_batch_id"] == result["batch_id"]
    # the list says what came back, as the TUI does: not "9/10" done
    line = next(x for x in run("list").stdout.splitlines() if x.startswith(result["batch_id"]))
    assert "✓ 6 ✗ 3 ? 1" in line, line


def test_exit_codes_and_messages(samples: Path, api: dict[str, str], sandbox) -> None:
    invalid = run("validate", str(samples / "broken.jsonl"))
    assert invalid.returncode == 1 and "line 2" in invalid.stdout
    refused = run("submit", str(samples / "broken.jsonl"), env=api)
    assert refused.returncode == 1 and "not a valid batch file" in refused.stderr
    assert run("validate", "/nonexistent.jsonl").returncode == 2
    assert run("status").returncode == 2  # usage
    no_key = run("status", "fr_batch-x", env={"FASTROUTER_API_KEY": ""})
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
    not_found = run("status", "fr_batch-nope", env=api)
    assert not_found.returncode == 3 and "404" in not_found.stderr
    bad_key = run("status", "fr_batch-x", env={**api, "FASTROUTER_API_KEY": "sk-bad-key-123456"})
    assert bad_key.returncode == 3 and "refused" in bad_key.stderr
    sandbox.set_faults({"non_json": True})
    garbage = run("status", "fr_batch-x", env=api)
    assert garbage.returncode == 3 and "not JSON" in garbage.stderr
    for done in (invalid, refused, no_key, not_found, bad_key, garbage):
        assert "Traceback" not in done.stderr


def test_key_never_printed(samples: Path, api: dict[str, str], sandbox, fr_home: Path) -> None:
    outputs = [
        run("submit", str(samples / "chat.jsonl"), "--json", env=api),
        run("list", "--json", env=api),
        run("paths", env=api),
        run("status", "fr_batch-nope", "--debug", env=api),
        run("results", "fr_batch-nope", env=api),
    ]
    sandbox.set_faults({"status": 401})
    outputs.append(run("status", "fr_batch-x", "--debug", env=api))
    for done in outputs:
        assert SECRET not in done.stdout and SECRET not in done.stderr
    for log in (fr_home / "data" / "logs").glob("*"):
        assert SECRET not in log.read_text()


def test_embedded_sandbox_flag_needs_no_key(samples: Path) -> None:
    done = run("--sandbox", "submit", str(samples / "chat.jsonl"), "--json")
    assert done.returncode == 0, done.stderr
    batch_id = json.loads(done.stdout)["batch_id"]
    status = run("--sandbox", "status", batch_id, "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["id"] == batch_id


def test_split(tmp_path: Path, samples: Path) -> None:
    done = run(
        "split", str(samples / "chat.jsonl"), "--max-rows", "5", "-o", str(tmp_path), "--json"
    )
    assert done.returncode == 0, done.stderr
    parts = [Path(p) for p in json.loads(done.stdout)["parts"]]
    assert len(parts) == 3
    assert sum(len(p.read_text().splitlines()) for p in parts) == 12


def test_cancel(samples: Path, api: dict[str, str]) -> None:
    done = run(
        "submit",
        str(samples / "chat.jsonl"),
        "--json",
        "--metadata",
        "sandbox_fault=hang_validating",
        env=api,
    )
    batch_id = json.loads(done.stdout)["batch_id"]
    cancelled = run("cancel", batch_id, "--json", env=api)
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] in (
        "cancelling",
        "cancelled",
    )


def test_the_readme_lists_every_exit_code_fr_tui_uses() -> None:
    """Every exit code is named in cli_errors.py, and the README's table lists each of
    them (and no other)."""
    import re

    from fr_tui import cli_errors

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = set(map(int, re.findall(r"^\| `(\d+)`", readme, flags=re.M)))
    named = {v for k, v in vars(cli_errors).items() if k.startswith("EXIT_")}
    assert table == named
    # and no command returns a bare number of its own
    package = Path(__file__).resolve().parent.parent / "fr_tui"
    for path in package.rglob("*.py"):
        text = path.read_text()
        bare = re.findall(r"return (?:1[0-9]{2}|[1-9])$|return_code=\d|exit\(\d", text, re.M)
        assert not bare, (path, bare)


def test_json_output_writes_money_as_a_plain_number_wherever_it_sits(capsys) -> None:
    """--json output: a Decimal is a JSON number in plain digits (never 8.7e-05, never a
    string), in a dict, a list or a dataclass alike."""
    from dataclasses import dataclass
    from decimal import Decimal

    from fr_tui.cli_support import print_json

    @dataclass
    class Spent:
        model: str
        cost: Decimal

    print_json({"cost": Decimal("8.7E-5"), "models": [Spent("m", Decimal("1E-7"))]})
    printed = json.loads(capsys.readouterr().out, parse_float=lambda text: ("number", text))
    assert printed == {
        "cost": ("number", "0.000087"),
        "models": [{"model": "m", "cost": ("number", "0.0000001")}],
    }


def test_a_batch_whose_input_was_rejected_lists_no_rows_ran(
    samples: Path, api: dict[str, str]
) -> None:
    """`✓ 0` beside a failed status read as if rows had come back; none ran."""
    failed = submit(
        samples / "chat.jsonl", api, "--metadata", "sandbox_fault=fail_validation", code=1
    )
    assert failed["status"] == "failed"
    line = next(x for x in run("list").stdout.splitlines() if x.startswith(failed["batch_id"]))
    assert "no rows ran" in line and "✓" not in line, line


def test_status_names_every_model_history_knows(samples: Path, api: dict[str, str]) -> None:
    """The server's `model` names one; the input's per-model tallies name both (as the
    TUI's batch details do)."""
    result = submit(samples / "chat.jsonl", api)
    done = run("status", result["batch_id"], env=api)
    assert done.returncode == 0, done.stderr
    models = [line.strip() for line in done.stdout.splitlines() if "models:" in line]
    assert models == [
        "models: anthropic/claude-4.5-sonnet (6 rows), openai/gpt-4.1-nano (6 rows)"
    ], done.stdout
    data = json.loads(run("status", result["batch_id"], "--json", env=api).stdout)
    assert "model" in data  # the server's field stays
    assert data["models"] == [
        {"model": "anthropic/claude-4.5-sonnet", "rows": 6},
        {"model": "openai/gpt-4.1-nano", "rows": 6},
    ]
