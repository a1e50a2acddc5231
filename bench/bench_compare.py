"""Benchmark compare (core/compare.py) at 50,000 and 1,000,000 rows a side.

Budgets (issue 13): comparing two 50,000-row result sets gives the summary and the first
screen of rows in under 1 s; two 1,000,000-row result sets stay under 300 MB of peak RSS.

Side A is bench_results_index.py's data (90% ok, 6% failed, 4% missing). Side B is
another run of the same prompts: 92% ok (70% of its answers the same as A's, the rest
different, 2% cut off at `length`), 5% failed, 3% missing, in two shapes:

* same file: B ran A's input file (the usual case: the id columns are identical and the
  join is the identity);
* other file: B's input is A's rows in another order, 1% of them dropped and 1% new
  (the join merges two sorted arrays of id hashes).

Both sides' results indexes are built first, in their own processes (that is
bench_results_index.py's budget). Then, in a fresh process each: open both, compare,
summary, the 60 rows a screen shows (the figure the budget is about; the baseline beside
it is reopening one side's results alone and its 60 rows, as the Results screen does),
then a filter, a find and one row's detail; the peak RSS is that whole process's.

    python bench/bench_compare.py [--rows 50000,1000000] [--runs 3]

Medians of --runs; exit status 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_results import make_error, make_input, make_ok  # noqa: E402
from bench_results_index import BUILD, DATA, generate, run  # noqa: E402

BASELINE = """
import sys, time
start = time.perf_counter()
from fr_tui.core.results import join_results
a = join_results(*sys.argv[1:4])
rows = [(a.outcomes[i], a.custom_ids[i], a.contents[i]) for i in range(60)]
summary = (a.counts, a.tokens_in, a.cost, a.error_groups())
print(time.perf_counter() - start)
"""

COMPARE = """
import sys, time
start = time.perf_counter()
from fr_tui.core.compare import compare
from fr_tui.core.results import join_results
a = join_results(*sys.argv[1:4])
b = join_results(*sys.argv[4:7])
comparison = compare(a, b)
summary = comparison.summary()
rows = []
for p in range(60):  # what the screen draws: state, id, both outcomes and first lines
    ra, rb = comparison.a_row(p), comparison.b_row(p)
    rows.append((
        comparison.states[p], comparison.custom_id(p),
        comparison.outcome_a(p), comparison.outcome_b(p),
        a.contents[ra] if ra is not None else None,
        b.contents[rb] if rb is not None else None,
    ))
shown = time.perf_counter() - start
t0 = time.perf_counter()
different = comparison.filter("different")
comparison.filter("one_failed")
filtered = time.perf_counter() - t0
t0 = time.perf_counter()
comparison.search("request-0001")
found = time.perf_counter() - t0
t0 = time.perf_counter()
comparison.detail(different[0])
detail = time.perf_counter() - t0
assert summary.both > 0.9 * len(a) and summary.different > 0
print(shown, filtered, found, detail, int(comparison.identical_ids))
"""


def b_outcome(i: int) -> tuple[str, bool, bool]:
    """B's fate for row i: (ok / failed / missing, the same answer as A's, cut off)."""
    rnd = random.Random(i * 7919 + 13)
    fate = rnd.random()
    kind = "ok" if fate < 0.92 else "failed" if fate < 0.97 else "missing"
    return kind, rnd.random() < 0.70, rnd.random() < 0.02


def make_b_ok(i: int, same: bool, cut: bool, custom_id: str | None = None) -> bytes:
    if same and not cut:
        line = msgspec.json.decode(make_ok(i))
    else:
        line = msgspec.json.decode(make_ok(i))
        body = line["response"]["body"]
        body["model"] = "gpt-4.1-mini-2025-04-14"
        message = body["choices"][0]["message"]
        message["content"] = f"Answer {i}, put another way.\n" + "dolor sit amet " * 28
        if cut:
            body["choices"][0]["finish_reason"] = "length"
    if custom_id is not None:
        line["custom_id"] = custom_id
    return msgspec.json.encode(line)


def generate_b(rows: int, a_input: Path, shape: str) -> tuple[Path, Path, Path]:
    folder = DATA / f"compare-{rows}-{shape}"
    inputs = a_input if shape == "same" else folder / "input.jsonl"
    paths = (inputs, folder / "output.jsonl", folder / "errors.jsonl")
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[tuple[int, str | None]] = [(i, None) for i in range(rows)]
    if shape == "other":
        rnd = random.Random(7)
        ids = [x for x in ids if rnd.random() >= 0.01]
        ids += [(i, f"extra-{i:07d}") for i in range(rows // 100)]
        rnd.shuffle(ids)
        with open(inputs, "wb") as handle:
            for i, extra in ids:
                line = make_input(i)
                if extra is not None:
                    row = msgspec.json.decode(line)
                    row["custom_id"] = extra
                    line = msgspec.json.encode(row)
                handle.write(line + b"\n")

    def lines(kind: str) -> Iterator[bytes]:
        for i, extra in ids:
            fate, same, cut = b_outcome(i)
            if fate != kind:
                continue
            if kind == "ok":
                yield make_b_ok(i, same, cut, extra) + b"\n"
            else:
                line = make_error(i)
                if extra is not None:
                    row = msgspec.json.decode(line)
                    row["custom_id"] = extra
                    line = msgspec.json.encode(row)
                yield line + b"\n"

    for path, kind in ((paths[1], "ok"), (paths[2], "failed")):
        with open(path, "wb") as handle:
            handle.writelines(lines(kind))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="50000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ok = True
    for rows in (int(r) for r in args.rows.split(",")):
        a = [str(p) for p in generate(rows)]
        for path in (a, *(generate_b(rows, Path(a[0]), s) for s in ("same", "other"))):
            run(BUILD, [str(p) for p in path])  # build (or check) each side's index
        run(BASELINE, a)  # warm the page cache
        for shape in ("same", "other"):
            b = [str(p) for p in generate_b(rows, Path(a[0]), shape)]
            base, shown, rss, filters, finds, details = [], [], [], [], [], []
            identity = 0
            for _ in range(args.runs):
                base.append(run(BASELINE, a)[0][0])
                (first, filtered, found, detail, identity_flag), peak = run(COMPARE, a + b)
                shown.append(first)
                filters.append(filtered)
                finds.append(found)
                details.append(detail)
                rss.append(peak)
                identity = int(identity_flag)
            s, base_s = statistics.median(shown), statistics.median(base)
            peak = max(rss)
            budgeted_rss = rows >= 1_000_000
            passed = (rows > 50_000 or s < 1.0) and (not budgeted_rss or peak < 300)
            ok = ok and passed
            print(
                f"{rows:,} rows a side, B {'ran the same file' if shape == 'same' else 'another file'}"
                f" ({'identity join' if identity else 'hash join'}): summary and first rows "
                f"{s * 1000:.0f} ms{' (budget 1000)' if rows <= 50_000 else ''}, "
                f"{s / base_s:.1f}x reopening one side ({base_s * 1000:.0f} ms); "
                f"peak RSS {peak:.0f} MB{' (budget 300)' if budgeted_rss else ''}; "
                f"filters {statistics.median(filters) * 1000:.0f} ms, find "
                f"{statistics.median(finds) * 1000:.0f} ms, a row's detail "
                f"{statistics.median(details) * 1000:.1f} ms  {'PASS' if passed else 'FAIL'}"
            )
    print(f"medians of {args.runs} runs, each in a fresh process")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
