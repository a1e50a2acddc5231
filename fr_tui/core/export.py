"""What follows the join: a flat export, a retry file, the `--json` summary, and the
merged picture across retries. (Downloading a batch's result files is
`workflow.fetch_results`, which also records their paths in the history.)

All files are written atomically (a temp file in the same folder, fsynced, then renamed
over the target), so an interrupted export never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from fr_tui.core.jsonl import LineIndex, custom_id_of
from fr_tui.core.results_join import (
    FAILED,
    MISSING,
    MISSING_KEY,
    UNREADABLE_KEY,
    JoinedResults,
    group_key,
)
from fr_tui.core.results_join import merge_child as merge_child
from fr_tui.core.results_join import merge_children as merge_children
from fr_tui.core.units import plain_number
from fr_tui.core.userfiles import NO_SUCH_FOLDER, write_target

EXPORT_COLUMNS = (
    "custom_id",
    "provider",
    "model",
    "outcome",
    "status_code",
    "finish_reason",
    "content",
    "tokens_in",
    "tokens_out",
    "cost",
    "error",
)


@contextlib.contextmanager
def atomic_write(path: str | Path, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """Write `path` all at once: the new content appears only when the block succeeds
    (and, unless not `durable`, is on disk before it appears: fsync).

    Only a new path or a regular file is replaced (through a symlink, its target); a
    device, FIFO, socket or directory raises an OSError naming `path`. The folder must
    exist: a typo in it is said (FileNotFoundError, "no such folder"), never made into a
    tree of folders (fr-tui makes its own folders itself). A replaced file keeps its
    permission bits; a new one gets 0666 less the umask, as any tool's file does. Any
    failure of the temp file names `path`: the user never sees a temp name they did not
    choose. (A hard link to the old file keeps the old content: the price of never
    leaving a half-written file.)"""
    target = write_target(path)
    folder = Path(path).parent
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, NO_SUCH_FOLDER, str(folder))
    try:
        kept_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        kept_mode = None
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    made = False
    try:
        # not mkstemp: its 0600 would be the mode of every export
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        made = True
        with os.fdopen(fd, "wb") as handle:
            if kept_mode is not None:
                os.fchmod(handle.fileno(), kept_mode)
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if made:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == str(tmp) and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise


def export_record(joined: JoinedResults, i: int) -> dict[str, Any]:
    """Row i flattened to the export columns, with the full answer text."""
    row = joined.row(i)
    return {
        "custom_id": row.custom_id,
        "provider": row.provider,
        "model": row.model,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "finish_reason": row.finish_reason,
        "content": joined.response_text(i) if row.outcome == "ok" else None,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "cost": row.cost,
        "error": row.error or None,
    }


def _csv_cell(value: Any) -> Any:
    # A spreadsheet reads 8.675e-05 as text in some locales: costs are written as digits.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return plain_number(value)
    return value


def write_records(
    path: str | Path,
    fmt: Literal["csv", "jsonl"],
    columns: Sequence[str],
    records: Iterable[dict[str, Any]],
) -> int:
    """Write records (dicts with `columns` as keys) atomically as CSV with a header or as
    JSONL; returns how many were written."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r} (csv or jsonl)")
    written = 0
    with atomic_write(path) as handle:
        if fmt == "jsonl":
            for record in records:
                handle.write(msgspec.json.encode(record) + b"\n")
                written += 1
        else:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            writer = csv.DictWriter(text, fieldnames=list(columns))
            writer.writeheader()
            for record in records:
                writer.writerow({k: _csv_cell(v) for k, v in record.items()})
                written += 1
            text.flush()
            text.detach()  # leave the binary handle open for atomic_write to fsync
    return written


def export_rows(
    joined: JoinedResults,
    path: str | Path,
    fmt: Literal["csv", "jsonl"] = "jsonl",
    indices: Iterable[int] | None = None,
) -> int:
    """Write rows (all of them, missing ones included, in input order, unless `indices`
    picks some) as CSV with a header or as JSONL; returns the number of rows written."""
    rows = range(len(joined)) if indices is None else indices
    return write_records(path, fmt, EXPORT_COLUMNS, (export_record(joined, i) for i in rows))


class NothingToRetry(ValueError):
    """Every row succeeded (or none of the chosen groups has rows): no file was written."""


@dataclass
class RetryPlan:
    path: Path
    rows: int
    reasons: dict[str, int] = field(default_factory=dict)  # error-group key -> rows
    skipped: int = 0  # input rows that could not be retried: no readable custom_id


def build_retry_file(
    joined: JoinedResults,
    input_path: str | Path,
    out_path: str | Path,
    *,
    groups: list[str] | None = None,
) -> RetryPlan:
    """Copy the failed and missing rows (or only those in the chosen error-group keys)
    from the input file, byte for byte, to a new input file at `out_path`.

    Each copied line is checked to carry the custom_id the results have for that row, so
    a retry file is never built from a different input file than the one joined (raises
    ValueError). Rows whose input line has no readable custom_id cannot be joined to a
    result and are left out (counted in `skipped`). Raises NothingToRetry if no row is
    chosen."""
    wanted = set(groups) if groups is not None else None
    chosen: list[tuple[int, str]] = []
    reasons: dict[str, int] = {}
    skipped = 0
    for i, outcome in enumerate(joined.outcomes):
        if outcome != FAILED and outcome != MISSING:
            continue
        if outcome == MISSING:
            key = MISSING_KEY if joined.custom_ids[i] is not None else UNREADABLE_KEY
        else:
            key = group_key(joined.error_codes[i], joined.error_messages[i])
        if wanted is not None and key not in wanted:
            continue
        if key == UNREADABLE_KEY:
            skipped += 1
            continue
        chosen.append((i, key))
        reasons[key] = reasons.get(key, 0) + 1
    if not chosen:
        raise NothingToRetry("there are no failed or missing rows to retry")
    out_path = Path(out_path)
    same_file = Path(input_path).resolve() == joined.input_path.resolve()
    source = joined.input_index if same_file else LineIndex(input_path)
    try:
        if not source.complete:
            source.build()
        with atomic_write(out_path) as handle:
            for i, _ in chosen:
                line_no = joined.input_line(i)
                raw = source.read_line(line_no) if line_no < len(source) else b""
                if custom_id_of(raw) != joined.custom_ids[i]:
                    raise ValueError(
                        f"{input_path} line {line_no + 1} is not the input row "
                        f"{joined.custom_ids[i]!r}: is this the batch's input file?"
                    )
                handle.write(raw + b"\n")
    finally:
        if not same_file:
            source.close()
    return RetryPlan(path=out_path, rows=len(chosen), reasons=reasons, skipped=skipped)


def summary_json(
    batch_id: str,
    status: str,
    joined: JoinedResults,
    output_path: str | Path | None,
    error_path: str | Path | None,
) -> dict[str, Any]:
    """The document `fr-tui results --json` prints."""
    counts = joined.counts
    return {
        "batch_id": batch_id,
        "status": status,
        "total": counts["total"],
        "ok": counts["ok"],
        "failed": counts["failed"],
        "missing": counts["missing"],
        "output_path": str(output_path) if output_path is not None else None,
        "error_path": str(error_path) if error_path is not None else None,
        "duplicates": len(joined.duplicates),
        "unknown_ids": len(joined.unknown_ids),
        "bad_lines": len(joined.bad_lines),
        "tokens_in": joined.tokens_in,
        "tokens_out": joined.tokens_out,
        "cost": joined.cost,
        "error_groups": [
            {"key": key, "code": code, "message": message, "count": count}
            for key, code, message, count in joined.error_groups()
        ],
    }
