"""Retry: preview the failed and missing rows by reason, then resubmit them as a new batch.

The modal only chooses which kinds of failure to retry; `build_validate_submit` does the
rest: copy those input lines to results/<batch>/retry-<n>.jsonl, validate that file like
any other input, submit it with metadata.parent_batch_id, and show the new batch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static
from textual.widgets.selection_list import Selection

from fr_tui.core.errors import ApiError

if TYPE_CHECKING:
    from fr_tui.tui.screens.results import ResultsScreen

Group = tuple[str, str, str, int]  # key, code, message, rows


def group_label(code: str, message: str, count: int) -> Text:
    text = f"{code}: {message}" if message else code
    if len(text) > 60:
        text = text[:59] + "…"
    # A Text, not a str: server messages such as "[/v1/...]" are not markup.
    return Text(f"{count:>6,}× {text}")


class RetryModal(ModalScreen[list[str] | None]):
    """Returns the chosen error-group keys, or None when cancelled."""

    DEFAULT_CSS = """
    RetryModal { align: center middle; }
    RetryModal > #retry-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    RetryModal #retry-title { text-style: bold; }
    RetryModal SelectionList { height: auto; max-height: 10; margin: 1 0 0 0; }
    RetryModal #retry-preview { margin: 1 0 0 0; }
    RetryModal #retry-buttons { height: auto; margin: 1 0 0 0; }
    RetryModal Button { margin: 0 1 0 0; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="retry.cancel"),
        Binding("ctrl+s", "confirm", "Retry", id="retry.confirm"),
    ]

    def __init__(self, groups: list[Group], *, can_submit: bool = True) -> None:
        super().__init__()
        self.groups = groups
        self.can_submit = can_submit

    def compose(self) -> ComposeResult:
        with Vertical(id="retry-box"):
            yield Static("Retry failed and missing rows as a new batch", id="retry-title")
            yield Static("Why they failed (space toggles a kind; all are chosen):")
            yield SelectionList[str](
                *(
                    Selection(group_label(code, message, count), key, True)
                    for key, code, message, count in self.groups
                ),
                id="retry-groups",
            )
            yield Static("", markup=False, id="retry-preview")
            with Horizontal(id="retry-buttons"):
                label = "Retry" if self.can_submit else "Write retry file"
                yield Button(label, variant="primary", id="retry-go")
                yield Button("Cancel", id="retry-cancel")

    def on_mount(self) -> None:
        self._update_preview()
        self.query_one("#retry-go", Button).focus()

    @property
    def chosen(self) -> list[str]:
        return list(self.query_one("#retry-groups", SelectionList).selected)

    def chosen_rows(self) -> int:
        chosen = set(self.chosen)
        return sum(count for key, _code, _message, count in self.groups if key in chosen)

    @on(SelectionList.SelectedChanged)
    def _update_preview(self) -> None:
        rows = self.chosen_rows()
        kinds = len(self.chosen)
        after = (
            "They are validated, then submitted with metadata.parent_batch_id."
            if self.can_submit
            else "No API key: the file is written and validated, not submitted."
        )
        self.query_one("#retry-preview", Static).update(
            f"{rows:,} rows from {kinds} kind(s) of failure go into a new input file. {after}"
        )
        self.query_one("#retry-go", Button).disabled = rows == 0

    @on(Button.Pressed, "#retry-go")
    def action_confirm(self) -> None:
        if self.chosen_rows():
            self.dismiss(self.chosen)

    @on(Button.Pressed, "#retry-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def next_retry_path(folder: Path) -> Path:
    n = 1
    while (folder / f"retry-{n}.jsonl").exists():
        n += 1
    return folder / f"retry-{n}.jsonl"


async def build_validate_submit(screen: ResultsScreen, groups: list[str]) -> str | None:
    """Write, validate and (with a client) submit the retry file; returns the new batch id."""
    from fr_tui.core.clients import NoClientError
    from fr_tui.core.export import NothingToRetry, build_retry_file
    from fr_tui.core.store import StoreError
    from fr_tui.core.validate import Limits, validate_path
    from fr_tui.core.workflow import DuplicateSubmitError, UnrecordedBatchError, submit_file
    from fr_tui.tui.modals.confirm import ConfirmModal

    app: Any = screen.app
    joined = screen.joined
    record = screen.record
    if joined is None or record is None:
        return None
    folder: Path = app.paths.results_for(record.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = next_retry_path(folder)
    screen.set_status(f"Writing {path.name}…")
    try:
        plan = await asyncio.to_thread(
            build_retry_file, joined, joined.input_path, path, groups=groups
        )
    except NothingToRetry:
        screen.notify("None of the chosen rows can be retried", title="Retry", severity="warning")
        return None
    except (OSError, ValueError) as exc:
        screen.notify(str(exc), title="Retry file failed", severity="error")
        return None
    profile = getattr(app, "profile", None)
    limits = Limits(
        max_rows=getattr(profile, "max_rows", Limits.max_rows),
        max_bytes=getattr(profile, "max_bytes", Limits.max_bytes),
    )
    screen.set_status(f"Validating {path.name} ({plan.rows:,} rows)…")
    report = await asyncio.to_thread(validate_path, path, limits)
    if not report.valid:
        first = report.errors[0] if report.errors else None
        detail = f"line {first.line}: {first.message}" if first else "it is not valid"
        screen.notify(
            f"{path} does not pass validation ({report.errors_total} errors; {detail}). Not submitted.",
            title="Retry file invalid",
            severity="error",
            timeout=10,
        )
        screen.set_status(f"Retry file {path} is invalid")
        return None
    try:
        client = app.client_for(record)  # the parent's own server and profile
    except NoClientError as exc:
        screen.notify(
            f"{plan.rows:,} rows written to {path} and validated. Not submitted: {exc}.",
            title="Retry file ready",
        )
        screen.set_status(f"Retry file {path}")
        return None
    screen.set_status(f"Submitting {plan.rows:,} rows…")
    options: dict[str, Any] = {
        "profile": record.profile or getattr(profile, "name", "default"),
        "endpoint": record.endpoint,
        "metadata": {"parent_batch_id": record.id},
        "name": f"retry of {record.label}",
        "parent_batch_id": record.id,
        "rows": plan.rows,
    }
    try:
        try:
            new = await submit_file(client, app.store, path, **options)
        except DuplicateSubmitError as exc:
            again = await app.push_screen_wait(
                ConfirmModal("Retried before", f"{exc}.\n\nSubmit it again anyway?", "Submit")
            )
            if not again:
                screen.set_status(f"Retry file {path} written; not submitted")
                return None
            new = await submit_file(
                client, app.store, path, allow_duplicate=True, sha256=exc.sha256, **options
            )
    except (ApiError, StoreError, UnrecordedBatchError) as exc:
        screen.notify(str(exc), title="Retry submit failed", severity="error", timeout=10)
        screen.set_status(f"Retry file {path} written; submit failed")
        return None
    skipped = f" ({plan.skipped} rows without a custom_id left out)" if plan.skipped else ""
    screen.notify(
        f"Batch {new.id}: {plan.rows:,} rows from {path.name}{skipped}", title="Retry submitted"
    )
    screen.set_status(f"Retry submitted as {new.id}")
    if screen.is_current and len(app.screen_stack) > 1:
        app.pop_screen()  # Batches may be the mode under this screen: leave, then show it
    app.open_batches(select=new.id)
    return new.id
