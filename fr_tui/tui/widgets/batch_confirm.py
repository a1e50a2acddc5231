"""The confirm dialog used by the batch screens: the shared ConfirmModal when it exists,
else a small y/n one of the same shape (title, body, confirm_label) -> bool."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class _BatchConfirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    _BatchConfirm { align: center middle; }
    _BatchConfirm > Vertical {
        width: 60; max-width: 100%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    _BatchConfirm #confirm-title { text-style: bold; }
    _BatchConfirm Horizontal { height: auto; margin-top: 1; }
    _BatchConfirm Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(self, title: str, body: str, confirm_label: str = "OK") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="confirm-title")
            yield Static(self._body)
            with Horizontal():
                yield Button(f"{self._label} (y)", variant="warning", id="yes")
                yield Button("Keep (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


def confirm_modal(title: str, body: str, confirm_label: str) -> ModalScreen[bool]:
    try:
        from fr_tui.tui.modals.confirm import ConfirmModal
    except ImportError:
        return _BatchConfirm(title, body, confirm_label)
    modal: ModalScreen[bool] = ConfirmModal(title, body, confirm_label)
    return modal
