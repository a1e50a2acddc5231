"""The compare screen's row list: ResultView's virtual table (only the rows on screen are
drawn, nothing is kept per row but the positions of the filter) over a `Comparison`.

Columns: the row's state (same, different, which side is not ok, only in one side),
custom_id, then each side's outcome and the first line of its answer (or its error),
from the stored index's columns: no answer is read to draw a row. For two embeddings a
`cos` column shows their similarity, read for the rows on screen only.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from fr_tui.core.compare import (
    A_NOT_OK,
    B_NOT_OK,
    DIFFERENT,
    NEITHER_OK,
    ONLY_A,
    ONLY_B,
    SAME,
    Comparison,
)
from fr_tui.core.results import FAILED, OK, JoinedResults
from fr_tui.tui.widgets.result_view import Column, ResultView, clip

STATE_CELLS = {
    SAME: "= same",
    DIFFERENT: "≠ differs",
    A_NOT_OK: "✗ A",
    B_NOT_OK: "✗ B",
    NEITHER_OK: "✗ both",
    ONLY_A: "only A",
    ONLY_B: "only B",
}
STATE_STYLES = {
    SAME: "result-view--ok",
    DIFFERENT: "result-view--missing",
    A_NOT_OK: "result-view--failed",
    B_NOT_OK: "result-view--failed",
    NEITHER_OK: "result-view--failed",
    ONLY_A: "result-view--note",
    ONLY_B: "result-view--note",
}
OUTCOME_GLYPHS = {OK: ("✓", "result-view--ok"), FAILED: ("✗", "result-view--failed")}
MISSING_GLYPH = ("?", "result-view--missing")
ABSENT_GLYPH = ("·", "result-view--note")
_CONTROL = {c: " " for c in range(32)} | {127: " "}


def _answer(joined: JoinedResults, row: int | None) -> str:
    if row is None:
        return "(no such row)"
    outcome = joined.outcomes[row]
    if outcome == OK:
        text = joined.contents[row] or ""
    elif outcome == FAILED:
        code, message = joined.error_codes[row], joined.error_messages[row]
        text = f"{code}: {message}" if code and message else code or message or ""
    else:
        text = "no result line"
    return text if text.isprintable() else text.translate(_CONTROL)


def from_difference(a: str, b: str, keep: int = 12) -> tuple[str, str]:
    """Two different first lines, each cut to start a little before where they part
    ("…gpt-4.1-nano: you asked"), so a narrow column shows what differs."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    cut = a.rfind(" ", 0, max(0, common - keep) + 1)
    if cut <= 0:
        return a, b
    return "…" + a[cut + 1 :], "…" + b[cut + 1 :]


def compare_columns(comparison: Comparison | None, width: int, embeddings: bool) -> list[Column]:
    """The columns that fit `width`: state, custom_id, a similarity for embeddings, then
    the two answers sharing what is left."""
    id_width = 12
    if comparison is not None and len(comparison):
        sample = [comparison.custom_id(p) or "" for p in range(min(len(comparison), 2000))]
        id_width = max(10, min(24, max(len(c) for c in sample)))
    columns = [Column("state", "state", 9, 9), Column("custom_id", "custom_id", id_width, 8)]
    if embeddings:
        columns.append(Column("cos", "cos", 6, 5))
    used = sum(c.width + 1 for c in columns)
    if width - used < 24:  # very narrow: the id gives way to the answers
        columns = [c for c in columns if c.key != "custom_id"]
        used = sum(c.width + 1 for c in columns)
    answer_width = max(6, (width - used - 1) // 2)
    return [*columns, Column("a", "A", answer_width, 10), Column("b", "B", answer_width, 10)]


class CompareView(ResultView):
    """Feed it with `set_comparison(comparison, positions)`. Posts ResultView's
    CursorMoved and Chosen messages; their `row` is a position of the comparison."""

    HELP_NAME = "comparison table"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.comparison: Comparison | None = None
        self.embeddings = False
        self.note = "Loading both sides…"

    def set_comparison(self, comparison: Comparison, rows: Sequence[int]) -> None:
        self.comparison = comparison
        self.embeddings = any(comparison.is_embedding(p) for p in range(min(len(comparison), 50)))
        self._columns_width = -1
        self.set_rows(rows)

    def columns(self) -> list[Column]:
        width = self.scrollable_content_region.width
        if width != self._columns_width:
            self._columns = compare_columns(self.comparison, width, self.embeddings)
            self._columns_width = width
            self._cache.clear()
        return self._columns

    def _render_row(self, row: int, selected: bool, width: int, base: Style) -> Strip:
        comparison = self.comparison
        assert comparison is not None
        position = row
        cursor = self.get_component_rich_style("result-view--cursor") if selected else None
        row_style = base + cursor if cursor else base

        def styled(name: str) -> Style:
            style = row_style + self.get_component_rich_style(name)
            return style + Style(bgcolor=cursor.bgcolor) if cursor else style

        state = comparison.states[position]
        a_row, b_row = comparison.a_row(position), comparison.b_row(position)
        answers = {"a": _answer(comparison.a, a_row), "b": _answer(comparison.b, b_row)}
        if state == DIFFERENT:
            answers["a"], answers["b"] = from_difference(answers["a"], answers["b"])
        segments: list[Segment] = []
        for column in self.columns():
            key = column.key
            if key == "state":
                text = clip(STATE_CELLS[state], column.width)
                segments.append(Segment(text, styled(STATE_STYLES[state])))
            elif key == "custom_id":
                cid = comparison.custom_id(position) or "(no custom_id)"
                segments.append(Segment(clip(cid, column.width), row_style))
            elif key == "cos":
                value = comparison.similarity(position)
                text = f"{value:.3f}" if value is not None else ""
                segments.append(Segment(clip(text, column.width), row_style))
            else:
                joined, side_row = (comparison.a, a_row) if key == "a" else (comparison.b, b_row)
                if side_row is None:
                    glyph, style = ABSENT_GLYPH
                else:
                    glyph, style = OUTCOME_GLYPHS.get(joined.outcomes[side_row], MISSING_GLYPH)
                segments.append(Segment(glyph, styled(style)))
                answer = clip(" " + answers[key], column.width - 1)
                segments.append(Segment(answer, row_style))
            segments.append(Segment(" ", row_style))
        return Strip(segments).adjust_cell_length(width, row_style)


__all__ = ["CompareView", "compare_columns"]
