"""One result in full: the request (its input line) and the response, as pretty JSON.

Side by side on wide terminals, stacked below 100 columns. Both are read lazily by offset
from the input and result files, so opening a row of a 50,000-row batch is instant.
"""

from __future__ import annotations

from typing import Any

import orjson
from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from fr_tui.core.results import JoinedResults
from fr_tui.tui.widgets.app_header import AppHeader

_MAX_PRETTY_BYTES = 2_000_000


def pretty(raw: bytes | None, missing: str) -> Text:
    if raw is None:
        return Text(missing, style="italic")
    if len(raw) > _MAX_PRETTY_BYTES:  # highlighting megabytes would freeze the screen
        return Text(raw[:_MAX_PRETTY_BYTES].decode("utf-8", "replace") + "…")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Text(raw.decode("utf-8", "replace"))
    rendered = JSON(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    rendered.text.no_wrap = False  # long answers wrap instead of being cut at the edge
    rendered.text.overflow = "fold"
    return rendered.text


class ResultDetailScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    DEFAULT_CSS = """
    ResultDetailScreen #detail-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    ResultDetailScreen #detail-panes { height: 1fr; layout: vertical; }
    ResultDetailScreen.-wide #detail-panes { layout: horizontal; }
    ResultDetailScreen .detail-pane { height: 1fr; width: 1fr; border: round $primary-muted; padding: 0 1; }
    ResultDetailScreen .detail-pane:focus-within { border: round $accent; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("y", "copy_response", "Copy response", id="detail.copy_response"),
        Binding("Y", "copy_request", "Copy request", id="detail.copy_request"),
    ]

    def __init__(self, joined: JoinedResults, row: int) -> None:
        super().__init__()
        self.joined = joined
        self.row = row

    def compose(self) -> ComposeResult:
        joined, row = self.joined, self.row
        outcome = joined.outcome(row)
        glyph = {"ok": "✓", "failed": "✗", "missing": "?"}[outcome]
        cid = joined.custom_ids[row] or "(no custom_id)"
        status = joined.status_codes[row]
        http = f" · HTTP {status}" if status is not None else ""
        yield AppHeader("Result")
        yield Static(
            f"{glyph} {outcome} · {cid}{http} · input line {joined.input_line(row) + 1}",
            id="detail-title",
        )
        with Container(id="detail-panes"):
            with VerticalScroll(id="detail-request", classes="detail-pane") as request:
                request.border_title = "Request (input line)"
                yield Static(pretty(joined.request_bytes(row), "(no input line)"))
            with VerticalScroll(id="detail-response", classes="detail-pane") as response:
                response.border_title = "Response" if outcome != "missing" else "Response: none"
                yield Static(
                    pretty(
                        joined.response_bytes(row),
                        "No result line: this request is in neither the output file nor the "
                        "error file. It never came back; R on the results retries it.",
                    )
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-response").focus()

    def _copy(self, raw: bytes | None, what: str) -> None:
        if raw is None:
            self.notify(f"There is no {what} to copy", severity="warning")
            return
        text = raw.decode("utf-8", "replace").rstrip("\n")
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the {what} ({len(text):,} chars)", title="Copied")

    def action_copy_response(self) -> None:
        self._copy(self.joined.response_bytes(self.row), "response")

    def action_copy_request(self) -> None:
        self._copy(self.joined.request_bytes(self.row), "request")

    def action_back(self) -> None:
        app: Any = self.app
        if len(app.screen_stack) > 1:
            app.pop_screen()
