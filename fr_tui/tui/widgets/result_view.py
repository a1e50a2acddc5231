"""A virtual table over `JoinedResults`: one line per result, only visible lines rendered.

Textual's DataTable measures every cell of every row when rows are added (seconds for
50,000 rows); this widget keeps nothing per row but the row number of the current filter
and renders the handful of lines on screen on demand from the column lists of
`JoinedResults`. Line 0 of the viewport is a fixed column header; data position `p`
lives on virtual line `p + 1`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from fr_tui.core.results import FAILED, OK, JoinedResults
from fr_tui.core.units import human_count

OUTCOME_CELLS = {OK: "✓ ok", FAILED: "✗ failed"}
MISSING_CELL = "? missing"
_CONTROL = {c: " " for c in range(32)} | {127: " "}
_STRIP_CACHE_MAX = 400


def clip(text: str, width: int) -> str:
    """`text` cut or padded to exactly `width` cells, with an ellipsis when cut."""
    if width <= 0:
        return ""
    if text.isascii():
        if len(text) <= width:
            return text.ljust(width)
        return text[: width - 1] + "…"
    text = text.translate(_CONTROL)
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def _clean(text: str | None) -> str:
    if not text:
        return ""
    return text.translate(_CONTROL) if not text.isprintable() else text


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    priority: int  # lower is dropped first when the terminal is narrow


TOKENS_WIDTH = 10


def _tokens(joined: JoinedResults, row: int) -> str:
    """`1200/57`, or `128k/4.1k` when the exact numbers do not fit the column (cut, the
    `128000/4096` of a long prompt would read `128000/40…`)."""
    t_in, t_out = joined.tokens_in_col[row], joined.tokens_out_col[row]
    if t_in is None and t_out is None:
        return ""
    for number in (str, human_count):
        text = "/".join("-" if n is None else number(n) for n in (t_in, t_out))
        if len(text) <= TOKENS_WIDTH:
            break
    return text


def _text(joined: JoinedResults, row: int) -> str:
    outcome = joined.outcomes[row]
    if outcome == OK:
        return _clean(joined.contents[row])
    if outcome == FAILED:
        code, message = joined.error_codes[row], joined.error_messages[row]
        return _clean(f"{code}: {message}" if code and message else code or message or "")
    return joined.missing_reason(row)


_CELL: dict[str, Callable[[JoinedResults, int], str]] = {
    "custom_id": lambda j, r: _clean(j.custom_ids[r]) or "(no custom_id)",
    "status": lambda j, r: str(j.status_codes[r]) if j.status_codes[r] is not None else "",
    "model": lambda j, r: j.models[r] or "",
    "tokens": _tokens,
    "finish": lambda j, r: j.finish_reasons[r] or "",
    "text": _text,
}

MIN_TEXT_WIDTH = 30


def layout_columns(joined: JoinedResults | None, width: int) -> list[Column]:
    """The columns that fit `width`, each with its width; the answer/error column takes
    what is left. Columns are dropped lowest priority first until the text column has
    MIN_TEXT_WIDTH cells (or nothing else can go)."""
    id_width = 12
    if joined is not None and len(joined):
        sample = joined.custom_ids[:2000]
        id_width = max(10, min(24, max((len(c) for c in sample if c), default=10)))
    columns = [
        Column("outcome", "outcome", 9, 9),
        Column("custom_id", "custom_id", id_width, 10),
        Column("status", "http", 4, 4),
        Column("model", "model", 20, 2),
        Column("tokens", "tok in/out", TOKENS_WIDTH, 3),
        Column("finish", "finish", 7, 1),
    ]

    def used(cols: list[Column]) -> int:
        return sum(c.width + 1 for c in cols)

    while width - used(columns) < MIN_TEXT_WIDTH:
        droppable = [c for c in columns if c.priority < 9]
        if not droppable:
            break
        columns.remove(min(droppable, key=lambda c: c.priority))
    text_width = max(4, width - used(columns))
    return [*columns, Column("text", "answer / error", text_width, 10)]


class ResultView(ScrollView, can_focus=True):
    HELP_NAME = "results table"  # help lists its movement keys under this name
    """The results table. Feed it with `set_data(joined, rows)`; `rows` are the row
    numbers of the current filter, in order. Posts CursorMoved and Chosen."""

    DEFAULT_CSS = """
    ResultView {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
    }
    ResultView > .result-view--header { text-style: bold; color: $text-muted; }
    ResultView > .result-view--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    ResultView:focus > .result-view--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    ResultView > .result-view--ok { color: $text-success; }
    ResultView > .result-view--failed { color: $text-error; text-style: bold; }
    ResultView > .result-view--missing { color: $text-warning; text-style: bold; }
    ResultView > .result-view--note { color: $text-muted; text-style: italic; }
    """

    COMPONENT_CLASSES = {
        "result-view--header",
        "result-view--cursor",
        "result-view--ok",
        "result-view--failed",
        "result-view--missing",
        "result-view--note",
    }

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("home,g", "first", "Top", show=False),
        Binding("end,G", "last", "Bottom", show=False),
        Binding("enter", "choose", "Details", id="results.details"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class CursorMoved(Message):
        def __init__(self, view: ResultView, position: int, row: int | None) -> None:
            super().__init__()
            self.view = view
            self.position = position
            self.row = row  # the JoinedResults row, None when the view is empty

    class Chosen(Message):
        def __init__(self, view: ResultView, row: int) -> None:
            super().__init__()
            self.view = view
            self.row = row

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.joined: JoinedResults | None = None
        self.rows: Sequence[int] = ()
        self.note = "Loading results…"
        self._columns: list[Column] = []
        self._columns_width = -1
        self._cache: dict[tuple[int, bool], Strip] = {}

    # -- data -------------------------------------------------------------

    def set_note(self, note: str) -> None:
        """The line shown when there are no rows (loading, an error, an empty filter)."""
        self.note = note
        self.refresh()

    def set_data(self, joined: JoinedResults | None, rows: Sequence[int]) -> None:
        self.joined = joined
        self._columns_width = -1
        self.set_rows(rows)

    def set_rows(self, rows: Sequence[int], *, keep_row: int | None = None) -> None:
        """Show `rows`; the cursor goes to `keep_row` if it is among them (else the top)."""
        self.rows = rows
        self._cache.clear()
        self._update_virtual_size()
        position = 0
        if keep_row is not None and rows:
            position = self.position_of(keep_row, nearest=True)
        self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = position
        self.refresh()

    def position_of(self, row: int, *, nearest: bool = False) -> int:
        """Where `row` is in the current rows (they are ascending); with `nearest`, the
        first position at or after it when it is not there."""
        from bisect import bisect_left

        rows = self.rows
        at = bisect_left(rows, row)
        if at < len(rows) and rows[at] == row:
            return at
        if nearest:
            return min(at, max(0, len(rows) - 1))
        return -1

    @property
    def current_row(self) -> int | None:
        if not self.rows or not 0 <= self.cursor < len(self.rows):
            return None
        return self.rows[self.cursor]

    def _update_virtual_size(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        self.virtual_size = Size(width, len(self.rows) + 1)

    def on_resize(self) -> None:
        self._cache.clear()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    # -- cursor -------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(self, new, self.current_row))

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        page = self._page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor > top + page - 1:
            self.scroll_to(y=self.cursor - page + 1, animate=False, immediate=True)

    def jump(self, positions: Sequence[int], *, forward: bool, inclusive: bool = False) -> bool:
        """Move the cursor to the next (or previous) of `positions` (ascending), wrapping
        around; False when there is none. `inclusive`: the cursor's own counts."""
        if not positions:
            return False
        from bisect import bisect_left, bisect_right

        cursor = self.cursor
        if forward:
            at = bisect_left(positions, cursor) if inclusive else bisect_right(positions, cursor)
        else:
            at = bisect_left(positions, cursor) - 1
        self.cursor = positions[at % len(positions)]
        return True

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_y + self._page, animate=False, immediate=True)
        self.cursor += self._page

    def action_page_up(self) -> None:
        self.scroll_to(y=max(0, self.scroll_y - self._page), animate=False, immediate=True)
        self.cursor -= self._page

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.rows) - 1

    def action_choose(self) -> None:
        row = self.current_row
        if row is not None:
            self.post_message(self.Chosen(self, row))

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if isinstance(y, int) and y >= 1:
            self.cursor = int(self.scroll_y) + y - 1

    # -- rendering --------------------------------------------------------------

    def columns(self) -> list[Column]:
        width = self.scrollable_content_region.width
        if width != self._columns_width:
            self._columns = layout_columns(self.joined, width)
            self._columns_width = width
            self._cache.clear()
        return self._columns

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("result-view--header")
            text = " ".join(clip(c.title, c.width) for c in self.columns())
            return Strip([Segment(clip(text, width), base + header)], width)
        position = int(self.scroll_y) + y - 1
        if position >= len(self.rows):
            if position == 0 and (self.joined is None or not self.rows):
                note = self.get_component_rich_style("result-view--note")
                return Strip([Segment(clip(" " + self.note, width), base + note)], width)
            return Strip([Segment(" " * width, base)], width)
        row = self.rows[position]
        selected = position == self.cursor
        key = (row, selected)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(row, selected, width, base)
            if len(self._cache) > _STRIP_CACHE_MAX:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _render_row(self, row: int, selected: bool, width: int, base: Style) -> Strip:
        joined = self.joined
        assert joined is not None
        outcome = joined.outcomes[row]
        cursor = self.get_component_rich_style("result-view--cursor") if selected else None
        if outcome == OK:
            outcome_style = self.get_component_rich_style("result-view--ok")
            outcome_text = OUTCOME_CELLS[OK]
        elif outcome == FAILED:
            outcome_style = self.get_component_rich_style("result-view--failed")
            outcome_text = OUTCOME_CELLS[FAILED]
        else:
            outcome_style = self.get_component_rich_style("result-view--missing")
            outcome_text = MISSING_CELL
        row_style = base + cursor if cursor else base
        segments: list[Segment] = []
        cells: list[str] = []
        for column in self.columns():
            if column.key == "outcome":
                style = row_style + outcome_style
                if cursor:
                    style = style + Style(bgcolor=cursor.bgcolor)
                segments.append(Segment(clip(outcome_text, column.width), style))
                continue
            cells.append(clip(_CELL[column.key](joined, row), column.width))
        segments.append(Segment(" " + " ".join(cells), row_style))
        return Strip(segments).adjust_cell_length(width, row_style)
