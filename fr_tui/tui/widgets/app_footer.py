"""The footer: the screen's keys, most important first, then `? Help` and `q Quit`.

Textual's Footer shows every binding in the order it meets them and lets the terminal's
edge cut the rest, so at 80 columns the global keys (help, quit) were the first to go.
This one drops the screen's least important keys instead, until what is left fits: help
and quit are always there, and what does not fit is in help (?) and the palette (ctrl+p).
A key the focused widget takes for itself (a table's enter) no longer hides the screen's
description of what that key does. A screen may name keys of equal rank
(``FOOTER_BY_STATE``: a row's results, retry and cancel): among those, the ones that
apply now come first, so at 80 columns a running job shows cancel, an ended one retry.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from fr_tui.tui.keys import _PLUMBING

PALETTE_LABEL = "palette"


class AppFooter(Footer):
    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        app: Any = self.app
        screen: Any = self.screen
        own: list[tuple[Any, bool]] = []
        everywhere: list[tuple[Any, bool]] = []
        seen_keys: set[str] = set()
        seen_actions: set[str] = set()
        for node, bindings in screen._modal_binding_chain:
            for key, binding_list in bindings.key_to_bindings.items():
                for binding in binding_list:
                    if not binding.show or binding.action in _PLUMBING:
                        continue
                    if key in seen_keys or binding.action in seen_actions:
                        continue
                    state = app._check_action_state(binding.action, node)
                    if state is False:
                        continue
                    seen_keys.add(key)
                    seen_actions.add(binding.action)
                    (everywhere if node is app else own).append((binding, bool(state)))
        by_state = getattr(screen, "FOOTER_BY_STATE", ())
        places = [i for i, (binding, _) in enumerate(own) if binding.action in by_state]
        ranked = sorted((own[i] for i in places), key=lambda item: not item[1])  # stable
        for i, item in zip(places, ranked, strict=True):
            own[i] = item
        width = self.size.width or app.size.width
        room = width - (cell_len(PALETTE_LABEL) + 5 if self.show_command_palette else 0)

        def cells(item: tuple[Any, bool]) -> int:
            binding = item[0]
            return cell_len(app.get_key_display(binding)) + cell_len(binding.description) + 3

        while own and sum(map(cells, own + everywhere)) > room:
            own.pop()
        shown = own + everywhere
        self.styles.grid_size_columns = len(shown)
        for binding, enabled in shown:
            yield FooterKey(
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=binding.tooltip,
            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = screen.active_bindings[
                    app.COMMAND_PALETTE_BINDING
                ]
            except KeyError:
                return
            yield FooterKey(
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self) -> None:
        self.refresh(recompose=True)
