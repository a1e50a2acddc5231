"""Benchmark: the streaming planner against a bare orjson loop, as whole processes.

Budget (docs/product.md, issue 11): planning a 1,000,000-row file of short rows (~500 MB,
bench/data/plan_1m.jsonl, made by gen_data.py) into parts of 50,000 rows / 200 MB takes
at most 1.5x the time of a process that only reads the file line by line and parses each
line with orjson, and peaks under 150 MB of RSS. The ratio to a bare msgspec loop
(fr-tui's own JSON library) is printed beside, for information (bench/baselines.py).

    pip install -e '.[bench]'   # orjson, the budget's yardstick
    python bench/bench_plan.py [--runs 3]

Runs are interleaved (baselines, plan, baselines, ...) and medians are compared. Exit
status 1 if the budget is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import parse_loop, require_orjson  # noqa: E402
from bench_validate import timed  # noqa: E402
from gen_data import ensure_plan_file  # noqa: E402

PLAN = """
import sys
from fr_tui.core.plan import PlanLimits, plan_file
plan = plan_file(sys.argv[1], sys.argv[2], PlanLimits())
print(len(plan.parts), plan.totals["rows"])
"""
RATIO_BUDGET = 1.5
RSS_BUDGET_MB = 150.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    require_orjson()
    source = ensure_plan_file()
    work = Path(tempfile.mkdtemp(prefix="fr-bench-plan-"))
    out = work / "plan"
    base_cmd = [sys.executable, "-c", parse_loop("orjson"), str(source)]
    msgspec_cmd = [sys.executable, "-c", parse_loop("msgspec"), str(source)]
    plan_cmd = [sys.executable, "-c", PLAN, str(source), str(out)]
    timed(base_cmd)  # warm the page cache
    commands = (("base", base_cmd), ("msgspec", msgspec_cmd), ("plan", plan_cmd))
    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    rss: dict[str, list[float]] = {name: [] for name, _ in commands}
    try:
        for _ in range(args.runs):
            for name, cmd in commands:
                seconds, peak, _code = timed(cmd)
                times[name].append(seconds)
                rss[name].append(peak)
            shutil.rmtree(out)  # each run plans into a fresh folder (not timed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times["base"])
    base_msgspec = statistics.median(times["msgspec"])
    plan = statistics.median(times["plan"])
    ratio = plan / base
    peak = max(rss["plan"])
    ok = ratio <= RATIO_BUDGET and peak < RSS_BUDGET_MB
    print(
        f"plan 1,000,000 rows ({source.stat().st_size / 1e6:.0f} MB): bare orjson loop "
        f"{base:.3f} s, bare msgspec loop {base_msgspec:.3f} s, plan_file {plan:.3f} s, "
        f"ratio {ratio:.2f} to orjson (budget {RATIO_BUDGET}), "
        f"{plan / base_msgspec:.2f} to msgspec; "
        f"peak RSS {peak:.0f} MB (budget {RSS_BUDGET_MB:.0f}){'  PASS' if ok else '  FAIL'}"
    )
    print(f"median of {args.runs} interleaved runs; 20 parts of 50,000 rows, each fsynced")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
