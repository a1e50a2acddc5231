"""JsonlView: a virtual view of a JSONL file over core.jsonl.LineIndex (the toolong way).

Only the lines on screen are read (os.pread of at most a few KB per line) and rendered;
long lines are cut at the right edge with an ellipsis, the full line goes to the detail
pane. A gutter shows the line number and a mark for lines with problems: a glyph as well
as a colour, so NO_COLOR terminals still show them.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from fr_tui.core.jsonl import LineIndex

# Bytes read per line for display; a 100 MB line costs the same as a short one.
DISPLAY_BYTES = 4096
_TEXT_CACHE = 2000
ERROR_MARK = "✖"
WARNING_MARK = "▲"
_CONTROL = {i: " " for i in range(32)}


def _display_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").translate(_CONTROL)


class JsonlView(ScrollView, can_focus=True):
    HELP_NAME = "preview"  # help lists its movement keys under this name
    """Shows `index`'s lines; `cursor` is the selected line (0-based)."""

    DEFAULT_CSS = """
    JsonlView {
        background: $surface;
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        border: none;
    }
    JsonlView:focus {
        background-tint: $foreground 3%;
    }
    JsonlView > .jsonl-view--gutter { color: $text-muted; }
    /* The cursor line says whether the preview has focus: bright when it has,
       dimmed when another pane has (and under NO_COLOR reverse vs underline). */
    JsonlView > .jsonl-view--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    JsonlView:focus > .jsonl-view--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    JsonlView:nocolor > .jsonl-view--cursor { text-style: underline; }
    JsonlView:nocolor:focus > .jsonl-view--cursor { text-style: bold reverse; }
    JsonlView > .jsonl-view--error { color: $error; text-style: bold; }
    JsonlView > .jsonl-view--warning { color: $warning; text-style: bold; }
    JsonlView > .jsonl-view--empty { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "jsonl-view--gutter",
        "jsonl-view--cursor",
        "jsonl-view--error",
        "jsonl-view--warning",
        "jsonl-view--empty",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "top", "Top", show=False),
        Binding("end,G", "bottom", "Bottom", show=False),
    ]

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    @dataclass
    class CursorMoved(Message):
        view: JsonlView
        line: int  # 0-based

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: LineIndex | None = None
        self.marks: dict[int, str] = {}  # 0-based line -> "error" | "warning"
        self.placeholder = "No file open. Highlight a .jsonl file in the tree."
        self._fd: int | None = None
        self._texts: OrderedDict[int, str] = OrderedDict()
        self._line_count = 0

    # ------------------------------------------------------------------ data

    def set_index(self, index: LineIndex | None, *, cursor: int = 0) -> None:
        self._close_fd()
        self.index = index
        self.marks = {}
        self._texts.clear()
        if index is not None:
            self._fd = os.open(index.path, os.O_RDONLY)
        self._line_count = len(index) if index is not None else 0
        self.set_reactive(JsonlView.cursor, 0)
        self._update_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        if cursor:
            self.goto(cursor)
        else:
            self.post_message(self.CursorMoved(self, 0))

    def sync_line_count(self) -> None:
        """Called while the index grows in a worker: extend the scrollable area."""
        if self.index is None:
            return
        count = len(self.index)
        if count != self._line_count:
            old = self._line_count
            self._line_count = count
            self._update_size()
            if old < self.scroll_offset.y + self.size.height:
                self.refresh()

    def set_marks(self, marks: dict[int, str]) -> None:
        self.marks = marks
        self.refresh()

    def add_mark(self, line: int, severity: str) -> None:
        if self.marks.get(line) == "error":
            return
        self.marks[line] = severity
        top = self.scroll_offset.y
        if top <= line < top + self.size.height:
            self.refresh_line(line)  # ScrollView: a line of the content, not of the screen

    @property
    def line_count(self) -> int:
        return self._line_count

    def _update_size(self) -> None:
        width = max(self.scrollable_content_region.width, 1)
        self.virtual_size = Size(width, max(self._line_count, 1))

    def on_resize(self) -> None:
        self._update_size()

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def on_unmount(self) -> None:
        self._close_fd()

    def _text(self, i: int) -> str:
        cached = self._texts.get(i)
        if cached is not None:
            return cached
        assert self.index is not None and self._fd is not None
        start, end = self.index.span(i)
        try:
            data = os.pread(self._fd, min(end - start, DISPLAY_BYTES), start)
        except OSError:
            data = b""
        text = _display_text(data)
        if end - start > DISPLAY_BYTES:
            text += "…"
        self._texts[i] = text
        if len(self._texts) > _TEXT_CACHE:
            self._texts.popitem(last=False)
        return text

    # ------------------------------------------------------------------ cursor

    def goto(self, line: int, *, center: bool = True) -> None:
        if self._line_count == 0:
            return
        line = max(0, min(line, self._line_count - 1))
        self.cursor = line
        top = self.scroll_offset.y
        height = max(self.scrollable_content_region.height, 1)
        if not top <= line < top + height:
            target = line - height // 2 if center else line
            self.scroll_to(y=max(0, target), animate=False, immediate=True)

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        for line in (old, new):
            if top <= line < top + self.size.height:
                self.refresh_line(line)  # ScrollView: a line of the content, not of the screen
        self.post_message(self.CursorMoved(self, new))

    def action_move(self, delta: int) -> None:
        line = self.cursor + delta
        if 0 <= line < self._line_count:
            self.cursor = line
            top = self.scroll_offset.y
            height = max(self.scrollable_content_region.height, 1)
            if line < top:
                self.scroll_to(y=line, animate=False, immediate=True)
            elif line >= top + height:
                self.scroll_to(y=line - height + 1, animate=False, immediate=True)

    def action_page(self, direction: int) -> None:
        height = max(self.scrollable_content_region.height, 1)
        self.goto(self.cursor + direction * height, center=False)

    def action_top(self) -> None:
        self.goto(0)

    def action_bottom(self) -> None:
        self.goto(self._line_count - 1)

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if y is not None:
            line = int(y) + self.scroll_offset.y
            if 0 <= line < self._line_count:
                self.cursor = line

    # ------------------------------------------------------------------ rendering

    def _gutter_width(self) -> int:
        return len(str(max(self._line_count, 1))) + 3

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        line = y + self.scroll_offset.y
        if self.index is None or line >= self._line_count:
            if self.index is None and y == 0:
                style = base + self.get_component_rich_style("jsonl-view--empty")
                return Strip([Segment(self.placeholder[:width], style)]).extend_cell_length(
                    width, base
                )
            return Strip.blank(width, base)
        gutter_style = base + self.get_component_rich_style("jsonl-view--gutter")
        text_style = base
        if line == self.cursor:
            cursor_style = self.get_component_rich_style("jsonl-view--cursor")
            gutter_style += cursor_style
            text_style += cursor_style
        number_width = self._gutter_width() - 3
        segments = [Segment(f"{line + 1:>{number_width}} ", gutter_style)]
        mark = self.marks.get(line)
        if mark == "error":
            style = text_style + self.get_component_rich_style("jsonl-view--error")
            segments.append(Segment(ERROR_MARK, style))
        elif mark == "warning":
            style = text_style + self.get_component_rich_style("jsonl-view--warning")
            segments.append(Segment(WARNING_MARK, style))
        else:
            segments.append(Segment(" ", text_style))
        segments.append(Segment(" ", text_style))
        room = max(width - self._gutter_width(), 0)
        text = self._text(line)
        if len(text) > room:
            text = text[: max(room - 1, 0)] + "…"
        segments.append(Segment(text, text_style))
        strip = Strip(segments)
        # Wide characters can make the cut text overflow by a cell: crop to be sure.
        return strip.crop_extend(0, width, text_style)
