"""One result in full: the request (its input line) and the response, as pretty JSON.

Side by side on wide terminals, stacked below 100 columns. Both are read lazily by offset
from the input and result files, so opening a row of a 50,000-row batch is instant.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Static

from fr_tui.core.results import JoinedResults
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.json_pane import JsonPane


class ResultDetailScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    DEFAULT_CSS = """
    ResultDetailScreen #detail-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    ResultDetailScreen #detail-panes { height: 1fr; layout: vertical; }
    ResultDetailScreen.-wide #detail-panes { layout: horizontal; }
    ResultDetailScreen .detail-pane { height: 1fr; width: 1fr; border: round $primary-muted; padding: 0 1; }
    ResultDetailScreen .detail-pane:focus-within { border: round $accent; }
    ResultDetailScreen:nocolor .detail-pane:focus-within { border: double $accent; }
    ResultDetailScreen:nocolor .detail-pane:focus-within { border: double $accent; }
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
        yield AppHeader()
        yield Static(
            f"{glyph} {outcome} · {cid}{http} · input line {joined.input_line(row) + 1}",
            id="detail-title",
        )
        with Container(id="detail-panes"):
            request = JsonPane(id="detail-request", classes="detail-pane")
            request.border_title = "Request (input line)"
            yield request
            response = JsonPane(id="detail-response", classes="detail-pane")
            response.border_title = "Response" if outcome != "missing" else "Response: none"
            yield response
        yield AppFooter()

    def crumbs(self, previous: object) -> list[str]:
        return [self.joined.custom_ids[self.row] or f"row {self.row + 1}"]

    def on_mount(self) -> None:
        joined, row = self.joined, self.row
        self.query_one("#detail-request", JsonPane).show(
            [], joined.request_bytes(row), note="(no input line)"
        )
        self.query_one("#detail-response", JsonPane).show(
            [],
            joined.response_bytes(row),
            note="No result line: this request is in neither the output file nor the error "
            "file. It never came back; R on the results retries it.",
        )
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
