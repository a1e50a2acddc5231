"""The cost step of past results (core/actual.py) against reopening their stored index.

Reopening past results shows rows in under 0.2 s (bench_results_index.py). The cost of
a batch (its rows' usage.cost, or tokens times prices) walks every row; the Results
screen runs it after the rows are on screen, and its per-model tallies are kept beside
the result files (cost-tally.json) so that reopening does not walk the rows again.

Budget: with the tallies kept, the cost step takes at most the time of reopening the
index (ratio <= 1.0, medians of --runs measured in this run, interleaved). The first
walk over every row is printed beside it, for scale.

    python bench/bench_results_cost.py [--rows 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import gen_results_file, gen_small_file  # noqa: E402

from fr_tui.core.actual import CACHE_NAME, result_cost  # noqa: E402
from fr_tui.core.prices import PriceBook  # noqa: E402
from fr_tui.core.results import join_results  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fr-bench-cost-"))
    input_path = gen_small_file(work / "input.jsonl", args.rows)
    (work / "results").mkdir()
    output_path = gen_results_file(
        input_path, work / "results" / "output.jsonl", fail_every=10, missing_every=37
    )
    sources = (input_path, output_path, None)
    book = PriceBook(None, {}, Decimal("0.5"), use_genai_prices=False)
    join_results(*sources).close()  # the index is built once, as on the first open
    cache = output_path.parent / CACHE_NAME

    reopen: list[float] = []
    walk: list[float] = []
    cached: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        joined = join_results(*sources)
        reopen.append(time.perf_counter() - t0)
        with joined:
            cache.unlink(missing_ok=True)
            t0 = time.perf_counter()
            first = result_cost(joined, book, cache_for=sources)
            walk.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = result_cost(joined, book, cache_for=sources)
            cached.append(time.perf_counter() - t0)
            assert again.to_json() == first.to_json()

    reopen_med, walk_med, cached_med = (statistics.median(x) for x in (reopen, walk, cached))
    ratio = cached_med / reopen_med
    print(f"rows {args.rows:,} (medians of {args.runs})")
    print(f"reopen the stored index       {ms(reopen_med)}  (baseline)")
    print(f"cost, first walk over rows    {ms(walk_med)}  ({walk_med / reopen_med:.1f}x)")
    print(f"cost, tallies kept            {ms(cached_med)}  ({ratio:.2f}x; budget <= 1.0x)")
    ok = ratio <= 1.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
