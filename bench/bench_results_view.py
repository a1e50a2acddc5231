"""Results viewer on 50,000 rows: the Line-API ResultView against a Textual DataTable.

Everything is measured in one run, headless (App.run_test), on the same joined rows:

- first paint: from handing the rows to the widget to its first data row painted.
  ResultView (median of --repeat runs) vs DataTable.add_rows + first paint (once by
  default; it takes seconds). The ratio must be >= 10x.
- the ResultsScreen: push to first paint (the header shows before the join finishes)
  and push to rows on screen (download skipped: local files; join in a thread).
- a page of scrolling: the pagedown action plus a full frame composited: < 30 ms.
- a filter change: the f action (refilter 50k rows) plus a full frame: < 100 ms.
  The same keys through Pilot.press are printed too; Pilot waits for the process to look
  idle, which adds tens of milliseconds of its own on a busy machine.

    python bench/bench_results_view.py [--rows 50000] [--repeat 5] [--datatable-rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import gen_results_file, gen_small_file  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.strip import Strip  # noqa: E402
from textual.widgets import DataTable, Static  # noqa: E402

from fr_tui.core.results import JoinedResults, join_results  # noqa: E402
from fr_tui.tui.widgets.result_view import ResultView  # noqa: E402

SIZE = (120, 40)


class TimedResultView(ResultView):
    painted_at: float | None = None

    def render_line(self, y: int) -> Strip:
        if y >= 1 and self.painted_at is None and self.rows:
            self.painted_at = time.perf_counter()
        return super().render_line(y)


class TimedDataTable(DataTable[str]):
    painted_at: float | None = None

    def render_line(self, y: int) -> Strip:
        if y >= 1 and self.painted_at is None and self.row_count:
            self.painted_at = time.perf_counter()
        return super().render_line(y)


class Blank(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("bench")


async def wait_painted(widget: Any, pilot: Any) -> float:
    for _ in range(20_000):
        if widget.painted_at is not None:
            return float(widget.painted_at)
        await pilot.pause(0.001)
    raise RuntimeError("never painted")


async def result_view_first_paint(joined: JoinedResults) -> float:
    app = Blank()
    async with app.run_test(size=SIZE) as pilot:
        view = TimedResultView()
        start = time.perf_counter()
        await app.mount(view)
        view.set_data(joined, range(len(joined)))
        return await wait_painted(view, pilot) - start


async def datatable_first_paint(joined: JoinedResults, rows: int) -> float:
    app = Blank()
    async with app.run_test(size=SIZE) as pilot:
        table = TimedDataTable()
        start = time.perf_counter()
        await app.mount(table)
        table.add_columns("outcome", "custom_id", "http", "model", "tokens", "finish", "answer")
        table.add_rows(
            (
                joined.outcome(i),
                joined.custom_ids[i] or "",
                str(joined.status_codes[i] or ""),
                joined.models[i] or "",
                f"{joined.tokens_in_col[i]}/{joined.tokens_out_col[i]}",
                joined.finish_reasons[i] or "",
                joined.contents[i] or joined.error_messages[i] or "",
            )
            for i in range(rows)
        )
        return await wait_painted(table, pilot) - start


async def screen_timings(
    input_path: Path, output_path: Path, repeat: int, home: Path
) -> dict[str, list[float]]:
    """ResultsScreen end to end in a minimal app that has the FrTuiApp attributes it uses."""
    from fr_tui.core.models import Batch
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore
    from fr_tui.tui.screens.results import ResultsScreen

    os.environ["FR_TUI_HOME"] = str(home)
    paths = get_paths()
    paths.ensure()
    store = HistoryStore(paths.history_db)
    batch = Batch.parse({"id": "batch_bench", "status": "completed", "output_file_id": "file_out"})
    store.record_created(batch, origin="bench", profile="bench", input_path=str(input_path))
    store.set_result_paths("bench", "batch_bench", str(output_path), None)

    class Host(Blank):
        def __init__(self) -> None:
            super().__init__()
            self.paths, self.store, self.client = paths, store, None

    painted: dict[str, float] = {}
    original = ResultView.render_line

    def timed_render_line(view: ResultView, y: int) -> Strip:
        now = time.perf_counter()
        painted.setdefault("screen", now)
        if y >= 1 and view.rows:
            painted.setdefault("rows", now)
        return original(view, y)

    ResultView.render_line = timed_render_line  # type: ignore[method-assign,assignment]
    figures: dict[str, list[float]] = {
        "screen": [], "rows": [], "page": [], "filter": [], "page_pilot": [], "filter_pilot": []
    }  # fmt: skip
    try:
        for _ in range(repeat):
            painted.clear()
            app = Host()
            async with app.run_test(size=SIZE) as pilot:
                screen = ResultsScreen("batch_bench")
                start = time.perf_counter()
                app.push_screen(screen)
                for _ in range(20_000):
                    if "rows" in painted:
                        break
                    await pilot.pause(0.001)
                figures["screen"].append(painted["screen"] - start)
                figures["rows"].append(painted["rows"] - start)
                await pilot.pause()
                view = screen.query_one(ResultView)
                compositor = screen._compositor
                for _ in range(10):  # the work of one key: the action, then a full frame
                    t0 = time.perf_counter()
                    view.action_page_down()
                    compositor.render_update(full=True)
                    figures["page"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await pilot.press("pagedown")
                    figures["page_pilot"].append(time.perf_counter() - t0)
                for _ in range(len(screen.filters)):
                    t0 = time.perf_counter()
                    screen.action_cycle_filter()
                    compositor.render_update(full=True)
                    figures["filter"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await pilot.press("f")
                    figures["filter_pilot"].append(time.perf_counter() - t0)
                assert len(view.rows) > 0
    finally:
        ResultView.render_line = original  # type: ignore[method-assign]
    return figures


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--datatable-rows", type=int, default=None, help="default: --rows")
    parser.add_argument("--datatable-repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fr-bench-results-"))
    input_path = gen_small_file(work / "input.jsonl", args.rows)
    output_path = gen_results_file(
        input_path, work / "output.jsonl", fail_every=10, missing_every=37
    )
    t0 = time.perf_counter()
    joined = join_results(input_path, output_path, None)
    join_time = time.perf_counter() - t0
    counts = joined.counts
    print(
        f"rows {counts['total']:,}: ok {counts['ok']:,} failed {counts['failed']:,} "
        f"missing {counts['missing']:,}; join {ms(join_time)}"
    )

    view_times = [await result_view_first_paint(joined) for _ in range(args.repeat)]
    dt_rows = args.datatable_rows or args.rows
    table_times = [
        await datatable_first_paint(joined, dt_rows) for _ in range(args.datatable_repeat)
    ]
    screen = await screen_timings(input_path, output_path, args.repeat, work / "home")
    joined.close()

    view_med = statistics.median(view_times)
    table_med = statistics.median(table_times) * (args.rows / dt_rows)
    ratio = table_med / view_med
    page = statistics.median(screen["page"])
    filt = statistics.median(screen["filter"])
    first = statistics.median(screen["screen"])
    print(f"ResultView first paint        {ms(view_med)}  (median of {args.repeat})")
    extrapolated = "" if dt_rows == args.rows else f", scaled from {dt_rows:,} rows"
    print(
        f"DataTable first paint         {ms(table_med)}  (median of {args.datatable_repeat}{extrapolated})"
    )
    print(f"  ratio DataTable/ResultView  {ratio:8.1f} x   (budget >= 10x)")
    print(f"ResultsScreen first paint     {ms(first)}  (budget < 500 ms)")
    print(
        f"ResultsScreen rows on screen  {ms(statistics.median(screen['rows']))}  (join in a thread)"
    )
    print(
        f"page of scrolling             {ms(page)}  (median of {len(screen['page'])}, max {ms(max(screen['page'])).strip()}; budget < 30 ms)"
    )
    print(
        f"filter change                 {ms(filt)}  (median of {len(screen['filter'])}, max {ms(max(screen['filter'])).strip()}; budget < 100 ms)"
    )
    pilot_page = statistics.median(screen["page_pilot"])
    pilot_filter = statistics.median(screen["filter_pilot"])
    print(
        f"  via Pilot.press (includes its idle detection): page {ms(pilot_page)}, filter {ms(pilot_filter)}"
    )
    ok = view_med < 0.5 and first < 0.5 and ratio >= 10 and page < 0.03 and filt < 0.1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
