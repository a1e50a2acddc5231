"""Split a batch input file into parts that each fit the batch limits (`fr-tui split`).

The streaming planner (plan.py) does the work in one pass: the file is validated as it
is read, and a file with invalid rows is refused (nothing written, the first problems
named): parts are meant to be submitted, and a part with a bad row would only fail
later, on the server. Being over the limits is not a problem here (it is the reason to
split), and what the split itself repairs (a BOM, blank lines, a missing final newline)
is not either. Rows are copied byte for byte in order: the parts, concatenated, hold
every row of the input exactly once, and every part ends with a newline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fr_tui.core.plan import PlanError, PlanLimits, plan_file
from fr_tui.core.units import plural
from fr_tui.core.userfiles import check_replaceable
from fr_tui.core.validate import Problem

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
            f"not split: {plural(total, 'error')} in the rows would make "
            f"invalid parts: {listed}{more}. Fix them first (fr-tui validate lists them all)."
        )


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

    Returns the paths written, in order. Raises InvalidRows when a row is invalid, and
    ValueError (leaving no parts behind) when a single row is bigger than ``max_bytes``,
    or the limits are not positive. (The planner validates in the same pass as it copies:
    checking the rows costs nothing.)
    """
    source = Path(path)
    target_dir = Path(out_dir) if out_dir is not None else source.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    work = target_dir / f".split-{source.name}-{os.getpid()}"
    try:
        plan = plan_file(source, work, PlanLimits(max_rows=max_rows, max_bytes=max_bytes))
    except PlanError as exc:
        report = exc.report
        if report is None or report.rows == 0:
            raise
        too_big = [p for p in report.errors if p.code == "row_over_byte_limit"]
        if too_big and report.errors_total == len(too_big):
            first = too_big[0]  # "This row alone is N bytes, more than ..."
            raise ValueError(first.message.replace("This row", f"line {first.line}", 1)) from None
        errors = [p for p in report.errors if p.code not in SPLIT_FIXES]
        raise InvalidRows(errors, report.errors_total - report.counts.get("bom", 0)) from None
    finally:
        if not (work / "plan.json").exists():
            shutil.rmtree(work, ignore_errors=True)
    try:
        written: list[Path] = []
        targets = [part_path(source, n, target_dir) for n in range(1, len(plan.parts) + 1)]
        for target in targets:  # a device, FIFO or folder in the way is never replaced
            check_replaceable(target)
        for part, target in zip(plan.parts, targets, strict=True):
            os.replace(plan.part_path(part), target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(work, ignore_errors=True)
