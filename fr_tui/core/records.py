"""The batch record kept in history, and how it maps to and from sqlite rows and the
API's batch object."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from fr_tui.core.models import TIMESTAMP_FIELDS, Batch, is_terminal

if TYPE_CHECKING:
    from fr_tui.core.paths import Paths

# What a list shows in place of the counts of a batch no row of which ran (`✓ 0` beside
# "failed" reads as if rows had come back).
NO_ROWS_RAN = "no rows ran"


@dataclass
class BatchRecord:
    id: str
    status: str
    # Which server the id belongs to: "sandbox", or the base URL (see config.origin_for).
    # Two servers may hand out the same id, so history is keyed by (origin, id).
    origin: str = ""
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
    # Sizes of the downloaded output/error files once checked complete (None: not checked).
    output_verified_bytes: int | None = None
    error_verified_bytes: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.origin, self.id)

    def results_folder(self, paths: Paths) -> Path:
        """Where the batch's files are kept (paths.results_for: per server, or the older
        folder its results were downloaded to)."""
        return paths.results_for(self.origin, self.id, (self.output_path, self.error_path))

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
    def no_rows_ran(self) -> bool:
        """It ended with no row answered because the batch as a whole failed (its input
        was rejected) or had no rows: its counts of 0 say nothing about its rows."""
        answered = self.request_completed or self.request_failed
        return (
            self.terminal and not answered and (self.status == "failed" or not self.request_total)
        )

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
            "origin": self.origin,
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


def loads_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


def dumps_json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def record_from_row(row: sqlite3.Row) -> BatchRecord:
    keys = row.keys()
    return BatchRecord(
        id=row["id"],
        status=row["status"],
        origin=row["origin"],
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
        usage=loads_json(row["usage_json"]),
        cost=row["cost"],
        metadata=loads_json(row["metadata_json"]),
        errors=loads_json(row["errors_json"]) or [],
        raw=loads_json(row["raw_json"]) or {},
        parent_batch_id=row["parent_batch_id"],
        submitted_at=row["submitted_at"],
        last_polled_at=row["last_polled_at"],
        poll_error=row["poll_error"],
        notified=bool(row["notified"]),
        output_verified_bytes=row["output_verified_bytes"],
        error_verified_bytes=row["error_verified_bytes"],
    )


def api_columns(batch: Batch) -> dict[str, Any]:
    """The columns that come from the API's batch object."""
    counts = batch.request_counts
    values: dict[str, Any] = {
        "status": batch.status,
        "request_total": counts.total if counts else None,
        "request_completed": counts.completed if counts else None,
        "request_failed": counts.failed if counts else None,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "usage_json": dumps_json(batch.usage),
        "cost": batch.cost,
        "errors_json": dumps_json(
            [
                {"code": e.code, "message": e.message, "line": e.line, "param": e.param}
                for e in batch.errors
            ]
        ),
        "raw_json": dumps_json(batch.raw),
    }
    if batch.endpoint:
        values["endpoint"] = batch.endpoint
    if batch.input_file_id:
        values["input_file_id"] = batch.input_file_id
    if batch.metadata is not None:
        values["metadata_json"] = dumps_json(batch.metadata)
    for name, value in batch.timestamps.items():
        values[name] = value
    return values
