"""A DataTable whose rows are keyed and refreshed in place (as dolphie's tables are):
`show(rows, order)` re-adds rows only when the keys or their order changed, and
otherwise updates just the cells whose value changed, so the cursor and the scroll
position survive every refresh. Columns come from `set_columns` (they may change with the
terminal's width)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.coordinate import Coordinate
from textual.widgets import DataTable

from fr_tui.tui.widgets.batch_format import Column

Cells = tuple[Any, ...]


class LiveTable(DataTable[Any]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.columns_shown: tuple[Column, ...] = ()
        self.cells: dict[str, Cells] = {}  # what each row shows now, by row key
        self.order: list[str] = []  # the row keys, top to bottom

    def cursor_key(self) -> str | None:
        """The key of the highlighted row (None: no rows)."""
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None
        value: str | None = row_key.value
        return value

    def set_columns(self, columns: tuple[Column, ...]) -> bool:
        """Show these columns (the rows are dropped: the caller shows them again). False
        when they are the ones shown already."""
        if columns == self.columns_shown:
            return False
        self.columns_shown = columns
        self.clear(columns=True)
        for column in columns:
            self.add_column(column.label, width=column.width, key=column.key)
        self.order = []
        self.cells = {}
        return True

    def show(self, rows: dict[str, Cells], order: list[str]) -> None:
        if order != self.order:
            self._rebuild(rows, order)
        else:
            self.update_rows(rows.items())

    def update_rows(self, rows: Iterable[tuple[str, Cells]]) -> None:
        """Only the cells whose value changed are written."""
        keys = [c.key for c in self.columns_shown]
        for row_key, cells in rows:
            old = self.cells.get(row_key)
            if old == cells:
                continue
            for index, value in enumerate(cells):
                if old is None or old[index] != value:
                    self.update_cell(row_key, keys[index], value)
            self.cells[row_key] = cells

    def _rebuild(self, rows: dict[str, Cells], order: list[str]) -> None:
        """Keys or order changed (new row, filter, find): re-add every row, keeping the
        highlighted row and the scroll position."""
        keep = self.cursor_key()
        scroll_y = self.scroll_y
        self.clear()
        for row_key in order:
            self.add_row(*rows[row_key], key=row_key)
        self.cells = dict(rows)
        self.order = order
        if keep in rows:
            self.move_cursor(row=order.index(keep), animate=False, scroll=False)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)
