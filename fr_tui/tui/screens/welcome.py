"""First run with no key: enter one (masked, tested before it is saved) or use the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from fr_tui.core.config import DEFAULT_BASE_URL, SANDBOX
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.jsonl_tree import sandbox_start


class WelcomeScreen(Screen[None]):
    DEFAULT_CSS = """
    WelcomeScreen { align: center middle; }
    WelcomeScreen > Vertical {
        width: 90%; max-width: 76; height: auto;
        border: round $accent; background: $surface; padding: 0 1;
    }
    WelcomeScreen #welcome-title { text-style: bold; margin-bottom: 1; }
    WelcomeScreen .field-label { color: $text-muted; }
    WelcomeScreen #welcome-status { height: auto; min-height: 1; }
    WelcomeScreen Horizontal { height: 1; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "use_sandbox", "Use the sandbox", id="welcome-sandbox"),
        Binding("escape", "later", "Later", id="welcome-later"),
    ]

    def compose(self) -> ComposeResult:
        app: Any = self.app
        base = app.config.profile("default").base_url
        if base == SANDBOX:
            base = DEFAULT_BASE_URL
        yield AppHeader()
        with Vertical():
            yield Static("Welcome to fr-tui: batch jobs on FastRouter", id="welcome-title")
            yield Static(
                "Paste your FastRouter API key. It is tested before it is saved "
                "(config.toml, mode 0600) and never shown again. Or press f2 to try "
                "everything on the built-in sandbox: no key, no cost."
            )
            yield Static("API key", classes="field-label")
            yield Input(compact=True, placeholder="sk-…", password=True, id="welcome-key")
            yield Static("Base URL", classes="field-label")
            yield Input(compact=True, value=base, id="welcome-base-url")
            yield Static("", markup=False, id="welcome-status")
            with Horizontal():
                yield Button("Test and save ⏎", id="welcome-save", variant="primary", compact=True)
                yield Button("Use the sandbox (f2)", id="welcome-sandbox", compact=True)
        yield AppFooter()

    def crumbs(self, previous: object) -> list[str]:
        return ["Welcome"]

    def on_mount(self) -> None:
        self.query_one("#welcome-key", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#welcome-save")
    def _save(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        key = self.query_one("#welcome-key", Input).value.strip()
        from fr_tui.core.api import normalise_base_url  # httpx: not at start-up

        base = normalise_base_url(self.query_one("#welcome-base-url", Input).value or "")
        if not key:
            self._status("Paste a key first, or press f2 for the sandbox.", error=True)
            return
        if not base.startswith(("http://", "https://")):
            self._status("The base URL must start with http:// or https://", error=True)
            return
        self._status("Testing the key…")
        self.query_one("#welcome-save", Button).disabled = True
        self._test_and_save(key, base)

    @work(exclusive=True, group="welcome-test", exit_on_error=False)
    async def _test_and_save(self, key: str, base: str) -> None:
        try:
            from fr_tui.core.key_check import check_key

            works, message = await check_key(base, key)
        finally:
            self.query_one("#welcome-save", Button).disabled = False
        if not works:
            self._status(f"✖ {message}", error=True)
            return
        app: Any = self.app
        profile = app.config.profile("default")
        profile.api_key = key
        profile.api_key_env = None
        profile.api_key_command = None
        profile.base_url = base
        app.set_profile("default")
        self.dismiss(None)

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#welcome-status", Static)
        status.update(text)
        status.set_class(error, "error-text")

    @on(Button.Pressed, "#welcome-sandbox")
    def _sandbox_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_use_sandbox()

    def action_use_sandbox(self) -> None:
        app: Any = self.app
        app.set_profile(SANDBOX)
        self.dismiss(None)
        if app.start_path is None:
            # Like `fr-tui --sandbox`: the current folder if it has files to try, else
            # the sample files.
            app.start_path = start = sandbox_start(Path.cwd())

            def browse() -> None:
                if hasattr(app.screen, "browse"):
                    app.screen.browse(start)

            app.call_after_refresh(browse)

    def action_later(self) -> None:
        self.dismiss(None)
