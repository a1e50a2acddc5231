"""Create intents: the wish to create a batch, written to history before anything is sent.

Every batch fr-tui creates (a submit, a retry, later each batch of a job) goes through one
intent, so whatever kills the process, the next start finds what it was doing:

    prepared  -> uploaded  -> creating  -> done        (batch_id; same transaction as the
    (before     (input_file   (committed               batch record)
     upload)     _id known)    before the   -> refused     (a clear refusal: no batch)
                               request)     -> unknown     (the create may have happened)
                                                -> resolved    (found on the server, recorded)
                                                -> not_created (a complete listing lacks it)
                                                -> forgotten   (the user said so)
    prepared/uploaded -> abandoned  (stopped before the create was sent: no batch can exist)

The token (`secrets.token_hex(8)`) also goes into the batch's metadata under SUBMIT_KEY, so
an intent can be matched to the server's batch by listing. The process driving an intent
holds the lock `locks/intent-<token>.lock` (core.locks) for the whole submit: an intent
whose lock can be taken has no living owner.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fr_tui.core.costlog import write_estimate
from fr_tui.core.locks import WorkLock, lock_path
from fr_tui.core.models import Batch
from fr_tui.core.records import BatchRecord, dumps_json, loads_json
from fr_tui.core.store import HistoryStore

SUBMIT_KEY = "fr_tui_submit"

PREPARED = "prepared"
UPLOADED = "uploaded"
CREATING = "creating"
DONE = "done"
REFUSED = "refused"
ABANDONED = "abandoned"
UNKNOWN = "unknown"
RESOLVED = "resolved"
NOT_CREATED = "not_created"
FORGOTTEN = "forgotten"

# Not finished: a process is (or was, until it died) working on these.
IN_FLIGHT = frozenset({PREPARED, UPLOADED, CREATING})
# The create may have happened and no batch is recorded for it yet.
UNRESOLVED = frozenset({CREATING, UNKNOWN})
FINAL = frozenset({DONE, REFUSED, ABANDONED, RESOLVED, NOT_CREATED, FORGOTTEN})


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass
class Intent:
    token: str
    origin: str
    state: str = PREPARED
    profile: str | None = None
    input_path: str | None = None
    input_sha256: str | None = None
    input_bytes: int | None = None
    rows: int | None = None
    endpoint: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    parent_batch_id: str | None = None
    input_file_id: str | None = None
    batch_id: str | None = None
    message: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    # Set by jobs: which part and round of which job this batch is.
    job_id: str | None = None
    job_part: int | None = None
    job_round: int | None = None
    # The submit's estimate per model (costlog.estimate_rows): the batch's estimate once
    # it exists, however it comes to be recorded (the answer, or a reconcile).
    estimate: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.input_path:
            return Path(self.input_path).name
        return self.input_file_id or self.token

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "origin": self.origin,
            "state": self.state,
            "profile": self.profile,
            "input_path": self.input_path,
            "input_sha256": self.input_sha256,
            "input_file_id": self.input_file_id,
            "batch_id": self.batch_id,
            "endpoint": self.endpoint,
            "name": self.name,
            "message": self.message,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "job_id": self.job_id,
            "job_part": self.job_part,
            "job_round": self.job_round,
        }


_COLUMNS = [
    "token",
    "origin",
    "state",
    "profile",
    "input_path",
    "input_sha256",
    "input_bytes",
    "rows",
    "endpoint",
    "metadata_json",
    "name",
    "parent_batch_id",
    "input_file_id",
    "batch_id",
    "message",
    "created_at",
    "updated_at",
    "job_id",
    "job_part",
    "job_round",
    "estimate_json",
]
_JSON = {"metadata_json": "metadata", "estimate_json": "estimate"}


def _intent(row: sqlite3.Row) -> Intent:
    values = {c: row[c] for c in _COLUMNS if c not in _JSON}
    return Intent(
        metadata=loads_json(row["metadata_json"]) or {},
        estimate=loads_json(row["estimate_json"]),
        **values,
    )


class IntentLog:
    """The intents table of one history. Every write is durable (synchronous=FULL)."""

    def __init__(self, store: HistoryStore, locks_dir: Path | None = None) -> None:
        self.store = store
        self.locks_dir = locks_dir or store.path.parent / "locks"

    def lock_for(self, token: str) -> WorkLock:
        return WorkLock(lock_path(self.locks_dir, "intent", token))

    # ----------------------------------------------------------------- writes

    def add(
        self, intent: Intent, *, check: Callable[[sqlite3.Connection], None] | None = None
    ) -> Intent:
        """Write the intent, durably. `check(conn)` runs first in the same transaction and
        may raise to write nothing: what it reads cannot change before the intent is in
        (the duplicate check of a submit: two submits of one file at once, one refused)."""
        now = time.time()
        intent.created_at = intent.created_at or now
        intent.updated_at = now
        values = {c: getattr(intent, c) for c in _COLUMNS if c not in _JSON}
        values.update({c: dumps_json(getattr(intent, name)) for c, name in _JSON.items()})
        with self.store.transaction(durable=True) as conn:
            if check is not None:
                check(conn)
            conn.execute(
                f"INSERT INTO intents ({', '.join(values)}) "
                f"VALUES ({', '.join('?' for _ in values)})",
                list(values.values()),
            )
        return intent

    def set_state(
        self,
        token: str,
        state: str,
        *,
        conn: sqlite3.Connection | None = None,
        **columns: Any,
    ) -> None:
        """Move an intent on (input_file_id=, batch_id=, message= as known)."""
        columns = {"state": state, "updated_at": time.time(), **columns}
        sql = f"UPDATE intents SET {', '.join(f'{c} = ?' for c in columns)} WHERE token = ?"
        if conn is not None:
            conn.execute(sql, [*columns.values(), token])
            return
        with self.store.transaction(durable=True) as own:
            own.execute(sql, [*columns.values(), token])

    def _record(
        self, conn: sqlite3.Connection, intent: Intent, batch: Batch, base_url: str | None
    ) -> BatchRecord:
        """The batch record an intent made, with what the intent knew of its input and
        its estimate."""
        if intent.estimate:
            write_estimate(conn, intent.origin, batch.id, intent.estimate)
        return self.store.record_created(
            batch,
            origin=intent.origin,
            profile=intent.profile,
            base_url=base_url,
            input_path=intent.input_path,
            input_sha256=intent.input_sha256,
            input_rows=intent.rows,
            input_bytes=intent.input_bytes,
            name=intent.name,
            parent_batch_id=intent.parent_batch_id,
            conn=conn,
        )

    def complete(self, intent: Intent, batch: Batch, *, base_url: str | None) -> BatchRecord:
        """The create answered: the batch record and `done`, in one transaction."""
        with self.store.transaction(durable=True) as conn:
            record = self._record(conn, intent, batch, base_url)
            self.set_state(intent.token, DONE, batch_id=batch.id, conn=conn)
        intent.state, intent.batch_id = DONE, batch.id
        return record

    def resolve(self, intent: Intent, batch: Batch, *, base_url: str | None) -> bool:
        """A lost create found on the server: recorded once (never over a record that is
        already there) and the intent `resolved`, in one transaction. Returns whether a
        record was added."""
        with self.store.transaction(durable=True) as conn:
            row = conn.execute("SELECT state FROM intents WHERE token = ?", (intent.token,))
            current = row.fetchone()
            if current is None or current["state"] in FINAL:
                return False
            known = conn.execute(
                "SELECT 1 FROM batches WHERE origin = ? AND id = ?", (intent.origin, batch.id)
            ).fetchone()
            if known is None:
                self._record(conn, intent, batch, base_url)
            self.set_state(intent.token, RESOLVED, batch_id=batch.id, conn=conn)
        intent.state, intent.batch_id = RESOLVED, batch.id
        return known is None

    def forget(self, token: str) -> None:
        self.set_state(token, FORGOTTEN)

    # ----------------------------------------------------------------- reads

    def get(self, token: str) -> Intent | None:
        rows = self.store.rows("SELECT * FROM intents WHERE token = ?", (token,))
        return _intent(rows[0]) if rows else None

    def in_states(
        self,
        states: frozenset[str],
        origin: str | None = None,
        *,
        conn: sqlite3.Connection | None = None,
    ) -> list[Intent]:
        """Intents in these states (of one origin, if given), newest first."""
        marks = ", ".join("?" for _ in states)
        sql = f"SELECT * FROM intents WHERE state IN ({marks})"
        params: list[Any] = sorted(states)
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        rows = self.store.rows(sql + " ORDER BY created_at DESC", params, conn=conn)
        return [_intent(r) for r in rows]

    def unknown(self, origin: str | None = None) -> list[Intent]:
        """Creates whose outcome is not known: what `list` and the Batches screen show."""
        return self.in_states(frozenset({UNKNOWN}), origin)

    def for_job(self, job_id: str) -> list[Intent]:
        with self.store._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM intents WHERE job_id = ? ORDER BY created_at", (job_id,)
            ).fetchall()
        return [_intent(r) for r in rows]
