"""Benchmark the line index and the results join.

    /work/venv/bin/python bench/bench_results.py [--rows 50000] [--index-mb 200]

Generates (once, in bench/data/, git-ignored) a ~200 MB JSONL file for the index and a
50k-row batch: inputs plus shuffled output and error files, with failures and missing
rows. Prints each figure next to its budget; exits 1 if the join misses its budget.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import msgspec

from fr_tui.core.jsonl import LineIndex
from fr_tui.core.results import join_results

DATA = Path(__file__).resolve().parent / "data"


def make_input(i: int, pad: int = 0) -> bytes:
    return msgspec.json.encode(
        {
            "custom_id": f"request-{i:06d}",
            "provider": "openai" if i % 3 else "anthropic",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "openai/gpt-4.1-nano" if i % 3 else "anthropic/claude-4.5-sonnet",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {
                        "role": "user",
                        "content": f"Question {i}: " + "lorem ipsum " * 20 + "x" * pad,
                    },
                ],
                "max_tokens": 256,
            },
        }
    )


def make_ok(i: int) -> bytes:
    body = {
        "id": f"chatcmpl-{i}",
        "object": "chat.completion",
        "model": "gpt-4.1-nano-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"Answer {i}.\n" + "dolor sit amet " * 30,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 60,
            "completion_tokens": 120,
            "total_tokens": 180,
            "cost": 0.00012,
        },
    }
    return msgspec.json.encode(
        {
            "id": f"batch_req_{i}",
            "custom_id": f"request-{i:06d}",
            "response": {"status_code": 200, "request_id": f"req_{i}", "body": body},
            "error": None,
        }
    )


def make_error(i: int) -> bytes:
    if i % 2:
        return msgspec.json.encode(
            {
                "id": f"batch_req_{i}",
                "custom_id": f"request-{i:06d}",
                "response": None,
                "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                },
            }
        )
    body = {
        "error": {
            "message": "Rate limit reached",
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
        }
    }
    return msgspec.json.encode(
        {
            "id": f"batch_req_{i}",
            "custom_id": f"request-{i:06d}",
            "response": {"status_code": 429, "request_id": "r", "body": body},
            "error": None,
        }
    )


def write(path: Path, lines: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(line + b"\n" for line in lines))
    tmp.replace(path)


def generate(rows: int, index_mb: int) -> dict[str, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {name: DATA / f"{name}-{rows}.jsonl" for name in ("input", "output", "errors")}
    big = DATA / f"big-{rows}-{index_mb}mb.jsonl"
    if not all(p.exists() for p in paths.values()):
        rnd = random.Random(42)
        write(paths["input"], [make_input(i) for i in range(rows)])
        outcome = [rnd.random() for _ in range(rows)]  # 90% ok, 6% failed, 4% missing
        ok = [make_ok(i) for i in range(rows) if outcome[i] < 0.90]
        failed = [make_error(i) for i in range(rows) if 0.90 <= outcome[i] < 0.96]
        rnd.shuffle(ok)
        rnd.shuffle(failed)
        write(paths["output"], ok)
        write(paths["errors"], failed)
    if not big.exists():
        pad = max(0, index_mb * (1 << 20) // rows - len(make_input(0)))
        write(big, [make_input(i, pad) for i in range(rows)])
    paths["big"] = big
    return paths


def timed(fn: object, repeat: int) -> tuple[float, object]:
    times: list[float] = []
    result: object = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        if repeat > 1 and hasattr(result, "close"):
            result.close()
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--index-mb", type=int, default=200)
    args = parser.parse_args()
    paths = generate(args.rows, args.index_mb)
    size_mb = paths["big"].stat().st_size / (1 << 20)

    # Baseline in the same process: read the file in 4 MB blocks and count newlines.
    def bare_read() -> int:
        count = 0
        with open(paths["big"], "rb") as handle:
            while block := handle.read(4 << 20):
                count += block.count(b"\n")
        return count

    bare, _ = timed(bare_read, 3)

    def build_index() -> LineIndex:
        index = LineIndex(paths["big"])
        index.build()
        return index

    first_start = time.perf_counter()
    build_index().close()
    first_build = time.perf_counter() - first_start
    build, _ = timed(build_index, 3)
    head_start = time.perf_counter()
    with LineIndex(paths["big"]) as index:
        index.scan_head(200)
        first = index.lines(0, 50)
        head = time.perf_counter() - head_start
        assert len(first) == 50
    print(
        f"LineIndex.build   {size_mb:7.1f} MB, {args.rows} lines: first {first_build * 1000:.1f} ms, median of 3 {build * 1000:.1f} ms (bare 4 MB-block read + newline count {bare * 1000:.1f} ms, ratio {build / bare:.2f})"
    )
    print(f"LineIndex head    first 50 lines readable after {head * 1000:.2f} ms")

    def join() -> object:
        return join_results(paths["input"], paths["output"], paths["errors"])

    join_time, joined = timed(join, 5)
    big_join, big_joined = timed(
        lambda: join_results(paths["big"], paths["output"], paths["errors"]), 1
    )
    big_joined.close()  # type: ignore[attr-defined]
    joined = join()
    counts = joined.counts  # type: ignore[attr-defined]
    files_mb = sum(paths[n].stat().st_size for n in ("input", "output", "errors")) / (1 << 20)
    print(
        f"join_results      {args.rows} inputs x {counts['ok'] + counts['failed']} results ({files_mb:.0f} MB): median of 5 {join_time * 1000:7.1f} ms  [budget < 1000 ms]"
    )
    print(f"                  counts {counts}")
    print(
        f"join_results      the same with the {size_mb:.0f} MB input file: {big_join * 1000:.1f} ms"
    )
    for kind in (
        "all",
        "ok",
        "failed",
        "missing",
        "batch_expired: This request could not be executed before the completion window expired.",
    ):
        elapsed, found = timed(lambda kind=kind: joined.filter(kind), 5)  # type: ignore[attr-defined]
        print(
            f"filter({kind[:20]!r:22}) {len(found):6d} rows  {elapsed * 1000:6.2f} ms  [budget < 100 ms]"
        )  # type: ignore[arg-type]
    elapsed, found = timed(lambda: joined.search("request-0421"), 1)  # type: ignore[attr-defined]
    print(f"search (first)    {len(found):6d} rows  {elapsed * 1000:6.2f} ms; again ", end="")  # type: ignore[arg-type]
    elapsed, found = timed(lambda: joined.search("answer 4211."), 3)  # type: ignore[attr-defined]
    print(f"{elapsed * 1000:.2f} ms")
    start = time.perf_counter()
    for i in range(0, len(joined), 997):  # type: ignore[arg-type]
        joined.row(i)  # type: ignore[attr-defined]
        joined.response_json(i)  # type: ignore[attr-defined]
    print(
        f"row()+response_json() random access: {(time.perf_counter() - start) / (len(joined) // 997 + 1) * 1e6:.1f} us per row"
    )  # type: ignore[arg-type]
    joined.close()  # type: ignore[attr-defined]

    gc.collect()
    tracemalloc.start()
    joined = join()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    joined.close()  # type: ignore[attr-defined]
    print(
        f"join memory       peak {peak / (1 << 20):.1f} MB, kept {current / (1 << 20):.1f} MB (Python heap, tracemalloc) vs {files_mb:.0f} MB of files"
    )
    if sys.platform != "win32":
        import resource

        print(
            f"process max RSS   {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
    return 0 if join_time < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
