"""The one-line header every screen shows: app name, where you are, the active profile,
and an unmistakable SANDBOX badge (a word, not just a colour, so NO_COLOR keeps it)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class AppHeader(Widget):
    DEFAULT_CSS = """
    AppHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, place: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.place = place

    def on_mount(self) -> None:
        self.watch(self.app, "profile_name", lambda _name: self.refresh(), init=False)

    def render(self) -> Text:
        app = self.app
        profile = getattr(app, "profile_name", "") or "?"
        sandbox = bool(getattr(app, "is_sandbox", False))
        left = Text()
        left.append(" fr-tui ", style="bold reverse")
        if self.place:
            left.append(f" {self.place}", style="bold")
        right = Text()
        right.append(f"profile: {profile} ")
        if sandbox:
            right.append(" SANDBOX ", style="bold reverse")
            right.append(" ")
        gap = max(1, self.size.width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right)
