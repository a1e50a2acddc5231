"""History store: concurrency, crash safety, corruption and migrations."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fr_tui.core.models import Batch
from fr_tui.core.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore


def batch(i: int, status: str = "validating", **extra: object) -> Batch:
    return Batch.parse(
        {"id": f"fr_batch-{i}", "status": status, "created_at": 1_700_000_000 + i, **extra}
    )


def test_record_and_update_keep_local_fields(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    store.record_created(
        batch(1), origin="o", profile="p", input_path="/x/in.jsonl", input_rows=3, name="first"
    )
    old, new = store.update_from_api(
        batch(
            1,
            "completed",
            request_counts={"total": 3, "completed": 2, "failed": 1},
            output_file_id="out",
            usage={"cost": 0.5},
        ),
        origin="o",
    )
    assert (old, new) == ("validating", "completed")
    record = store.get("o", "fr_batch-1")
    assert record is not None
    assert record.name == "first" and record.input_rows == 3 and record.profile == "p"
    assert (record.request_total, record.request_failed, record.cost) == (3, 1, 0.5)
    assert record.terminal and store.active() == []


def test_lineage(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    store.record_created(batch(1, "completed"), origin="o")
    store.record_created(batch(2), origin="o", parent_batch_id="fr_batch-1")
    assert [c.id for c in store.children("o", "fr_batch-1")] == ["fr_batch-2"]


WRITER = """
import sys
from fr_tui.core.models import Batch
from fr_tui.core.store import HistoryStore
store = HistoryStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.record_created(
        Batch.parse({"id": f"{sys.argv[2]}-{i}", "status": "validating"}), origin="o"
    )
    store.update_from_api(
        Batch.parse({"id": f"{sys.argv[2]}-{i}", "status": "in_progress"}), origin="o"
    )
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, "60"]) for name in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    records = HistoryStore(db).batches()
    assert len(records) == 120 and {r.status for r in records} == {"in_progress"}


def test_process_killed_mid_poll_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    loop = WRITER.replace("int(sys.argv[3])", "10**9")
    proc = subprocess.Popen([sys.executable, "-c", loop, str(db), "k", "0"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db.exists() and len(HistoryStore(db).batches()) >= 20:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = HistoryStore(db)
    assert store.notice is None
    records = store.batches()
    assert len(records) >= 20
    # Every committed create is whole: nothing half-written.
    assert all(r.status in ("validating", "in_progress") for r in records)


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    db.write_bytes(b"this is not a database" * 100)
    store = HistoryStore(db)
    assert store.notice and "moved" in store.notice
    assert list(tmp_path.glob("h.db.corrupt-*"))
    store.record_created(batch(1), origin="o")
    assert store.get("o", "fr_batch-1") is not None


def test_migration_from_an_older_schema(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO batches (id, status, submitted_at) VALUES ('fr_batch-old', 'completed', 1)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = HistoryStore(db)
    old = store.get("", "fr_batch-old")  # no base URL recorded: origin unknown
    assert old is not None and old.status == "completed" and old.parent_batch_id is None
    store.record_created(batch(2), origin="", parent_batch_id="fr_batch-old")
    assert [c.id for c in store.children("", "fr_batch-old")] == ["fr_batch-2"]
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_reported_not_replaced(tmp_path: Path) -> None:
    import pytest

    from fr_tui.core.store import StoreError

    db = tmp_path / "h.db"
    HistoryStore(db).record_created(batch(1), origin="o")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer fr-tui"):
        HistoryStore(db)
    assert not list(tmp_path.glob("h.db.corrupt-*"))  # the user's history stays where it is


def test_history_written_before_origins_were_normalised_still_matches(tmp_path: Path) -> None:
    """A server once written `https://API.Example.com:443` is the same server as
    `https://api.example.com`: its records, intents and costs are found under the one
    origin a client now has."""
    from fr_tui.core.costlog import batch_costs
    from fr_tui.core.intents import IntentLog
    from fr_tui.core.schema import NORMALISE_ORIGINS

    db = tmp_path / "h.db"
    before = MIGRATIONS.index(NORMALISE_ORIGINS)  # the history as it was before it
    with sqlite3.connect(db) as conn:
        for script in MIGRATIONS[:before]:
            conn.executescript(script)
        old = "https://API.Example.com:443"
        conn.execute(
            "INSERT INTO batches (origin, id, status, submitted_at) VALUES (?, 'b1', 'done', 1)",
            (old,),
        )
        conn.execute(
            "INSERT INTO batches (origin, id, status, submitted_at) "
            "VALUES ('sandbox', 'b2', 'done', 1)"
        )
        conn.execute(
            "INSERT INTO intents (token, origin, state, created_at, updated_at) "
            "VALUES ('t1', ?, 'unknown', 1, 1)",
            (old,),
        )
        conn.execute(
            "INSERT INTO batch_models (origin, batch_id, model) VALUES (?, 'b1', 'm')", (old,)
        )
        conn.execute(f"PRAGMA user_version = {before}")
    store = HistoryStore(db)
    assert store.get("https://api.example.com", "b1") is not None
    assert store.get("sandbox", "b2") is not None
    assert [i.token for i in IntentLog(store).unknown("https://api.example.com")] == ["t1"]
    assert batch_costs(store, [("https://api.example.com", "b1")])


def test_a_history_that_cannot_be_migrated_says_so(tmp_path: Path) -> None:
    """A writable history whose migration fails is not 'read-only and from another
    fr-tui': it says that bringing it up to date failed, and why, and is left as it is."""
    import pytest

    from fr_tui.core.store import StoreError

    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        for script in MIGRATIONS[:3]:
            conn.executescript(script)
        conn.execute("CREATE TABLE batch_models (x)")  # what another branch's schema 3 had
        conn.execute("PRAGMA user_version = 3")
    with pytest.raises(StoreError) as caught:
        HistoryStore(db, read_only=None)
    message = str(caught.value)
    assert "could not be updated" in message and "batch_models" in message, message
    assert "read-only" not in message
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3  # left as it was
