"""Issue 9, the machinery under cases 1-4: history migration to (origin, id) keys and
intents, durable intent writes, and reconcile's look-up of interrupted submits, against
the sandbox."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import KEY, SAMPLES

from fr_tui.core.api import BatchClient
from fr_tui.core.intents import CREATING, UNKNOWN, Intent, IntentLog, new_token
from fr_tui.core.reconcile import reconcile
from fr_tui.core.store import MIGRATIONS, HistoryStore


def test_old_history_rows_get_their_origin(tmp_path: Path) -> None:
    """Migration 3: a history made before origins (schema 2) keeps every row, keyed by
    where it came from; the old 'outcome unknown' rows become unknown intents."""
    db = tmp_path / "h.db"
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    rows = [
        ("b1", "default", "https://api.fastrouter.ai"),
        ("b2", "sandbox", "http://127.0.0.1:43210"),
        ("b3", "local", "http://127.0.0.1:45999"),  # a custom sandbox profile, in the TUI
        ("b4", "dev", "http://127.0.0.1:8787"),  # `fr-tui sandbox` run by hand
        ("b5", None, None),  # `status` of a batch not submitted here
    ]
    for batch_id, profile, base_url in rows:
        conn.execute(
            "INSERT INTO batches (id, profile, base_url, status, submitted_at) "
            "VALUES (?, ?, ?, 'completed', 1)",
            (batch_id, profile, base_url),
        )
    conn.execute(
        "INSERT INTO unknown_creates (profile, base_url, input_file_id, input_path, message, "
        "created_at) VALUES ('sandbox', 'http://127.0.0.1:40000', 'file-1', '/x.jsonl', 'lost', 1)"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    store = HistoryStore(db)
    origins = {r.id: r.origin for r in store.batches()}
    assert origins == {
        "b1": "https://api.fastrouter.ai",
        "b2": "sandbox",
        "b3": "sandbox",
        "b4": "http://127.0.0.1:8787",
        "b5": "",
    }
    [unknown] = IntentLog(store).unknown()
    assert (unknown.origin, unknown.input_file_id, unknown.state) == ("sandbox", "file-1", UNKNOWN)


# ----------------------------------------------------------------- reconcile, in detail


def dead_creating_intent(store: HistoryStore, origin: str, file_id: str, age: float) -> Intent:
    intents = IntentLog(store)
    intent = Intent(token=new_token(), origin=origin, input_path="/in.jsonl")
    intents.add(intent)
    intents.set_state(intent.token, CREATING, input_file_id=file_id)
    with store.transaction() as conn:
        conn.execute(
            "UPDATE intents SET updated_at = ? WHERE token = ?", (time.time() - age, intent.token)
        )
    return intent


async def test_a_create_the_server_has_not_listed_yet_is_not_declared_absent(
    sandbox: Any, tmp_path: Path
) -> None:
    """A listing made while the server may still be acting on the create proves nothing:
    the intent stays unknown, and is resolved once the batch shows up."""
    store = HistoryStore(tmp_path / "h.db")
    async with BatchClient(sandbox.base_url, KEY) as client:
        uploaded = await client.upload_file(SAMPLES / "chat.jsonl")
        intent = dead_creating_intent(store, client.origin, uploaded.id, age=1)
        [early] = await reconcile(client, store)
        assert early.state == UNKNOWN
        batch = await client.create_batch(uploaded.id, "/v1/chat/completions")
        [found] = await reconcile(client, store)
    assert found.state == "resolved" and found.batch is not None and found.batch.id == batch.id
    assert [r.id for r in store.batches()] == [batch.id]
    assert IntentLog(store).get(intent.token).state == "resolved"  # type: ignore[union-attr]


async def test_a_complete_listing_without_it_settles_an_old_create(
    sandbox: Any, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    async with BatchClient(sandbox.base_url, KEY) as client:
        for _ in range(3):  # more than one page: the look-up reads them all
            uploaded = await client.upload_file(SAMPLES / "chat.jsonl")
            await client.create_batch(uploaded.id, "/v1/chat/completions")
        dead_creating_intent(store, client.origin, "file-never-made", age=3600)
        client_pages: list[int] = []
        real = client.list_batches

        async def small_pages(limit: int = 100, after: str | None = None) -> Any:
            client_pages.append(1)
            return await real(limit=1, after=after)

        client.list_batches = small_pages  # type: ignore[method-assign]
        [outcome] = await reconcile(client, store)
    assert outcome.state == "not_created" and len(client_pages) == 3
    assert store.batches() == []


async def test_a_live_submit_is_left_alone_and_another_server_waits(
    sandbox: Any, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    intents = IntentLog(store)
    async with BatchClient(sandbox.base_url, KEY) as client:
        alive = dead_creating_intent(store, client.origin, "file-x", age=3600)
        lock = intents.lock_for(alive.token)
        assert lock.acquire(wait=False)  # its owner is running
        elsewhere = dead_creating_intent(store, "https://elsewhere.example", "file-y", age=3600)
        try:
            assert await reconcile(client, store) == []
        finally:
            lock.release()
        assert intents.get(elsewhere.token).state == CREATING  # type: ignore[union-attr]
        [outcome] = await reconcile(client, store)
    assert outcome.intent.token == alive.token and outcome.state == "not_created"


def test_intent_writes_are_synchronous_full(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    with store.transaction(durable=True) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("state", ["prepared", "uploaded"])
async def test_a_submit_that_died_before_the_create_is_abandoned_quietly(
    state: str, sandbox: Any, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "h.db")
    intents = IntentLog(store)
    intent = Intent(token=new_token(), origin="x", state=state)
    intents.add(intent)
    async with BatchClient(sandbox.base_url, KEY, origin="x") as client:
        [outcome] = await reconcile(client, store)
    assert outcome.state == "abandoned" and outcome.line() is None
    assert intents.get(intent.token).state == "abandoned"  # type: ignore[union-attr]
    assert not (store.path.parent / "locks" / f"intent-{intent.token}.lock").exists()
