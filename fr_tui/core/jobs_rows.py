"""The rows of a job across its rounds: which batch gave each input row its latest
answer, the file of the next round, and the merged result.

Memory stays at a few compact arrays per input row (RowState: 11 bytes a row), whatever
the size of the answers: each part's join is the stored results index of its batch
(core/results.py), opened a few at a time (JoinCache) and read by offset; nothing holds
the JSON of more than one row at once.

Rounds: round 1's rows are the input's rows. Round k > 1 is made of the rows that were
not ok after round k - 1 and whose kind of failure is retried, in input order: its file
is `round-k/input/input.jsonl` (the request lines, byte for byte) and `rows.bin` maps each
of its rows to its input row (little-endian int64). Each round's file is planned into
parts like round 1's; a part's rows are a contiguous run of its round's rows.
"""

from __future__ import annotations

import os
import shutil
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.export import atomic_write
from fr_tui.core.jobs_store import PART_DONE, PART_UNRUNNABLE, JobPart
from fr_tui.core.jsonl import LineIndex, custom_id_of
from fr_tui.core.records import BatchRecord
from fr_tui.core.results import JoinedResults, join_results
from fr_tui.core.results_join import FAILED, MISSING, OK, OUTCOMES
from fr_tui.core.retry_kinds import RETRY_KINDS, TOKEN_LIMIT, failure_kind

ROWS_FILE = "rows.bin"
INPUT_DIR = "input"
INPUT_FILE = "input.jsonl"
MERGED_FILE = "merged.jsonl"
KINDS: tuple[str, ...] = (*RETRY_KINDS, TOKEN_LIMIT)
_KIND = {name: number for number, name in enumerate(KINDS)}
_NO_KIND = 255
# outcome -> kind before failed rows are looked at: ok has none, missing is "missing"
_OUTCOME_KIND = bytes(
    _NO_KIND if i == OK else _KIND["missing"] if i == MISSING else _KIND["other"]
    for i in range(256)
)
# Joins open at once. Opening one checks its stored index whole (a CRC), which brings
# every page of that file into this process's resident memory until it is closed: a
# few at a time keep a million-row merge's peak RSS low (the merge walks input rows in
# order, needing at most one part per round at any point).
_OPEN_JOINS = 6


def round_dir(job_dir: Path, round_: int) -> Path:
    return job_dir / f"round-{round_}"


def read_row_map(job_dir: Path, round_: int) -> array[int] | None:
    """Round `round_`'s row -> input row (None for round 1: the identity)."""
    if round_ == 1:
        return None
    rows = array("q")
    data = (round_dir(job_dir, round_) / INPUT_DIR / ROWS_FILE).read_bytes()
    rows.frombytes(data)
    return rows


@dataclass
class PartAnswers:
    """What one ended part of one round says about its rows."""

    part: JobPart
    batch: BatchRecord | None
    joined: JoinedResults | None  # None: no row has a line (the batch failed as a whole)
    failure: tuple[str, str] | None = None  # (code, message) for every row, when joined is None


class JoinCache:
    """The joins of ended parts, a few open at a time (each holds files and a mapping)."""

    def __init__(self, opener: Callable[[JobPart], PartAnswers], limit: int = _OPEN_JOINS):
        self.opener = opener
        self.limit = limit
        self._open: OrderedDict[tuple[int, int], PartAnswers] = OrderedDict()

    def get(self, part: JobPart) -> PartAnswers:
        key = part.slot
        found = self._open.get(key)
        if found is not None:
            self._open.move_to_end(key)
            return found
        answers = self.opener(part)
        self._open[key] = answers
        while len(self._open) > self.limit:
            _, old = self._open.popitem(last=False)
            if old.joined is not None:
                old.joined.close()
        return answers

    def close(self) -> None:
        for answers in self._open.values():
            if answers.joined is not None:
                answers.joined.close()
        self._open.clear()


def batch_failure(batch: BatchRecord | None) -> tuple[str, str]:
    """(code, message) of a batch that failed as a whole."""
    if batch is not None and batch.errors:
        first = batch.errors[0]
        code = first.get("code") or "batch_failed"
        return str(code), str(first.get("message") or "the batch failed")
    status = batch.status if batch is not None else "unknown"
    return "batch_failed", f"the batch ended {status} without results"


def open_part(job_dir: Path, part: JobPart, batch: BatchRecord | None) -> PartAnswers:
    """The answers of an ended part: its batch's results joined to the part's rows."""
    path = job_dir / part.file
    if part.state == PART_UNRUNNABLE:
        message = part.note or "the row alone is over the provider's enqueued-token limit"
        joined = join_results(path, None, None, index=False)
        return PartAnswers(part, batch, joined, (TOKEN_LIMIT, message))
    output = Path(batch.output_path) if batch is not None and batch.output_path else None
    error = Path(batch.error_path) if batch is not None and batch.error_path else None
    if output is not None and not output.is_file():
        output = None
    if error is not None and not error.is_file():
        error = None
    if output is None and error is None and batch is not None and batch.status == "failed":
        joined = join_results(path, None, None, index=False)
        return PartAnswers(part, batch, joined, batch_failure(batch))
    return PartAnswers(part, batch, join_results(path, output, error))


class RowState:
    """Per input row: the round, part and row in that part's join of its latest answer,
    its outcome, and the kind of its failure."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.round = bytearray(rows)  # 0: no answer yet
        self.part = array("i", bytes(4 * rows))
        self.pos = array("i", bytes(4 * rows))
        self.outcome = bytearray([MISSING]) * rows
        self.kind = bytearray([_KIND["missing"]]) * rows

    def add(self, round_: int, answers: PartAnswers, row_map: array[int] | None) -> None:
        """Every row of an ended part takes this answer (a row comes back in a later round
        only if it was not ok before, so a later answer is always the one to keep)."""
        part = answers.part
        joined = answers.joined
        failure = answers.failure
        count = part.rows if joined is None else len(joined)
        if failure is not None:
            outcomes = bytearray([FAILED]) * count
            code = TOKEN_LIMIT if failure[0] == TOKEN_LIMIT else "batch_failed"
            kinds = bytearray([_KIND[code]]) * count
        else:
            assert joined is not None
            outcomes = bytearray(joined.outcomes)
            kinds = outcomes.translate(_OUTCOME_KIND)
            find = outcomes.find
            i = find(FAILED)
            while i >= 0:  # only failed rows are looked at one by one
                kinds[i] = _KIND[failure_kind(joined.status_codes[i], joined.error_codes[i])]
                i = find(FAILED, i + 1)
        base = part.first_row
        if row_map is None:  # round 1: the part's rows are a run of input rows
            end = base + count
            self.round[base:end] = bytes([round_]) * count
            self.part[base:end] = array("i", [part.part]) * count
            self.pos[base:end] = array("i", range(count))
            self.outcome[base:end] = outcomes
            self.kind[base:end] = kinds
            return
        for i in range(count):
            row = row_map[base + i]
            self.round[row] = round_
            self.part[row] = part.part
            self.pos[row] = i
            self.outcome[row] = outcomes[i]
            self.kind[row] = kinds[i]

    def counts(self) -> dict[str, int]:
        ok = self.outcome.count(OK)
        failed = self.outcome.count(FAILED)
        return {"total": self.rows, "ok": ok, "failed": failed, "missing": self.rows - ok - failed}

    def left(self) -> dict[str, int]:
        """Rows that are not ok, by kind of failure."""
        found: dict[str, int] = {}
        for number, name in enumerate(KINDS):
            count = self.kind.count(number)
            if count:
                found[name] = count
        return found

    def to_retry(self, kinds: tuple[str, ...]) -> Iterator[int]:
        """Input rows (ascending) whose failure is of a retried kind."""
        wanted = bytes(_KIND[k] for k in kinds if k in _KIND)
        if not wanted:
            return
        table = bytes(1 if i in wanted else 0 for i in range(256))
        marks = self.kind.translate(table)
        find = marks.find
        row = find(1)
        while row >= 0:
            yield row
            row = find(1, row + 1)


def collect(
    job_dir: Path,
    rows: int,
    rounds: dict[int, list[JobPart]],
    cache: JoinCache,
) -> RowState:
    """The state of every input row after the rounds given (each round's ended parts:
    done or unrunnable; split parts are left out, their halves hold the rows)."""
    state = RowState(rows)
    for round_ in sorted(rounds):
        row_map = read_row_map(job_dir, round_)
        for part in rounds[round_]:
            if part.state in (PART_DONE, PART_UNRUNNABLE):
                state.add(round_, cache.get(part), row_map)
    return state


class InputRows:
    """Request lines of input rows, read from round 1's parts (the job's own copy of the
    input, kept while the job lives), one part file open at a time."""

    def __init__(self, job_dir: Path, parts: list[JobPart]) -> None:
        self.job_dir = job_dir
        self.parts = sorted((p for p in parts if p.parent_part is None), key=lambda p: p.part)
        self.starts = [p.first_row for p in self.parts]
        self._open: tuple[int, LineIndex] | None = None

    def line(self, row: int) -> bytes:
        at = bisect_right(self.starts, row) - 1
        part = self.parts[at]
        if self._open is None or self._open[0] != at:
            self.close()
            index = LineIndex(self.job_dir / part.file)
            index.build()
            self._open = (at, index)
        return self._open[1].read_line(row - part.first_row)

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


def write_round_input(
    job_dir: Path, round_: int, first_parts: list[JobPart], chosen: list[int] | array[int]
) -> Path:
    """Write round `round_`'s input (the chosen input rows' request lines) and its row
    map into `round-N/input/`, whole or not at all. Returns the input file's path."""
    target = round_dir(job_dir, round_) / INPUT_DIR
    temp = target.with_name(f".{INPUT_DIR}-tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    reader = InputRows(job_dir, first_parts)
    try:
        rows = array("q", chosen)
        with atomic_write(temp / INPUT_FILE) as out:
            for row in rows:
                out.write(reader.line(row) + b"\n")
        with atomic_write(temp / ROWS_FILE) as out:
            out.write(rows.tobytes())
        shutil.rmtree(target, ignore_errors=True)
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    finally:
        reader.close()
    return target / INPUT_FILE


def _unanswered_line(row: int, inputs: InputRows) -> bytes:
    """A row no batch answered (its job was cancelled before it ran)."""
    return msgspec.json.encode(
        {
            "custom_id": custom_id_of(inputs.line(row)),
            "outcome": "missing",
            "batch_id": None,
            "round": None,
            "response": None,
            "error": None,
        }
    )


def _merged_line(state: RowState, row: int, answers: PartAnswers) -> bytes:
    pos = state.pos[row]
    outcome = OUTCOMES[state.outcome[row]]
    batch = answers.batch
    joined = answers.joined
    custom_id = joined.custom_ids[pos] if joined is not None else None
    response: Any = None
    error: Any = None
    if answers.failure is not None:
        code, message = answers.failure
        error = {"code": code, "message": message}
    elif joined is not None:
        raw = joined.response_bytes(pos, cache=False)
        if raw is not None:
            line = msgspec.json.decode(raw)
            response = line.get("response")
            error = line.get("error")
            if custom_id is None:
                custom_id = line.get("custom_id")
    return msgspec.json.encode(
        {
            "custom_id": custom_id,
            "outcome": outcome,
            "batch_id": batch.id if batch is not None else None,
            "round": state.round[row],
            "response": response,
            "error": error,
        }
    )


def write_merged(
    path: Path,
    state: RowState,
    parts_by_slot: dict[tuple[int, int], JobPart],
    cache: JoinCache,
    inputs: InputRows,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """One line per input row, in input order (see `_merged_line`), written atomically.
    The same answers always give the same bytes. Returns the rows written."""
    with atomic_write(path) as out:
        buffer: list[bytes] = []
        for row in range(state.rows):
            round_ = state.round[row]
            if round_ == 0:
                buffer.append(_unanswered_line(row, inputs))
            else:
                part = parts_by_slot[(round_, state.part[row])]
                buffer.append(_merged_line(state, row, cache.get(part)))
            if len(buffer) >= 4096:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
                if progress is not None:
                    progress(row + 1, state.rows)
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    return state.rows


__all__ = [
    "KINDS",
    "MERGED_FILE",
    "InputRows",
    "JoinCache",
    "PartAnswers",
    "RowState",
    "batch_failure",
    "collect",
    "open_part",
    "read_row_map",
    "round_dir",
    "write_merged",
    "write_round_input",
]
