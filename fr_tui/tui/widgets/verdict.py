"""How a verdict (valid, invalid, failed, completed with problems) is styled in Rich text:
theme colours when there is colour, and under NO_COLOR bold and reverse video instead.

Textual honours NO_COLOR by turning every colour into its grey, so red text on a dark
panel becomes grey on a slightly different grey: unreadable. Under NO_COLOR these keep
the terminal's own foreground and background (always readable) and mark a verdict with
bold, and a bad one with reverse video.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.color import Color

ROLES = ("success", "warning", "error", "accent")


def role_styles(app: Any) -> dict[str, str]:
    """A Rich style string per role, for words in tables and summaries."""
    if getattr(app, "no_color", False):
        return {"success": "bold", "warning": "bold", "error": "bold reverse", "accent": ""}
    try:
        variables = app.get_css_variables()
    except Exception:  # noqa: BLE001 - no theme yet: the words and glyphs still say it
        return {}
    return {role: variables.get(role, "") for role in ROLES}


def badge_style(app: Any, role: str) -> Style:
    """A verdict badge: the role's colour behind text of the contrasting shade, or under
    NO_COLOR reverse video."""
    if getattr(app, "no_color", False):
        return Style(bold=True, reverse=True)
    try:
        background = Color.parse(app.get_css_variables()[role])
    except Exception:  # noqa: BLE001 - an unknown theme variable: plain bold still reads
        return Style(bold=True)
    return Style(
        bold=True,
        color=background.get_contrast_text(1.0).rich_color,
        bgcolor=background.rich_color,
    )
