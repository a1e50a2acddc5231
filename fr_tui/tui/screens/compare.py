"""Compare: two runs side by side, joined by custom_id (issue 13).

Opened from the Batches list (tui/batch_marks.py): `m` marks a batch, `=` on another
opens this screen (the palette has it as "Compare with…"). The summary is on top, then
every joined row (a virtual list: only the rows on screen are drawn), `f` filters, `/`
finds in either answer, `enter` shows a row in full (the input once, the two answers
side by side with the changed words highlighted), `x` exports, `escape` goes back. Each
side's results come from disk when they are downloaded, else are downloaded first; a
side that cannot be had (still running, no connection) is said in one line.

The marked item is a `ResultSetRef` (kind, id, origin), so job rows can be marked the
same way: `source_for` turns one into what opens it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from fr_tui.core.compare import FILTER_LABELS, FINISH_PREFIX, Comparison, compare
from fr_tui.core.compare_stats import CompareSummary, SideStats
from fr_tui.core.errors import ApiError
from fr_tui.core.result_sets import (
    BatchResultSet,
    ResultSetRef,
    ResultSetSource,
    ResultSetUnavailable,
)
from fr_tui.core.units import money, plural
from fr_tui.core.userfiles import describe
from fr_tui.tui.results_loading import ResultsLoader
from fr_tui.tui.view_find import FindInView
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader
from fr_tui.tui.widgets.compare_detail import CompareDetail
from fr_tui.tui.widgets.compare_view import CompareView
from fr_tui.tui.widgets.result_view import ResultView


def source_for(app: Any, ref: ResultSetRef) -> ResultSetSource:
    """What opens a marked batch's or job's results."""
    if ref.kind == "batch":
        record = app.store.lookup(ref.id, ref.origin or None)
        if record is None:
            raise ResultSetUnavailable(f"batch {ref.id} is not in the history")
        return BatchResultSet(record, app.store, app.paths)
    from fr_tui.core.jobs_results import job_result_set

    job = job_result_set(app.store, ref.id)
    if job is None:
        raise ResultSetUnavailable(f"job {ref.id} is not in the history")
    return job


def filter_label(kind: str) -> str:
    if kind.startswith(FINISH_PREFIX):
        return f"finish {kind[len(FINISH_PREFIX) :]}"
    return FILTER_LABELS.get(kind, kind)


def _side_lines(a: SideStats, b: SideStats, width: int) -> list[str]:
    """Each side's rows, tokens and cost, A above B in the same form: shorter words when
    either full line does not fit `width`."""

    def full(name: str, side: SideStats) -> str:
        cut = f" · {plural(side.length_cutoffs, 'length cut-off')}" if side.length_cutoffs else ""
        return (
            f"{name}  ✓ {side.ok:,} ok  ✗ {side.failed:,} failed  ? {side.missing:,} missing · "
            f"tokens {side.input_tokens:,} in / {side.output_tokens:,} out · "
            f"{money(side.cost)}{cut}"
        )

    def short(name: str, side: SideStats, tokens: bool) -> str:
        counts = f"{name} ✓ {side.ok:,} ✗ {side.failed:,} ? {side.missing:,}"
        used = f" · tok {side.input_tokens:,}/{side.output_tokens:,}" if tokens else ""
        cut = f" · {side.length_cutoffs:,} cut" if side.length_cutoffs else ""
        return f"{counts}{used} · {money(side.cost)}{cut}"

    for form in (full, lambda n, s: short(n, s, True), lambda n, s: short(n, s, False)):
        lines = [form("A", a), form("B", b)]
        if max(map(len, lines)) <= width:
            break
    return lines


def _signed_money(value: Any) -> str:
    return "$0.00" if not value else ("+" if value > 0 else "") + money(value)


def summary_text(summary: CompareSummary, width: int, similarity: str | None = None) -> str:
    """The summary block: the join, the answers, each side, and B − A."""
    agreement = summary.agreement
    agree = f"agreement {agreement:.1%}" if agreement is not None else "agreement -"
    join = f"{summary.both:,} in both · {summary.only_a:,} only in A · {summary.only_b:,} only in B"
    answers = (
        f"= {summary.same:,} same  ≠ {summary.different:,} different  "
        f"◐ {summary.one_ok:,} ok on one side  ✗ {summary.neither_ok:,} on neither · {agree}"
    )
    if len(answers) > width:
        answers = (
            f"= {summary.same:,} same  ≠ {summary.different:,} differ  "
            f"◐ {summary.one_ok:,} one ok  ✗ {summary.neither_ok:,} none ok · {agree}"
        )
    if similarity:
        answers += f" · {similarity}"
    delta = summary.deltas()
    changes = [f"cost {_signed_money(delta['cost'])}"] if delta["cost"] is not None else []
    changes += [
        f"{label} {delta[name]:+,}"
        for label, name in (("ok", "ok"), ("out tokens", "output_tokens"))
        if delta[name]
    ]
    if not summary.both:
        # nothing to compare: say it first, not as a row of zeros
        join = f"⚠ No custom_id in common: are these runs of the same input? · {join}"
    lines = [f"{join} · {answers}"] if width >= len(join) + len(answers) + 3 else [join, answers]
    lines += _side_lines(summary.a, summary.b, width)
    if changes:
        difference = "B − A: " + ", ".join(changes)
        if width >= len(lines[-1]) + len(difference) + 4:
            lines[-1] += f"  ({difference})"
        else:
            lines.append(difference)
    return "\n".join(lines)


class CompareScreen(FindInView, Screen[None]):
    FIND_ID = "compare-find"

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    DEFAULT_CSS = """
    CompareScreen #compare-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    CompareScreen #compare-summary { height: auto; max-height: 5; padding: 0 1; }
    CompareScreen #compare-list { height: 1fr; }
    CompareScreen #compare-status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    CompareScreen #compare-find { dock: bottom; display: none; }
    CompareScreen #compare-find.-active { display: block; }
    CompareScreen CompareDetail { display: none; }
    CompareScreen.-detail CompareDetail { display: block; }
    CompareScreen.-detail #compare-list { display: none; }
    CompareScreen.-wide #cd-panes { layout: horizontal; }
    """

    # Most important first (after the table's own enter): the footer keeps what fits.
    BINDINGS = [
        Binding("f", "cycle_filter", "Filter", tooltip="different / one side failed / only A or B / by finish reason"),
        Binding("slash", "find", "Find", tooltip="A custom_id or text in either answer"),
        Binding("x", "export", "Export", tooltip="CSV or JSONL: both answers, row by row"),
        Binding("n", "find_next", "Next match", show=False),
        Binding("N", "find_previous", "Prev match", show=False),
        Binding("escape", "back", "Back", tooltip="Close the row or find, or go back"),
    ]  # fmt: skip

    def __init__(self, a: ResultSetRef, b: ResultSetRef) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.sources: list[ResultSetSource] = []
        self.comparison: Comparison | None = None
        self.filters: list[str] = ["all"]
        self.filter_index = 0
        self.find_text = ""
        self._match_rows: list[int] = []
        self.similarity: str | None = None
        self.detail_position: int | None = None
        self._match_positions: list[int] = []
        self._labels = [a.id, b.id]

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static(self._title(), markup=False, id="compare-title")
        with Vertical(id="compare-list"):
            yield Static("", markup=False, id="compare-summary")
            yield CompareView(id="compare-view")
        yield CompareDetail(id="compare-detail")
        yield Static("Loading…", markup=False, id="compare-status")
        yield Input(
            placeholder="find a custom_id or text in either answer; enter to search, escape to close",
            id="compare-find",
        )
        yield AppFooter()

    @property
    def view(self) -> CompareView:
        return self.query_one(CompareView)

    def _title(self) -> str:
        same = self._labels[0] == self._labels[1]

        def name(ref: ResultSetRef, label: str, with_id: bool) -> str:
            if label == ref.id:
                return label
            if with_id:
                return f"{label} ({ref.id})"
            # two runs of one file read the same: the ends of their ids tell them apart
            return f"{label} (…{ref.id[-6:]})" if same else label

        full = (
            f"A {name(self.a, self._labels[0], True)}  ⇄  B {name(self.b, self._labels[1], True)}"
        )
        if len(full) <= self.size.width - 2 or not self.size.width:
            return full
        return (
            f"A {name(self.a, self._labels[0], False)}  ⇄  B {name(self.b, self._labels[1], False)}"
        )

    def crumbs(self, previous: Any) -> list[str]:
        words = ["Compare"]
        if self.detail_position is not None and self.comparison is not None:
            words.append(self.comparison.custom_id(self.detail_position) or "row")
        return words

    def on_mount(self) -> None:
        self.view.focus()
        self.load()

    def on_unmount(self) -> None:
        for source in self.sources:
            source.close()
        self.sources.clear()

    def set_status(self, text: str) -> None:
        self.query_one("#compare-status", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys of the list hide while a row is shown in full; none applies before the
        rows are here (dimmed)."""
        listing = ("cycle_filter", "find", "find_next", "find_previous")
        if action in listing and self.detail_position is not None:
            return False
        if action in (*listing, "export") and self.comparison is None:
            return None
        return True

    # -- loading -------------------------------------------------------------------

    @work(exclusive=True, group="compare-load", exit_on_error=False)
    async def load(self) -> None:
        app: Any = self.app
        loader = ResultsLoader(app)
        try:
            for index, ref in enumerate((self.a, self.b)):
                source = source_for(app, ref)
                self.sources.append(source)
                self._labels[index] = source.label
                self.query_one("#compare-title", Static).update(self._title())
                self.set_status(f"Getting {'A' if index == 0 else 'B'} ready: {source.label}…")
                record = getattr(source, "record", None)
                client = loader.client_for(record) if record is not None else None
                await source.ensure(client, status=self.set_status)
            self.set_status("Joining both sides by custom_id…")
            comparison = await asyncio.to_thread(self._open_and_compare)
        except ResultSetUnavailable as exc:
            self._cannot(str(exc))
            return
        except ApiError as exc:
            self._cannot(f"Could not download the results: {exc.message}")
            return
        except OSError as exc:
            self._cannot(f"Could not read the results: {describe(exc)}")
            return
        for source in self.sources:
            for note in source.notes:
                self.notify(
                    note[0].upper() + note[1:], title="Compare", severity="warning", timeout=10
                )
        self.show_comparison(comparison)

    def _open_and_compare(self) -> Comparison:
        """In a thread: open both sides (the stored index) and join them."""
        a, b = (source.open() for source in self.sources)
        comparison = compare(a, b, a_label=self._labels[0], b_label=self._labels[1])
        comparison.summary()
        return comparison

    def _cannot(self, message: str) -> None:
        self.view.set_note(message)
        self.set_status("Cannot compare")
        self.notify(message, title="Cannot compare", severity="error", timeout=10)

    def show_comparison(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.filters = comparison.filters()
        self.filter_index = 0
        self._show_summary()
        self.view.note = "No rows in this filter."
        self.view.set_comparison(comparison, comparison.filter("all"))
        self._refresh_status()
        self.refresh_bindings()
        if self.view.embeddings:
            self._similarity_pass()

    def _show_summary(self) -> None:
        if self.comparison is not None:
            text = summary_text(self.comparison.summary(), self.size.width - 2, self.similarity)
            self.query_one("#compare-summary", Static).update(text)

    @work(group="compare-similarity", exit_on_error=False)
    async def _similarity_pass(self) -> None:
        """The mean similarity of the embeddings reads every embedding row: in a thread,
        after the rows are shown."""
        comparison = self.comparison
        if comparison is None:
            return
        stats = await asyncio.to_thread(comparison.similarity_stats)
        if stats is not None:
            self.similarity = f"cos mean {stats['mean']:.3f}, lowest {stats['min']:.3f}"
            self._show_summary()

    def on_resize(self) -> None:
        self.query_one("#compare-title", Static).update(self._title())
        self._show_summary()

    def _refresh_status(self) -> None:
        view = self.view
        parts = [
            f"filter {filter_label(self.filters[self.filter_index])}: {plural(len(view.rows), 'row')}"
        ]
        if view.rows:
            parts.append(f"row {view.cursor + 1:,}/{len(view.rows):,}")
        if self.find_text:
            parts.append(f"find '{self.find_text}': {len(self._match_positions):,} here")
        self.set_status(" · ".join(parts))

    @on(ResultView.CursorMoved)
    def _cursor_moved(self) -> None:
        if self.comparison is not None:
            self._refresh_status()

    # -- filter and find -------------------------------------------------------------

    def action_cycle_filter(self) -> None:
        comparison = self.comparison
        if comparison is None:
            return
        self.filter_index = (self.filter_index + 1) % len(self.filters)
        self.view.set_rows(
            comparison.filter(self.filters[self.filter_index]), keep_row=self.view.current_row
        )
        self._recompute_matches()
        self._refresh_status()

    @on(Input.Submitted, "#compare-find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._close_find()
        self.search(event.value.strip())

    @work(exclusive=True, group="compare-find", exit_on_error=False)
    async def search(self, text: str) -> None:
        """Runs in a worker: on two 1,000,000-row sides a find scans for seconds."""
        comparison = self.comparison
        if comparison is None:
            return
        if text:
            self.set_status(f"Finding '{text}'…")
        self.show_matches(text, await asyncio.to_thread(comparison.search, text) if text else [])

    # -- one row in full ---------------------------------------------------------------

    @on(ResultView.Chosen)
    def _chosen(self, event: ResultView.Chosen) -> None:
        self.open_detail(event.row)

    @work(exclusive=True, group="compare-detail", exit_on_error=False)
    async def open_detail(self, position: int) -> None:
        comparison = self.comparison
        if comparison is None:
            return
        detail = await asyncio.to_thread(comparison.detail, position)
        self.detail_position = position
        self.query_one(CompareDetail).show(detail, *self._labels)
        self.add_class("-detail")
        self.query_one("#cd-b").focus()
        self.query_one(AppHeader).refresh()
        self.refresh_bindings()

    def close_detail(self) -> None:
        self.detail_position = None
        self.remove_class("-detail")
        self.view.focus()
        self.query_one(AppHeader).refresh()
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.find_is_open():
            self._close_find()
        elif self.detail_position is not None:
            self.close_detail()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- export --------------------------------------------------------------------------

    def action_export(self) -> None:
        comparison = self.comparison
        if comparison is None:
            self.notify("Both sides are not loaded yet", severity="warning")
            return
        from fr_tui.core.compare_export import COMPARE_COLUMNS
        from fr_tui.tui.modals.export import ExportModal

        kind = self.filters[self.filter_index]
        shown = None if kind == "all" else (filter_label(kind), len(self.view.rows))
        default = Path.cwd() / f"compare-{self.a.id}-{self.b.id}.csv"
        modal = ExportModal(
            default,
            len(comparison),
            shown,
            heading="Export the comparison (A's rows in order, then B's own)",
            columns=COMPARE_COLUMNS,
        )
        self.app.push_screen(modal, self._export_chosen)

    def _export_chosen(self, choice: tuple[Path, str, bool] | None) -> None:
        if choice is not None:
            path, fmt, only_shown = choice
            self.export(path, fmt, list(self.view.rows) if only_shown else None)

    @work(exclusive=True, group="compare-export", exit_on_error=False)
    async def export(self, path: Path, fmt: str, rows: list[int] | None = None) -> None:
        from fr_tui.core.compare_export import export_comparison
        from fr_tui.tui.modals.export import export_in_thread

        comparison = self.comparison
        assert comparison is not None
        await export_in_thread(self, path, lambda: export_comparison(comparison, path, fmt, rows))  # type: ignore[arg-type]
        self._refresh_status()


__all__ = ["CompareScreen", "filter_label", "source_for", "summary_text"]
