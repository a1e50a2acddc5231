"""The batch API client against the real sandbox over loopback HTTP, fault by fault."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fr_tui.core.api import BatchClient, normalise_base_url
from fr_tui.core.config import SANDBOX_API_KEY
from fr_tui.core.errors import (
    ApiTimeoutError,
    AuthError,
    BadResponseError,
    DownloadError,
    NotFoundError,
    OutcomeUnknownError,
    PaymentError,
    RateLimitedError,
    ServerError,
    TooLargeError,
)
from fr_tui.core.intents import IntentLog
from fr_tui.core.models import Batch
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import submit_file


def fast_client(base: str, key: str = SANDBOX_API_KEY, **kw: float) -> BatchClient:
    options = {"read_timeout": 5.0, "retry_budget": 10.0, "backoff_base": 0.01, "backoff_cap": 0.05}
    options.update(kw)
    return BatchClient(base, key, **options)  # type: ignore[arg-type]


async def wait_terminal(client: BatchClient, batch_id: str, limit: float = 20.0) -> Batch:
    deadline = time.monotonic() + limit
    while True:
        batch = await client.get_batch(batch_id)
        if batch.terminal:
            return batch
        assert time.monotonic() < deadline, f"{batch_id} stuck in {batch.status}"
        await asyncio.sleep(0.02)


def test_base_url_is_the_part_before_v1() -> None:
    assert normalise_base_url("https://api.fastrouter.ai/v1/") == "https://api.fastrouter.ai"
    assert normalise_base_url("http://x:1/") == "http://x:1"


async def test_upload_create_poll_download(sandbox, samples: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    async with fast_client(sandbox.base_url) as client:
        uploaded = await client.upload_file(
            samples / "chat.jsonl", progress=lambda d, t: seen.append((d, t))
        )
        assert uploaded.id.startswith("file-")
        assert seen[-1][0] == (samples / "chat.jsonl").stat().st_size
        batch = await client.create_batch(uploaded.id, "/v1/chat/completions", metadata={"k": "v"})
        assert batch.id.startswith("fr_batch-") and batch.metadata == {"k": "v"}
        done = await wait_terminal(client, batch.id)
        assert (
            done.status == "completed" and done.request_counts and done.request_counts.total == 12
        )
        out = await client.download_file(done.output_file_id or "", tmp_path / "out.jsonl")
        assert len(out.read_bytes().splitlines()) == 12
        listed = await client.list_batches()
        assert batch.id in {b.id for b in listed}


async def test_key_never_in_errors_or_repr(sandbox) -> None:
    secret = "sk-bad-THIS-IS-SECRET-123456"
    client = fast_client(sandbox.base_url, key=secret)
    assert secret not in repr(client)
    with pytest.raises(AuthError) as info:
        await client.get_batch("fr_batch-x")
    assert secret not in str(info.value) and "key" in str(info.value).lower()
    await client.aclose()


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        ({"status": 404}, NotFoundError),
        ({"status": 402}, PaymentError),
        ({"status": 400}, Exception),
    ],
)
async def test_statuses_become_typed_errors(sandbox, faults, error) -> None:
    sandbox.set_faults(faults)
    async with fast_client(sandbox.base_url) as client:
        with pytest.raises(error) as info:
            await client.get_batch("fr_batch-x")
    assert str(info.value)  # one line that says what happened
    assert "\n" not in str(info.value)


async def test_payment_required_on_create(sandbox, samples: Path) -> None:
    async with fast_client(sandbox.base_url, key="sk-broke-1") as client:
        with pytest.raises(PaymentError, match="credits"):
            await client.upload_file(samples / "chat.jsonl")


async def test_413_on_a_too_large_upload(tmp_path: Path, samples: Path) -> None:
    from fr_tui.sandbox.server import SandboxServer

    with SandboxServer(state_dir=tmp_path / "s", tick=0.01, max_upload_bytes=100) as server:
        async with fast_client(server.base_url) as client:
            with pytest.raises(TooLargeError, match="split"):
                await client.upload_file(samples / "chat.jsonl")


async def test_429_with_retry_after_is_retried_then_succeeds(sandbox) -> None:
    sandbox.set_faults({"status": 429, "retry_after": 0.2, "count": 2, "methods": ["GET"]})
    async with fast_client(sandbox.base_url) as client:
        started = time.monotonic()
        with pytest.raises(NotFoundError):  # reached the real route after two 429s
            await client.get_batch("fr_batch-none")
        assert time.monotonic() - started >= 0.4  # Retry-After honoured twice


async def test_500_then_success_and_500_forever(sandbox) -> None:
    sandbox.set_faults({"status": 500, "count": 2})
    async with fast_client(sandbox.base_url) as client:
        assert isinstance(await client.list_batches(), list)
        sandbox.set_faults({"status": 500})
        started = time.monotonic()
        with pytest.raises(ServerError, match="500"):
            await client.list_batches()
        assert time.monotonic() - started < 10


async def test_rate_limited_post_is_retried_but_not_a_500(sandbox, samples: Path) -> None:
    async with fast_client(sandbox.base_url) as client:
        sandbox.set_faults({"status": 429, "count": 1, "methods": ["POST"], "retry_after": 0})
        uploaded = await client.upload_file(samples / "chat.jsonl")  # retried after the 429
        sandbox.set_faults({"status": 500, "count": 1, "methods": ["POST"]})
        with pytest.raises(OutcomeUnknownError) as info:
            await client.create_batch(uploaded.id, "/v1/chat/completions")
        assert info.value.input_file_id == uploaded.id
        sandbox.set_faults({})
        # Not retried blindly: the 500 answered the only create, so no batch exists.
        assert [b for b in await client.list_batches() if b.input_file_id == uploaded.id] == []


async def test_lost_create_answer_is_recorded_and_not_duplicated(
    sandbox, samples: Path, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    async with fast_client(sandbox.base_url, read_timeout=0.5) as client:
        sandbox.set_faults(
            {"latency": 1.5, "methods": ["POST"], "path_prefix": "/v1/batches", "count": 1}
        )
        with pytest.raises(OutcomeUnknownError):
            await submit_file(client, store, samples / "chat.jsonl", profile="sandbox")
        sandbox.set_faults({})
        unknown = IntentLog(store).unknown()
        assert len(unknown) == 1 and unknown[0].input_file_id
        await asyncio.sleep(1.2)
        created = [
            b for b in await client.list_batches() if b.input_file_id == unknown[0].input_file_id
        ]
        assert len(created) <= 1  # the client did not send the create twice
        assert store.batches() == []


async def test_no_answer_at_all_times_out_clearly(sandbox) -> None:
    sandbox.set_faults({"latency": 3})
    async with fast_client(sandbox.base_url, read_timeout=0.3, retry_budget=1.0) as client:
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError, match="did not answer"):
            await client.get_batch("fr_batch-x")
        assert time.monotonic() - started < 5


async def test_non_json_answer(sandbox) -> None:
    sandbox.set_faults({"non_json": True})
    async with fast_client(sandbox.base_url) as client:
        with pytest.raises(BadResponseError, match="not JSON"):
            await client.get_batch("fr_batch-x")


async def test_dropped_download_resumes_and_never_leaves_a_complete_looking_file(
    sandbox, samples: Path, tmp_path: Path
) -> None:
    async with fast_client(sandbox.base_url) as client:
        uploaded = await client.upload_file(samples / "chat.jsonl")
        expected = (samples / "chat.jsonl").read_bytes()
        dest = tmp_path / "input.jsonl"
        # Dropped once: resumed with a Range request, the result is whole.
        sandbox.set_faults({"drop_download_after": 500, "count": 1})
        await client.download_file(uploaded.id, dest)
        assert dest.read_bytes() == expected
        # Dropped every time: an error, and no file at the final name.
        dest2 = tmp_path / "again.jsonl"
        sandbox.set_faults({"drop_download_after": 100})
        with pytest.raises(DownloadError, match="interrupted"):
            await client.download_file(uploaded.id, dest2)
        assert not dest2.exists()
        assert (tmp_path / "again.jsonl.part").stat().st_size < len(expected)


async def test_unknown_status_value_is_carried() -> None:
    batch = Batch.parse(
        {"batch_id": "fr_batch-1", "status": "Queued_For_Review", "created_at": None}
    )
    assert batch.status == "queued_for_review" and not batch.terminal
    assert batch.request_counts is None and batch.usage is None
    assert Batch.parse({"id": "b", "status": "completed", "extra": 1}).raw["extra"] == 1


async def test_rate_limited_error_keeps_retry_after(sandbox) -> None:
    sandbox.set_faults({"status": 429, "retry_after": 7})
    async with fast_client(sandbox.base_url, retry_budget=0.5) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_batch("x")
    assert info.value.retry_after == 7


async def test_an_unreadable_create_answer_is_kept_as_outcome_unknown(
    sandbox, samples: Path, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    async with fast_client(sandbox.base_url) as client:
        sandbox.set_faults({"non_json": True, "methods": ["POST"], "path_prefix": "/v1/batches"})
        with pytest.raises(OutcomeUnknownError, match="cannot read"):
            await submit_file(client, store, samples / "chat.jsonl", profile="sandbox")
    assert len(IntentLog(store).unknown()) == 1


async def test_quitting_during_create_keeps_a_record(
    sandbox, samples: Path, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    phases: list[str] = []
    async with fast_client(sandbox.base_url) as client:
        sandbox.set_faults({"create_delay": 60})  # the batch is made, its answer held
        task = asyncio.create_task(
            submit_file(
                client,
                store,
                samples / "chat.jsonl",
                profile="sandbox",
                on_phase=lambda p: phases.append(p.phase),
            )
        )
        while sandbox.app.injector.held_creates != 1:  # the create is at the server
            await asyncio.sleep(0.01)
        assert "creating" in phases
        task.cancel()  # what a dropped SSH session or ctrl+c does to the worker
        with pytest.raises(asyncio.CancelledError):
            await task
        sandbox.set_faults({})  # the held answer goes, to no one
    unknown = IntentLog(store).unknown()
    assert len(unknown) == 1 and "stopped" in (unknown[0].message or "")


async def test_a_refused_create_leaves_no_record(sandbox, samples: Path, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    async with fast_client(sandbox.base_url) as client:
        sandbox.set_faults({"status": 400, "methods": ["POST"], "path_prefix": "/v1/batches"})
        with pytest.raises(Exception, match="400"):
            await submit_file(client, store, samples / "chat.jsonl", profile="sandbox")
    assert IntentLog(store).unknown() == [] and store.batches() == []


async def test_a_key_that_cannot_be_sent_fails_at_once_without_retries(sandbox) -> None:
    async with fast_client(sandbox.base_url, key="sk-v1-TOP\xa0SECRET", retry_budget=30) as client:
        started = time.monotonic()
        with pytest.raises(Exception, match="could not be sent") as info:
            await client.get_batch("fr_batch-x")
    assert time.monotonic() - started < 1 and "SECRET" not in str(info.value)


async def test_uploading_anything_but_a_file_fails_at_once(sandbox, tmp_path: Path) -> None:
    """The upload reads only a regular file: a FIFO (a named pipe in place of the input)
    is said at once, never a wait for a writer that never comes."""
    import os

    fifo = tmp_path / "input.jsonl"
    os.mkfifo(fifo)
    async with BatchClient(sandbox.base_url, "sk-x") as client:
        with pytest.raises(OSError, match="FIFO"):
            await asyncio.wait_for(client.upload_file(fifo), timeout=10)
