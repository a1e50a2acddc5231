"""Benchmark: `fr-tui validate` against a bare orjson parsing loop, as whole processes.

Budget (docs/product.md): validating the 50,000-line, ~200 MB file takes at most 1.5x the
time of a process that only parses each line with orjson, and peaks under 100 MB of RSS.
The 500,000-line file of short lines is reported too: there, per-line Python work weighs
more than parsing, so its ratio shows the validator's fixed cost per row.

    python bench/bench_validate.py [--runs 5]

Runs are interleaved (baseline, validate, baseline, ...) and the median of each is used,
so a noisy neighbour on the machine hits both sides alike. The validator is also run as a
library with no row observer and with a no-op one (contract 2): the hook costs nothing
when no observer is given. Exit status 1 if a budget is missed (the 500,000-line file is
held to 1.5x too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import ensure_bench_files  # noqa: E402

BASELINE = """
import sys, orjson
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
"""
# The validator alone in a process, without the CLI's start-up imports: tells the cost of
# validating apart from the cost of starting `fr-tui`.
LIBRARY = """
import sys, orjson
from fr_tui.core.validate import validate_path
sys.stdout.buffer.write(orjson.dumps(validate_path(sys.argv[1]).to_json()))
"""
OBSERVED = """
import sys, orjson
from fr_tui.core.validate import validate_path
class NoOp:
    def row(self, line, body, prompt_tokens):
        return None
    def finish(self):
        return []
report = validate_path(sys.argv[1], observer=NoOp())
sys.stdout.buffer.write(orjson.dumps(report.to_json()))
"""
RATIO_BUDGET = 1.5
RSS_BUDGET_MB = 100.0


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Run cmd; return (wall seconds, peak RSS in MB of that process, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr}")
    return elapsed, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is KiB on Linux


def bench(path: Path, runs: int) -> dict[str, float]:
    base_cmd = [sys.executable, "-c", BASELINE, str(path)]
    cli_cmd = [sys.executable, "-m", "fr_tui", "validate", str(path), "--json"]
    lib_cmd = [sys.executable, "-c", LIBRARY, str(path)]
    observed_cmd = [sys.executable, "-c", OBSERVED, str(path)]
    timed(base_cmd)  # warm the page cache so neither side pays for the disk
    names = ("base", "cli", "lib", "observed")
    times: dict[str, list[float]] = {name: [] for name in names}
    rss: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(runs):
        for name, cmd in zip(names, (base_cmd, cli_cmd, lib_cmd, observed_cmd), strict=True):
            seconds, peak, _code = timed(cmd)
            times[name].append(seconds)
            rss[name].append(peak)
    base = statistics.median(times["base"])
    cli = statistics.median(times["cli"])
    lib = statistics.median(times["lib"])
    observed = statistics.median(times["observed"])
    return {
        "observed_s": observed,
        "observed_ratio": observed / base,
        "base_s": base,
        "validate_s": cli,
        "ratio": cli / base,
        "library_s": lib,
        "library_ratio": lib / base,
        "base_rss_mb": max(rss["base"]),
        "validate_rss_mb": max(rss["cli"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    big, small = ensure_bench_files()
    ok = True
    for label, path, budgeted in (
        ("50k lines, ~200 MB", big, True),
        ("500k short lines", small, True),
    ):
        size_mb = path.stat().st_size / 1e6
        result = bench(path, args.runs)
        verdict = ""
        if budgeted:
            passed = result["ratio"] <= RATIO_BUDGET and result["validate_rss_mb"] < RSS_BUDGET_MB
            ok = ok and passed
            verdict = "  PASS" if passed else "  FAIL"
        print(
            f"{label} ({size_mb:.0f} MB): bare orjson loop {result['base_s']:.3f} s, "
            f"fr-tui validate {result['validate_s']:.3f} s, ratio {result['ratio']:.2f} "
            f"(budget {RATIO_BUDGET if budgeted else '-'}); peak RSS validate "
            f"{result['validate_rss_mb']:.0f} MB, baseline {result['base_rss_mb']:.0f} MB{verdict}"
        )
        print(
            f"    validator without CLI start-up (python -c validate_path): "
            f"{result['library_s']:.3f} s, ratio {result['library_ratio']:.2f}; with a no-op "
            f"row observer {result['observed_s']:.3f} s, ratio {result['observed_ratio']:.2f}"
        )
    print(f"median of {args.runs} interleaved runs; command: python -m fr_tui validate FILE --json")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
