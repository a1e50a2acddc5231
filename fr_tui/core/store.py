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
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fr_tui.core.config import origin_for
from fr_tui.core.models import Batch
from fr_tui.core.records import BatchRecord, api_columns, record_from_row
from fr_tui.core.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "BatchRecord", "HistoryStore", "StoreError"]


class StoreError(Exception):
    pass


class HistoryWriteError(StoreError):
    """The history cannot be written (a read-only folder or file, a full disk...)."""


class MigrationError(StoreError):
    """A writable history could not be brought to this fr-tui's schema (it is left as it
    was): never shown as merely read-only."""


def _is_write_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(
        word in text
        for word in ("readonly", "read-only", "unable to open", "disk is full", "disk i/o")
    )


def _prepare(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.create_function("fr_origin", 1, origin_for, deterministic=True)


class HistoryStore:
    """`read_only=None` (the default) opens the history for writing, or read-only when it
    cannot be written (`read_only` then says so and `notice` explains); True and False
    force one or the other (False raises StoreError when it cannot be written)."""

    def __init__(self, path: str | Path, *, read_only: bool | None = False) -> None:
        self.path = Path(path)
        self.notice: str | None = None
        self.read_only = bool(read_only)
        if self.read_only:
            self._check_readable()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open_for_writing()
        except MigrationError:
            raise
        except (StoreError, OSError) as exc:
            if read_only is not None:
                if isinstance(exc, OSError):
                    raise StoreError(f"cannot use the history {self.path}: {exc}") from None
                raise
            self.read_only = True
            self._check_readable()
            self.notice = (
                f"The history {self.path} cannot be written ({exc}); it is shown read-only "
                "and nothing new can be recorded."
            )

    def _open_for_writing(self) -> None:
        try:
            self._migrate_when_free()
        except sqlite3.DatabaseError as exc:
            # Only a damaged file is moved aside; a locked, read-only or unreachable one is
            # reported and left as it is (moving it would hide the user's history).
            text = str(exc).lower()
            if not ("not a database" in text or "malformed" in text or "corrupt" in text):
                busy = "locked" in text or "busy" in text
                if isinstance(exc, sqlite3.OperationalError) and not (
                    busy or _is_write_failure(exc)
                ):
                    raise MigrationError(
                        f"the history {self.path} could not be updated to this fr-tui's "
                        f"schema {SCHEMA_VERSION} ({exc}); it was left as it was"
                    ) from None
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

    def _check_readable(self) -> None:
        if not self.path.exists():
            return  # an empty history: every read answers nothing
        try:
            with self._connect() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history {self.path}: {exc}") from None
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"the history {self.path} is read-only and from another fr-tui "
                f"(schema {version}, this one reads {SCHEMA_VERSION})"
            )

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

    def _open(self) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.OperationalError:
            # A WAL history in a folder we cannot write: sqlite cannot make its shared-
            # memory file, so read the file as it is (nobody can be writing it either).
            return sqlite3.connect(
                uri + "&immutable=1", uri=True, timeout=10.0, isolation_level=None
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.read_only and not self.path.exists():
            conn = sqlite3.connect(":memory:", isolation_level=None)
            _prepare(conn)
            try:
                for index in range(SCHEMA_VERSION):
                    conn.executescript(MIGRATIONS[index])
                yield conn
            finally:
                conn.close()
            return
        conn = self._open()
        _prepare(conn)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            yield conn
        finally:
            conn.close()

    def connection(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection for modules that keep tables of their own here (costlog.py)."""
        return self._connect()

    def rows(
        self, sql: str, params: Any = (), *, conn: sqlite3.Connection | None = None
    ) -> list[sqlite3.Row]:
        """One query's rows, on `conn` (inside a caller's transaction) or a connection of
        its own."""
        if conn is not None:
            return conn.execute(sql, params).fetchall()
        with self._connect() as own:
            return own.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. `durable`: committed to the disk itself before this
        returns (synchronous=FULL: in WAL mode NORMAL may lose the last commits on a power
        cut), for what must survive one: intents and the records they become."""
        if self.read_only:
            raise HistoryWriteError(f"the history {self.path} is read-only")
        try:
            with self._connect() as conn:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if _is_write_failure(exc):
                raise HistoryWriteError(f"cannot write the history {self.path}: {exc}") from None
            raise

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
        origin: str,
        profile: str | None = None,
        base_url: str | None = None,
        input_path: str | None = None,
        input_sha256: str | None = None,
        input_rows: int | None = None,
        input_bytes: int | None = None,
        name: str | None = None,
        parent_batch_id: str | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> BatchRecord:
        """The batch a create call just returned. `conn`: inside that transaction (the
        intent that made the batch is marked done in the same one)."""
        values = api_columns(batch)
        values.update(
            origin=origin,
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

        def write(conn: sqlite3.Connection) -> BatchRecord:
            self._upsert(conn, values)
            row = conn.execute(
                "SELECT * FROM batches WHERE origin = ? AND id = ?", (origin, batch.id)
            ).fetchone()
            return record_from_row(row)

        if conn is not None:
            return write(conn)
        with self.transaction(durable=True) as own:
            return write(own)

    def import_batch(
        self,
        batch: Batch,
        *,
        origin: str,
        profile: str | None,
        base_url: str | None,
        conn: sqlite3.Connection | None = None,
    ) -> bool:
        """A batch submitted elsewhere (found through list): add it without overwriting.
        Returns whether it was added."""
        if conn is None:
            with self.transaction(durable=True) as own:
                return self.import_batch(
                    batch, origin=origin, profile=profile, base_url=base_url, conn=own
                )
        known = conn.execute(
            "SELECT 1 FROM batches WHERE origin = ? AND id = ?", (origin, batch.id)
        ).fetchone()
        if known is not None:
            return False
        values = api_columns(batch)
        parent = (batch.metadata or {}).get("parent_batch_id")
        values.update(
            origin=origin,
            id=batch.id,
            profile=profile,
            base_url=base_url,
            parent_batch_id=parent if isinstance(parent, str) else None,
            submitted_at=float(batch.created_at or time.time()),
        )
        self._upsert(conn, values)
        return True

    @staticmethod
    def _upsert(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c not in ("origin", "id"))
        conn.execute(
            f"INSERT INTO batches ({columns}) VALUES ({marks}) "
            f"ON CONFLICT(origin, id) DO UPDATE SET {updates}",
            list(values.values()),
        )

    def update_from_api(self, batch: Batch, *, origin: str) -> tuple[str | None, str]:
        """Store a polled batch object; returns (old status, new status)."""
        values = api_columns(batch)
        values["last_polled_at"] = time.time()
        values["poll_error"] = None
        assignments = ", ".join(f"{c} = ?" for c in values)
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status FROM batches WHERE origin = ? AND id = ?", (origin, batch.id)
            ).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO batches (origin, id, submitted_at, {', '.join(values)}) "
                    f"VALUES (?, ?, ?, {', '.join('?' for _ in values)})",
                    [origin, batch.id, time.time(), *values.values()],
                )
                return None, batch.status
            conn.execute(
                f"UPDATE batches SET {assignments} WHERE origin = ? AND id = ?",
                [*values.values(), origin, batch.id],
            )
            return row["status"], batch.status

    def _set(self, origin: str, batch_id: str, **columns: Any) -> None:
        assignments = ", ".join(f"{c} = ?" for c in columns)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE batches SET {assignments} WHERE origin = ? AND id = ?",
                [*columns.values(), origin, batch_id],
            )

    def mark_poll_error(self, origin: str, batch_id: str, message: str) -> None:
        self._set(origin, batch_id, poll_error=message, last_polled_at=time.time())

    def mark_notified(self, origin: str, batch_id: str) -> None:
        self._set(origin, batch_id, notified=1)

    def set_result_paths(
        self,
        origin: str,
        batch_id: str,
        output_path: str | None,
        error_path: str | None,
        *,
        output_verified_bytes: int | None = None,
        error_verified_bytes: int | None = None,
    ) -> None:
        self._set(
            origin,
            batch_id,
            output_path=output_path,
            error_path=error_path,
            output_verified_bytes=output_verified_bytes,
            error_verified_bytes=error_verified_bytes,
        )

    def rename(self, origin: str, batch_id: str, name: str | None) -> None:
        self._set(origin, batch_id, name=name)

    def forget(self, origin: str, batch_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM batches WHERE origin = ? AND id = ?", (origin, batch_id))

    # ----------------------------------------------------------------- reads

    def _records(
        self, sql: str, params: Any = (), *, conn: sqlite3.Connection | None = None
    ) -> list[BatchRecord]:
        rows = self.rows("SELECT * FROM batches " + sql, params, conn=conn)
        return [record_from_row(r) for r in rows]

    def get(self, origin: str, batch_id: str) -> BatchRecord | None:
        found = self._records("WHERE origin = ? AND id = ?", (origin, batch_id))
        return found[0] if found else None

    def find(self, batch_id: str) -> list[BatchRecord]:
        """Every record with this id, whatever its origin."""
        return self._records("WHERE id = ? ORDER BY rowid", (batch_id,))

    def lookup(
        self, batch_id: str, origin: str | None = None, *, prefer: str | None = None
    ) -> BatchRecord | None:
        """By (origin, id) when the origin is known; else the record with that id (the
        one of origin `prefer` first, when two servers handed out the same id)."""
        if origin is not None:
            return self.get(origin, batch_id)
        matches = self.find(batch_id)
        preferred = [m for m in matches if m.origin == prefer]
        return (preferred or matches)[0] if matches else None

    def batches(self, limit: int | None = None) -> list[BatchRecord]:
        newest_first = "ORDER BY COALESCE(created_at, submitted_at) DESC, rowid DESC"
        if limit:
            return self._records(newest_first + " LIMIT ?", (limit,))
        return self._records(newest_first)

    def active(self) -> list[BatchRecord]:
        return [r for r in self.batches() if not r.terminal]

    def children(self, origin: str, batch_id: str) -> list[BatchRecord]:
        sql = "WHERE origin = ? AND parent_batch_id = ? ORDER BY submitted_at"
        return self._records(sql, (origin, batch_id))

    def with_content(
        self, origin: str, sha256: str, *, conn: sqlite3.Connection | None = None
    ) -> list[BatchRecord]:
        """Batches of this origin made from a file with this content, newest first."""
        sql = "WHERE origin = ? AND input_sha256 = ? ORDER BY submitted_at DESC"
        return self._records(sql, (origin, sha256), conn=conn)
