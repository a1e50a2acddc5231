"""Help (? or f1): every key, the ones of the screen you came from first."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS: list[tuple[str, str]] = [
    ("1", "Files: browse, preview and validate JSONL files"),
    ("2", "Batches: submitted batches, refreshed automatically"),
    ("? / f1", "This help"),
    ("ctrl+p", "Command palette (commands depend on the screen)"),
    ("q", "Quit (when no text field has focus)"),
    ("ctrl+q / ctrl+c", "Quit"),
    ("escape", "Back / close"),
    ("tab / shift+tab", "Move between panes"),
]

SCREEN_KEYS: dict[str, list[tuple[str, str]]] = {
    "Files": [
        ("enter", "Open the highlighted file and validate it; in problems: jump to the line"),
        ("s", "Submit the file in the preview"),
        ("n / N", "Next / previous problem"),
        ("/", "Find in the file (enter: next match)"),
        ("a", "Show all files or only JSONL"),
        ("t", "Hide or show the file tree"),
        ("j/k, g/G, pgup/pgdn", "Move in the preview"),
    ],
    "Batches": [
        ("enter", "Batch details"),
        ("r", "Refresh now"),
        ("p", "Pause auto-refresh"),
        ("c", "Cancel the batch (asks first)"),
        ("o", "Open results (downloads them first if needed)"),
        ("R", "Retry failed rows as a new batch"),
    ],
    "Results": [
        ("/", "Find"),
        ("f", "Cycle filter: all / ok / failed / missing"),
        ("enter", "Full request and response"),
        ("y", "Copy (OSC 52, works over SSH)"),
        ("x", "Export"),
        ("R", "Retry failed rows"),
    ],
}


def _key_table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, text in rows:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen Static.section {
        margin-top: 1;
        text-style: bold;
        color: $accent;
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close", id="help-close"),
    ]

    def compose(self) -> ComposeResult:
        others = [screen for screen in self.app.screen_stack if screen is not self]
        below = others[-1] if others else None
        here = self._bindings_of(below)
        with VerticalScroll():
            yield Static(Text("fr-tui keys", style="bold"))
            if here:
                yield Static("This screen", classes="section")
                yield Static(_key_table(here))
            yield Static("Everywhere", classes="section")
            yield Static(_key_table(GLOBAL_KEYS))
            for title, rows in SCREEN_KEYS.items():
                yield Static(title, classes="section")
                yield Static(_key_table(rows))
            yield Static(Text("escape closes this help", style="dim"), classes="section")

    @staticmethod
    def _bindings_of(screen: Any) -> list[tuple[str, str]]:
        if screen is None:
            return []
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        try:
            active = screen.active_bindings
        except Exception:
            return []
        for key, item in active.items():
            binding = item.binding
            if not binding.description or binding.system or binding.description in seen:
                continue
            if item.node is screen.app:
                continue  # listed under "Everywhere"
            if item.node is not screen and not binding.show:
                continue  # a widget's plumbing (cursor keys...): not worth the space
            seen.add(binding.description)
            rows.append((binding.key_display or key, binding.description))
        return rows

    def action_close(self) -> None:
        self.dismiss(None)
