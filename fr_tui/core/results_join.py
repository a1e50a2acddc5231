"""Batch results, joined in memory: read the output and error files and join their lines
to the inputs. (results.py is the public face: it stores this join as an index beside
the result files, results_index.py, and reopens it from there.)

A batch's answers come back in two JSONL files (either may be absent) in no particular
order, one line per request, keyed by `custom_id`. Each line is classified by
`resultline.py` (ok or failed, and why; api-notes 2.7, issues 1-3); an input row with no
line in either file is *missing*.

Nothing here loads a file whole. Inputs and results are streamed through a `LineIndex`,
and only a few compact fields per row are kept, in column lists; the full request and
response JSON are read back lazily by offset when a detail view or an export needs them.
Export, the retry file, the `--json` summary and merging a retry's results live in
`export.py`; their names can be imported from here too.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec

from fr_tui.core.jsonl import LineIndex

# Re-exported: the result-line parser was split out of this module; its names still
# import from here.
from fr_tui.core.resultline import (
    _GROUP_MESSAGE_MAX,
    ParsedResult,
    _dict,
    answer_hash,
    answer_text,
    first_line,
    parse_result_line,
    read_input_line,
)

Outcome = Literal["ok", "failed", "missing"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "failed", "missing")
OK, FAILED, MISSING = 0, 1, 2
MISSING_KEY = "missing"
# why a row is missing: a batch's files have no line for it; a job's merged file says so
NO_RESULT_LINE = "no result line in the output or error file"
NOT_RETURNED = "no batch of the job returned it, in any round"
UNREADABLE_KEY = "unreadable_input"
_NO_SOURCE = 255


# -- the join ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultRow:
    index: int | None  # the input line (0-based); None for a result with no input row
    custom_id: str | None
    outcome: Outcome
    status_code: int | None
    model: str | None
    provider: str | None
    tokens_in: int | None
    tokens_out: int | None
    finish_reason: str | None
    content_first_line: str | None
    error_code: str | None
    error_message: str | None
    cost: float | None
    result_file: Literal["output", "error"] | None  # where its result line is
    result_line: int | None  # 0-based line in that file
    result_path: Path | None
    group_key: str | None  # its error_groups() key; None when ok

    @property
    def error(self) -> str:
        if self.outcome == "ok":
            return ""
        if self.error_code and self.error_message:
            return f"{self.error_code}: {self.error_message}"
        return self.error_code or self.error_message or ""


@dataclass(frozen=True, slots=True)
class ResultIssue:
    """A result line that could not be joined: a duplicate, an unknown id, or a bad line."""

    file: Literal["output", "error"]
    path: Path
    line: int  # 1-based, as an editor shows it
    custom_id: str | None
    reason: str


def group_key(code: str | None, message: str | None) -> str:
    message = (message or "").strip().replace("\n", " ")[:_GROUP_MESSAGE_MAX]
    return f"{code or 'error'}: {message}" if message else code or "error"


@dataclass
class _Source:
    kind: Literal["output", "error"]
    index: LineIndex


ProgressFn = Callable[[int, int], None]


def waiting_row(
    custom_id: str, by_id: dict[str, int], more_by_id: dict[str, list[int]], src: bytearray
) -> int | None:
    """The first input row with this custom_id still waiting for a result (no source in
    ``src`` yet), or -1 when every such row has one already (a duplicate), None when the
    id is unknown."""
    row = by_id.get(custom_id)
    if row is None:
        return None
    if src[row] == _NO_SOURCE:
        return row
    for extra in more_by_id.get(custom_id, ()):
        if src[extra] == _NO_SOURCE:
            return extra
    return -1


class JoinedResults:
    """Every input row with its outcome, in input order, stored column-wise.

    Rows are addressed 0..len-1; `row(i)` (also `self[i]`) builds a `ResultRow`. Holds the
    files open for lazy reads: call `close()` (or use `with`)."""

    def __init__(self, input_index: LineIndex) -> None:
        self.input_index = input_index
        self.input_path = input_index.path
        self._sources: list[_Source] = []
        self._input_line: array[int] = array("q")
        self.custom_ids: list[str | None] = []
        self.providers: list[str | None] = []
        self.models: list[str | None] = []
        self.outcomes = bytearray()
        self.status_codes: list[int | None] = []
        self.tokens_in_col: list[int | None] = []
        self.tokens_out_col: list[int | None] = []
        self.finish_reasons: list[str | None] = []
        self.contents: list[str | None] = []
        self.error_codes: list[str | None] = []
        self.error_messages: list[str | None] = []
        self.costs: list[float | None] = []
        # the 8-byte hash of each ok answer (resultline.answer_hash), 0 for none
        self.answer_hashes: Any = []
        # which batch and round gave the answer: set by a job's merged result file only
        self.batch_ids: list[str | None] = []
        self.rounds: list[int | None] = []
        self._src = bytearray()
        self._src_line: array[int] = array("q")
        self._id_map: dict[str, int] | None = {}
        self._more_ids: dict[str, list[int]] = {}  # duplicate custom_ids in the input
        self.duplicates: list[ResultIssue] = []
        self.unknown_ids: list[ResultIssue] = []
        self.bad_lines: list[ResultIssue] = []
        self._groups: dict[str, list[int]] = {}
        self._group_info: dict[str, tuple[str, str]] = {}
        self._haystack: list[str] | None = None

    @property
    def _by_id(self) -> dict[str, int]:
        """custom_id -> its first input row (built on first use for a stored index)."""
        if self._id_map is None:
            self._id_map, self._more_ids = {}, {}
            for row, custom_id in enumerate(self.custom_ids):
                if custom_id is not None:
                    if custom_id not in self._id_map:
                        self._id_map[custom_id] = row
                    else:
                        self._more_ids.setdefault(custom_id, []).append(row)
        return self._id_map

    @_by_id.setter
    def _by_id(self, value: dict[str, int]) -> None:
        self._id_map = value

    @property
    def _more_by_id(self) -> dict[str, list[int]]:
        self._by_id  # noqa: B018 - builds both maps
        return self._more_ids

    @_more_by_id.setter
    def _more_by_id(self, value: dict[str, list[int]]) -> None:
        self._more_ids = value

    # -- building -------------------------------------------------------------

    def _add_input(self, line_no: int, raw: bytes) -> None:
        custom_id, provider, model = read_input_line(raw)
        row = len(self.custom_ids)
        self._input_line.append(line_no)
        self.custom_ids.append(custom_id)
        self.providers.append(provider)
        self.models.append(model)
        if custom_id is not None:
            by_id = self._by_id
            if custom_id not in by_id:
                by_id[custom_id] = row
            else:
                self._more_ids.setdefault(custom_id, []).append(row)

    def _reset_results(self) -> None:
        n = len(self.custom_ids)
        none: list[Any] = [None] * n
        self.outcomes = bytearray([MISSING]) * n
        self.status_codes = list(none)
        self.tokens_in_col = list(none)
        self.tokens_out_col = list(none)
        self.finish_reasons = list(none)
        self.contents = list(none)
        self.error_codes = list(none)
        self.error_messages = list(none)
        self.costs = list(none)
        self.answer_hashes = [0] * n
        self.batch_ids = list(none)
        self.rounds = list(none)
        self._src = bytearray([_NO_SOURCE]) * n
        self._src_line = array("q", bytes(8 * n))

    def _row_for(self, custom_id: str) -> int | None:
        return waiting_row(custom_id, self._by_id, self._more_by_id, self._src)

    def _set(self, row: int, parsed: ParsedResult, source: int, line: int) -> None:
        self.outcomes[row] = MISSING if parsed.outcome == "missing" else OK if parsed.ok else FAILED
        self.answer_hashes[row] = parsed.answer_hash
        self.batch_ids[row] = parsed.batch_id
        self.rounds[row] = parsed.round
        self.status_codes[row] = parsed.status_code
        if parsed.model and not self.models[row]:
            self.models[row] = parsed.model
        self.tokens_in_col[row] = parsed.tokens_in
        self.tokens_out_col[row] = parsed.tokens_out
        self.finish_reasons[row] = parsed.finish_reason
        self.contents[row] = parsed.content_first_line
        self.error_codes[row] = parsed.error_code
        self.error_messages[row] = parsed.error_message
        self.costs[row] = parsed.cost
        self._src[row] = source
        self._src_line[row] = line

    def _add_source(
        self, kind: Literal["output", "error"], index: LineIndex, progress: Callable[[int], None]
    ) -> None:
        source = len(self._sources)
        self._sources.append(_Source(kind, index))
        path = index.path
        for line_no, raw in index.iter_lines():
            if not line_no & 1023:
                progress(index.span(line_no)[0])
            if not raw.strip():
                continue
            parsed = parse_result_line(raw)
            if parsed.problem is not None:
                self.bad_lines.append(ResultIssue(kind, path, line_no + 1, None, parsed.problem))
                continue
            assert parsed.custom_id is not None
            row = self._row_for(parsed.custom_id)
            if row is None:
                self.unknown_ids.append(
                    ResultIssue(kind, path, line_no + 1, parsed.custom_id, "unknown custom_id")
                )
            elif row < 0:
                self.duplicates.append(
                    ResultIssue(kind, path, line_no + 1, parsed.custom_id, "duplicate result")
                )
            else:
                self._set(row, parsed, source, line_no)

    def _regroup(self) -> None:
        groups: dict[str, list[int]] = {}
        info: dict[str, tuple[str, str]] = {}
        codes, messages, ids = self.error_codes, self.error_messages, self.custom_ids
        for row, outcome in enumerate(self.outcomes):
            if outcome == OK:
                continue
            if outcome == MISSING:
                key = MISSING_KEY if ids[row] is not None else UNREADABLE_KEY
                if key not in info:
                    if key == UNREADABLE_KEY:
                        info[key] = (key, "the input line has no readable custom_id")
                    else:  # as its first row is missing (both never mix in one file)
                        said = self._src[row] != _NO_SOURCE
                        info[key] = (key, NOT_RETURNED if said else NO_RESULT_LINE)
            else:
                key = group_key(codes[row], messages[row])
                if key not in info:
                    info[key] = (codes[row] or "error", messages[row] or "")
            members = groups.get(key)
            if members is None:
                groups[key] = [row]
            else:
                members.append(row)
        self._groups = groups
        self._group_info = info
        self._haystack = None

    # -- reading --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.custom_ids)

    def __getitem__(self, i: int) -> ResultRow:
        return self.row(i)

    def __iter__(self) -> Iterator[ResultRow]:
        return (self.row(i) for i in range(len(self)))

    def outcome(self, i: int) -> Outcome:
        return OUTCOMES[self.outcomes[i]]

    def row(self, i: int) -> ResultRow:
        if i < 0:
            i += len(self)
        source = self._src[i]
        src = self._sources[source] if source != _NO_SOURCE else None
        outcome = OUTCOMES[self.outcomes[i]]
        key: str | None = None
        if outcome == "missing":
            key = MISSING_KEY if self.custom_ids[i] is not None else UNREADABLE_KEY
        elif outcome == "failed":
            key = group_key(self.error_codes[i], self.error_messages[i])
        return ResultRow(
            index=self._input_line[i],
            custom_id=self.custom_ids[i],
            outcome=outcome,
            status_code=self.status_codes[i],
            model=self.models[i],
            provider=self.providers[i],
            tokens_in=self.tokens_in_col[i],
            tokens_out=self.tokens_out_col[i],
            finish_reason=self.finish_reasons[i],
            content_first_line=self.contents[i],
            error_code=self.error_codes[i],
            error_message=self.error_messages[i],
            cost=self.costs[i],
            result_file=src.kind if src else None,
            result_line=self._src_line[i] if src else None,
            result_path=src.index.path if src else None,
            group_key=key,
        )

    def input_line(self, i: int) -> int:
        """The 0-based line of the input file that row i came from."""
        return self._input_line[i]

    def row_of(self, custom_id: str) -> int | None:
        return self._by_id.get(custom_id)

    @property
    def counts(self) -> dict[str, int]:
        ok = self.outcomes.count(OK)
        failed = self.outcomes.count(FAILED)
        return {"total": len(self), "ok": ok, "failed": failed, "missing": len(self) - ok - failed}

    @property
    def tokens_in(self) -> int:
        return sum(t for t in self.tokens_in_col if t)

    @property
    def tokens_out(self) -> int:
        return sum(t for t in self.tokens_out_col if t)

    @property
    def cost(self) -> float | None:
        """The costs' sum, correctly rounded (math.fsum): the same whatever the order the
        costs are added in (the stored index adds them in the order results arrive)."""
        costs = [c for c in self.costs if c is not None]
        return math.fsum(costs) if costs else None

    def error_groups(self) -> list[tuple[str, str, str, int]]:
        """(key, code, message, count) per kind of failure, biggest first; input rows with
        no result are one group with key "missing"."""
        groups = [(key, *self._group_info[key], len(rows)) for key, rows in self._groups.items()]
        groups.sort(key=lambda g: (-g[3], g[0]))
        return groups

    def filter(self, kind: str) -> list[int]:
        """Row numbers for "all", "ok", "failed", "missing" or an error-group key."""
        if kind == "all":
            return list(range(len(self)))
        if kind in ("ok", "failed"):
            return self.filter_outcome(OK if kind == "ok" else FAILED)
        if kind == MISSING_KEY:
            return self.filter_outcome(MISSING)
        return list(self._groups.get(kind, []))

    def filter_outcome(self, outcome: int) -> list[int]:
        """The rows with this outcome (OK, FAILED or MISSING), in order."""
        find = self.outcomes.find
        found: list[int] = []
        i = find(outcome)
        while i >= 0:  # bytearray.find is C-fast; far quicker than a Python loop
            found.append(i)
            i = find(outcome, i + 1)
        return found

    def search(self, text: str) -> list[int]:
        """Rows whose custom_id, answer first line or error contains `text` (any case)."""
        needle = text.casefold()
        if not needle:
            return list(range(len(self)))
        if self._haystack is None:
            self._haystack = [
                f"{cid or ''}\0{content or ''}\0{code or ''}: {message or ''}".casefold()
                for cid, content, code, message in zip(
                    self.custom_ids,
                    self.contents,
                    self.error_codes,
                    self.error_messages,
                    strict=True,
                )
            ]
        return [i for i, hay in enumerate(self._haystack) if needle in hay]

    def request_bytes(self, i: int) -> bytes:
        return self.input_index.line(self._input_line[i])

    def request_json(self, i: int) -> dict[str, Any] | None:
        """The full input line of row i, parsed; None if it is not a JSON object."""
        return _load_object(self.request_bytes(i))

    def missing_reason(self, i: int) -> str:
        """Why missing row i has no result (its group's reason)."""
        key = MISSING_KEY if self.custom_ids[i] is not None else UNREADABLE_KEY
        return self._group_info.get(key, (key, NO_RESULT_LINE))[1]

    def response_bytes(self, i: int, *, cache: bool = True) -> bytes | None:
        source = self._src[i]
        if source == _NO_SOURCE:
            return None
        index = self._sources[source].index
        line = self._src_line[i]
        return index.line(line) if cache else index.read_line(line)

    def response_json(self, i: int) -> dict[str, Any] | None:
        """The full result line of row i, read now by its offset; None when missing."""
        raw = self.response_bytes(i)
        return _load_object(raw) if raw is not None else None

    def response_text(self, i: int) -> str | None:
        """The whole answer of row i (not just its first line), for export and detail."""
        raw = self.response_bytes(i, cache=False)
        obj = _load_object(raw) if raw is not None else None
        response = _dict(obj.get("response")) if obj else None
        body: Any = response.get("body") if response else None
        if isinstance(body, str):
            body = _load_object(body.encode())
        return answer_text(body)

    def close(self) -> None:
        """Close the input and every result file this object reads from (idempotent)."""
        self.input_index.close()
        for source in self._sources:
            source.index.close()

    def __enter__(self) -> JoinedResults:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _load_object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def join_in_memory(
    input_path: str | Path,
    output_path: str | Path | None,
    error_path: str | Path | None,
    *,
    on_progress: ProgressFn | None = None,
) -> JoinedResults:
    """Join an input file with its output and error files (either may be None: an
    all-failed batch has no output file). Result lines are matched on custom_id; the
    output file is read first and the first line for an id wins. Raises OSError only if
    a given file cannot be read; bad content is counted, never fatal."""
    indexes: list[tuple[Literal["input", "output", "error"], LineIndex]] = []
    try:
        indexes.append(("input", LineIndex(input_path)))
        if output_path is not None:
            indexes.append(("output", LineIndex(output_path)))
        if error_path is not None:
            indexes.append(("error", LineIndex(error_path)))
    except BaseException:
        for _, opened in indexes:
            opened.close()
        raise
    total = sum(index.size for _, index in indexes) or 1
    done = 0

    def progress(offset: int) -> None:
        if on_progress is not None:
            on_progress(done + offset, total)

    joined = JoinedResults(indexes[0][1])
    for kind, index in indexes:
        index.build()
        if kind == "input":
            for line_no, raw in index.iter_lines():
                if not line_no & 1023:
                    progress(index.span(line_no)[0])
                if raw.strip():  # blank lines are no requests
                    joined._add_input(line_no, raw)
            joined._reset_results()
        else:
            joined._add_source(kind, index, progress)
        done += index.size
    joined._regroup()
    if on_progress is not None:
        on_progress(total, total)
    return joined


# -- after the join: retries ----------------------------------------------------


def merge_child(parent: JoinedResults, child: JoinedResults) -> JoinedResults:
    """The picture after a retry: `child` is the batch run on a retry file made from
    `parent`. Its ok results replace the parent's failed and missing rows with the same
    custom_id, and its failures replace the parent's (they are more recent), but an ok
    row of the parent is never replaced. Rows stay in the parent's input order. The merged
    object shares the open files of both (closing is idempotent: closing the merged
    object closes them all, closing the originals too is harmless)."""
    merged = JoinedResults(parent.input_index)
    for name in (
        "_input_line", "custom_ids", "providers", "models", "outcomes", "status_codes",
        "tokens_in_col", "tokens_out_col", "finish_reasons", "contents", "error_codes",
        "error_messages", "costs", "_src", "_src_line", "answer_hashes", "batch_ids", "rounds",
    ):  # fmt: skip
        column = getattr(parent, name)  # a list, or a view of a stored index: copied
        setattr(merged, name, bytearray(column) if isinstance(column, bytearray) else list(column))
    merged._by_id = parent._by_id
    merged._more_by_id = parent._more_by_id
    merged._sources = parent._sources + child._sources
    if len(merged._sources) >= _NO_SOURCE:
        raise ValueError("too many result files to merge")
    offset = len(parent._sources)
    merged.duplicates = parent.duplicates + child.duplicates
    merged.unknown_ids = parent.unknown_ids + child.unknown_ids
    merged.bad_lines = parent.bad_lines + child.bad_lines
    for row in range(len(child)):
        if child.outcomes[row] == MISSING:
            continue
        custom_id = child.custom_ids[row]
        target = merged._by_id.get(custom_id) if custom_id is not None else None
        if target is None or merged.outcomes[target] == OK:
            continue
        merged.outcomes[target] = child.outcomes[row]
        for name in (
            "status_codes", "tokens_in_col", "tokens_out_col", "finish_reasons", "contents",
            "error_codes", "error_messages", "costs", "answer_hashes", "batch_ids", "rounds",
        ):  # fmt: skip
            getattr(merged, name)[target] = getattr(child, name)[row]
        if child.models[row]:
            merged.models[target] = child.models[row]
        merged._src[target] = child._src[row] + offset
        merged._src_line[target] = child._src_line[row]
    merged._regroup()
    return merged


def merge_children(parent: JoinedResults, children: Sequence[JoinedResults]) -> JoinedResults:
    """`merge_child` applied for each retry in the order they ran."""
    merged = parent
    for child in children:
        merged = merge_child(merged, child)
    return merged


__all__ = [
    "JoinedResults",
    "ParsedResult",
    "ResultIssue",
    "ResultRow",
    "answer_hash",
    "answer_text",
    "first_line",
    "join_in_memory",
    "merge_child",
    "merge_children",
    "parse_result_line",
]
