"""Shared by the job tests: input files of any size, the sandbox's batches as the server
lists them, and a job's rows in the history the processes under test write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from fault_helpers import KEY, history_rows

CHAT = "/v1/chat/completions"


def write_input(path: Path, rows: int, model: str = "sandbox/flaky-20", **body: Any) -> Path:
    """`rows` chat requests `row-00000`…, each asking a different sum."""
    with path.open("w") as handle:
        for i in range(rows):
            request = {
                "custom_id": f"row-{i:05d}",
                "provider": model.partition("/")[0],
                "method": "POST",
                "url": CHAT,
                "body": {
                    "model": model,
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"What is {i} + 1?"}],
                    **body,
                },
            }
            handle.write(json.dumps(request) + "\n")
    return path


def server_batches(base_url: str) -> list[dict[str, Any]]:
    """Every batch the server lists (every page)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["after"] = after
        page = httpx.get(
            f"{base_url}/v1/batches", params=params, headers={"Authorization": f"Bearer {KEY}"}
        ).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        after = page["last_id"]


def job_batches_on_server(base_url: str, job_id: str) -> list[dict[str, Any]]:
    return [
        b for b in server_batches(base_url) if (b.get("metadata") or {}).get("fr_tui_job") == job_id
    ]


def jobs_in_history(home: Path) -> list[Any]:
    return history_rows(home, "SELECT * FROM jobs ORDER BY created_at")


def parts_in_history(home: Path, job_id: str) -> list[Any]:
    return history_rows(
        home, "SELECT * FROM job_parts WHERE job_id = ? ORDER BY round, part", (job_id,)
    )


def slots_of(home: Path, job_id: str) -> set[tuple[int, int]]:
    """(round, part) of every part that ran as a batch of its own (not the split ones)."""
    return {
        (p["round"], p["part"]) for p in parts_in_history(home, job_id) if p["state"] != "split"
    }


def merged_lines(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_bytes().splitlines()]


def parts_running(home: Path, count: int) -> bool:
    """Whether at least `count` of the job's parts are running (as history says)."""
    return len(history_rows(home, "SELECT 1 FROM job_parts WHERE state='running'")) >= count


def add_job(
    store: Any,
    path: Path,
    *,
    max_rows: int = 40,
    job_id: str = "job-20260101-input",
    rounds: int = 3,
    origin: str = "sandbox",
    profile: str = "sandbox",
    signed: bool = True,
) -> Any:
    """A job of `path` recorded in `store` as `fr-tui run` records it, before its first
    step. `signed=False`: without the input's file signature (planning hashes it again)."""
    from fr_tui.core.jobs_store import Job, JobSettings, JobStore
    from fr_tui.core.workflow import signed_sha256

    sha, signature = signed_sha256(path)
    job = Job(
        id=job_id,
        origin=origin,
        input_path=str(path),
        input_sha256=sha,
        settings=JobSettings(max_rows=max_rows, max_bytes=1 << 30, rounds=rounds),
        profile=profile,
        input_bytes=signature.size,
        input_mtime_ns=signature.mtime_ns if signed else None,
        input_inode=signature.inode if signed else None,
        endpoint="/v1/chat/completions",
    )
    return JobStore(store).add(job)


def make_job(path: Path, **job: Any) -> tuple[Any, Any]:
    """add_job in the history of FR_TUI_HOME: (the HistoryStore, the Job)."""
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore

    store = HistoryStore(get_paths().ensure().history_db)
    return store, add_job(store, path, **job)
