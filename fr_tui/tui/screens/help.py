"""Help (? or f1): the keys of the screen it was opened from, then the ones that work
everywhere. Both lists are read from the bindings (tui/keys.py), so help says exactly
what the keys do, with the names you type (`/`, `ctrl+p`), and cannot drift from them."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from fr_tui.tui.keys import KeyEntry, app_keys, screen_keys
from fr_tui.tui.widgets.app_header import crumbs_of

PALETTE_ROW = ("ctrl+p", "Command palette: every command of this screen, by name")
# Textual's own focus keys: no screen binds them, so no binding lists them
TAB_ROW = ("tab / shift+tab", "Move to the next / previous pane")


def help_rows(entries: list[KeyEntry]) -> list[tuple[str, str]]:
    """One row per key of the screen (and per key a widget shows in the footer); a
    widget's movement keys share one row, named after the widget."""
    rows = []
    moves: dict[str, list[KeyEntry]] = {}
    for entry in entries:
        if (
            isinstance(entry.node, Widget)
            and not isinstance(entry.node, Screen)
            and not entry.shown
        ):
            name = getattr(entry.node, "HELP_NAME", type(entry.node).__name__)
            moves.setdefault(name, []).append(entry)
            continue
        text = entry.description
        if entry.tooltip:
            text += f": {entry.tooltip}"
        if not entry.enabled:
            text += f" — not now. {entry.why_not}" if entry.why_not else " — not now"
        rows.append((entry.keys_text, text))
    for name, group in moves.items():
        # one key each, a letter where there is one: "k j pgup pgdn g G"
        keys = " ".join(
            next((k for k in entry.keys if len(k) == 1), entry.keys[0]) for entry in group
        )
        rows.append((keys, f"In the {name}: " + ", ".join(e.description.lower() for e in group)))
    return rows


def _key_table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", min_width=20, max_width=22)
    table.add_column(ratio=1)
    for key, text in rows:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen VerticalScroll { height: 1fr; }
    HelpScreen #help-foot { height: 1; color: $text-muted; }
    HelpScreen Static.section {
        margin-top: 1;
        text-style: bold;
        color: $accent;
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close", id="help-close"),
        Binding("j,down", "scroll(1)", "Scroll down", show=False),
        Binding("k,up", "scroll(-1)", "Scroll up", show=False),
        Binding("space,pagedown", "page(1)", "Page down", show=False),
        Binding("b,pageup", "page(-1)", "Page up", show=False),
    ]

    def __init__(self, below: Any = None) -> None:
        super().__init__()
        self.below = below

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        below = self.below
        if below is None:
            others = [s for s in self.app.screen_stack if s is not self]
            below = others[-1] if others else None
        out = []
        if below is not None:
            place = " › ".join(crumbs_of(below)) or type(below).__name__.removesuffix("Screen")
            out.append((f"This screen: {place}", help_rows(screen_keys(below))))
        out.append(("Everywhere", [*help_rows(app_keys(self.app)), TAB_ROW, PALETTE_ROW]))
        return out

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Static(Text("fr-tui keys", style="bold"))
                for title, rows in self.sections():
                    yield Static(title, markup=False, classes="section")
                    yield Static(_key_table(rows))
            yield Static("", id="help-foot", markup=False)

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one(VerticalScroll)

    def on_mount(self) -> None:
        self.watch(self.scroller, "scroll_y", self._show_foot, init=False)
        self.call_after_refresh(self._show_foot)

    def _show_foot(self, _: object = None) -> None:
        """Says there is more, and how to get to it, when the keys do not all fit."""
        scroller = self.scroller
        if scroller.max_scroll_y <= 0:
            text = "escape closes this help"
        elif scroller.scroll_y >= scroller.max_scroll_y:
            text = "↑ more above: k / pgup · escape closes this help"
        else:
            text = "↓ more below: j / space / pgdn · escape closes this help"
        self.query_one("#help-foot", Static).update(text)

    def action_scroll(self, lines: int) -> None:
        self.scroller.scroll_relative(y=lines, animate=False)

    def action_page(self, pages: int) -> None:
        scroller = self.scroller
        scroller.scroll_relative(y=pages * max(1, scroller.size.height - 1), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
