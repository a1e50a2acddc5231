"""How a batch reads on screen: status words with glyphs and colours, progress, times.

Colours come from theme variables via CSS classes where possible; in table cells (Rich
Text) they are the theme's semantic names resolved by the caller. Every status carries a
word and a glyph too, so it reads the same without colour (NO_COLOR).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from fr_tui.core.store import BatchRecord
from fr_tui.core.units import money, parse_money

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


def rows_missing(record: BatchRecord) -> int:
    """Rows the server counted but answered in neither file (known once it has ended)."""
    if not record.terminal or record.request_total is None:
        return 0
    done = (record.request_completed or 0) + (record.request_failed or 0)
    return max(0, record.request_total - done)


def rows_not_ok(record: BatchRecord) -> int:
    return (record.request_failed or 0) + rows_missing(record)


def status_role(record: BatchRecord) -> str:
    """success / warning / error / accent: a completed batch with failed or missing rows
    is a warning, never a plain success."""
    if record.status == "completed" and rows_not_ok(record):
        return "warning"
    return STATUS_LOOK.get(record.status, ("?", "warning"))[1]


def status_glyph(record: BatchRecord) -> str:
    if record.status == "completed" and rows_not_ok(record):
        return "!"
    return STATUS_LOOK.get(record.status, ("?", "warning"))[0]


def status_text(record: BatchRecord, colours: dict[str, str]) -> Text:
    word = record.status.replace("_", " ")
    role = status_role(record)
    return Text(f"{status_glyph(record)} {word}", style=colours.get(role, ""))


def outcome_counts(record: BatchRecord, *, compact: bool = False) -> str:
    """`✓ 8 ✗ 1 ? 1`: ok, failed and missing rows of an ended batch (zeros left out)."""
    gap = "" if compact else " "
    parts = [f"✓{gap}{record.request_completed or 0:,}"]
    if record.request_failed:
        parts.append(f"✗{gap}{record.request_failed:,}")
    if missing := rows_missing(record):
        parts.append(f"?{gap}{missing:,}")
    return " ".join(parts)


def progress_text(record: BatchRecord, width: int = 14) -> str:
    """A small bar and done/total from request_counts while it runs (or when every row
    came back ok); ok / failed / missing once it ended otherwise; 'unknown' when the API
    gave no counts."""
    if record.request_total is None:
        return "unknown"
    if record.terminal and record.request_total > 0 and rows_not_ok(record):
        counts = outcome_counts(record)
        return counts if len(counts) <= width else outcome_counts(record, compact=True)
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
    return "-" if cost is None else money(cost)


def endpoint_text(record: BatchRecord) -> str:
    endpoint = record.endpoint or "-"
    return endpoint.removeprefix("/v1/")


# ----------------------------------------------------------------- the list's columns

FILTERS = ("all", "active", "done", "failed")
PROFILE_FILTER = "profile:"


def filters_for(records: list[BatchRecord]) -> list[str]:
    """The `f` cycle: the fixed filters, then one per profile in history."""
    profiles = sorted({r.profile for r in records if r.profile})
    return [*FILTERS, *(f"{PROFILE_FILTER}{name}" for name in profiles)]


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
    Column("profile", "Profile", 12, 110),
    Column("cost", "Cost", 10, 128),
    Column("id", "Batch id", 34, 150),
    Column("endpoint", "Endpoint", 17, 170),
)


def columns_for(width: int) -> tuple[Column, ...]:
    return tuple(c for c in COLUMNS if width >= c.min_screen)


def matches_filter(record: BatchRecord, mode: str) -> bool:
    if mode.startswith(PROFILE_FILTER):
        return record.profile == mode.removeprefix(PROFILE_FILTER)
    if mode == "active":
        return not record.terminal
    if mode == "done":
        return record.terminal
    if mode == "failed":
        return record.status in ("failed", "expired", "cancelled") or bool(rows_not_ok(record))
    return True
