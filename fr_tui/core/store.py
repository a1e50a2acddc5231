"""Batch history in sqlite (config dir, history.db).

WAL mode and short transactions so two processes (a CLI `--wait` and the TUI, say) can
use it at once; every call opens its own connection, so worker threads are safe. The
schema version lives in PRAGMA user_version and migrations run in order. A file that is
not a database is moved aside with a message and a fresh one made, never deleted.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fr_tui.core.models import TIMESTAMP_FIELDS, Batch, is_terminal

# Each entry brings the schema from version i to i+1. Never edit a released entry:
# add a new one.
MIGRATIONS: list[str] = [
    # 1: batches
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        profile TEXT,
        base_url TEXT,
        endpoint TEXT,
        input_path TEXT,
        input_sha256 TEXT,
        input_rows INTEGER,
        input_bytes INTEGER,
        input_file_id TEXT,
        status TEXT NOT NULL,
        request_total INTEGER,
        request_completed INTEGER,
        request_failed INTEGER,
        created_at INTEGER, in_progress_at INTEGER, finalizing_at INTEGER,
        completed_at INTEGER, failed_at INTEGER, expired_at INTEGER,
        cancelling_at INTEGER, cancelled_at INTEGER, expires_at INTEGER,
        output_file_id TEXT,
        error_file_id TEXT,
        output_path TEXT,
        error_path TEXT,
        usage_json TEXT,
        metadata_json TEXT,
        submitted_at REAL NOT NULL,
        last_polled_at REAL
    );
    CREATE INDEX batches_status ON batches(status);
    """,
    # 2: lineage, names, errors, cost, notification state, lost create answers
    """
    ALTER TABLE batches ADD COLUMN name TEXT;
    ALTER TABLE batches ADD COLUMN parent_batch_id TEXT;
    ALTER TABLE batches ADD COLUMN errors_json TEXT;
    ALTER TABLE batches ADD COLUMN raw_json TEXT;
    ALTER TABLE batches ADD COLUMN cost REAL;
    ALTER TABLE batches ADD COLUMN poll_error TEXT;
    ALTER TABLE batches ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX batches_parent ON batches(parent_batch_id);
    CREATE TABLE unknown_creates (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        profile TEXT,
        base_url TEXT,
        input_file_id TEXT NOT NULL,
        input_path TEXT,
        endpoint TEXT,
        metadata_json TEXT,
        message TEXT,
        created_at REAL NOT NULL,
        resolved_batch_id TEXT,
        forgotten INTEGER NOT NULL DEFAULT 0
    );
    """,
    # cost (issue 12): each batch's estimate per model at submit, and what it really
    # used and cost once its results are read (core/costlog.py). Amounts are Decimal
    # text, never floats.
    """
    CREATE TABLE batch_models (
        batch_id TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT,
        rows INTEGER NOT NULL DEFAULT 0,
        est_input_tokens INTEGER,
        est_input_tokens_raw INTEGER,
        est_output_tokens_low INTEGER,
        est_output_tokens_max INTEGER,
        est_cost_low TEXT,
        est_cost_high TEXT,
        price_source TEXT,
        ok_rows INTEGER,
        actual_input_tokens INTEGER,
        actual_output_tokens INTEGER,
        actual_output_median INTEGER,
        actual_cost TEXT,
        actual_cost_source TEXT,
        actual_at REAL,
        PRIMARY KEY (batch_id, model)
    );
    CREATE INDEX batch_models_model ON batch_models(model, actual_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    pass


@dataclass
class BatchRecord:
    id: str
    status: str
    profile: str | None = None
    base_url: str | None = None
    endpoint: str | None = None
    name: str | None = None
    input_path: str | None = None
    input_sha256: str | None = None
    input_rows: int | None = None
    input_bytes: int | None = None
    input_file_id: str | None = None
    request_total: int | None = None
    request_completed: int | None = None
    request_failed: int | None = None
    timestamps: dict[str, int | None] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    usage: dict[str, Any] | None = None
    cost: float | None = None
    metadata: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    parent_batch_id: str | None = None
    submitted_at: float = 0.0
    last_polled_at: float | None = None
    poll_error: str | None = None
    notified: bool = False

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def created_at(self) -> int | None:
        return self.timestamps.get("created_at") or int(self.submitted_at) or None

    @property
    def has_counts(self) -> bool:
        return self.request_total is not None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.input_path:
            return Path(self.input_path).name
        return self.id

    def to_dict(self) -> dict[str, Any]:
        counts = (
            {
                "total": self.request_total,
                "completed": self.request_completed,
                "failed": self.request_failed,
            }
            if self.has_counts
            else None
        )
        return {
            "id": self.id,
            "status": self.status,
            "name": self.name,
            "profile": self.profile,
            "endpoint": self.endpoint,
            "input_path": self.input_path,
            "input_rows": self.input_rows,
            "input_file_id": self.input_file_id,
            "request_counts": counts,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "output_path": self.output_path,
            "error_path": self.error_path,
            "usage": self.usage,
            "cost": self.cost,
            "metadata": self.metadata,
            "errors": self.errors,
            "parent_batch_id": self.parent_batch_id,
            **self.timestamps,
        }


@dataclass
class UnknownCreate:
    rowid: int
    input_file_id: str
    profile: str | None
    base_url: str | None
    input_path: str | None
    endpoint: str | None
    metadata: dict[str, Any] | None
    message: str | None
    created_at: float


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _record(row: sqlite3.Row) -> BatchRecord:
    keys = row.keys()
    return BatchRecord(
        id=row["id"],
        status=row["status"],
        profile=row["profile"],
        base_url=row["base_url"],
        endpoint=row["endpoint"],
        name=row["name"],
        input_path=row["input_path"],
        input_sha256=row["input_sha256"],
        input_rows=row["input_rows"],
        input_bytes=row["input_bytes"],
        input_file_id=row["input_file_id"],
        request_total=row["request_total"],
        request_completed=row["request_completed"],
        request_failed=row["request_failed"],
        timestamps={name: row[name] for name in TIMESTAMP_FIELDS if name in keys},
        output_file_id=row["output_file_id"],
        error_file_id=row["error_file_id"],
        output_path=row["output_path"],
        error_path=row["error_path"],
        usage=_loads(row["usage_json"]),
        cost=row["cost"],
        metadata=_loads(row["metadata_json"]),
        errors=_loads(row["errors_json"]) or [],
        raw=_loads(row["raw_json"]) or {},
        parent_batch_id=row["parent_batch_id"],
        submitted_at=row["submitted_at"],
        last_polled_at=row["last_polled_at"],
        poll_error=row["poll_error"],
        notified=bool(row["notified"]),
    )


def _api_columns(batch: Batch) -> dict[str, Any]:
    """The columns that come from the API's batch object."""
    counts = batch.request_counts
    values: dict[str, Any] = {
        "status": batch.status,
        "request_total": counts.total if counts else None,
        "request_completed": counts.completed if counts else None,
        "request_failed": counts.failed if counts else None,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "usage_json": _dumps(batch.usage),
        "cost": batch.cost,
        "errors_json": _dumps(
            [
                {"code": e.code, "message": e.message, "line": e.line, "param": e.param}
                for e in batch.errors
            ]
        ),
        "raw_json": _dumps(batch.raw),
    }
    if batch.endpoint:
        values["endpoint"] = batch.endpoint
    if batch.input_file_id:
        values["input_file_id"] = batch.input_file_id
    if batch.metadata is not None:
        values["metadata_json"] = _dumps(batch.metadata)
    for name, value in batch.timestamps.items():
        values[name] = value
    return values


class HistoryStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.notice: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._migrate_when_free()
        except sqlite3.DatabaseError as exc:
            # Only a damaged file is moved aside; a locked, read-only or unreachable one is
            # reported and left as it is (moving it would hide the user's history).
            text = str(exc).lower()
            if not ("not a database" in text or "malformed" in text or "corrupt" in text):
                raise StoreError(f"cannot use the history {self.path}: {exc}") from None
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self.notice = (
                f"The history file was damaged ({exc}); it was moved to {aside} "
                "and a fresh history started."
            )
            self._migrate()

    def _migrate_when_free(self) -> None:
        # Switching to WAL needs a moment alone with the file, and sqlite does not always
        # wait for it: when two processes open a new history at once, one waits here.
        for _ in range(100):
            try:
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.05)
        self._migrate()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            yield conn
        finally:
            conn.close()

    def connection(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection for modules that keep tables of their own here (costlog.py)."""
        return self._connect()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"history {self.path} is from a newer fr-tui (schema {version}); upgrade fr-tui"
                )
            if version == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read inside the lock: another process may have migrated meanwhile.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for index in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[index].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ----------------------------------------------------------------- writes

    def record_created(
        self,
        batch: Batch,
        *,
        profile: str | None = None,
        base_url: str | None = None,
        input_path: str | None = None,
        input_sha256: str | None = None,
        input_rows: int | None = None,
        input_bytes: int | None = None,
        name: str | None = None,
        parent_batch_id: str | None = None,
    ) -> BatchRecord:
        """Called the moment the create call returns, before anything else."""
        values = _api_columns(batch)
        values.update(
            id=batch.id,
            profile=profile,
            base_url=base_url,
            input_path=input_path,
            input_sha256=input_sha256,
            input_rows=input_rows,
            input_bytes=input_bytes,
            name=name,
            parent_batch_id=parent_batch_id,
            submitted_at=time.time(),
        )
        if values.get("metadata_json") is None and batch.metadata is None:
            values["metadata_json"] = None
        self._upsert(values)
        record = self.get(batch.id)
        assert record is not None
        return record

    def import_batch(self, batch: Batch, *, profile: str | None, base_url: str | None) -> None:
        """A batch submitted elsewhere (found through list): add it without overwriting."""
        if self.get(batch.id) is not None:
            return
        values = _api_columns(batch)
        parent = (batch.metadata or {}).get("parent_batch_id")
        values.update(
            id=batch.id,
            profile=profile,
            base_url=base_url,
            parent_batch_id=parent if isinstance(parent, str) else None,
            submitted_at=float(batch.created_at or time.time()),
        )
        self._upsert(values)

    def _upsert(self, values: dict[str, Any]) -> None:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "id")
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO batches ({columns}) VALUES ({marks}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                list(values.values()),
            )

    def update_from_api(self, batch: Batch) -> tuple[str | None, str]:
        """Store a polled batch object; returns (old status, new status)."""
        values = _api_columns(batch)
        values["last_polled_at"] = time.time()
        values["poll_error"] = None
        assignments = ", ".join(f"{c} = ?" for c in values)
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM batches WHERE id = ?", (batch.id,)).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO batches (id, submitted_at, {', '.join(values)}) "
                    f"VALUES (?, ?, {', '.join('?' for _ in values)})",
                    [batch.id, time.time(), *values.values()],
                )
                return None, batch.status
            conn.execute(
                f"UPDATE batches SET {assignments} WHERE id = ?", [*values.values(), batch.id]
            )
            return row["status"], batch.status

    def mark_poll_error(self, batch_id: str, message: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE batches SET poll_error = ?, last_polled_at = ? WHERE id = ?",
                (message, time.time(), batch_id),
            )

    def mark_notified(self, batch_id: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE batches SET notified = 1 WHERE id = ?", (batch_id,))

    def set_result_paths(
        self, batch_id: str, output_path: str | None, error_path: str | None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE batches SET output_path = ?, error_path = ? WHERE id = ?",
                (output_path, error_path, batch_id),
            )

    def rename(self, batch_id: str, name: str | None) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE batches SET name = ? WHERE id = ?", (name, batch_id))

    def forget(self, batch_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    # ----------------------------------------------------------------- reads

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return _record(row) if row else None

    def batches(self, limit: int | None = None) -> list[BatchRecord]:
        sql = "SELECT * FROM batches ORDER BY COALESCE(created_at, submitted_at) DESC, rowid DESC"
        with self._connect() as conn:
            if limit:
                rows = conn.execute(sql + " LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(sql).fetchall()
        return [_record(r) for r in rows]

    def active(self) -> list[BatchRecord]:
        return [r for r in self.batches() if not r.terminal]

    def children(self, batch_id: str) -> list[BatchRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM batches WHERE parent_batch_id = ? ORDER BY submitted_at",
                (batch_id,),
            ).fetchall()
        return [_record(r) for r in rows]

    # ----------------------------------------------------------------- lost creates

    def record_unknown_create(
        self,
        *,
        input_file_id: str,
        profile: str | None,
        base_url: str | None,
        input_path: str | None,
        endpoint: str | None,
        metadata: dict[str, Any] | None,
        message: str,
    ) -> int:
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO unknown_creates (profile, base_url, input_file_id, input_path, "
                "endpoint, metadata_json, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    profile,
                    base_url,
                    input_file_id,
                    input_path,
                    endpoint,
                    _dumps(metadata),
                    message,
                    time.time(),
                ),
            )
            return int(cursor.lastrowid or 0)

    def unknown_creates(self) -> list[UnknownCreate]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM unknown_creates WHERE resolved_batch_id IS NULL AND forgotten = 0 "
                "ORDER BY created_at DESC"
            ).fetchall()
        return [
            UnknownCreate(
                rowid=r["rowid"],
                input_file_id=r["input_file_id"],
                profile=r["profile"],
                base_url=r["base_url"],
                input_path=r["input_path"],
                endpoint=r["endpoint"],
                metadata=_loads(r["metadata_json"]),
                message=r["message"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def resolve_unknown(self, rowid: int, batch_id: str | None) -> None:
        """batch_id: the batch found for it; None forgets the record."""
        with self._tx() as conn:
            if batch_id:
                conn.execute(
                    "UPDATE unknown_creates SET resolved_batch_id = ? WHERE rowid = ?",
                    (batch_id, rowid),
                )
            else:
                conn.execute("UPDATE unknown_creates SET forgotten = 1 WHERE rowid = ?", (rowid,))
