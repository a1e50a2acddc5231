"""Keys you can find (issue 10, items 4-6): the footer keeps help and the main actions
at 80 columns, help is read from the bindings of the screen it was opened from, and the
palette offers that screen's commands, each once."""

from __future__ import annotations

from typing import Any

import pytest
from textual.binding import Binding
from textual.command import CommandList
from textual.widgets import Input

from fr_tui.tui.commands import FrCommands
from fr_tui.tui.keys import key_name
from fr_tui.tui.modals.retry import RetryModal
from fr_tui.tui.screens.batch_details import BatchDetailsScreen
from fr_tui.tui.screens.batches import BatchesScreen
from fr_tui.tui.screens.files import FilesScreen
from fr_tui.tui.screens.help import HelpScreen
from fr_tui.tui.screens.result_detail import ResultDetailScreen
from fr_tui.tui.screens.results import ResultsScreen

from .test_navigation import finished, on_list, sandbox_app
from .test_shell import SAMPLES, screen_text, wait_for


def footer_line(app: Any) -> str:
    return screen_text(app).splitlines()[-1]


async def visit(app: Any, pilot: Any, batch_id: str, name: str) -> Any:
    """Go to screen `name` the way a user does; returns it."""
    if name == "files":
        await pilot.press("1")
        app.open_file(SAMPLES / "chat.jsonl")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen) and app.screen.report)
        return app.screen
    await pilot.press("2")
    await wait_for(pilot, lambda: on_list(app))
    app.screen.select_batch(batch_id)
    if name == "batches":
        await pilot.pause()
        return app.screen
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
    if name == "details":
        await pilot.pause()
        return app.screen
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined)
    if name == "results":
        await pilot.pause()
        return app.screen
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ResultDetailScreen))
    await pilot.pause()
    return app.screen


MAIN_KEYS = {
    "files": ["s Submit"],
    "batches": ["⏎ Details", "o Results", "R Retry"],
    "details": ["o Results", "R Retry"],
    "results": ["⏎ Details", "R Retry"],
    "result-detail": ["y Copy response"],
}


async def test_the_footer_at_80_columns_keeps_help_quit_and_the_main_actions() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl")
        for name, keys in MAIN_KEYS.items():
            await visit(app, pilot, batch_id, name)
            footer = footer_line(app)
            for key in [*keys, "? Help", "q Quit", "^p palette"]:
                assert key in footer, f"{name}: {key!r} not in {footer!r}"


def expected_help(screen: Any) -> list[tuple[str, str]]:
    """What help must list for the screen's own bindings: read here from the class,
    independently of the code under test (keys joined in declaration order)."""
    rows: dict[str, list[str]] = {}
    described: dict[str, str] = {}
    for binding in type(screen).BINDINGS:
        assert isinstance(binding, Binding)
        if screen.check_action(binding.action, ()) is False:
            continue
        for key in binding.key.split(","):
            rows.setdefault(binding.action, []).append(key_name(key.strip()))
        described[binding.action] = binding.description
    return [(" / ".join(keys), described[action]) for action, keys in rows.items()]


@pytest.mark.parametrize("name", list(MAIN_KEYS))
async def test_help_lists_exactly_the_screens_keys_with_readable_names(name: str) -> None:
    app = sandbox_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl")
        screen = await visit(app, pilot, batch_id, name)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        title, rows = help_screen.sections()[0]
        assert title.startswith("This screen")
        own = [(keys, text.split(":")[0].removesuffix(" (not now)")) for keys, text in rows]
        for expected in expected_help(screen):
            assert expected in own, f"{expected} missing from {own}"
        # nothing else but fr-tui's own widgets' keys: those they show in the footer,
        # and their movement keys on one row each
        shown_by_widgets = {
            binding.description
            for widget in screen.query("*")
            if type(widget).__module__.startswith("fr_tui.")
            for binding in type(widget).__dict__.get("BINDINGS", [])
            if isinstance(binding, Binding) and binding.show
        }
        extra = [row for row in own if row not in expected_help(screen)]
        for _keys, text in extra:
            assert text.startswith("In the ") or text in shown_by_widgets, extra
        text = screen_text(app)
        for internal in ("slash", "super+c", "Focus Next", "Copy selected text", "question_mark"):
            assert internal not in text
        if any(b.key == "slash" for b in type(screen).BINDINGS):
            assert any(keys == "/" for keys, _ in own)


async def test_palette_has_the_screens_commands_once_each() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl")
        screen = await visit(app, pilot, batch_id, "details")
        titles = [title for title, _, _ in FrCommands(screen)._commands()]
        titles += [command.title for command in app.get_system_commands(screen)]
        assert len(titles) == len(set(titles)), titles
        assert titles.count("Quit") == 1 and "Keys" not in titles
        assert "Change theme" not in titles and "Theme" in titles
        assert {"Retry", "Results", "Help"} <= set(titles)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: bool(app.screen.query(CommandList)))
        app.screen.query_one(Input).focus()
        await pilot.press(*"retry")
        commands = app.screen.query_one(CommandList)
        await wait_for(
            pilot,
            lambda: (
                commands.option_count and "Retry" in str(commands.get_option_at_index(0).prompt)
            ),
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RetryModal))


async def test_batches_screen_keys_are_in_help_even_when_the_footer_drops_them() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "chat.jsonl")
        screen = await visit(app, pilot, batch_id, "batches")
        assert isinstance(screen, BatchesScreen)
        footer = footer_line(app)
        assert "p Pause" not in footer  # no room at 80 columns...
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        for _ in range(6):  # ...so it is in help (scrolled to, at 80x24)
            if "Pause" in screen_text(app):
                break
            before = help_screen.scroller.scroll_y
            await pilot.press("space")
            await wait_for(pilot, lambda y=before: help_screen.scroller.scroll_y != y)
        assert "Pause" in screen_text(app)


async def test_help_that_does_not_fit_says_so_and_scrolls_with_j_k_space() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        await wait_for(pilot, lambda: "↓ more below" in screen_text(app))
        await pilot.press("j")
        await wait_for(pilot, lambda: help_screen.scroller.scroll_y == 1)
        await pilot.press("k")
        await wait_for(pilot, lambda: help_screen.scroller.scroll_y == 0)
        for _ in range(5):
            await pilot.press("space")
        await wait_for(pilot, lambda: "↑ more above" in screen_text(app))
        assert "Command palette" in screen_text(app)  # the last row is reachable
    roomy = sandbox_app()
    async with roomy.run_test(size=(160, 60)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: "escape closes this help" in screen_text(roomy))
        assert "more below" not in screen_text(roomy)
