"""Issue 9, cases 10-14: errors are one line everywhere (a closed pipe, an unreadable
file, a read-only config folder, a full disk), `list` works read-only, redirects never
lose an upload, `submit --wait` ends, and the test suite says how many tests passed."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import (
    SAMPLES,
    TinyBatchServer,
    command,
    environment,
    no_traceback,
    permissions_apply,
    run,
)

from fr_tui.core.api import BatchClient

# ----------------------------------------------------------------- case 10


@pytest.mark.parametrize("args", [["validate", "--json"], ["list"]])
def test_a_closed_pipe_ends_quietly(args: list[str], fr_home: Path, tmp_path: Path) -> None:
    if args[0] == "list":  # enough history to fill the pipe
        for i in range(3):
            copy = tmp_path / f"f{i}.jsonl"
            copy.write_bytes((SAMPLES / "chat.jsonl").read_bytes() + b"\n" * i)
            assert run("--sandbox", "submit", str(copy), "--force", home=fr_home).returncode == 0
    else:
        args = [*args, str(SAMPLES / "broken.jsonl")]
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `fr-tui ... | head -0`
    try:
        done = subprocess.run(
            command(*args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(fr_home),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports it


def test_an_unreadable_file_is_one_line(tmp_path: Path, fr_home: Path) -> None:
    wrap = permissions_apply()
    path = tmp_path / "secret.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    path.chmod(0)
    for args in (["validate", str(path)], ["split", str(path)], ["--sandbox", "submit", str(path)]):
        done = run(*args, home=fr_home, wrap=wrap)
        assert done.returncode == 2, done.stderr
        assert f"{path}: Permission denied" in done.stderr
        no_traceback(done)


def test_a_read_only_config_folder(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    wrap = permissions_apply()
    first = run(
        "--base-url", sandbox.base_url, "submit", str(SAMPLES / "chat.jsonl"), "--json",
        "--wait", "--poll-interval", "0.05", home=fr_home,
    )  # fmt: skip
    batch_id = json.loads(first.stdout)["batch_id"]
    read = run("--base-url", sandbox.base_url, "results", batch_id, home=fr_home)
    assert read.returncode == 0, read.stderr  # its actual cost and tokens are in history
    config = fr_home / "config"
    config.chmod(0o555)
    try:
        # case 11: `list` shows the history read-only
        listed = run("list", "--json", home=fr_home, wrap=wrap)
        assert listed.returncode == 0, listed.stderr
        assert [b["id"] for b in json.loads(listed.stdout)["batches"]] == [batch_id]
        assert "read-only" in listed.stderr
        no_traceback(listed)
        text = run("list", home=fr_home, wrap=wrap)
        assert text.returncode == 0 and batch_id in text.stdout
        # spend and estimate only read history: they work, and say what history says
        spend = run("spend", "--json", home=fr_home, wrap=wrap)
        assert spend.returncode == 0, spend.stderr
        assert json.loads(spend.stdout)["batches"] == 1
        estimate = run(
            "--base-url", sandbox.base_url, "estimate", str(SAMPLES / "chat.jsonl"), "--json",
            home=fr_home, wrap=wrap,
        )  # fmt: skip
        assert estimate.returncode == 0, estimate.stderr
        corrections = [m["correction"] for m in json.loads(estimate.stdout)["models"]]
        assert any(corrections), corrections  # learnt from the batch above
        # the others say why they cannot go on, in one line
        copy = tmp_path / "other.jsonl"
        copy.write_bytes((SAMPLES / "embeddings.jsonl").read_bytes())
        submit = run("--base-url", sandbox.base_url, "submit", str(copy), home=fr_home, wrap=wrap)
        assert submit.returncode == 2 and "history" in submit.stderr
        no_traceback(submit)
        status = run("--base-url", sandbox.base_url, "status", batch_id, home=fr_home, wrap=wrap)
        assert status.returncode == 2
        no_traceback(status)
    finally:
        config.chmod(0o755)


def no_room_to_write() -> None:
    """In the child: every write that would grow a file fails, as on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_a_full_disk_is_one_line(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    submitted = run(
        "--base-url", sandbox.base_url, "submit", str(SAMPLES / "chat.jsonl"), "--wait",
        "--json", "--poll-interval", "0.05", home=fr_home,
    )  # fmt: skip
    batch_id = json.loads(submitted.stdout)["batch_id"]
    history = f"fr-tui: cannot use the history {fr_home / 'config' / 'history.db'}: disk I/O error"
    for args, says in (
        (
            ["split", str(SAMPLES / "chat.jsonl"), "--max-rows", "5", "-o", str(tmp_path / "p")],
            "fr-tui: File too large",  # its first part cannot be written
        ),
        # these record what they learn: the history cannot be written, said before anything
        (
            ["--base-url", sandbox.base_url, "results", batch_id, "-o", str(tmp_path / "r.csv")],
            history,
        ),
        (["--base-url", sandbox.base_url, "status", batch_id], history),
    ):
        done = subprocess.run(
            command(*args),
            capture_output=True,
            text=True,
            env=environment(fr_home),
            timeout=60,
            preexec_fn=no_room_to_write,
        )
        assert (done.returncode, done.stderr) == (2, says + "\n")


# ----------------------------------------------------------------- case 12


def redirect(status: int, location: str) -> Any:
    return lambda request: (status, {"Location": location, "Content-Length": "0"}, b"")


def upload(server: TinyBatchServer) -> Any:
    async def go() -> Any:
        async with BatchClient(server.base_url, "sk-x", max_attempts=1) as client:
            return await client.upload_file(SAMPLES / "chat.jsonl")

    return asyncio.run(go())


def test_a_307_or_308_on_upload_sends_the_body_again() -> None:
    size = (SAMPLES / "chat.jsonl").stat().st_size
    for status in (307, 308):
        with TinyBatchServer() as server:
            server.routes[("POST", "/v1/files")] = redirect(status, "/v1/files-moved")
            server.routes[("POST", "/v1/files-moved")] = lambda request: server.default(
                "POST", "/v1/files", request.body
            )
            uploaded = upload(server)
            assert uploaded.id == "file-1"
            [(method, path, length)] = [r for r in server.requests if r[1] == "/v1/files-moved"]
            assert method == "POST" and length > size  # the whole multipart body, again


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_that_would_turn_an_upload_into_a_get_fails_clearly(status: int) -> None:
    from fr_tui.core.errors import ApiError

    with TinyBatchServer() as server:
        server.routes[("POST", "/v1/files")] = redirect(status, "/v1/files-moved")
        with pytest.raises(ApiError, match="redirect"):
            upload(server)
        assert [r for r in server.requests if r[1] == "/v1/files-moved"] == []  # no GET


def test_a_redirect_to_another_server_is_not_followed_with_the_key() -> None:
    from fr_tui.core.errors import ApiError

    with TinyBatchServer() as server, TinyBatchServer() as other:
        server.routes[("POST", "/v1/files")] = redirect(307, f"{other.base_url}/v1/files")
        with pytest.raises(ApiError, match="another server"):
            upload(server)
        assert other.requests == []


# ----------------------------------------------------------------- case 13


def test_submit_wait_stops_at_its_timeout(sandbox: Any, fr_home: Path) -> None:
    started = time.monotonic()
    done = run(
        "--base-url", sandbox.base_url, "submit", str(SAMPLES / "chat.jsonl"), "--wait",
        "--timeout", "1", "--json", "--poll-interval", "0.05",
        "--metadata", "sandbox_fault=hang_validating", home=fr_home, timeout=60,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert "--timeout 1s passed" in done.stderr and "validating" in done.stderr
    assert json.loads(done.stdout)["status"] == "waiting_timed_out"
    assert time.monotonic() - started < 30


def test_submit_wait_stops_once_the_batch_is_past_its_expiry(sandbox: Any, fr_home: Path) -> None:
    sandbox.app.store.clock = lambda: time.time() - 2 * 86400  # made two days ago
    done = run(
        "--base-url", sandbox.base_url, "submit", str(SAMPLES / "chat.jsonl"), "--wait",
        "--poll-interval", "0.05", "--metadata", "sandbox_fault=hang_validating",
        home=fr_home, timeout=60,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert "expires_at passed" in done.stderr
    no_traceback(done)


# ----------------------------------------------------------------- case 14


def test_the_test_suite_prints_its_summary_line() -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layering.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout
    assert " passed" in done.stdout.strip().splitlines()[-1]
