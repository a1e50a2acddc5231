"""The one-line header every screen shows: the two modes with their keys (`1 Files`,
`2 Batches`), the active one marked, a breadcrumb of where you are in it (`Batches ›
nightly eval › Results`), the active profile, and an unmistakable SANDBOX badge (words
and reverse video, not just colour, so NO_COLOR keeps all of it).

Screens name their place with `crumbs(previous)`: the words they add to the breadcrumb
given the screen below them (Results under the Batch details of the same batch adds
only "Results").
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.screen import ModalScreen
from textual.widget import Widget

MODES = (("files", "1", "Files"), ("batches", "2", "Batches"))
_CRUMB_MAX = 24
SEPARATOR = " › "


def _short(text: str, limit: int) -> str:
    return text if cell_len(text) <= limit else text[: max(1, limit - 1)] + "…"


def crumbs_of(screen: Any) -> list[str]:
    """The breadcrumb words of `screen`: those of the screens below it in its stack, then
    its own."""
    app = screen.app
    stack = next(
        (list(s) for s in app._screen_stacks.values() if screen in s),
        [screen],
    )
    words: list[str] = []
    previous = None
    for item in stack[: stack.index(screen) + 1]:
        if isinstance(item, ModalScreen):
            continue
        crumbs = getattr(item, "crumbs", None)
        if callable(crumbs):
            words.extend(crumbs(previous))
        previous = item
    return words


def mode_of(screen: Any) -> str | None:
    for mode, stack in screen.app._screen_stacks.items():
        if screen in stack:
            return str(mode)
    return None


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
        self.place = place  # for screens outside the two modes (welcome, settings)

    def on_mount(self) -> None:
        self.watch(self.app, "profile_name", lambda _name: self.refresh(), init=False)

    def render(self) -> Text:
        app = self.app
        profile = getattr(app, "profile_name", "") or "?"
        sandbox = bool(getattr(app, "is_sandbox", False))
        right = Text()
        if not (sandbox and profile == "sandbox"):
            right.append(f"profile: {profile} ")
        if sandbox:
            right.append(" SANDBOX ", style="bold reverse")
            right.append(" ")
        left = Text()
        left.append(" fr-tui ", style="bold")
        mode = mode_of(self.screen)
        for name, key, title in MODES:
            left.append(" ")
            if name == mode:
                left.append(f" {key} {title} ", style="bold reverse")
            else:
                left.append(f" {key} {title} ", style="dim")
        words = crumbs_of(self.screen) or ([self.place] if self.place else [])
        room = self.size.width - left.cell_len - right.cell_len - 2
        trail = SEPARATOR.join(_short(w, _CRUMB_MAX) for w in words)
        if words and cell_len(trail) + cell_len(SEPARATOR) > room:
            # Too long: keep the end (where you are) and cut the start.
            trail = "…" + trail[-max(1, room - cell_len(SEPARATOR) - 1) :]
        if words and room > 4:
            left.append(SEPARATOR.lstrip() if mode else "  ")
            left.append(trail, style="bold")
        gap = max(1, self.size.width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right)
