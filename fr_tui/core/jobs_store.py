"""A job in history: its settings and state (table `jobs`), its parts per round with the
batch of each part's latest attempt (table `job_parts`), and the kinds of failure a job
retries. Every batch a job creates also has its intent (core/intents.py, with job_id,
job_part and job_round), so the intents are the full record of every attempt.

Statuses of a job::

    planning -> running -> merging -> completed
        any  -> cancelled (job cancel)            running -> blocked (a create whose
        any  -> failed (with a reason)                          outcome cannot be known)

Part states: pending (no batch for its current attempt yet), running (its batch runs, or
ended and its results are not read yet), done (its rows have their answers, or its batch
failed as a whole), waiting (the provider's enqueued-token limit refused it: it waits for
the job's running parts to end), split (cut in halves, each its own part), unrunnable (one
row over the token limit on its own: it can never run).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fr_tui.core.records import BatchRecord, dumps_json, loads_json, record_from_row
from fr_tui.core.retry_kinds import DEFAULT_RETRY_KINDS
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import parse_money
from fr_tui.core.userfiles import FileSignature

PLANNING = "planning"
RUNNING = "running"
MERGING = "merging"
BLOCKED = "blocked"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})

PART_PENDING = "pending"
PART_RUNNING = "running"
PART_DONE = "done"
PART_WAITING = "waiting"
PART_SPLIT = "split"
PART_UNRUNNABLE = "unrunnable"
# Parts whose rows are settled for their round (split ones live on in their halves).
PART_ENDED = frozenset({PART_DONE, PART_SPLIT, PART_UNRUNNABLE})


def new_job_id(clock: float | None = None) -> str:
    day = time.strftime("%Y%m%d", time.localtime(clock if clock is not None else time.time()))
    return f"job-{day}-{secrets.token_hex(3)}"


# A part's batch is named `<job label> · part N[ · round R]`: under its job's row the
# list shows only `part N · round R` (part_label).
PART_NAME_MARK = " · part "


def part_batch_name(job: Job, part: JobPart) -> str:
    """What a part's batch is called on the server: `nightly · part 2 · round 2`."""
    name = f"{job.label}{PART_NAME_MARK}{part.part}"
    return name if part.round == 1 else f"{name} · round {part.round}"


def part_label(name: str) -> str:
    """`part 2 · round 2` from a part batch's name; any other name as it is."""
    head, mark, tail = name.rpartition(PART_NAME_MARK)
    return f"part {tail}" if head and mark else name


@dataclass(frozen=True)
class JobSettings:
    max_rows: int
    max_bytes: int
    max_tokens: int | dict[str, int] | None = None  # the enqueued-token limit, for planning
    max_in_flight: int = 4
    rounds: int = 3
    retry_kinds: tuple[str, ...] = DEFAULT_RETRY_KINDS

    def parts_for(self, rows: int, size: int) -> tuple[int, bool]:
        """How many parts a file of `rows` rows and `size` bytes is planned into, and
        whether that is exact: it is at least that when bytes or prompt tokens may cut parts
        short (rows of uneven sizes fill parts unevenly)."""
        by_rows = max(1, -(-rows // self.max_rows))
        by_bytes = -(-size // self.max_bytes)
        exact = by_bytes < by_rows and not self.max_tokens
        return max(by_rows, by_bytes), exact

    def to_json(self) -> dict[str, Any]:
        return {
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
            "max_tokens": self.max_tokens,
            "max_in_flight": self.max_in_flight,
            "rounds": self.rounds,
            "retry_kinds": list(self.retry_kinds),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSettings:
        return cls(
            max_rows=int(data["max_rows"]),
            max_bytes=int(data["max_bytes"]),
            max_tokens=data.get("max_tokens"),
            max_in_flight=int(data.get("max_in_flight", 4)),
            rounds=int(data.get("rounds", 3)),
            retry_kinds=tuple(data.get("retry_kinds", DEFAULT_RETRY_KINDS)),
        )


@dataclass
class Job:
    id: str
    origin: str
    input_path: str
    input_sha256: str
    settings: JobSettings
    status: str = PLANNING
    profile: str | None = None
    base_url: str | None = None
    name: str | None = None
    input_bytes: int | None = None
    # with input_bytes, the input's signature when it was hashed (core/userfiles.py):
    # while the file keeps it, the planner need not hash it again
    input_mtime_ns: int | None = None
    input_inode: int | None = None
    endpoint: str | None = None
    reason: str | None = None
    round: int = 1
    total: int | None = None
    ok: int | None = None
    failed: int | None = None
    missing: int | None = None
    left: dict[str, int] = field(default_factory=dict)  # why rows were left: kind -> rows
    output_path: str | None = None
    cancel_requested: bool = False
    estimate_low: Decimal | None = None
    estimate_high: Decimal | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def input_signature(self) -> FileSignature | None:
        if self.input_bytes is None or self.input_mtime_ns is None or self.input_inode is None:
            return None  # made before signatures were kept
        return FileSignature(self.input_bytes, self.input_mtime_ns, self.input_inode)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.input_path.rsplit("/", 1)[-1]


@dataclass
class JobPart:
    job_id: str
    round: int
    part: int
    file: str  # relative to the job's folder
    first_row: int  # its first row among the round's rows (0-based)
    rows: int
    bytes: int
    tokens: int = 0
    state: str = PART_PENDING
    batch_id: str | None = None
    attempts: int = 0
    alone: bool = False  # its latest attempt was the only batch of the job in flight
    parent_part: int | None = None  # a half of this part (split on the token limit)
    note: str | None = None

    @property
    def slot(self) -> tuple[int, int]:
        return (self.round, self.part)


_JOB_COLUMNS = [
    "id",
    "origin",
    "profile",
    "base_url",
    "name",
    "input_path",
    "input_sha256",
    "input_bytes",
    "input_mtime_ns",
    "input_inode",
    "endpoint",
    "settings_json",
    "status",
    "reason",
    "round",
    "total",
    "ok",
    "failed",
    "missing",
    "left_json",
    "output_path",
    "cancel_requested",
    "estimate_low",
    "estimate_high",
    "created_at",
    "updated_at",
    "finished_at",
]
_PART_COLUMNS = [
    "job_id",
    "round",
    "part",
    "file",
    "first_row",
    "rows",
    "bytes",
    "tokens",
    "state",
    "batch_id",
    "attempts",
    "alone",
    "parent_part",
    "note",
]


def _job_values(job: Job) -> dict[str, Any]:
    values = {c: getattr(job, c) for c in _JOB_COLUMNS if hasattr(job, c)}
    values["settings_json"] = dumps_json(job.settings.to_json())
    values["left_json"] = dumps_json(job.left)
    values["cancel_requested"] = int(job.cancel_requested)
    for name in ("estimate_low", "estimate_high"):
        amount = getattr(job, name)
        values[name] = None if amount is None else str(amount)
    return values


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        origin=row["origin"],
        input_path=row["input_path"],
        input_sha256=row["input_sha256"],
        settings=JobSettings.from_json(loads_json(row["settings_json"]) or {}),
        status=row["status"],
        profile=row["profile"],
        base_url=row["base_url"],
        name=row["name"],
        input_bytes=row["input_bytes"],
        input_mtime_ns=row["input_mtime_ns"],
        input_inode=row["input_inode"],
        endpoint=row["endpoint"],
        reason=row["reason"],
        round=row["round"],
        total=row["total"],
        ok=row["ok"],
        failed=row["failed"],
        missing=row["missing"],
        left=loads_json(row["left_json"]) or {},
        output_path=row["output_path"],
        cancel_requested=bool(row["cancel_requested"]),
        estimate_low=parse_money(row["estimate_low"]),
        estimate_high=parse_money(row["estimate_high"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def _part(row: sqlite3.Row) -> JobPart:
    values = {c: row[c] for c in _PART_COLUMNS}
    values["alone"] = bool(values["alone"])
    return JobPart(**values)


class JobStore:
    """The job tables of one history. Writes that decide what is created next (parts,
    their batches, a new round) are durable (synchronous=FULL), like intents."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    # ----------------------------------------------------------------- jobs

    def add(self, job: Job) -> Job:
        now = time.time()
        job.created_at = job.created_at or now
        job.updated_at = now
        values = _job_values(job)
        with self.store.transaction(durable=True) as conn:
            conn.execute(
                f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
        return job

    def get(self, job_id: str) -> Job | None:
        with self.store.connection() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        with self.store.connection() as conn:
            rows = conn.execute("SELECT * FROM jobs ORDER BY created_at DESC, id").fetchall()
        return [_job(r) for r in rows]

    def with_content(self, origin: str, sha256: str) -> list[Job]:
        """Jobs of this server made from a file with this content, newest first."""
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE origin = ? AND input_sha256 = ? ORDER BY created_at DESC",
                (origin, sha256),
            ).fetchall()
        return [_job(r) for r in rows]

    def update(self, job_id: str, **columns: Any) -> None:
        with self.store.transaction(durable=True) as conn:
            self._update(conn, job_id, columns)

    @staticmethod
    def _update(conn: sqlite3.Connection, job_id: str, columns: dict[str, Any]) -> None:
        columns["updated_at"] = time.time()
        if "input_signature" in columns:
            signature = columns.pop("input_signature")
            columns.update(
                input_bytes=signature.size,
                input_mtime_ns=signature.mtime_ns,
                input_inode=signature.inode,
            )
        if "left" in columns:
            columns["left_json"] = dumps_json(columns.pop("left"))
        for name in ("estimate_low", "estimate_high"):
            if columns.get(name) is not None:
                columns[name] = str(columns[name])
        sql = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        conn.execute(sql, [*columns.values(), job_id])

    def request_cancel(self, job_id: str) -> None:
        self.update(job_id, cancel_requested=1)

    # ----------------------------------------------------------------- parts

    def parts(self, job_id: str, round_: int | None = None) -> list[JobPart]:
        sql = "SELECT * FROM job_parts WHERE job_id = ?"
        params: list[Any] = [job_id]
        if round_ is not None:
            sql += " AND round = ?"
            params.append(round_)
        with self.store.connection() as conn:
            rows = conn.execute(sql + " ORDER BY round, part", params).fetchall()
        return [_part(r) for r in rows]

    def add_parts(
        self, parts: list[JobPart], *, conn: sqlite3.Connection | None = None, **job_columns: Any
    ) -> None:
        """Insert parts (a new round's, or the halves of a split part), and update the job
        (`job_columns`) in the same transaction."""
        if conn is None:
            with self.store.transaction(durable=True) as own:
                self.add_parts(parts, conn=own, **job_columns)
            return
        for part in parts:
            values = {c: getattr(part, c) for c in _PART_COLUMNS}
            values["alone"] = int(part.alone)
            conn.execute(
                f"INSERT OR REPLACE INTO job_parts ({', '.join(values)}) "
                f"VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
        if job_columns and parts:
            self._update(conn, parts[0].job_id, job_columns)

    def set_part(
        self,
        part: JobPart,
        *,
        conn: sqlite3.Connection | None = None,
        **columns: Any,
    ) -> None:
        """Change a part (in `conn`'s transaction, else a durable one of its own); the
        JobPart object follows."""
        if "alone" in columns:
            columns["alone"] = int(columns["alone"])
        sql = (
            f"UPDATE job_parts SET {', '.join(f'{c} = ?' for c in columns)} "
            "WHERE job_id = ? AND round = ? AND part = ?"
        )
        params = [*columns.values(), part.job_id, part.round, part.part]
        if conn is not None:
            conn.execute(sql, params)
        else:
            with self.store.transaction(durable=True) as own:
                own.execute(sql, params)
        for name, value in columns.items():
            setattr(part, name, bool(value) if name == "alone" else value)

    def job_of_batch(self, batch_id: str) -> str | None:
        with self.store.connection() as conn:
            row = conn.execute(
                "SELECT job_id FROM intents WHERE batch_id = ? AND job_id IS NOT NULL LIMIT 1",
                (batch_id,),
            ).fetchone()
        return row["job_id"] if row else None

    def batch_ids(self, job_id: str) -> list[str]:
        """Every batch the job made, all attempts, in the order they were made."""
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT batch_id FROM intents WHERE job_id = ? AND batch_id IS NOT NULL "
                "ORDER BY created_at",
                (job_id,),
            ).fetchall()
        return [r["batch_id"] for r in rows]

    def batch_records(self, job: Job) -> dict[str, BatchRecord]:
        """The history records of every batch the job made (one query)."""
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM batches WHERE origin = ? AND id IN "
                "(SELECT batch_id FROM intents WHERE job_id = ? AND batch_id IS NOT NULL)",
                (job.origin, job.id),
            ).fetchall()
        return {r["id"]: record_from_row(r) for r in rows}

    def job_batch_ids(self) -> dict[str, str]:
        """batch id -> job id, for every batch any job made (the Batches list groups
        them under their job)."""
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT batch_id, job_id FROM intents "
                "WHERE job_id IS NOT NULL AND batch_id IS NOT NULL"
            ).fetchall()
        return {r["batch_id"]: r["job_id"] for r in rows}
