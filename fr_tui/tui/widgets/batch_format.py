"""How a batch reads on screen: status words with glyphs and colours, progress, times.

Colours come from theme variables via CSS classes where possible; in table cells (Rich
Text) they are the theme's semantic names resolved by the caller. Every status carries a
word and a glyph too, so it reads the same without colour (NO_COLOR).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text

from fr_tui.core.jobs_store import part_label
from fr_tui.core.records import NO_ROWS_RAN
from fr_tui.core.store import BatchRecord
from fr_tui.core.units import human_count, money, parse_money

if TYPE_CHECKING:
    from fr_tui.core.intents import Intent

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


def exact_count(value: int) -> str:
    return f"{value:,}"


def counts_text(ok: int, failed: int, missing: int, width: int = 14) -> str:
    """`✓ 8 ✗ 1 ? 1`: the ok, failed and missing rows of something that ended (zero
    failed or missing left out), fitted to `width` without ever cutting a number (a cut
    `? 570` reads `? 57`): exact numbers when they fit, else shortened (`✓ 45k ✗ 4.9k`),
    else the trailing fields left out and a `…` says so (`✓ 2,935 ✗ 50 …`)."""
    fields = [("✓", ok)] + [(glyph, n) for glyph, n in (("✗", failed), ("?", missing)) if n]
    for shown in range(len(fields), 0, -1):
        more = " …" if shown < len(fields) else ""
        for number in (exact_count, human_count):
            text = " ".join(f"{glyph} {number(n)}" for glyph, n in fields[:shown]) + more
            if len(text) <= width:
                return text
    return "…"[:width]


def bar_text(done: int, total: int, width: int = 14) -> str:
    """`██████░░ 5,398/12,000` while it runs: a bar when there is room for one, and
    done/total (shortened to `5.4k/12k` when the exact numbers do not fit); in a cell too
    narrow for those, the share done (`44%`), never a cut number."""
    if total <= 0:
        return "0/0"
    done = min(done, total)
    choices = [f"{done:,}/{total:,}", f"{human_count(done)}/{human_count(total)}"]
    for counts in choices:
        bar_width = width - len(counts) - 1
        if bar_width >= 2:
            filled = min(bar_width, round(bar_width * done / total))
            return "█" * filled + "░" * (bar_width - filled) + " " + counts
    # floored: 597/600 is 99%, not a 100% that reads as done
    for text in (*choices, f"{100 * done // total}%"):
        if len(text) <= width:
            return text
    return "…"[:width]


def outcome_counts(record: BatchRecord, width: int = 14) -> str:
    return counts_text(
        record.request_completed or 0, record.request_failed or 0, rows_missing(record), width
    )


def progress_text(record: BatchRecord, width: int = 14) -> str:
    """One format in every list: a bar and done/total while it runs, `✓ ok ✗ failed
    ? missing` once it has ended, 'unknown' when the API gave no counts."""
    if record.no_rows_ran:
        return NO_ROWS_RAN
    if record.request_total is None:
        return "unknown"
    if record.terminal:
        return outcome_counts(record, width)
    done = (record.request_completed or 0) + (record.request_failed or 0)
    return bar_text(done, record.request_total, width)


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


CELL_PADDING = 2  # the table's padding, one cell either side of each column
EDGE = 2  # the scroll bar and a cell to spare
PROGRESS_ROOM = 18  # `✓ 2,935 ✗ 50 ? 15`, `✓ 45,061 ✗ 4,939` fit
NAME_ROOM = 64


def columns_for(
    width: int,
    columns: tuple[Column, ...] = COLUMNS,
    rooms: tuple[tuple[str, int], ...] = (("progress", PROGRESS_ROOM), ("name", NAME_ROOM)),
) -> tuple[Column, ...]:
    """The columns that fit `width`; spare width goes to the columns of `rooms` in turn,
    each up to its room: in the Batches list first to Progress (so counts need not be
    shortened), then to Name (names are what tells batches apart)."""
    shown = [c for c in columns if width >= c.min_screen]
    spare = width - EDGE - sum(c.width + CELL_PADDING for c in shown)
    grow: dict[str, int] = {}
    for key, room in rooms:
        column = next((c for c in shown if c.key == key), None)
        if column is not None:
            grow[key] = max(0, min(spare, room - column.width))
            spare -= grow[key]
    return tuple(replace(c, width=c.width + grow.get(c.key, 0)) for c in shown)


def column_width(columns: tuple[Column, ...], key: str, default: int = 14) -> int:
    return next((c.width for c in columns if c.key == key), default)


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


def batch_cells(
    record: BatchRecord, now: float, colours: dict[str, str], progress_width: int, branch: str = ""
) -> dict[str, object]:
    """The Batches list's cells for a batch row, by column key (job_cells' twin). `branch`
    is the tree glyph (├, └ for the last) of a job's batch, "" for a batch of its own."""
    values: dict[str, object] = {
        "status": status_text(record, colours),
        # Text, not str: the table would read "[...]" in a name or id as markup.
        "name": Text(f"  {branch} {part_label(record.label)}" if branch else record.label),
        "progress": progress_text(record, progress_width),
        "created": ago(record.created_at, now),
        "time": timing_text(record, now),
        "id": Text(record.id),
        "cost": cost_text(record),
        "endpoint": endpoint_text(record),
        "profile": Text(record.profile or "-"),
    }
    if record.poll_error and not record.terminal:
        values["status"] = Text("⚠ ", style=colours.get("warning", "")) + values["status"]
    return values


def unknown_cells(entry: Intent, now: float, colours: dict[str, str]) -> dict[str, object]:
    """The cells of a submit whose create answer was lost (no batch id to show)."""
    return {
        "status": Text("? unknown", style=colours.get("warning", "")),
        "name": Text(entry.label),
        "progress": "unknown",
        "created": ago(entry.created_at, now),
        "time": "-",
        "id": f"(file {entry.input_file_id or '-'})",
        "cost": "-",
        "endpoint": (entry.endpoint or "-").removeprefix("/v1/"),
        "profile": Text(entry.profile or "-"),
    }
