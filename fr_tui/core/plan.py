"""The streaming planner: validate an input file of any size and cut it into parts that
each fit a batch's limits, in one pass, never holding the file in memory.

    plan = plan_file("big.jsonl", "jobs/job_1", PlanLimits(max_rows=50_000,
                     max_bytes=200 << 20, max_tokens={"openai/gpt-4.1-nano": 2_000_000}))

Layout of ``out_dir`` once a plan is complete (it appears whole or not at all)::

    out_dir/plan.json              the manifest (PLAN_VERSION, see Plan.to_json)
    out_dir/parts/part-00001.jsonl the request lines of the input, byte for byte
    ...

Parts are contiguous runs of input lines in input order (blank lines and a leading BOM
dropped, every line newline-terminated), so the parts concatenated are the input's
requests and a merge in input order is a walk over the parts. Each part holds at most
``max_rows`` rows and ``max_bytes`` bytes and at most the enqueued-token limit of
estimated prompt tokens (core/tokens.py, the validator's estimate): one number is for
all of a part's models together (a server that counts them together, as the sandbox
does, never refuses a part alone); a table, model -> tokens, limits each model's own.

The input is validated with the same checks as ``validate`` (the report's problems are
the same, plus ``row_over_token_limit`` and ``row_over_byte_limit`` for a row that no
part can hold). A plan is made only when there are no errors (a BOM is dropped, so its
error does not stop a plan); otherwise ``PlanError`` carries the report.

Crash safety: everything is written into a temporary sibling folder, fsynced, and renamed
to ``out_dir`` only when complete. A killed planner leaves at most a temporary folder,
which the next run removes; ``load_plan`` finds either a whole plan or none.

Speed: the validating thread only decides which byte ranges of the input go to which
part (a block of lines that fits the current part whole is one range; only a block where
a part ends is looked at row by row). A background thread (core/plan_writer.py) copies
those ranges into the part files as far as the planner got, inside the kernel where it
can, and another fsyncs each part while the next is written. Nothing is hashed here: the caller that needs to know the
input's content (a job, by its sha256) hashed it once before and passes the signature the
file had then (``expect``); a plan is refused when the file is no longer that file, and a
part's sha256 is taken when it is submitted, as for any file.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.plan_writer import InputShrank, PartWriter
from fr_tui.core.tokens import estimate_prompt_tokens
from fr_tui.core.userfiles import FileSignature, open_regular
from fr_tui.core.validate import Limits, Problem, Report, RowObserver, Validator
from fr_tui.core.validate_file import reread_lines

# 2: no sha256 (of the input or the parts); the input's signature (size, mtime_ns, inode)
PLAN_VERSION = 2
PLAN_FILE = "plan.json"
PARTS_DIR = "parts"
# Errors the parts themselves fix: such a file can still be planned.
FIXED_BY_PLAN = frozenset({"bom"})
# The planner's own errors: a row no part can hold (validate knows no part's limits).
PART_LIMIT_ERRORS = frozenset({"row_over_token_limit", "row_over_byte_limit"})
_BOM = b"\xef\xbb\xbf"
_TMP_PREFIX = ".plan-tmp-"
_UNLIMITED = Limits(max_rows=sys.maxsize, max_bytes=sys.maxsize)


@dataclass(frozen=True)
class PlanLimits:
    """Per part: rows, bytes, and estimated prompt tokens (one number for all the part's
    models together, a dict model -> tokens, whose missing models are unlimited, or
    None)."""

    max_rows: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    max_tokens: int | dict[str, int] | None = None

    def tokens_for(self, model: str) -> int | None:
        if isinstance(self.max_tokens, dict):
            return self.max_tokens.get(model)
        return self.max_tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
            "max_tokens": self.max_tokens,
        }


@dataclass
class PlanPart:
    file: str  # relative to the plan folder: "parts/part-00001.jsonl"
    first_line: int  # 1-based input line of its first row
    end_line: int  # 1-based input line just after its last row
    rows: int
    bytes: int
    tokens: dict[str, int]  # estimated prompt tokens per model

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    folder: Path
    parts: list[PlanPart]
    input: dict[str, Any]  # path, size, mtime_ns, inode
    limits: PlanLimits
    report: Report | None = None  # the validation report (None when loaded from disk)
    totals: dict[str, Any] = field(default_factory=dict)

    def part_path(self, part: PlanPart) -> Path:
        return self.folder / part.file

    @property
    def input_signature(self) -> FileSignature:
        """The input file as it was when it was planned."""
        data = self.input
        return FileSignature(data["size"], data["mtime_ns"], data["inode"])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "input": self.input,
            "limits": self.limits.to_json(),
            "totals": self.totals,
            "parts": [part.to_json() for part in self.parts],
        }


class PlanError(ValueError):
    """The input cannot be planned: it has errors (see ``report``)."""

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report


class PlanCancelled(Exception):
    """``cancel`` was set: nothing was left behind."""


# -- planning ----------------------------------------------------------------------


class _Planner:
    """Assigns the lines of each validated block to parts: each part is a list of byte
    ranges of the input (contiguous lines; a blank line or a BOM left out breaks one)."""

    def __init__(self, validator: Validator, writer: PartWriter, limits: PlanLimits) -> None:
        self.validator = validator
        self.writer = writer
        self.limits = limits
        self.parts: list[PlanPart] = []
        self.current: PlanPart | None = None
        self.blanks_seen = 0
        self.tokens_seen: dict[str, int] = {}  # model -> tokens before this block

    def _block_tokens(self) -> dict[str, int]:
        """Estimated prompt tokens per model of the rows checked since the last call."""
        now = self.validator.model_tokens()
        seen = self.tokens_seen
        delta = {model: n - seen.get(model, 0) for model, n in now.items() if n != seen.get(model)}
        self.tokens_seen = now
        return delta

    def block(self, lines: list[bytes], first: int, start: int) -> None:
        """Place one validated block (its first byte at ``start`` in the input): whole
        into the current part when it fits there (and is exactly its request lines: no
        blank line, no BOM), else row by row."""
        blanks = self.validator.blank_line_numbers
        blank_here = len(blanks) - self.blanks_seen
        self.blanks_seen = len(blanks)
        tokens = self._block_tokens()
        part, limits = self.current, self.limits
        validator = self.validator
        # the block's bytes, each line with its newline (the validator counted them; a
        # last line without one gets one in its part)
        size = validator.bytes - start + (validator.last_byte != b"\n")
        if (
            not blank_here
            and first > 1
            and part is not None
            and part.rows + len(lines) <= limits.max_rows
            and part.bytes + size <= limits.max_bytes
            and self._fits(part, tokens)
        ):
            part.rows += len(lines)
            part.bytes += size
            for model, n in tokens.items():
                part.tokens[model] = part.tokens.get(model, 0) + n
            part.end_line = first + len(lines)
            self._add_range(start, start + size)
        else:
            self._rows_one_by_one(lines, first, start)
        self.writer.advance(self.validator.bytes)

    def _fits(self, part: PlanPart, tokens: dict[str, int]) -> bool:
        """Whether the part can take these tokens (by model) within the limit."""
        limit = self.limits.max_tokens
        if limit is None:
            return True
        if isinstance(limit, dict):
            return all(
                model not in limit or part.tokens.get(model, 0) + n <= limit[model]
                for model, n in tokens.items()
            )
        return sum(part.tokens.values()) + sum(tokens.values()) <= limit

    def _rows_one_by_one(self, lines: list[bytes], first: int, start: int) -> None:
        limits = self.limits
        endpoint = self.validator.endpoint
        for line_no, raw in enumerate(lines, first):
            offset, start = start, start + len(raw) + 1
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
                offset += len(_BOM)
            if not raw.strip():
                continue
            size = len(raw) + 1
            model, tokens = _model_and_tokens(raw, endpoint)
            limit = limits.tokens_for(model) if model is not None else None
            if size > limits.max_bytes:
                self.validator._flag(
                    line_no,
                    "row_over_byte_limit",
                    f"This row alone is {size:,} bytes, more than the {limits.max_bytes:,}-byte "
                    "limit per part; it cannot be split further.",
                )
                continue
            if limit is not None and tokens > limit:
                self.validator._flag(
                    line_no,
                    "row_over_token_limit",
                    f"This row alone is about {tokens:,} prompt tokens, more than the "
                    f"{limit:,}-token limit"
                    f"{f' for {model}' if isinstance(limits.max_tokens, dict) else ' of a part'}"
                    "; no part can hold it.",
                )
                continue
            part = self.current
            if (
                part is None
                or part.rows + 1 > limits.max_rows
                or part.bytes + size > limits.max_bytes
                or (model is not None and not self._fits(part, {model: tokens}))
            ):
                part = self._new_part(line_no)
            part.rows += 1
            part.bytes += size
            if model is not None:
                part.tokens[model] = part.tokens.get(model, 0) + tokens
            part.end_line = line_no + 1
            self._add_range(offset, offset + size)

    def _add_range(self, start: int, end: int) -> None:
        """Bytes start..end of the input go to the current part (end may be one byte
        past the file: a last line without its newline)."""
        assert self.current is not None
        ranges = self.writer.ranges
        last = ranges[-1] if ranges else None
        if last is not None and last[0] == self.current.file and last[2] == start:
            last[2] = end
        else:
            ranges.append([self.current.file, start, end])

    def _new_part(self, line_no: int) -> PlanPart:
        name = f"{PARTS_DIR}/part-{len(self.parts) + 1:05d}.jsonl"
        self.current = PlanPart(name, line_no, line_no, 0, 0, {})
        self.parts.append(self.current)
        return self.current


def _model_and_tokens(raw: bytes, endpoint: str | None) -> tuple[str | None, int]:
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None, 0
    body = obj.get("body") if type(obj) is dict else None
    if type(body) is not dict:
        return None, 0
    model = body.get("model")
    return (model if type(model) is str else None), estimate_prompt_tokens(body, endpoint)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(parent: Path, prefix: str) -> None:
    """Folders ``<prefix><anything>-<pid>`` in ``parent`` whose process died (its pid is
    gone) are removed: what a killed planner (or job maker) was writing."""
    for stale in parent.glob(f"{prefix}*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        shutil.rmtree(stale, ignore_errors=True)


def plan_file(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    limits: PlanLimits | None = None,
    *,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    expect: FileSignature | None = None,
    observer: RowObserver | None = None,
) -> Plan:
    """Validate ``input_path`` and write its parts and manifest to ``out_dir`` (replacing
    a plan there). Raises PlanError (invalid input, or not the ``expect``ed file any more:
    nothing written), PlanCancelled, or OSError. ``on_progress(bytes_done, bytes_total)``
    runs about every 2 MiB; ``observer`` rides along the validation (validate_path's)."""
    limits = limits or PlanLimits()
    if limits.max_rows < 1 or limits.max_bytes < 1:
        raise ValueError("max_rows and max_bytes must be at least 1")
    source = Path(input_path)
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent, f"{_TMP_PREFIX}{target.name}-")
    temp = target.parent / f"{_TMP_PREFIX}{target.name}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    (temp / PARTS_DIR).mkdir(parents=True)
    writer: PartWriter | None = None
    try:
        validator = Validator(
            _UNLIMITED, on_problem, observer=observer, reread=reread_lines(source)
        )
        with open_regular(source, buffering=0) as handle:
            before = os.fstat(handle.fileno())
            signature = FileSignature.of_stat(before)
            if expect is not None and signature != expect:
                raise PlanError(f"{source} changed since it was checked, so no part was written")
            writer = PartWriter(source, temp, before.st_size)
            writer.start()
            planner = _Planner(validator, writer, limits)

            def progress(done: int, rows: int) -> None:
                if on_progress is not None:
                    on_progress(done, before.st_size)

            complete = validator.scan(
                handle, on_block=planner.block, on_progress=progress, cancel=cancel
            )
            after = FileSignature.of_stat(os.fstat(handle.fileno()))
        writer.finish(stop=not complete)
        writer.join()
        if isinstance(writer.error, InputShrank):
            raise PlanError(str(writer.error))
        if writer.error is not None:
            raise writer.error
        if not complete:
            raise PlanCancelled("planning was cancelled")
        report = validator.finish()
        if after != signature:
            raise PlanError(f"{source} changed while it was being planned", report)
        blocking = [p for p in report.errors if p.code not in FIXED_BY_PLAN]
        fixed = len(report.errors) - len(blocking)
        if report.errors_total > fixed or report.rows == 0:
            first = blocking[0] if blocking else None
            where = f"line {first.line}: {first.message}" if first else "it has no requests"
            count = f"{report.errors_total:,} error{'s' if report.errors_total != 1 else ''}"
            raise PlanError(f"{source} has {count}, so no part was written; {where}", report)
        plan = Plan(
            folder=target,
            parts=planner.parts,
            input={
                "path": str(source.resolve()),
                "size": signature.size,
                "mtime_ns": signature.mtime_ns,
                "inode": signature.inode,
            },
            limits=limits,
            report=report,
            totals=_totals(planner.parts),
        )
        with open(temp / PLAN_FILE, "wb") as manifest:
            manifest.write(msgspec.json.format(msgspec.json.encode(plan.to_json()), indent=2))
            manifest.flush()
            os.fsync(manifest.fileno())
        _fsync_dir(temp / PARTS_DIR)
        _fsync_dir(temp)
        if target.exists():
            shutil.rmtree(target)
        os.rename(temp, target)
        _fsync_dir(target.parent)
        return plan
    except BaseException:
        if writer is not None and writer.ident is not None:
            writer.finish(stop=True)
            writer.join()
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _totals(parts: list[PlanPart]) -> dict[str, Any]:
    tokens: dict[str, int] = {}
    for part in parts:
        for model, n in part.tokens.items():
            tokens[model] = tokens.get(model, 0) + n
    return {
        "parts": len(parts),
        "rows": sum(p.rows for p in parts),
        "bytes": sum(p.bytes for p in parts),
        "tokens": tokens,
    }


def load_plan(out_dir: str | os.PathLike[str]) -> Plan | None:
    """The complete plan in ``out_dir``, or None when there is none (or it is damaged:
    a manifest that does not parse, of another version, or a part file missing or of
    another size)."""
    folder = Path(out_dir)
    try:
        data = msgspec.json.decode((folder / PLAN_FILE).read_bytes())
        if data.get("version") != PLAN_VERSION:
            return None
        parts = [PlanPart(**part) for part in data["parts"]]
        limits = PlanLimits(**data["limits"])
        for part in parts:
            if (folder / part.file).stat().st_size != part.bytes:
                return None
        plan = Plan(folder, parts, data["input"], limits, totals=data["totals"])
        plan.input_signature  # noqa: B018 (a manifest without it is damaged)
        return plan
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def split_part(
    part_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], limits: PlanLimits
) -> Plan:
    """Plan one part again with tighter limits (a part that alone exceeds the provider's
    enqueued-token limit is split further). Line numbers are the part's own."""
    return plan_file(part_path, out_dir, limits)


__all__ = [
    "PART_LIMIT_ERRORS",
    "PLAN_VERSION",
    "Plan",
    "PlanCancelled",
    "PlanError",
    "PlanLimits",
    "PlanPart",
    "load_plan",
    "plan_file",
    "split_part",
]
