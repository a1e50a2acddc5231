"""How a batch reads on screen: status words with glyphs and colours, progress, times.

Colours come from theme variables via CSS classes where possible; in table cells (Rich
Text) they are the theme's semantic names resolved by the caller. Every status carries a
word and a glyph too, so it reads the same without colour (NO_COLOR).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from fr_tui.core.store import BatchRecord
from fr_tui.core.units import format_money, parse_money

# status -> (glyph, style role). Glyphs are all one cell wide.
STATUS_LOOK: dict[str, tuple[str, str]] = {
    "validating": ("○", "accent"),
    "in_progress": ("◐", "accent"),
    "finalizing": ("◑", "accent"),
    "cancelling": ("⊘", "warning"),
    "completed": ("✓", "success"),
    "failed": ("✗", "error"),
    "expired": ("◷", "error"),
    "cancelled": ("⊘", "warning"),
}


def status_role(record: BatchRecord) -> str:
    """success / warning / error / accent: a completed batch with failed rows is a warning."""
    if record.status == "completed" and (record.request_failed or 0) > 0:
        return "warning"
    return STATUS_LOOK.get(record.status, ("?", "warning"))[1]


def status_glyph(record: BatchRecord) -> str:
    if record.status == "completed" and (record.request_failed or 0) > 0:
        return "!"
    return STATUS_LOOK.get(record.status, ("?", "warning"))[0]


def status_text(record: BatchRecord, colours: dict[str, str]) -> Text:
    word = record.status.replace("_", " ")
    role = status_role(record)
    return Text(f"{status_glyph(record)} {word}", style=colours.get(role, ""))


def progress_text(record: BatchRecord, width: int = 14) -> str:
    """A small bar and done/total from request_counts; 'unknown' when the API gave none."""
    if record.request_total is None:
        return "unknown"
    total = record.request_total
    done = (record.request_completed or 0) + (record.request_failed or 0)
    if total <= 0:
        return "0/0"
    counts = f"{done}/{total}"
    bar_width = width - len(counts) - 1
    if bar_width < 3:
        return f"{min(100, done * 100 // total)}%"
    filled = min(bar_width, round(bar_width * done / total))
    return "█" * filled + "░" * (bar_width - filled) + " " + counts


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds < 600 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"


def ago(timestamp: float | None, now: float) -> str:
    if not timestamp:
        return "-"
    return duration(now - timestamp) + " ago"


def end_time(record: BatchRecord) -> int | None:
    stamps = record.timestamps
    for name in ("completed_at", "failed_at", "expired_at", "cancelled_at"):
        if stamps.get(name):
            return stamps[name]
    return None


def timing_text(record: BatchRecord, now: float) -> str:
    """Finished: how long it took. Running: elapsed, or an ETA once progress allows one.
    A long validating or finalizing phase just shows its elapsed time: that is normal."""
    created = record.created_at
    if record.terminal:
        end = end_time(record)
        return f"took {duration(end - created)}" if end and created else "-"
    if record.status == "in_progress" and record.request_total:
        done = (record.request_completed or 0) + (record.request_failed or 0)
        began = record.timestamps.get("in_progress_at") or created
        if 0 < done < record.request_total and began:
            rate = done / max(1.0, now - began)
            return f"eta {duration((record.request_total - done) / rate)}"
    return duration(now - created) if created else "-"


def cost_text(record: BatchRecord) -> str:
    cost = parse_money(record.cost)
    return "-" if cost is None else format_money(cost)


def endpoint_text(record: BatchRecord) -> str:
    endpoint = record.endpoint or "-"
    return endpoint.removeprefix("/v1/")


# ----------------------------------------------------------------- the list's columns

FILTERS = ("all", "active", "done", "failed")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    min_screen: int  # shown only when the screen is at least this wide


COLUMNS = (
    Column("status", "Status", 13, 0),
    Column("name", "Name", 20, 0),
    Column("progress", "Progress", 14, 0),
    Column("created", "Created", 9, 0),
    Column("time", "Time", 11, 0),
    Column("id", "Batch id", 34, 116),
    Column("cost", "Cost", 9, 128),
    Column("endpoint", "Endpoint", 17, 148),
)


def columns_for(width: int) -> tuple[Column, ...]:
    return tuple(c for c in COLUMNS if width >= c.min_screen)


def matches_filter(record: BatchRecord, mode: str) -> bool:
    if mode == "active":
        return not record.terminal
    if mode == "done":
        return record.terminal
    if mode == "failed":
        return record.status in ("failed", "expired", "cancelled") or bool(record.request_failed)
    return True
