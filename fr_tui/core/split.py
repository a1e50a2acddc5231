"""Split a batch input file into parts that each fit the batch limits.

Rows are copied byte for byte in order (no parse, so it runs at disk speed): the parts,
concatenated, hold every row of the input exactly once. Blank lines are dropped (they are
not requests), a UTF-8 BOM at the start is dropped (the server cannot parse it), and a
last row without a final newline gets one, so every part is a well-formed JSONL file.
"""

from __future__ import annotations

import os
from pathlib import Path

from fr_tui.core.userfiles import open_for_writing, open_regular

_BOM = b"\xef\xbb\xbf"
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
) -> list[Path]:
    """Write FILE.part1.jsonl, FILE.part2.jsonl ... each within ``max_rows`` and ``max_bytes``.

    Returns the paths written, in order. Raises ValueError (and leaves no parts behind)
    when a single row is bigger than ``max_bytes``, or the limits are not positive.
    """
    if max_rows < 1 or max_bytes < 1:
        raise ValueError("max_rows and max_bytes must be at least 1")
    source = Path(path)
    target_dir = Path(out_dir) if out_dir is not None else source.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    out = None
    rows_in_part = 0
    bytes_in_part = 0
    try:
        with open_regular(source, buffering=_READ_BUFFER) as handle:
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
                    target = part_path(source, len(written) + 1, target_dir)
                    out = open_for_writing(target)
                    written.append(target)  # only what was opened is ours to remove
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
