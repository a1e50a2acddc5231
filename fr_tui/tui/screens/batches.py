"""Placeholder until its owner lands the real screen."""

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static


class BatchesScreen(Screen[None]):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    def compose(self) -> ComposeResult:
        yield Static("BatchesScreen: coming soon")
        yield Footer()
