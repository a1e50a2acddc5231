"""Find in a screen's ResultView (the Results and Compare screens): `/` opens the find
line, enter searches, `n`/`N` go to the next or previous match among the rows the
filter shows, escape closes it. The screen says how to search (`search` calls
`show_matches` with the matching rows) and names its find Input in FIND_ID.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


class FindInView:
    """Mixin for a Screen with `view` (a ResultView), `_refresh_status()` and an Input
    whose id is FIND_ID."""

    FIND_ID = ""
    find_text = ""
    _match_rows: list[int] = []
    _match_positions: list[int] = []

    view: Any
    notify: Any
    query_one: Any

    def _refresh_status(self) -> None:
        raise NotImplementedError

    def action_find(self) -> None:
        find = self.query_one(f"#{self.FIND_ID}", Input)
        find.add_class("-active")
        find.value = self.find_text
        find.focus()

    def find_is_open(self) -> bool:
        return bool(self.query_one(f"#{self.FIND_ID}", Input).has_class("-active"))

    def _close_find(self) -> None:
        self.query_one(f"#{self.FIND_ID}", Input).remove_class("-active")
        self.view.focus()

    def show_matches(self, text: str, rows: list[int]) -> None:
        """The rows that match `text`: shown in the status line, the cursor on the first
        one at or after it."""
        self.find_text = text
        self._match_rows = rows
        self._recompute_matches()
        self._refresh_status()
        if text and not self._match_positions:
            self.notify(f"No row here matches '{text}'", severity="warning")
        elif text:
            self._jump(forward=True, inclusive=True)

    def _recompute_matches(self) -> None:
        """Where the matches are among the rows the view shows now (after a filter)."""
        view = self.view
        self._match_positions = [at for at in map(view.position_of, self._match_rows) if at >= 0]

    def _jump(self, *, forward: bool, inclusive: bool = False) -> None:
        moved = self.view.jump(self._match_positions, forward=forward, inclusive=inclusive)
        if not moved and self.find_text:
            self.notify(f"No row here matches '{self.find_text}'", severity="warning")

    def action_find_next(self) -> None:
        self._jump(forward=True)

    def action_find_previous(self) -> None:
        self._jump(forward=False)


__all__ = ["FindInView"]
