"""Split a batch input file into parts that each fit the batch limits.

The file is validated first, and a file with invalid rows is refused (nothing written,
the first problems named): parts are meant to be submitted, and a part with a bad row
would only fail later, on the server. Being over the limits is not a problem here (it is
the reason to split), and what the split itself repairs (a BOM, blank lines, a missing
final newline) is not either.

Then rows are copied byte for byte in order: the parts, concatenated, hold every row of
the input exactly once. Blank lines are dropped (they are not requests), a UTF-8 BOM at
the start is dropped (the server cannot parse it), and a last row without a final
newline gets one, so every part is a well-formed JSONL file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fr_tui.core.validate import Problem

_BOM = b"\xef\xbb\xbf"
# Errors that do not make a part invalid: the limits (why one splits) and what the split
# repairs on the way.
SPLIT_FIXES = frozenset({"too_many_rows", "file_too_large", "bom"})
_SHOWN_PROBLEMS = 5


class InvalidRows(ValueError):
    """The file has rows that would make invalid parts; nothing was written."""

    def __init__(self, errors: list[Problem], total: int) -> None:
        self.errors = errors
        self.total = total
        listed = "; ".join(
            f"line {p.line}: {p.message.rstrip('.')}" for p in errors[:_SHOWN_PROBLEMS]
        )
        more = f" (and {total - _SHOWN_PROBLEMS:,} more)" if total > _SHOWN_PROBLEMS else ""
        super().__init__(
            f"not split: {total:,} error{'s' if total != 1 else ''} in the rows would make "
            f"invalid parts: {listed}{more}. Fix them first (fr-tui validate lists them all)."
        )


def check_rows(path: Path) -> None:
    """Raise InvalidRows when a row of `path` is invalid (the limits aside)."""
    from fr_tui.core.validate import Limits, validate_path

    report = validate_path(path, Limits(max_rows=1 << 62, max_bytes=1 << 62))
    errors = [p for p in report.errors if p.code not in SPLIT_FIXES]
    total = report.errors_total - sum(report.counts.get(code, 0) for code in SPLIT_FIXES)
    if total > 0:
        raise InvalidRows(errors, total)


_READ_BUFFER = 1024 * 1024


def part_path(path: Path, number: int, out_dir: Path) -> Path:
    """``batch.jsonl`` -> ``OUT_DIR/batch.part1.jsonl`` (suffix kept, ``.jsonl`` if none)."""
    suffix = path.suffix or ".jsonl"
    return out_dir / f"{path.stem}.part{number}{suffix}"


def split_file(
    path: str | os.PathLike[str],
    *,
    max_rows: int = 50_000,
    max_bytes: int = 200 * 1024 * 1024,
    out_dir: str | os.PathLike[str] | None = None,
    check: bool = True,
) -> list[Path]:
    """Write FILE.part1.jsonl, FILE.part2.jsonl ... each within ``max_rows`` and ``max_bytes``.

    Returns the paths written, in order. Raises InvalidRows when a row is invalid (unless
    ``check`` is off: the caller validated), and ValueError (leaving no parts behind) when
    a single row is bigger than ``max_bytes``, or the limits are not positive.
    """
    if max_rows < 1 or max_bytes < 1:
        raise ValueError("max_rows and max_bytes must be at least 1")
    source = Path(path)
    if check:
        check_rows(source)
    target_dir = Path(out_dir) if out_dir is not None else source.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    out = None
    rows_in_part = 0
    bytes_in_part = 0
    try:
        with source.open("rb", buffering=_READ_BUFFER) as handle:
            for line_no, raw in enumerate(handle, start=1):
                if line_no == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    raw += b"\n"
                size = len(raw)
                if size > max_bytes:
                    raise ValueError(
                        f"line {line_no} alone is {size:,} bytes, more than the "
                        f"{max_bytes:,}-byte limit per file; it cannot be split further"
                    )
                if out is None or rows_in_part >= max_rows or bytes_in_part + size > max_bytes:
                    if out is not None:
                        out.close()
                    written.append(part_path(source, len(written) + 1, target_dir))
                    out = written[-1].open("wb")
                    rows_in_part = 0
                    bytes_in_part = 0
                out.write(raw)
                rows_in_part += 1
                bytes_in_part += size
    except BaseException:
        if out is not None:
            out.close()
        for part in written:
            part.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
    return written
