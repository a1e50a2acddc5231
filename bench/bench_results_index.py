"""Benchmark the stored results index (core/results_index.py) at 50,000 and 1,000,000 rows.

Two shapes of files at each size:

* job: what a job's results open, its input and its merged file (one line per input
  row, in input order, each with its outcome, batch and round);
* batch: an input with an output and an error file whose results come in random order.
  No batch holds more than 50,000 rows (FastRouter's limit, and OpenAI's), so a million
  of them is a stress case: every row's result is looked up at a random place.

Budgets (issue 11): reopening past results shows rows in under 0.2 s and a filter change
(outcome or error group) stays under 100 ms, for both; "for a 1,000,000-row job the first
build takes at most 2x reading the files" (the baseline: a bare loop reading the same
files line by line and orjson-parsing each line, in the same run) and peaks under 300 MB
of RSS. A million-row batch's build ratio is printed for information, its RSS budgeted as
the job's. The ratio to the same loop with msgspec (fr-tui's own JSON library) is printed
beside, for information; the orjson ratio decides (bench/baselines.py).

    pip install -e '.[bench]'   # orjson, the budget's yardstick
    python bench/bench_results_index.py [--rows 50000,1000000] [--shapes job,batch] [--runs 3]

Each figure is a median of --runs, measured in a fresh process (so RSS is the build's
own), interleaved with the baseline. Exit status 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import require_orjson, timed_parse_loop  # noqa: E402
from bench_results import make_error, make_input, make_ok  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"

BASELINE = timed_parse_loop("orjson")
BASELINE_MSGSPEC = timed_parse_loop("msgspec")
BUILD = """
import sys, time
from fr_tui.core.results import join_results
start = time.perf_counter()
joined = join_results(*(sys.argv[1:] + [None])[:3])
print(time.perf_counter() - start)
"""
REOPEN = """
import sys, time
start = time.perf_counter()
from fr_tui.core.results import join_results
from fr_tui.core.results_index import IndexedResults
joined = join_results(*(sys.argv[1:] + [None])[:3])
assert isinstance(joined, IndexedResults)
rows = [joined.row(i) for i in range(60)]  # a screen of rows
summary = (joined.counts, joined.tokens_in, joined.cost, joined.error_groups())
shown = time.perf_counter() - start
times = []
for kind in ("ok", "failed", "missing", "all", joined.error_groups()[0][0], "ok"):
    t0 = time.perf_counter()
    joined.filter(kind)
    times.append(time.perf_counter() - t0)
print(shown, max(times))
"""


def generate(rows: int) -> tuple[Path, Path, Path]:
    folder = DATA / f"index-{rows}"
    paths = (folder / "input.jsonl", folder / "output.jsonl", folder / "errors.jsonl")
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(42)
    fate = [rnd.random() for _ in range(rows)]  # 90% ok, 6% failed, 4% missing
    with open(paths[0], "wb") as handle:
        handle.writelines(make_input(i) + b"\n" for i in range(rows))
    for path, pick, make in (
        (paths[1], lambda f: f < 0.90, make_ok),
        (paths[2], lambda f: 0.90 <= f < 0.96, make_error),
    ):
        chosen = [i for i in range(rows) if pick(fate[i])]
        rnd.shuffle(chosen)
        with open(path, "wb") as handle:
            handle.writelines(make(i) + b"\n" for i in chosen)
    return paths


def merged_line(i: int, fate: float, part_rows: int = 50_000) -> bytes:
    """Row i's line of a job's merged file (core/jobs_rows._merged_line's shape): ok in
    round 1 or, for a third of those, in round 2; failed (as make_error); or missing."""
    if fate >= 0.96:
        outcome, result, batch, round_ = "missing", {}, None, None
    else:
        failed = fate >= 0.90
        result = msgspec.json.decode(make_error(i) if failed else make_ok(i))
        retried = not failed and fate >= 0.60
        outcome = "failed" if failed else "ok"
        batch = f"batch_r2_{i // (part_rows * 4):05d}" if retried else f"batch_{i // part_rows:05d}"
        round_ = 2 if retried else 1
    return msgspec.json.encode(
        {
            "custom_id": f"request-{i:06d}",
            "outcome": outcome,
            "batch_id": batch,
            "round": round_,
            "response": result.get("response"),
            "error": result.get("error"),
        }
    )


def generate_job(rows: int, batch_input: Path) -> tuple[Path, Path]:
    """A job's files: its input (the batch case's, linked) and its merged result, one line
    per input row in input order (what a job's results open)."""
    folder = DATA / f"job-{rows}"
    paths = (folder / "input.jsonl", folder / "merged.jsonl")
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    paths[0].unlink(missing_ok=True)
    os.link(batch_input, paths[0])
    rnd = random.Random(7)
    temporary = paths[1].with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        handle.writelines(merged_line(i, rnd.random()) + b"\n" for i in range(rows))
    temporary.replace(paths[1])
    return paths


def run(code: str, args: list[str]) -> tuple[list[float], float]:
    """Run code in a fresh interpreter; return the floats it prints and its peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {out}")
    return [float(x) for x in out.split()], usage.ru_maxrss / 1024


def measure(shape: str, rows: int, paths: list[str], runs: int) -> bool:
    """Measure one shape of files; print its line; whether its budgets are met."""
    index = Path(paths[1]).parent / "index.frx"
    run(BASELINE, paths)  # warm the page cache
    base, base_msgspec, build, build_rss, shown, filters = [], [], [], [], [], []
    for _ in range(runs):
        base.append(run(BASELINE, paths)[0][0])
        base_msgspec.append(run(BASELINE_MSGSPEC, paths)[0][0])
        index.unlink(missing_ok=True)
        (seconds,), peak = run(BUILD, paths)
        build.append(seconds)
        build_rss.append(peak)
        (first, worst_filter), _ = run(REOPEN, paths)
        shown.append(first)
        filters.append(worst_filter)
    b, c = statistics.median(base), statistics.median(build)
    m = statistics.median(base_msgspec)
    s, f = statistics.median(shown), statistics.median(filters)
    rss = max(build_rss)
    at_scale = rows >= 1_000_000
    ratio_budgeted = at_scale and shape == "job"
    passed = s < 0.2 and f < 0.1
    passed = passed and (not at_scale or rss < 300) and (not ratio_budgeted or c / b <= 2.0)
    size = sum(Path(p).stat().st_size for p in paths) / 1e6
    budget = ", budget 2.0" if ratio_budgeted else ", for information" if at_scale else ""
    print(
        f"{shape} of {rows:,} rows ({size:.0f} MB of files, index "
        f"{index.stat().st_size / 1e6:.0f} MB): bare read+parse {b:.2f} s with orjson, "
        f"{m:.2f} s with msgspec; first build {c:.2f} s (ratio {c / b:.2f} to orjson{budget}; "
        f"{c / m:.2f} to msgspec), build peak RSS {rss:.0f} MB"
        f"{' (budget 300)' if at_scale else ''}; reopen to rows {s * 1000:.0f} ms "
        f"(budget 200); slowest filter change {f * 1000:.1f} ms (budget 100)"
        f"  {'PASS' if passed else 'FAIL'}"
    )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="50000,1000000")
    parser.add_argument("--shapes", default="job,batch")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    require_orjson()
    ok = True
    for rows in (int(r) for r in args.rows.split(",")):
        batch = [str(p) for p in generate(rows)]
        job = [str(p) for p in generate_job(rows, Path(batch[0]))]
        for shape in args.shapes.split(","):
            ok = measure(shape, rows, job if shape == "job" else batch, args.runs) and ok
    print(f"medians of {args.runs} runs, each step in a fresh process")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
