"""The keys of a screen, read from its bindings: the one source for the footer, the help
screen and the command palette, so none of them can drift from what the keys do.

A screen's keys are its own bindings, those of fr-tui's own widgets on it (the preview's
and the results table's movement keys) and the app's global ones. Textual's built-in
plumbing (tab focus, super+c copy, a DataTable's cursor keys) is left out: it is the same
in every Textual app and means nothing to a user of this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode

# Key names as a person types them ("/" not "slash"); the rest are Textual's own names.
_READABLE = {
    "slash": "/",
    "question_mark": "?",
    "equals_sign": "=",
    "pageup": "pgup",
    "pagedown": "pgdn",
}

# Textual's own screen bindings: moving focus and copying selected text.
_PLUMBING = frozenset(
    {"app.focus_next", "app.focus_previous", "focus_next", "focus_previous", "screen.copy_text"}
)


def key_name(key: str) -> str:
    return _READABLE.get(key, key)


@dataclass
class KeyEntry:
    keys: list[str]  # readable names, plain keys before combinations
    description: str
    tooltip: str
    action: str
    node: DOMNode
    enabled: bool
    shown: bool  # whether the binding asks to be in the footer
    why_not: str | None = None  # why a dimmed key does not apply now

    @property
    def keys_text(self) -> str:
        return " / ".join(self.keys)


def _own_actions(node: DOMNode) -> set[str]:
    """Actions bound in fr-tui's own classes of `node` (not in the Textual widget it
    builds on: a tree's or an option list's cursor keys are plumbing)."""
    actions: set[str] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith("fr_tui.") and "BINDINGS" in cls.__dict__:
            for binding in cls.__dict__["BINDINGS"]:
                if isinstance(binding, Binding):
                    actions.add(binding.action)
    return actions


def _bindings(node: DOMNode) -> list[Binding]:
    """A node's bindings in declaration order: BindingsMap keeps one entry per key
    ("n,escape" is two), in the order the classes declare them, base classes first."""
    return [b for bindings in node._bindings.key_to_bindings.values() for b in bindings]


def _entries(node: DOMNode, app: Any) -> list[KeyEntry]:
    entries: dict[str, KeyEntry] = {}
    for binding in _bindings(node):
        if not binding.description or binding.system:
            continue
        if binding.action in _PLUMBING or binding.key.startswith("super+"):
            continue
        state = app._check_action_state(binding.action, node)
        if state is False:
            continue
        entry = entries.get(binding.action)
        name = binding.key_display if binding.key_display else key_name(binding.key)
        if entry is None:
            reason = getattr(node, "why_not", None)
            entries[binding.action] = KeyEntry(
                [name],
                binding.description,
                binding.tooltip,
                binding.action,
                node,
                bool(state),
                binding.show,
                reason(binding.action) if state is None and callable(reason) else None,
            )
        elif name not in entry.keys:
            entry.keys.append(name)
    for entry in entries.values():
        # the key you would type first: "q" before "ctrl+q"
        entry.keys.sort(key=lambda name: "+" in name and len(name) > 1)
    # In the order the most derived class declares them: that order is their importance
    # (base classes, such as Textual's App with its ctrl+q, come after).
    declared = [b.action for b in getattr(type(node), "BINDINGS", []) if isinstance(b, Binding)]
    rank = {action: i for i, action in reversed(list(enumerate(declared)))}
    return sorted(entries.values(), key=lambda e: rank.get(e.action, len(rank)))


def screen_keys(screen: DOMNode) -> list[KeyEntry]:
    """The screen's own keys, then those of fr-tui's widgets on it, most important first
    (the order of each BINDINGS list is its order of importance)."""
    app = screen.app
    entries = _entries(screen, app)
    seen = {e.action for e in entries}
    for widget in screen.query("*"):
        own = _own_actions(widget)
        if not own:
            continue
        for entry in _entries(widget, app):
            if entry.action in own and entry.action not in seen:
                seen.add(entry.action)
                entries.append(entry)
    return entries


def app_keys(app: Any) -> list[KeyEntry]:
    """The keys that work everywhere (the App's own bindings, not Textual's built-ins)."""
    return [e for e in _entries(app, app) if e.action != "command_palette"]
