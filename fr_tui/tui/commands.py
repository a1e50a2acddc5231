"""The command palette (ctrl+p): what you can do from where you are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class FrCommands(Provider):
    """Context commands: the Files screen adds file actions, every screen gets navigation,
    profiles, settings, theme and the sandbox."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        app: Any = self.app
        screen: Any = self.screen
        file_path = getattr(screen, "current_path", None)
        if file_path is not None:
            name = file_path.name
            yield (
                f"Submit this file ({name})",
                "Upload it and create a batch",
                screen.action_submit,
            )
            yield (f"Validate this file ({name})", "Check every line", screen.action_validate)
            yield ("Find in this file", "Search the preview (/)", screen.action_find)
        if hasattr(screen, "action_toggle_all_files"):
            yield (
                "Toggle all files",
                "Show only JSONL files, or every file",
                screen.action_toggle_all_files,
            )
        yield (
            "Go to Files",
            "Browse and validate batch input files (1)",
            partial(app.switch_mode, "files"),
        )
        yield ("Go to Batches", "Watch submitted batches (2)", partial(app.switch_mode, "batches"))
        yield ("Open settings", "Profiles, base URL, API key source", app.action_open_settings)
        current = getattr(app, "profile_name", "")
        for name in app.config.profiles:
            if name != current:
                yield (
                    f"Switch profile: {name}",
                    "Use this profile's server and key",
                    partial(app.set_profile, name),
                )
        if not app.is_sandbox:
            yield (
                "Use the sandbox",
                "A local FastRouter-like server; no key needed",
                app.action_use_sandbox,
            )
        yield ("Change theme", "Pick a colour theme", app.action_change_theme)
        yield ("Help", "Every key (? or f1)", app.action_help)
        yield ("Quit", "Leave fr-tui (q)", app.action_quit)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
