"""The app shell: welcome, header, help, palette, settings, quitting, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from fr_tui.core.config import load_config
from fr_tui.core.paths import get_paths
from fr_tui.tui.app import FrTuiApp
from fr_tui.tui.screens.files import FilesScreen
from fr_tui.tui.screens.help import HelpScreen
from fr_tui.tui.screens.settings import SettingsScreen
from fr_tui.tui.screens.welcome import WelcomeScreen

SIZES = [(80, 24), (120, 40)]
SAMPLES = Path(__file__).resolve().parents[2] / "fr_tui" / "samples"


def make_app(**kwargs: Any) -> FrTuiApp:
    kwargs.setdefault("start_path", SAMPLES)
    return FrTuiApp(config=load_config(), paths=get_paths(), **kwargs)


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def screen_text(app: Any) -> str:
    """Everything on screen as plain text (for "is it shown" and "is it hidden" checks)."""
    return "\n".join(
        "".join(segment.text for segment in strip)
        for strip in app.screen._compositor.render_strips()
    )


@pytest.mark.parametrize("size", SIZES)
async def test_first_run_welcome_then_sandbox_with_one_key(size: tuple[int, int]) -> None:
    app = make_app(start_path=None)  # `fr-tui` with no PATH: the tree starts on the cwd
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        assert "Welcome to fr-tui" in screen_text(app)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen))
        assert app.is_sandbox and app.profile.name == "sandbox"
        assert "SANDBOX" in screen_text(app)
        assert app.client is not None
        await wait_for(pilot, lambda: "server_fails.jsonl" in screen_text(app))  # the samples
    # The choice is saved: the next start goes straight to the sandbox, no welcome.
    config = load_config()
    assert config.exists and config.active_profile == "sandbox"
    again = make_app()
    assert not again.needs_welcome and again.is_sandbox


async def test_welcome_tests_the_key_before_saving_it(sandbox: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        app.screen.query_one("#welcome-base-url", Input).value = sandbox.base_url
        key_input = app.screen.query_one("#welcome-key", Input)
        assert key_input.password
        key_input.focus()
        await pilot.press(*"sk-bad-key-123")
        assert "sk-bad-key-123" not in screen_text(app)  # masked while typed
        await pilot.press("enter")
        status = app.screen.query_one("#welcome-status", Static)
        await wait_for(pilot, lambda: "401" in str(status.render()))
        assert not load_config().exists  # a refused key is not saved
        key_input.value = "sk-good-key-456"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen))
        assert "sk-good-key-456" not in screen_text(app)
    config = load_config()
    assert config.profile("default").api_key == "sk-good-key-456"
    assert config.profile("default").base_url == sandbox.base_url


async def test_no_welcome_with_a_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTROUTER_API_KEY", "sk-from-env")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FilesScreen)
        assert "profile: default" in screen_text(app)
        assert "SANDBOX" not in screen_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_help_lists_keys_and_q_quits(size: tuple[int, int]) -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        # The keys of the screen below come first, so they fit even at 80x24.
        for needle in ("This screen: Files", "Next problem", "Submit", "Find"):
            assert needle in text
        if size[1] >= 40:
            assert "Command palette" in text and "Everywhere" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FilesScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert app.sandbox_server is None  # the embedded server stopped with the app


async def test_sigterm_exits_cleanly() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, install_signal_handlers=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        server = app.sandbox_server
        assert server is not None and server.running
        loop = asyncio.get_running_loop()
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the real signal, to our handler
            await wait_for(pilot, lambda: app.return_code is not None)
        finally:
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    assert app.return_code == 128 + signal.SIGTERM
    assert not server.running


async def test_palette_commands_follow_the_screen() -> None:
    from fr_tui.tui.commands import FrCommands

    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        provider = FrCommands(app.screen)
        titles = [title for title, _, _ in provider._commands()]
        assert "Submit" in titles and "Validate" in titles
        assert "Switch profile: default" in titles
        assert "Use the sandbox" not in titles  # already on it
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"settings")
        await wait_for(pilot, lambda: "Settings" in screen_text(app))  # the palette found it
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))


@pytest.mark.parametrize("size", SIZES)
async def test_settings_add_profile_and_test_connection(
    sandbox: Any, size: tuple[int, int]
) -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.action_open_settings()
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        await pilot.press("ctrl+n")
        await pilot.pause()
        screen.query_one("#profile-name", Input).value = "staging"
        screen.query_one("#profile-base-url", Input).value = sandbox.base_url + "/v1"
        screen.query_one("#key-value", Input).value = "sk-bad-one"
        status = screen.query_one("#settings-status", Static)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "✖" in str(status.render()))
        screen.query_one("#key-value", Input).value = "sk-staging-secret"
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "✔" in str(status.render()))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Saved" in str(status.render()))
        assert "sk-staging-secret" not in screen_text(app)
    saved = load_config().profile("staging")
    assert saved.base_url == sandbox.base_url and saved.api_key == "sk-staging-secret"


async def test_a_profile_without_a_key_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switching to a profile with no key warns (the switch still happens: the key may be
    set next), and Settings says the profile has none instead of a `sk-…` placeholder
    that reads like a stored key."""
    monkeypatch.delenv("FASTROUTER_API_KEY", raising=False)
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.set_profile("default", save=False)
        await wait_for(
            pilot, lambda: any("has no API key" in n.message for n in app._notifications)
        )
        assert app.profile.name == "default"
        app.action_open_settings()
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))

        def status() -> str:
            found = app.screen.query("#settings-status")
            return str(found.first(Static).render()) if found else ""

        await wait_for(pilot, lambda: "no API key" in status())
        key = app.screen.query_one("#key-value", Input)
        assert key.placeholder == "none stored yet: paste a key here"


# ---------------------------------------------------------------- snapshots


def test_snapshot_welcome(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24))


def test_snapshot_help(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()

    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_settings(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        pilot.app.action_open_settings()
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
        await pilot.pause()

    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    assert snap_compare(app, terminal_size=size, run_before=run_before)
