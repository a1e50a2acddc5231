"""API objects, parsed tolerantly.

FastRouter documents `batch_id`/`file_id` where OpenAI says `id`, leaves most fields
optional and may add statuses; so every field here is optional, unknown fields are
kept in `raw`, and an unknown status is carried as the string the server sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
ACTIVE_STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
TIMESTAMP_FIELDS = (
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
    "expires_at",
)


def is_terminal(status: str | None) -> bool:
    return (status or "").lower() in TERMINAL_STATUSES


class BadShape(ValueError):
    """A server answer that is JSON but not the object we expected."""


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def _timestamp(value: Any) -> int | None:
    """Unix seconds. Some gateways send milliseconds (a 13-digit number): read those as
    such rather than as a date thousands of years away."""
    seconds = _opt_int(value)
    if seconds is not None and seconds > 100_000_000_000:
        seconds //= 1000
    return seconds


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    return str(value)


@dataclass
class RequestCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0

    @classmethod
    def parse(cls, value: Any) -> RequestCounts | None:
        if not isinstance(value, dict):
            return None
        return cls(
            total=_opt_int(value.get("total")) or 0,
            completed=_opt_int(value.get("completed")) or 0,
            failed=_opt_int(value.get("failed")) or 0,
        )

    def to_dict(self) -> dict[str, int]:
        return {"total": self.total, "completed": self.completed, "failed": self.failed}


@dataclass
class BatchError:
    code: str | None
    message: str
    line: int | None = None
    param: str | None = None


@dataclass
class Batch:
    id: str
    status: str
    endpoint: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    completion_window: str | None = None
    model: str | None = None
    request_counts: RequestCounts | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    errors: list[BatchError] = field(default_factory=list)
    timestamps: dict[str, int | None] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def created_at(self) -> int | None:
        return self.timestamps.get("created_at")

    @property
    def cost(self) -> float | None:
        return usage_cost(self.usage)

    @classmethod
    def parse(cls, data: Any) -> Batch:
        if not isinstance(data, dict):
            raise BadShape("expected a batch object")
        batch_id = _opt_str(data.get("batch_id")) or _opt_str(data.get("id"))
        if not batch_id:
            raise BadShape("the batch object has no id")
        status = _opt_str(data.get("status")) or "unknown"
        errors: list[BatchError] = []
        raw_errors = data.get("errors")
        items: Any = raw_errors.get("data") if isinstance(raw_errors, dict) else raw_errors
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    errors.append(
                        BatchError(
                            code=_opt_str(item.get("code")),
                            message=_opt_str(item.get("message")) or "",
                            line=_opt_int(item.get("line")),
                            param=_opt_str(item.get("param")),
                        )
                    )
                elif isinstance(item, str):
                    errors.append(BatchError(code=None, message=item))
        usage = data.get("usage")
        metadata = data.get("metadata")
        return cls(
            id=batch_id,
            status=status.lower(),
            endpoint=_opt_str(data.get("endpoint")),
            input_file_id=_opt_str(data.get("input_file_id")),
            output_file_id=_opt_str(data.get("output_file_id")),
            error_file_id=_opt_str(data.get("error_file_id")),
            completion_window=_opt_str(data.get("completion_window")),
            model=_opt_str(data.get("model")),
            request_counts=RequestCounts.parse(data.get("request_counts")),
            usage=usage if isinstance(usage, dict) else None,
            metadata=metadata if isinstance(metadata, dict) else None,
            errors=errors,
            timestamps={name: _timestamp(data.get(name)) for name in TIMESTAMP_FIELDS},
            raw=dict(data),
        )


def usage_cost(usage: dict[str, Any] | None) -> float | None:
    """The cost in the usage object, under whichever name the server used."""
    if not usage:
        return None
    for key in ("cost", "total_cost", "cost_usd"):
        value = usage.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


@dataclass
class FileObject:
    id: str
    filename: str | None = None
    bytes: int | None = None
    num_rows: int | None = None
    purpose: str | None = None
    created_at: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any) -> FileObject:
        if not isinstance(data, dict):
            raise BadShape("expected a file object")
        file_id = _opt_str(data.get("file_id")) or _opt_str(data.get("id"))
        if not file_id:
            raise BadShape("the file object has no id")
        return cls(
            id=file_id,
            filename=_opt_str(data.get("filename")),
            bytes=_opt_int(data.get("bytes")),
            num_rows=_opt_int(data.get("num_rows")),
            purpose=_opt_str(data.get("purpose")),
            created_at=_opt_int(data.get("created_at")),
            raw=dict(data),
        )
