"""Two result sets side by side, joined by custom_id (issue 13).

`compare(a, b)` joins two `JoinedResults` (batches, jobs, or one of each) on custom_id
and gives every row a state: the same answer on both sides, different answers, one side
not ok, neither ok, or a row only one side has. It reads only the compact columns of the
stored results index (custom_ids, outcomes, answer hashes): two answers are "the same"
when their hashes are (resultline.answer_hash: chat text with whitespace collapsed, JSON
answers canonical, embedding vectors exact), so the summary never reads an answer. The
full answers are read for one row at a time: its word diff, JSON field diff or cosine
similarity (`detail`, `similarity`), and row by row in an export (compare_export.py).

The join (compare_join.py) keeps no dict of ids, only sorted arrays of id hashes, and
is the identity when both sides ran the same input file. Rows: A's rows in A's order,
then the rows only B has, in B's order. The summary's figures are compare_stats.py's.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fr_tui.core.compare_join import join_ids, same_id_column
from fr_tui.core.compare_stats import CompareSummary, SideStats, side_stats
from fr_tui.core.resultline import answer_text
from fr_tui.core.results import OK, OUTCOMES, JoinedResults
from fr_tui.core.textdiff import (
    NOT_JSON,
    FieldChange,
    WordDiff,
    embeddings_similarity,
    json_diff,
    parse_json_answer,
    word_diff,
)

# Row states, one byte per row
SAME, DIFFERENT, A_NOT_OK, B_NOT_OK, NEITHER_OK, ONLY_A, ONLY_B = range(7)
STATE_NAMES = ("same", "different", "a_not_ok", "b_not_ok", "neither_ok", "only_a", "only_b")

FINISH_PREFIX = "finish:"
BASE_FILTERS = ("all", "different", "one_failed", "neither_ok", "only_a", "only_b", "same")
FILTER_LABELS = {
    "all": "all",
    "different": "different",
    "one_failed": "one side failed",
    "neither_ok": "neither ok",
    "only_a": "only in A",
    "only_b": "only in B",
    "same": "same",
}
_FILTER_STATES = {
    "different": (DIFFERENT,),
    "one_failed": (A_NOT_OK, B_NOT_OK),
    "neither_ok": (NEITHER_OK,),
    "only_a": (ONLY_A,),
    "only_b": (ONLY_B,),
    "same": (SAME,),
}


def _table(mapping: dict[int, int]) -> bytes:
    return bytes(mapping.get(i, 0) for i in range(256))


# A row's code: bit 1 A is ok, bit 2 B is ok, bit 4 the answer hashes are equal.
_OK_BIT_A = _table({OK: 1})
_OK_BIT_B = _table({OK: 2})
_SAME_BIT = _table({1: 4})
_STATE_OF_CODE = _table(
    {0: NEITHER_OK, 4: NEITHER_OK, 1: B_NOT_OK, 5: B_NOT_OK, 2: A_NOT_OK, 6: A_NOT_OK,
     3: DIFFERENT, 7: SAME}
)  # fmt: skip
_ABSENT = _table({1: ONLY_A})  # above every state of a row in both, so max() picks it
_PRESENT = _table({state: 1 for state in range(ONLY_A)})  # B has the row


def _equal_marks(column: Sequence[Any], value: str) -> bytes:
    """1 for each row whose value is `value`, else 0; a stored index's category column
    is compared by its codes, at C speed."""
    codes, values = getattr(column, "_codes", None), getattr(column, "_values", None)
    if isinstance(codes, memoryview) and isinstance(values, list):
        if value not in values:
            return bytes(len(codes))
        return bytes(map(values.index(value).__eq__, codes))
    return bytes(map(operator.eq, column, itertools.repeat(value)))


_SIMILARITY_CACHE = 2000


def _positions(states: bytearray, wanted: Sequence[int]) -> array[int]:
    """The positions whose state is one of `wanted`, in order (C-speed scans)."""
    table = bytearray(256)
    for state in wanted:
        table[state] = 1
    marks = states.translate(table)
    found = array("q")
    at = marks.find(1)
    while at >= 0:
        found.append(at)
        at = marks.find(1, at + 1)
    return found


# JoinedResults.search keeps a casefolded copy of every row's text (about 100 bytes a
# row, so 200 MB for two 1,000,000-row sides): above this many rows, each find scans the
# columns instead and keeps nothing.
HAYSTACK_ROWS = 200_000
# Above it, the columns are read a slice at a time, the pages read handed back after each.
SCAN_CHUNK = 100_000


def search_rows(joined: JoinedResults, text: str) -> list[int]:
    """The rows of one side whose custom_id, answer (first line) or error has `text`."""
    if len(joined) <= HAYSTACK_ROWS:
        return joined.search(text)
    needle = text.casefold()
    found = []
    release = getattr(joined, "release_pages", None)  # a stored index's mapped pages
    for start in range(0, len(joined), SCAN_CHUNK):
        end = min(start + SCAN_CHUNK, len(joined))
        columns = zip(
            joined.custom_ids[start:end],
            joined.contents[start:end],
            joined.error_codes[start:end],
            joined.error_messages[start:end],
            strict=True,
        )
        for row, (cid, content, code, message) in enumerate(columns, start):
            if needle in f"{cid or ''}\0{content or ''}\0{code or ''}: {message or ''}".casefold():
                found.append(row)
        if release is not None:
            release()
    return found


# -- the summary --------------------------------------------------------------------


# -- one row in full ----------------------------------------------------------------


@dataclass
class SideAnswer:
    """One side of a row: what it answered, or why not."""

    row: int | None  # the side's own row; None when the side does not have the row
    outcome: str  # ok / failed / missing / absent
    text: str | None = None  # the whole answer (ok rows)
    error: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    body: Any = None  # the response body (ok rows)


@dataclass
class RowDetail:
    position: int
    custom_id: str | None
    state: int
    a: SideAnswer
    b: SideAnswer
    request: dict[str, Any] | None  # the input row (A's, else B's)
    request_changes: list[FieldChange] = field(default_factory=list)  # B's input vs A's
    kind: str | None = None  # "text", "json", "embedding" (both ok), else None
    a_shown: str | None = None  # each answer as shown: JSON pretty-printed
    b_shown: str | None = None
    words: WordDiff | None = None  # of the shown texts
    fields: list[FieldChange] | None = None  # JSON answers
    similarity: float | None = None  # embeddings

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


def _pretty(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def response_body(joined: JoinedResults, row: int, *, cache: bool = True) -> Any:
    """The response body of a row's result line (parsed when a server sent it as a
    string), or None."""
    raw = joined.response_bytes(row, cache=cache)
    if raw is None:
        return None
    try:
        line = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    response = line.get("response") if isinstance(line, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    if isinstance(body, str):
        try:
            body = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return None
    return body


def looks_like_embedding(first_line: str | None) -> bool:
    """An answer whose first line is an embedding's summary ("embedding[1536]")."""
    return bool(first_line) and first_line.startswith("embedding[")  # type: ignore[union-attr]


# -- the comparison -----------------------------------------------------------------


class Comparison:
    """Two result sets joined by custom_id. Positions 0..len-1 address its rows."""

    def __init__(
        self, a: JoinedResults, b: JoinedResults, *, a_label: str = "A", b_label: str = "B"
    ) -> None:
        self.a, self.b = a, b
        self.a_label, self.b_label = a_label, b_label
        self._b_of_a, self._only_b = join_ids(a.custom_ids, b.custom_ids)
        self._a_of_b: array[int] | None = None
        self.n_a = len(a)
        self.states = self._states()
        self._summary: CompareSummary | None = None
        self._similarity: dict[int, float | None] = {}

    @property
    def identical_ids(self) -> bool:
        """Row i of A is row i of B (two runs of the same file)."""
        return self._b_of_a is None

    def __len__(self) -> int:
        return self.n_a + len(self._only_b)

    def _states(self) -> bytearray:
        """Each row's state, from the outcome and answer-hash columns in a few passes
        that run in C (map and translate over whole columns: no Python per row)."""
        a, b, n_a = self.a, self.b, self.n_a
        b_of_a = self._b_of_a
        tail = bytes([ONLY_B]) * len(self._only_b)
        out_b: bytes | bytearray
        if b_of_a is None:
            out_b, hashes_b, absent = b.outcomes, b.answer_hashes, None
        elif not len(b):
            return bytearray([ONLY_A]) * n_a + tail
        else:  # B's columns in A's order (-1, no partner, reads B's last row: overridden)
            out_b = bytes(map(b.outcomes.__getitem__, b_of_a))
            hashes_b = map(b.answer_hashes.__getitem__, b_of_a)
            absent = bytes(map((-1).__eq__, b_of_a)).translate(_ABSENT)
        ok_a = a.outcomes.translate(_OK_BIT_A)
        ok_b = out_b.translate(_OK_BIT_B)
        same = bytes(map(operator.eq, a.answer_hashes, hashes_b)).translate(_SAME_BIT)
        code = bytes(map(operator.or_, map(operator.or_, ok_a, ok_b), same))
        states = code.translate(_STATE_OF_CODE)
        if absent is not None:
            states = bytes(map(max, states, absent))
        return bytearray(states) + tail

    # -- rows -----------------------------------------------------------------

    def a_row(self, position: int) -> int | None:
        return position if position < self.n_a else None

    def b_row(self, position: int) -> int | None:
        if position >= self.n_a:
            return self._only_b[position - self.n_a]
        if self._b_of_a is None:
            return position
        row = self._b_of_a[position]
        return row if row >= 0 else None

    def custom_id(self, position: int) -> str | None:
        if position < self.n_a:
            return self.a.custom_ids[position]
        return self.b.custom_ids[self._only_b[position - self.n_a]]

    def position_of_b(self, b_row: int) -> int:
        """Where B's row `b_row` is among the positions."""
        if self._b_of_a is None:
            return b_row
        if self._a_of_b is None:
            a_of_b = array("q", [-1]) * len(self.b)
            for ra, rb in enumerate(self._b_of_a):
                if rb >= 0:
                    a_of_b[rb] = ra
            self._a_of_b = a_of_b
        paired = self._a_of_b[b_row]
        if paired >= 0:
            return paired
        return self.n_a + bisect_left(self._only_b, b_row)

    def outcome_a(self, position: int) -> str:
        return OUTCOMES[self.a.outcomes[position]] if position < self.n_a else "absent"

    def outcome_b(self, position: int) -> str:
        row = self.b_row(position)
        return OUTCOMES[self.b.outcomes[row]] if row is not None else "absent"

    # -- summary, filters, find -----------------------------------------------

    def summary(self) -> CompareSummary:
        if self._summary is None:
            count = self.states.count
            self._summary = CompareSummary(
                both=len(self) - count(ONLY_A) - count(ONLY_B),
                only_a=count(ONLY_A),
                only_b=count(ONLY_B),
                same=count(SAME),
                different=count(DIFFERENT),
                a_not_ok=count(A_NOT_OK),
                b_not_ok=count(B_NOT_OK),
                neither_ok=count(NEITHER_OK),
                a=side_stats(self.a),
                b=side_stats(self.b),
            )
        return self._summary

    def filters(self) -> list[str]:
        """The filters worth offering: the base ones, then one per finish reason either
        side has (`finish:length` first)."""
        summary = self.summary()
        reasons = set(summary.a.finish_reasons) | set(summary.b.finish_reasons)
        ordered = sorted(reasons, key=lambda r: (r != "length", r))
        return [*BASE_FILTERS, *(FINISH_PREFIX + r for r in ordered)]

    def filter(self, kind: str) -> Sequence[int]:
        """Positions for a filter of `filters()`, in order."""
        if kind == "all":
            return range(len(self))
        states = _FILTER_STATES.get(kind)
        if states is not None:
            return _positions(self.states, states)
        if kind.startswith(FINISH_PREFIX):
            return self._finish_positions(kind[len(FINISH_PREFIX) :])
        raise ValueError(f"unknown compare filter {kind!r}")

    def _finish_positions(self, reason: str) -> array[int]:
        """Positions where either side's answer ended for `reason` (C-speed passes)."""
        n_a, b_of_a = self.n_a, self._b_of_a
        a_marks = _equal_marks(self.a.finish_reasons, reason)
        b_marks = _equal_marks(self.b.finish_reasons, reason)
        if b_of_a is None:
            b_in_a: bytes = b_marks
        elif not b_marks:
            b_in_a = bytes(n_a)
        else:  # B's marks in A's order; a row B lacks reads B's last row: masked out
            present = self.states[:n_a].translate(_PRESENT)
            b_in_a = bytes(map(operator.and_, map(b_marks.__getitem__, b_of_a), present))
        marks = bytes(map(operator.or_, a_marks, b_in_a))
        marks += bytes(map(b_marks.__getitem__, self._only_b))
        return _positions(bytearray(marks), (1,))

    def search(self, text: str) -> list[int]:
        """Positions whose custom_id, answer (first line) or error contains `text` on
        either side (any case)."""
        if not text:
            return []
        found = set(search_rows(self.a, text))
        found.update(self.position_of_b(row) for row in search_rows(self.b, text))
        return sorted(found)

    # -- one row --------------------------------------------------------------

    def _side(self, joined: JoinedResults, row: int | None, *, read: bool) -> SideAnswer:
        if row is None:
            return SideAnswer(None, "absent")
        outcome = OUTCOMES[joined.outcomes[row]]
        side = SideAnswer(
            row,
            outcome,
            model=joined.models[row],
            finish_reason=joined.finish_reasons[row],
            tokens_in=joined.tokens_in_col[row],
            tokens_out=joined.tokens_out_col[row],
        )
        if outcome == "ok" and read:
            side.body = response_body(joined, row)
            side.text = answer_text(side.body)
        elif outcome == "failed":
            side.error = joined.row(row).error
        return side

    def detail(self, position: int) -> RowDetail:
        """Row `position` in full: both answers read, and how they differ."""
        a = self._side(self.a, self.a_row(position), read=True)
        b = self._side(self.b, self.b_row(position), read=True)
        request = self.a.request_json(a.row) if a.row is not None else None
        other = self.b.request_json(b.row) if b.row is not None else None
        detail = RowDetail(
            position, self.custom_id(position), self.states[position], a, b, request or other
        )
        if request is not None and other is not None:
            detail.request_changes = json_diff(request, other)
        if a.outcome != "ok" or b.outcome != "ok":
            detail.a_shown, detail.b_shown = a.text, b.text
            return detail
        similarity = embeddings_similarity(a.body, b.body)
        if similarity is not None:
            detail.kind = "embedding"
            detail.similarity = similarity
            detail.a_shown, detail.b_shown = a.text, b.text
            return detail
        a_json, b_json = parse_json_answer(a.text), parse_json_answer(b.text)
        if a_json is not NOT_JSON and b_json is not NOT_JSON:
            detail.kind = "json"
            detail.fields = json_diff(a_json, b_json)
            detail.a_shown, detail.b_shown = _pretty(a_json), _pretty(b_json)
        else:
            detail.kind = "text"
            detail.a_shown, detail.b_shown = a.text or "", b.text or ""
        detail.words = word_diff(detail.a_shown, detail.b_shown)
        return detail

    def is_embedding(self, position: int) -> bool:
        ra, rb = self.a_row(position), self.b_row(position)
        return (
            ra is not None
            and rb is not None
            and self.a.outcomes[ra] == OK
            and self.b.outcomes[rb] == OK
            and looks_like_embedding(self.a.contents[ra])
        )

    def similarity(self, position: int) -> float | None:
        """The cosine similarity of the two embeddings of a row (read now, then kept
        for the rows on screen); None for anything but two ok embeddings."""
        if position in self._similarity:
            return self._similarity[position]
        value = None
        if self.is_embedding(position):
            ra, rb = self.a_row(position), self.b_row(position)
            assert ra is not None and rb is not None
            value = embeddings_similarity(response_body(self.a, ra), response_body(self.b, rb))
        if len(self._similarity) >= _SIMILARITY_CACHE:
            self._similarity.clear()
        self._similarity[position] = value
        return value

    def similarity_stats(self) -> dict[str, Any] | None:
        """Mean and lowest cosine similarity over the rows where both sides embedded:
        a pass that reads those rows' answers (so only on request: the CLI's --json and
        the screen's summary, in a worker); None when no row is an embedding."""
        values = []
        for position in _positions(self.states, (SAME, DIFFERENT)):
            if not self.is_embedding(position):
                continue
            ra, rb = self.a_row(position), self.b_row(position)
            assert ra is not None and rb is not None
            value = embeddings_similarity(
                response_body(self.a, ra, cache=False), response_body(self.b, rb, cache=False)
            )
            if value is not None:
                values.append(value)
        if not values:
            return None
        return {"rows": len(values), "mean": math.fsum(values) / len(values), "min": min(values)}


def compare(
    a: JoinedResults, b: JoinedResults, *, a_label: str = "A", b_label: str = "B"
) -> Comparison:
    """Join two result sets by custom_id (see the module's docstring)."""
    return Comparison(a, b, a_label=a_label, b_label=b_label)


__all__ = [
    "A_NOT_OK",
    "BASE_FILTERS",
    "B_NOT_OK",
    "DIFFERENT",
    "FILTER_LABELS",
    "FINISH_PREFIX",
    "NEITHER_OK",
    "ONLY_A",
    "ONLY_B",
    "SAME",
    "STATE_NAMES",
    "CompareSummary",
    "Comparison",
    "RowDetail",
    "SideAnswer",
    "SideStats",
    "compare",
    "join_ids",
    "response_body",
    "same_id_column",
    "side_stats",
]
