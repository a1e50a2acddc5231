"""A comparison written out: one record per joined row, as CSV or JSONL, written
atomically like every export (core/export.py: never over a device, a FIFO or a folder).

Columns: custom_id, state (same / different / a_not_ok / b_not_ok / neither_ok / only_a
/ only_b), outcome_a and outcome_b (ok / failed / missing, empty when the side does not
have the row), same (true/false when both are ok), similarity (the cosine similarity of
two embeddings; empty for other answers), answer_a and answer_b (the whole answers),
tokens in and out of each side, and each side's error. Rows are streamed: each row's
two answers are read when it is written, so memory does not grow with the row count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from fr_tui.core.compare import (
    DIFFERENT,
    SAME,
    STATE_NAMES,
    Comparison,
    looks_like_embedding,
    response_body,
)
from fr_tui.core.export import write_records
from fr_tui.core.resultline import answer_text
from fr_tui.core.results import OUTCOMES, JoinedResults
from fr_tui.core.textdiff import embeddings_similarity

COMPARE_COLUMNS = (
    "custom_id",
    "state",
    "outcome_a",
    "outcome_b",
    "same",
    "similarity",
    "answer_a",
    "answer_b",
    "tokens_in_a",
    "tokens_out_a",
    "tokens_in_b",
    "tokens_out_b",
    "error_a",
    "error_b",
)


def _side(joined: JoinedResults, row: int | None) -> tuple[str | None, Any, str | None]:
    """(outcome, response body of an ok row, error) of one side's row, read now."""
    if row is None:
        return None, None, None
    outcome = OUTCOMES[joined.outcomes[row]]
    if outcome == "ok":
        return outcome, response_body(joined, row, cache=False), None
    return outcome, None, joined.row(row).error or None


def compare_record(comparison: Comparison, position: int) -> dict[str, Any]:
    """Row `position` flattened to COMPARE_COLUMNS, with both whole answers."""
    ra, rb = comparison.a_row(position), comparison.b_row(position)
    a, b = comparison.a, comparison.b
    outcome_a, body_a, error_a = _side(a, ra)
    outcome_b, body_b, error_b = _side(b, rb)
    state = comparison.states[position]
    similarity = None
    if state in (SAME, DIFFERENT) and ra is not None and looks_like_embedding(a.contents[ra]):
        value = embeddings_similarity(body_a, body_b)
        similarity = round(value, 6) if value is not None else None

    def tokens(joined: JoinedResults, row: int | None) -> tuple[int | None, int | None]:
        return (
            (None, None) if row is None else (joined.tokens_in_col[row], joined.tokens_out_col[row])
        )

    (in_a, out_a), (in_b, out_b) = tokens(a, ra), tokens(b, rb)
    return {
        "custom_id": comparison.custom_id(position),
        "state": STATE_NAMES[state],
        "outcome_a": outcome_a,
        "outcome_b": outcome_b,
        "same": state == SAME if state in (SAME, DIFFERENT) else None,
        "similarity": similarity,
        "answer_a": answer_text(body_a) if body_a is not None else None,
        "answer_b": answer_text(body_b) if body_b is not None else None,
        "tokens_in_a": in_a,
        "tokens_out_a": out_a,
        "tokens_in_b": in_b,
        "tokens_out_b": out_b,
        "error_a": error_a,
        "error_b": error_b,
    }


def export_comparison(
    comparison: Comparison,
    path: str | Path,
    fmt: Literal["csv", "jsonl"] = "jsonl",
    positions: Iterable[int] | None = None,
) -> int:
    """Write the comparison's rows (all, or the `positions` a filter shows) to `path`;
    returns the number of rows written."""
    chosen = range(len(comparison)) if positions is None else positions

    def records() -> Iterator[dict[str, Any]]:
        for position in chosen:
            yield compare_record(comparison, position)

    return write_records(path, fmt, COMPARE_COLUMNS, records())


__all__ = ["COMPARE_COLUMNS", "compare_record", "export_comparison"]
