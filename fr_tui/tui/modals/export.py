"""Export: choose a path, a format (CSV or JSONL), and, when a filter is on, whether to
write the rows it shows or all of them. An existing file is replaced only after a yes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioSet, Select, Static

from fr_tui.core.export import EXPORT_COLUMNS
from fr_tui.core.units import plural
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.widgets.toggles import Radio

FORMATS = (("CSV (spreadsheets)", "csv"), ("JSONL (one object per line)", "jsonl"))


def with_format(path_text: str, fmt: str) -> str:
    """The path with its .csv/.jsonl suffix switched to `fmt` (other names unchanged)."""
    for suffix in (".csv", ".jsonl"):
        if path_text.endswith(suffix):
            return path_text[: -len(suffix)] + "." + fmt
    return path_text


async def export_in_thread(screen: Any, path: Path, write: Callable[[], int]) -> None:
    """Run an export's `write` (it returns the rows written) in a thread, with the
    screen's status line saying so, then one notification of how it went."""
    screen.set_status(f"Exporting to {path}…")
    try:
        written = await asyncio.to_thread(write)
    except (OSError, ValueError) as exc:
        from fr_tui.core.userfiles import describe

        text = describe(exc) if isinstance(exc, OSError) else str(exc)
        screen.notify(text, title="Export failed", severity="error")
        return
    screen.notify(f"{plural(written, 'row')} written to {path}", title="Exported")


def resolve_export_path(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


class ExportModal(ModalScreen[tuple[Path, str, bool] | None]):
    """Returns (path, "csv" | "jsonl", only the filter's rows), or None when cancelled."""

    DEFAULT_CSS = """
    ExportModal { align: center middle; }
    ExportModal > #export-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    ExportModal #export-title { text-style: bold; }
    ExportModal #export-note { color: $text-muted; }
    ExportModal #export-buttons { height: auto; }
    ExportModal Button { margin: 0 1 0 0; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(
        self,
        default_path: Path,
        rows: int,
        shown: tuple[str, int] | None = None,
        *,
        heading: str = "Export the results (in input order)",
        columns: tuple[str, ...] = EXPORT_COLUMNS,
    ) -> None:
        """`shown`: (filter name, rows it shows) when a filter is on."""
        super().__init__()
        self.default_path = default_path
        self.rows = rows
        self.shown = shown
        self.heading = heading
        self.columns = columns

    def compose(self) -> ComposeResult:
        fmt = "jsonl" if self.default_path.suffix == ".jsonl" else "csv"
        with Vertical(id="export-box"):
            yield Static(self.heading, markup=False, id="export-title")
            if self.shown is not None:
                name, count = self.shown
                yield RadioSet(
                    Radio(f"{plural(count, 'row')} of the filter {name}", value=True),
                    Radio(f"all {plural(self.rows, 'row')}"),
                    id="export-scope",
                )
            else:
                yield Static(f"All {plural(self.rows, 'row')}", id="export-scope-all")
            yield Input(str(self.default_path), id="export-path")
            yield Select(FORMATS, value=fmt, allow_blank=False, id="export-format")
            yield Static(f"Columns: {', '.join(self.columns)}", markup=False, id="export-note")
            with Horizontal(id="export-buttons"):
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#export-path", Input)
        path.value = with_format(path.value, str(event.value))

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-go")
    def action_export(self) -> None:
        text = self.query_one("#export-path", Input).value
        if not text.strip():
            self.notify("Give a path to write to", severity="warning")
            return
        fmt = str(self.query_one("#export-format", Select).value)
        path = resolve_export_path(text)
        only_shown = self.shown is not None and (
            self.query_one("#export-scope", RadioSet).pressed_index == 0
        )
        if path.is_dir():
            self.notify(f"{path} is a folder: give a file name", severity="warning")
            return
        if not path.parent.is_dir():  # a typo in the folder is said, not made into folders
            self.notify(f"{path.parent}: no such folder", severity="warning")
            return
        if not path.exists():
            self.dismiss((path, fmt, only_shown))
            return

        def answered(replace: bool | None) -> None:
            if replace:
                self.dismiss((path, fmt, only_shown))

        self.app.push_screen(
            ConfirmModal("Replace the file?", f"{path} exists. Replace it?", "Replace"),
            answered,
        )

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
