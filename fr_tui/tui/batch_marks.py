"""Comparing from the Batches list: `m` marks the highlighted batch or job as A of the
next comparison (◆ before its name), `=` on another opens the compare screen
(screens/compare.py) with that one as B. Opening a comparison clears the mark: a ◆ left
behind would read as a choice still pending, and the next comparison starts from `m`.

The mark is a `ResultSetRef` (kind, id, origin), kept in the screen's `marked`, so it
survives every reload of the list."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from fr_tui.core.jobs_store import Job
from fr_tui.core.records import BatchRecord
from fr_tui.core.result_sets import ResultSetRef


def ref_of(item: BatchRecord | Job) -> ResultSetRef:
    return ResultSetRef("batch" if isinstance(item, BatchRecord) else "job", item.id, item.origin)


def marked_name(name: Text) -> Text:
    """A row's name with the mark before it."""
    return Text("◆ ", style="bold") + name


def highlighted(screen: Any) -> tuple[ResultSetRef | None, str]:
    """The highlighted batch or job as one side of a comparison, and its label."""
    item = screen.job_rows.job_of(screen.highlighted_key()) or screen.highlighted()
    return (ref_of(item), item.label) if item is not None else (None, "")


def marked_item(screen: Any) -> BatchRecord | Job | None:
    items: list[BatchRecord | Job] = [*screen.records.values(), *screen.job_rows.jobs.values()]
    return next((item for item in items if ref_of(item) == screen.marked), None)


def hint(screen: Any, text: str) -> str:
    """The hint line under the list, with what the mark is for while there is one."""
    marked = marked_item(screen)
    if marked is None or not text:
        return text
    if highlighted(screen)[0] == screen.marked:
        return f"◆ marked · {text}"
    return f"◆ marked: {marked.label}, = compares it with this · {text}"


def mark(screen: Any) -> None:
    """`m`: mark (or unmark) the highlighted item as A of the next comparison."""
    ref, label = highlighted(screen)
    if ref is None:
        screen.notify("Nothing to mark here.")
        return
    if screen.marked == ref:
        screen.marked = None
        screen.notify(f"Unmarked {label}.")
    else:
        screen.marked = ref
        screen.notify(f"Marked {label}: press = on another to compare them.", title="Compare")
    screen.redraw()


def compare(screen: Any) -> None:
    """`=`: compare the marked item (A) with the highlighted one (B)."""
    from fr_tui.tui.screens.compare import CompareScreen

    marked = screen.marked
    ref = highlighted(screen)[0]
    if ref is None:
        screen.notify("Highlight the batch to compare with.")
    elif marked is None:
        screen.notify("Mark a batch with m first, then press = on the one to compare it with.")
    elif marked == ref:
        screen.notify("This is the marked batch: highlight another one to compare with it.")
    else:
        screen.app.push_screen(CompareScreen(marked, ref))
        screen.marked = None
        screen.redraw()
