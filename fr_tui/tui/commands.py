"""The command palette (ctrl+p): what you can do from where you are.

The current screen's commands are its keys (tui/keys.py), so on Batch details typing
"retry" finds Retry; then the keys that work everywhere, then what has no key (settings,
profiles, the sandbox). Textual's own Theme, Maximize and Screenshot come from its system
provider; its Quit and Keys are dropped in FrTuiApp.get_system_commands, so nothing is
listed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from fr_tui.tui.keys import KeyEntry, app_keys, screen_keys


def _run(entry: KeyEntry) -> Callable[[], Any]:
    return partial(entry.node.run_action, entry.action)


class FrCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        app: Any = self.app
        screen: Any = self.screen
        titles: set[str] = set()
        for entry in [*screen_keys(screen), *app_keys(app)]:
            if not entry.enabled or entry.description in titles:
                continue
            titles.add(entry.description)
            about = f"{entry.tooltip} ({entry.keys_text})" if entry.tooltip else entry.keys_text
            yield entry.description, about, _run(entry)
        yield ("Settings", "Profiles, base URL, API key source", app.action_open_settings)
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

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
