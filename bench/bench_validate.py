"""Benchmark: `fr-tui validate` against a bare orjson parsing loop, as whole processes.

Budget (docs/product.md, issue 11): validating the 50,000-line, ~200 MB file takes at most
1.5x the time of a process that only parses each line with orjson, and peaks under 100 MB
of RSS. The 500,000-line file of short lines is held to the same 1.5x: there, per-line
Python work weighs more than parsing, so its ratio shows the validator's fixed cost per
row. The ratio to a bare msgspec loop (fr-tui's own JSON library) is printed beside, for
information; the orjson ratio decides (bench/baselines.py).

    pip install -e '.[bench]'   # orjson, the budget's yardstick
    python bench/bench_validate.py [--runs 5]

Runs are interleaved (baselines, validate, baselines, ...) and the median of each is used,
so a noisy neighbour on the machine hits both sides alike. `fr-tui validate` runs once as
it does with no catalog at hand, and once with the sandbox's catalog cached, so the
pre-submit checks (core/precheck.py) see every row. The validator is also run as a library
with no row observer and with a no-op one (contract 2): the hook costs nothing when no
observer is given. Exit status 1 if a budget is missed (the 500,000-line file is held to
1.5x too), with or without the catalog.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import parse_loop, require_orjson  # noqa: E402
from gen_data import ensure_bench_files  # noqa: E402

# The validator alone in a process, without the CLI's start-up imports: tells the cost of
# validating apart from the cost of starting `fr-tui`.
LIBRARY = """
import sys, msgspec
from fr_tui.core.validate import validate_path
sys.stdout.buffer.write(msgspec.json.encode(validate_path(sys.argv[1]).to_json()))
"""
OBSERVED = """
import sys, msgspec
from fr_tui.core.validate import validate_path
class NoOp:
    def row(self, line, body, prompt_tokens):
        return None
    def finish(self):
        return []
report = validate_path(sys.argv[1], observer=NoOp())
sys.stdout.buffer.write(msgspec.json.encode(report.to_json()))
"""
RATIO_BUDGET = 1.5
RSS_BUDGET_MB = 100.0


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run cmd; return (wall seconds, peak RSS in MB of that process, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr}")
    return elapsed, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is KiB on Linux


def bench(path: Path, runs: int, home: str) -> dict[str, float]:
    base_cmd = [sys.executable, "-c", parse_loop("orjson"), str(path)]
    msgspec_cmd = [sys.executable, "-c", parse_loop("msgspec"), str(path)]
    cli_cmd = [sys.executable, "-m", "fr_tui", "validate", str(path), "--json"]
    cat_cmd = [sys.executable, "-m", "fr_tui", "--sandbox", "validate", str(path), "--json"]
    lib_cmd = [sys.executable, "-c", LIBRARY, str(path)]
    observed_cmd = [sys.executable, "-c", OBSERVED, str(path)]
    # No catalog: FR_TUI_CATALOG=off. With one: the sandbox's, cached by the warm-up run.
    no_catalog = {**os.environ, "FR_TUI_HOME": home, "FR_TUI_CATALOG": "off"}
    with_catalog = {**os.environ, "FR_TUI_HOME": home, "FR_TUI_CATALOG": "auto"}
    commands = (
        ("base", base_cmd, None),
        ("msgspec", msgspec_cmd, None),
        ("cli", cli_cmd, no_catalog),
        ("cat", cat_cmd, with_catalog),
        ("lib", lib_cmd, None),
        ("observed", observed_cmd, None),
    )
    timed(base_cmd)  # warm the page cache so neither side pays for the disk
    timed(cat_cmd, with_catalog)  # and cache the catalog
    times: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    rss: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    for _ in range(runs):
        for name, cmd, env in commands:
            seconds, peak, _code = timed(cmd, env)
            times[name].append(seconds)
            rss[name].append(peak)
    base = statistics.median(times["base"])
    base_msgspec = statistics.median(times["msgspec"])
    cli = statistics.median(times["cli"])
    cat = statistics.median(times["cat"])
    lib = statistics.median(times["lib"])
    observed = statistics.median(times["observed"])
    return {
        "catalog_s": cat,
        "catalog_ratio": cat / base,
        "catalog_rss_mb": max(rss["cat"]),
        "observed_s": observed,
        "observed_ratio": observed / base,
        "base_s": base,
        "msgspec_s": base_msgspec,
        "validate_s": cli,
        "ratio": cli / base,
        "msgspec_ratio": cli / base_msgspec,
        "catalog_msgspec_ratio": cat / base_msgspec,
        "library_msgspec_ratio": lib / base_msgspec,
        "library_s": lib,
        "library_ratio": lib / base,
        "base_rss_mb": max(rss["base"]),
        "validate_rss_mb": max(rss["cli"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_orjson()
    big, small = ensure_bench_files()
    home = tempfile.mkdtemp(prefix="fr-tui-bench-")
    ok = True
    for label, path, budgeted in (
        ("50k lines, ~200 MB", big, True),
        ("500k short lines", small, True),
    ):
        size_mb = path.stat().st_size / 1e6
        result = bench(path, args.runs, home)
        verdict = catalog_verdict = ""
        if budgeted:
            passed = result["ratio"] <= RATIO_BUDGET and result["validate_rss_mb"] < RSS_BUDGET_MB
            with_catalog = (
                result["catalog_ratio"] <= RATIO_BUDGET and result["catalog_rss_mb"] < RSS_BUDGET_MB
            )
            ok = ok and passed and with_catalog
            verdict = "  PASS" if passed else "  FAIL"
            catalog_verdict = "  PASS" if with_catalog else "  FAIL"
        print(
            f"{label} ({size_mb:.0f} MB): bare orjson loop {result['base_s']:.3f} s, "
            f"bare msgspec loop {result['msgspec_s']:.3f} s, fr-tui validate "
            f"{result['validate_s']:.3f} s, ratio {result['ratio']:.2f} to orjson (budget "
            f"{RATIO_BUDGET if budgeted else '-'}), {result['msgspec_ratio']:.2f} to msgspec; "
            f"peak RSS validate "
            f"{result['validate_rss_mb']:.0f} MB, baseline {result['base_rss_mb']:.0f} MB{verdict}"
        )
        print(
            f"    with the model catalog's checks (--sandbox, catalog cached): "
            f"{result['catalog_s']:.3f} s, ratio {result['catalog_ratio']:.2f} to orjson, "
            f"{result['catalog_msgspec_ratio']:.2f} to msgspec, peak RSS "
            f"{result['catalog_rss_mb']:.0f} MB{catalog_verdict}"
        )
        print(
            f"    validator without CLI start-up (python -c validate_path): "
            f"{result['library_s']:.3f} s, ratio {result['library_ratio']:.2f} to orjson, "
            f"{result['library_msgspec_ratio']:.2f} to msgspec; with a no-op "
            f"row observer {result['observed_s']:.3f} s, ratio {result['observed_ratio']:.2f}"
        )
    print(f"median of {args.runs} interleaved runs; command: python -m fr_tui validate FILE --json")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
