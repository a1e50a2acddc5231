"""Split a batch input file into parts that each fit the batch limits (`fr-tui split`).

The streaming planner (plan.py) does the work: the input is validated as it is read and
its rows are copied byte for byte, in order, into parts within the limits. Blank lines
and a leading UTF-8 BOM are dropped and every part ends with a newline, so each part is
a well-formed batch file; a file with errors is refused and no part is written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fr_tui.core.plan import PlanLimits, plan_file


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

    Returns the paths written, in order. Raises ValueError (plan.PlanError, and leaves no
    parts behind) when the file has errors, a single row is bigger than ``max_bytes``, or
    the limits are not positive.
    """
    source = Path(path)
    target_dir = Path(out_dir) if out_dir is not None else source.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    work = target_dir / f".split-{source.name}-{os.getpid()}"
    try:
        plan = plan_file(source, work, PlanLimits(max_rows=max_rows, max_bytes=max_bytes))
        written: list[Path] = []
        for number, part in enumerate(plan.parts, start=1):
            written.append(part_path(source, number, target_dir))
            os.replace(plan.part_path(part), written[-1])
        return written
    finally:
        shutil.rmtree(work, ignore_errors=True)
