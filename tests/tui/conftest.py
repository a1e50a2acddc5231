"""Fixtures of the results screens' tests (test_results_screen.py, test_results_retry.py):
a batch with ok, failed and missing rows, run to its end on the sandbox."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from fr_tui.core.api import BatchClient
from fr_tui.core.config import SANDBOX_API_KEY
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import poll_batch, submit_file


async def run_batch(client: BatchClient, store: HistoryStore, path: Path, **kw: Any) -> str:
    record = await submit_file(client, store, path, profile="sandbox", **kw)
    for _ in range(500):
        batch, _old = await poll_batch(client, store, record.id)
        if batch.terminal:
            return record.id
        await asyncio.sleep(0.02)
    raise AssertionError("the sandbox batch did not finish")


@pytest.fixture
def fails_file(samples: Path, tmp_path: Path) -> Path:
    path = tmp_path / "server_fails.jsonl"
    shutil.copy(samples / "server_fails.jsonl", path)
    return path


@pytest.fixture
async def finished(sandbox: Any, fails_file: Path) -> tuple[str, BatchClient]:
    client = BatchClient(sandbox.base_url, SANDBOX_API_KEY)
    store = HistoryStore(get_paths().history_db)
    batch_id = await run_batch(client, store, fails_file)
    return batch_id, client
