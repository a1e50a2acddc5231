"""BatchPoller against the real sandbox, with a bare app object (no screens needed)."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fr_tui.core.api import BatchClient
from fr_tui.core.config import SANDBOX_API_KEY
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import submit_file
from fr_tui.tui.messages import BatchesChanged, BatchFinished, PollStatus
from fr_tui.tui.poller import BatchPoller


class FakeApp(SimpleNamespace):
    """What the poller uses of FrTuiApp: store, client, config, paths, notify, broadcast."""


@pytest.fixture
async def env(sandbox: Any) -> Any:
    paths = get_paths()
    paths.ensure()
    client = BatchClient(sandbox.base_url, SANDBOX_API_KEY)
    posted: list[Any] = []
    notes: list[tuple[str, str]] = []
    bells: list[int] = []
    app = FakeApp(
        store=HistoryStore(paths.history_db),
        client=client,
        paths=paths,
        config=SimpleNamespace(poll_interval=10.0, auto_download=False, notify_command=None),
        profile=SimpleNamespace(name="sandbox"),
        broadcast=posted.append,
        notify=lambda text, **kw: notes.append((text, kw.get("severity", "information"))),
        bell=lambda: bells.append(1),
        run_worker=lambda coro, **kw: asyncio.ensure_future(coro),
    )
    poller = BatchPoller(app, concurrency=4)
    poller.interval = 0.05
    yield SimpleNamespace(
        app=app, poller=poller, posted=posted, notes=notes, bells=bells, sandbox=sandbox
    )
    poller.stop()
    await client.aclose()


async def submit(env: Any, samples: Path, name: str = "chat.jsonl", **kw: Any) -> str:
    record = await submit_file(
        env.app.client, env.app.store, samples / name, profile="sandbox", allow_duplicate=True, **kw
    )
    return record.id


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def run_loop(env: Any) -> asyncio.Task[None]:
    env.poller._running = True
    return asyncio.ensure_future(env.poller._loop())


async def test_finished_batch_is_notified_once_with_its_outcome(env: Any, samples: Path) -> None:
    done_id = await submit(env, samples)
    failing_id = await submit(env, samples, "server_fails.jsonl")
    task = run_loop(env)
    try:
        await until(lambda: not env.app.store.active())
        loops = env.poller.stats.loops
        await until(lambda: env.poller.stats.loops >= loops + 3)  # nothing notified twice
    finally:
        env.poller._running = False
        task.cancel()
    texts = dict(env.notes)
    done_label = env.app.store.get(env.app.client.origin, done_id).label
    assert any(t.startswith(done_label) and s == "information" for t, s in env.notes)
    failing = [t for t in texts if "failed" in t and "never answered" in t]  # 3 failed, 1 missing
    assert len(failing) == 1 and texts[failing[0]] == "warning"  # failed rows: not plain success
    assert len(env.notes) == 2 and len(env.bells) == 2
    finished = [m for m in env.posted if isinstance(m, BatchFinished)]
    assert {m.record.id for m in finished} == {done_id, failing_id}
    assert all(env.app.store.get(env.app.client.origin, b).notified for b in (done_id, failing_id))
    assert any(isinstance(m, BatchesChanged) for m in env.posted)
    assert any(isinstance(m, PollStatus) and m.ok for m in env.posted)


async def test_bounded_concurrency_and_one_poll_per_batch_per_round(
    env: Any, samples: Path
) -> None:
    ids = [
        await submit(env, samples, metadata={"sandbox_fault": "hang_validating"}) for _ in range(10)
    ]
    env.poller.interval = 5.0
    env.sandbox.set_faults({"latency": 0.05, "methods": ["GET"]})
    await env.poller.run_round()
    assert env.poller.stats.max_in_flight == 4
    origin = env.app.client.origin
    assert sorted(env.poller.stats.polls_per_batch) == sorted((origin, i) for i in ids)
    assert set(env.poller.stats.polls_per_batch.values()) == {1}
    # Nothing is due again before its interval has passed.
    await env.poller.run_round()
    assert env.poller.stats.polls == 10


class Clock:
    """The poller's clock, moved by the test instead of waiting out real seconds."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_pauses_polling_for_retry_after(env: Any, samples: Path) -> None:
    env.poller.clock = clock = Clock()
    batch_id = await submit(env, samples, metadata={"sandbox_fault": "hang_validating"})
    env.sandbox.set_faults({"status": 429, "retry_after": 30, "methods": ["GET"], "count": 1})
    await env.poller.run_round()
    assert env.poller.rate_limited_until == clock.now + 30
    assert env.app.store.get(env.app.client.origin, batch_id).poll_error
    status = [m for m in env.posted if isinstance(m, PollStatus)][-1]
    assert not status.ok and "waiting" in (status.error or "")
    env.poller.refresh_now()
    polls = env.poller.stats.polls
    clock.now += 29.9
    await env.poller.run_round()  # still inside Retry-After: no request at all
    assert env.poller.stats.polls == polls
    clock.now += 0.2
    env.poller.refresh_now()
    await env.poller.run_round()
    assert env.poller.stats.polls == polls + 1
    assert env.app.store.get(env.app.client.origin, batch_id).poll_error is None


async def test_errors_back_off_and_pause_stops_polling(env: Any, samples: Path) -> None:
    env.poller.clock = clock = Clock()
    batch_id = await submit(env, samples, metadata={"sandbox_fault": "hang_validating"})
    env.sandbox.set_faults({"status": 500, "methods": ["GET"]})
    await env.poller.run_round()
    pace = env.poller._pace[(env.app.client.origin, batch_id)]
    assert pace.next_due - pace.last_polled >= 0.05 * 2 - 1e-9
    await env.poller.run_round()  # backing off: not due yet
    assert pace.errors == 1
    clock.now = pace.next_due
    await env.poller.run_round()
    assert pace.errors == 2
    assert pace.next_due - pace.last_polled >= 0.05 * 4 - 1e-9  # doubled per error
    env.sandbox.set_faults({})
    env.poller.pause()
    task = run_loop(env)
    try:
        before, loops = env.poller.stats.polls, env.poller.stats.loops
        clock.now += 3600  # long past due: only the pause holds it back
        await until(lambda: env.poller.stats.loops >= loops + 3)
        assert env.poller.stats.polls == before
        env.poller.resume()
        env.poller.refresh_now()
        await until(lambda: env.app.store.get(env.app.client.origin, batch_id).poll_error is None)
    finally:
        env.poller._running = False
        task.cancel()


async def test_auto_download_and_notify_command(env: Any, samples: Path, tmp_path: Path) -> None:
    script = tmp_path / "hook.sh"
    marker = tmp_path / "hook.out"
    script.write_text(f'#!/bin/sh\necho "$1 $2 $FR_TUI_BATCH_STATUS" > {marker}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env.app.config.notify_command = str(script)
    env.app.config.auto_download = True
    batch_id = await submit(env, samples)
    task = run_loop(env)
    try:
        await until(lambda: bool(env.app.store.get(env.app.client.origin, batch_id).output_path))
        await until(marker.exists)
    finally:
        env.poller._running = False
        task.cancel()
    record = env.app.store.get(env.app.client.origin, batch_id)
    assert Path(record.output_path).parent == env.app.paths.results_for(record.origin, batch_id)
    assert Path(record.output_path).read_bytes().count(b"\n") == 12
    await until(lambda: marker.read_text().strip() != "")
    assert marker.read_text().split() == [batch_id, "completed", "completed"]


async def test_watch_polls_a_new_batch_at_once_and_fast(env: Any, samples: Path) -> None:
    env.poller.interval = 30.0
    batch_id = await submit(env, samples, metadata={"sandbox_fault": "hang_validating"})
    task = run_loop(env)
    try:
        await until(lambda: env.poller.stats.polls >= 1)
        key = (env.app.client.origin, batch_id)
        env.poller.watch(*key)
        await until(lambda: env.poller.stats.polls_per_batch[key] >= 2, timeout=3)
    finally:
        env.poller._running = False
        task.cancel()
    assert env.poller.fast < env.poller.base_interval


async def test_two_servers_same_batch_id_are_paced_and_counted_apart(
    env: Any, samples: Path, tmp_path: Path
) -> None:
    """Two servers may hand out the same id: each batch has its own pace (one backing off
    on errors does not hold the other back) and its own count."""
    from test_cost_origins import hand_out

    from fr_tui.sandbox.server import SandboxServer

    batch_id = await submit(env, samples, metadata={"sandbox_fault": "hang_validating"})
    with SandboxServer(state_dir=tmp_path / "other", tick=0.01) as other_server:
        hand_out(other_server, batch_id)
        async with BatchClient(other_server.base_url, SANDBOX_API_KEY) as other:
            clients = {env.app.client.origin: env.app.client, other.origin: other}
            env.app.client_for = lambda record: clients[record.origin]
            twin = await submit_file(
                other, env.app.store, samples / "embeddings.jsonl", profile="other",
                metadata={"sandbox_fault": "hang_validating"},
            )  # fmt: skip
            assert twin.id == batch_id
            other_server.set_faults({"status": 500, "methods": ["GET"]})
            await env.poller.run_round()
            counted = env.poller.stats.polls_per_batch
            assert counted == {(env.app.client.origin, batch_id): 1, (other.origin, batch_id): 1}
            ours = env.poller._pace[(env.app.client.origin, batch_id)]
            theirs = env.poller._pace[(other.origin, batch_id)]
            assert (ours.errors, theirs.errors) == (0, 1)
