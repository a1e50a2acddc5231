"""The official `openai` SDK, pointed at the sandbox, runs a whole batch session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

openai = pytest.importorskip("openai")

from fr_tui.sandbox import SANDBOX_API_KEY  # noqa: E402
from fr_tui.sandbox.server import SandboxServer  # noqa: E402


@pytest.fixture
def client(tmp_path: Path) -> Iterator[openai.OpenAI]:
    with SandboxServer(state_dir=tmp_path / "sdk-state", tick=0.01) as server:
        yield openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key=SANDBOX_API_KEY, max_retries=0, timeout=10
        )


def wait(client: openai.OpenAI, batch_id: str) -> openai.types.Batch:
    deadline = time.monotonic() + 10
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_sdk_runs_a_batch_end_to_end(client: openai.OpenAI, samples: Path) -> None:
    path = samples / "server_fails.jsonl"
    uploaded = client.files.create(file=path.open("rb"), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.bytes == path.stat().st_size

    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"via": "openai-sdk"},
    )
    assert created.id.startswith("fr_batch-") and created.status == "validating"

    batch = wait(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None and batch.request_counts.total == 10
    assert batch.metadata == {"via": "openai-sdk"}
    assert batch.output_file_id and batch.error_file_id

    output = client.files.content(batch.output_file_id).content
    errors = client.files.content(batch.error_file_id).content
    ok = [msgspec.json.decode(line) for line in output.splitlines()]
    failed = [msgspec.json.decode(line) for line in errors.splitlines()]
    assert len(ok) == batch.request_counts.completed == 6
    assert len(failed) == batch.request_counts.failed == 3

    listed = client.batches.list(limit=5)
    assert [b.id for b in listed.data] == [created.id]
    assert client.files.retrieve(uploaded.id).filename == "server_fails.jsonl"


def test_sdk_cancel_and_errors(client: openai.OpenAI, samples: Path) -> None:
    uploaded = client.files.create(
        file=(samples / "server_fails.jsonl").open("rb"), purpose="batch"
    )
    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"sandbox_fault": "hang_validating"},
    )
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling"
    assert wait(client, created.id).status == "cancelled"

    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("fr_batch-missing")
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(created.id)
