"""Check boxes and radio buttons whose "off" is empty, not a glyph told apart by colour.

Textual draws an unchosen box as a dim ▐X▌ and an unchosen radio as a dim ▐●▌: over a
terminal with few colours, a screen reader or a copied screen, every kind in the retry
dialog read as chosen (a new user's tour). Here an off box or radio is ▐ ▌.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.widgets import RadioButton, SelectionList
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.option_list import OptionDoesNotExist

_OFF = " "


class CheckList(SelectionList[str]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if selection.value in self.selected:
            return strip
        segments[1] = Segment(_OFF, segments[1].style)
        return Strip(segments, strip.cell_length)


class Radio(RadioButton):
    @property
    def _button(self) -> Content:
        button = super()._button
        if self.value:
            return button
        return Content(button.plain.replace(self.BUTTON_INNER, _OFF), spans=button.spans)
