"""JsonPane: pretty JSON of one line, wrapped to the pane's width, rendering only the rows
on screen (the Line API), with optional lines above it (a line's problems).

A 5 MB line is one 5 MB string: pretty-printing it takes a few milliseconds with msgspec,
but laying it out as a Rich renderable (what a Static does) takes over a second, on the
UI thread, every time the cursor lands on it. Here pretty-printing a big line runs in a
thread worker, the layout is arithmetic (rows per line from its length), and each frame
renders the handful of visible rows. Long strings wrap at the edge, like the result
detail screen's panes, so nothing is cut off.
"""

from __future__ import annotations

import re
import textwrap
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import ClassVar

import msgspec
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Lines at most this big are pretty-printed on the spot; bigger ones in a thread.
INLINE_BYTES = 64 << 10
_STRIP_CACHE = 500
_CONTROL = {c: " " for c in range(32)} | {127: " "}
_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))|(?P<string>"(?:[^"\\]|\\.)*"?)'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<literal>true|false|null)"
)


PROSE = frozenset({"error", "warning", "hint", "note"})
Layout = tuple[list[int], dict[int, list[str]]]


@dataclass(frozen=True)
class PaneLine:
    text: str
    kind: str = "json"  # json | error | warning | hint | plain | note


def pretty_lines(raw: bytes) -> list[PaneLine]:
    """The line as indented JSON, one PaneLine per output line (as text when it is not
    JSON). Safe to call from a thread."""
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        text = raw.decode("utf-8", "replace").rstrip("\r\n").translate(_CONTROL)
        return [PaneLine(text, "plain")]
    pretty = msgspec.json.format(msgspec.json.encode(data), indent=2).decode()
    return [PaneLine(line) for line in pretty.split("\n")]


class JsonPane(ScrollView, can_focus=True):
    HELP_NAME = "JSON pane"  # help lists its movement keys under this name
    DEFAULT_CSS = """
    JsonPane {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
    }
    JsonPane > .json-pane--key { color: $text-primary; text-style: bold; }
    JsonPane > .json-pane--string { color: $text-success; }
    JsonPane > .json-pane--number { color: $text-accent; }
    JsonPane > .json-pane--literal { color: $text-warning; text-style: italic; }
    JsonPane > .json-pane--error { color: $text-error; text-style: bold; }
    JsonPane > .json-pane--warning { color: $text-warning; text-style: bold; }
    JsonPane > .json-pane--hint { color: $text-muted; }
    JsonPane > .json-pane--note { color: $text-muted; text-style: italic; }
    JsonPane > .json-pane--plain { }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "json-pane--key",
        "json-pane--string",
        "json-pane--number",
        "json-pane--literal",
        "json-pane--error",
        "json-pane--warning",
        "json-pane--hint",
        "json-pane--note",
        "json-pane--plain",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Scroll up", show=False),
        Binding("down,j", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: Sequence[PaneLine] = ()
        self._ends: list[int] = []  # display rows up to and including each line
        self._prose: dict[int, list[str]] = {}  # line -> its rows, for prose lines
        self._width = 0
        self._cache: dict[int, Strip] = {}
        self._generation = 0

    # -- content ---------------------------------------------------------------------

    def show(
        self,
        head: Sequence[PaneLine],
        raw: bytes | Callable[[], bytes] | None,
        *,
        size: int | None = None,
        note: str = "",
    ) -> None:
        """`head` lines, then `raw` as pretty JSON (or `note` when raw is None). `raw`
        may be a function that reads the line, with its `size`: a big line is read and
        pretty-printed in a thread, while the head and a note show."""
        self._generation += 1
        if raw is None:
            self._set([*head, PaneLine(note, "note")] if note else list(head))
            return
        if size is None:
            raw = raw() if callable(raw) else raw
            size = len(raw)
        if size <= INLINE_BYTES:
            self._set([*head, *pretty_lines(raw() if callable(raw) else raw)])
            return
        label = f"{size / (1 << 20):.1f} MB" if size >= 1 << 20 else f"{size:,} bytes"
        self._set([*head, PaneLine(f"formatting a {label} line…", "note")])
        self._pretty_in_thread(list(head), raw, self._generation)

    @work(thread=True, exclusive=True, group="json-pane", exit_on_error=False)
    def _pretty_in_thread(
        self, head: list[PaneLine], raw: bytes | Callable[[], bytes], generation: int
    ) -> None:
        try:
            data = raw() if callable(raw) else raw
        except (OSError, ValueError):  # the file was closed or went away: another shows
            return
        lines = [*head, *pretty_lines(data)]
        layout = self._layout(lines, self._width)
        self.app.call_from_thread(self._set_if_current, lines, layout, generation)

    def _set_if_current(self, lines: list[PaneLine], layout: Layout, generation: int) -> None:
        if generation == self._generation:  # the cursor has not moved on since
            self._set(lines, layout)

    def _set(self, lines: Sequence[PaneLine], layout: Layout | None = None) -> None:
        self.lines = lines
        self._ends, self._prose = layout or self._layout(lines, self._width)
        self._cache.clear()
        self._update_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    @staticmethod
    def _layout(lines: Sequence[PaneLine], width: int) -> Layout:
        """Cumulative display rows per line: arithmetic on lengths, no rendering. JSON
        (and raw text, which may be megabytes) breaks at the edge; the few lines of prose
        (a problem, its hint) break between words."""
        if width <= 0:
            return list(range(1, len(lines) + 1)), {}
        prose: dict[int, list[str]] = {}
        for index, line in enumerate(lines):
            if line.kind in PROSE:
                indent = " " * (len(line.text) - len(line.text.lstrip()))
                prose[index] = textwrap.wrap(line.text, width, subsequent_indent=indent + "  ") or [
                    ""
                ]
        rows = (
            len(prose[i]) if i in prose else max(1, -(-len(line.text) // width))
            for i, line in enumerate(lines)
        )
        return list(accumulate(rows)), prose

    @property
    def text(self) -> str:
        """Everything in the pane as plain text (for tests and copying)."""
        return "\n".join(line.text for line in self.lines)

    # -- size ------------------------------------------------------------------------

    def _update_size(self) -> None:
        rows = self._ends[-1] if self._ends else 0
        self.virtual_size = Size(max(self._width, 1), max(rows, 1))

    def on_resize(self) -> None:
        # Rows wrap as if the scrollbar were there: the width does not change (and the
        # layout with it) when the scrollbar comes and goes.
        width = max(1, self.content_region.width - self.styles.scrollbar_size_vertical)
        if width != self._width:
            self._width = width
            self._ends, self._prose = self._layout(self.lines, width)
            self._cache.clear()
            self._update_size()

    # -- rendering -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = y + int(self.scroll_y)
        strip = self._cache.get(row)
        if strip is None or strip.cell_length != width:
            strip = self._render_row(row, self._width).crop_extend(0, width, self.rich_style)
            if len(self._cache) > _STRIP_CACHE:
                self._cache.clear()
            self._cache[row] = strip
        return strip

    def _render_row(self, row: int, width: int) -> Strip:
        base = self.rich_style
        ends = self._ends
        if not ends or row >= ends[-1] or width <= 0:
            return Strip.blank(width, base)
        index = bisect_right(ends, row)
        start_row = ends[index - 1] if index else 0
        line = self.lines[index]
        chunk = row - start_row
        if index in self._prose:
            text = self._prose[index][chunk]
        else:
            text = line.text[chunk * width : (chunk + 1) * width]
        if line.kind == "json":
            segments = self._highlight(text, base)
        else:
            style = base + self.get_component_rich_style(f"json-pane--{line.kind}")
            segments = [Segment(text, style)]
        strip = Strip(segments)
        if not text.isascii() and cell_len(text) > width:
            strip = strip.crop(0, width)  # wide characters: a row is cut by cells
        return strip.extend_cell_length(width, base)

    def _highlight(self, text: str, base: Style) -> list[Segment]:
        segments: list[Segment] = []
        at = 0
        for match in _TOKEN.finditer(text):
            if match.start() > at:
                segments.append(Segment(text[at : match.start()], base))
            kind = match.lastgroup or "string"
            style = base + self.get_component_rich_style(f"json-pane--{kind}")
            segments.append(Segment(match.group(), style))
            at = match.end()
        if at < len(text):
            segments.append(Segment(text[at:], base))
        return segments

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
