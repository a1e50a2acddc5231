"""Batches at scale: 500 batches in history, 100 of them still running on a sandbox.

Measures, and prints:
  1. one poller round over the 100 running batches (bounded concurrency) against the
     poll interval: it must finish within one interval;
  2. over several intervals of the real poll loop, that no batch is polled twice within
     one interval, and the most requests ever in flight at once;
  3. the Batches table applying 100 changed rows (median of many runs): under 50 ms.

Run: /work/venv/bin/python bench/bench_batches.py [--interval 1.0] [--running 100] [--history 500]
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
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fr_tui" / "samples" / "chat.jsonl"


def _setup_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="fr-bench-batches-"))
    os.environ["FR_TUI_HOME"] = str(home)
    return home


async def _create_running(client: Any, store: Any, count: int) -> list[str]:
    from fr_tui.core.workflow import submit_file

    ids = []
    semaphore = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with semaphore:
            record = await submit_file(
                client,
                store,
                SAMPLE,
                profile="sandbox",
                name=f"running-{i:03d}",
                metadata={"sandbox_fault": "hang_validating"},
                allow_duplicate=True,
            )
            ids.append(record.id)

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


def _fill_finished(store: Any, count: int) -> None:
    from fr_tui.core.models import Batch

    now = int(time.time())
    for i in range(count):
        created = now - 86400 - i * 60
        store.record_created(
            Batch.parse(
                {
                    "id": f"batch_done_{i:04d}",
                    "status": "completed",
                    "endpoint": "/v1/chat/completions",
                    "created_at": created,
                    "completed_at": created + 600,
                    "request_counts": {"total": 1000, "completed": 990, "failed": 10},
                    "usage": {"cost": 0.5},
                }
            ),
            origin="sandbox",
            name=f"done-{i:04d}",
            profile="sandbox",
        )


async def bench_poller(interval: float, running: int, history: int) -> dict[str, float]:
    from fr_tui.core.api import BatchClient
    from fr_tui.core.config import SANDBOX_API_KEY
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore
    from fr_tui.sandbox.server import SandboxServer
    from fr_tui.tui.poller import BatchPoller

    paths = get_paths()
    paths.ensure()
    store = HistoryStore(paths.history_db)
    server = SandboxServer(state_dir=paths.sandbox_dir, tick=0.01)
    server.start()
    client = BatchClient(server.base_url, SANDBOX_API_KEY)
    try:
        started = time.perf_counter()
        await _create_running(client, store, running)
        _fill_finished(store, history - running)
        setup = time.perf_counter() - started
        posted: list[Any] = []
        app = SimpleNamespace(
            store=store,
            client=client,
            config=SimpleNamespace(
                poll_interval=interval, auto_download=False, notify_command=None
            ),
            profile=SimpleNamespace(name="sandbox"),
            broadcast=posted.append,
            notify=lambda *a, **k: None,
            bell=lambda: None,
        )
        poller = BatchPoller(app, concurrency=8)
        poller.interval = interval

        # 1. One full round over every running batch.
        t0 = time.perf_counter()
        await poller.run_round()
        round_seconds = time.perf_counter() - t0
        first_round_polls = poller.stats.polls

        # 2. The real loop for a few intervals.
        poller.stats.log.clear()
        poller.stats.polls_per_batch.clear()
        task = asyncio.get_running_loop().create_task(_run_loop(poller, interval * 4.5))
        await task
        by_batch: dict[tuple[str, str], list[float]] = {}
        for key, at in poller.stats.log:
            by_batch.setdefault(key, []).append(at)
        min_gap = min(
            (b - a for times in by_batch.values() for a, b in zip(times, times[1:], strict=False)),
            default=float("inf"),
        )
        twice = sum(
            1
            for times in by_batch.values()
            for a, b in zip(times, times[1:], strict=False)
            if b - a < interval * 0.999
        )
        return {
            "setup_seconds": setup,
            "running": running,
            "history": history,
            "interval": interval,
            "round_seconds": round_seconds,
            "round_polls": first_round_polls,
            "loop_polls": len(poller.stats.log),
            "loop_batches": len(by_batch),
            "min_gap": min_gap,
            "polled_twice_in_interval": twice,
            "max_in_flight": poller.stats.max_in_flight,
            "concurrency": poller.concurrency,
        }
    finally:
        await client.aclose()
        server.stop()


async def _run_loop(poller: Any, seconds: float) -> None:
    poller._running = True
    loop_task = asyncio.get_running_loop().create_task(poller._loop())
    await asyncio.sleep(seconds)
    poller._running = False
    loop_task.cancel()
    try:
        await loop_task
    except asyncio.CancelledError:
        pass


async def bench_table(runs: int) -> dict[str, float]:
    """The Batches screen with the 500-batch history; apply 100 changed rows, many times."""
    from textual.app import App

    from fr_tui.core.config import load_config
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore
    from fr_tui.tui.screens.batches import BatchesScreen

    class BenchApp(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.store = HistoryStore(get_paths().history_db)
            self.config = load_config()
            self.client = None
            self.poller = None

        def on_mount(self) -> None:
            self.push_screen(BatchesScreen())

    app = BenchApp()
    applies: list[float] = []
    reloads: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, BatchesScreen)
        records = app.store.batches()
        running = [r for r in records if not r.terminal][:100]
        for run in range(runs):
            # Each run moves every running batch's counts on: 100 rows with new cells.
            for r in running:
                r.request_total = 12
                r.request_completed = (run % 12) + 1
                r.request_failed = 0
                r.status = "in_progress" if run % 2 else "finalizing"
            t0 = time.perf_counter()
            screen.apply(records)
            applies.append(time.perf_counter() - t0)
            await pilot.pause()
        for _ in range(max(5, runs // 4)):
            t0 = time.perf_counter()
            screen.reload()
            reloads.append(time.perf_counter() - t0)
            await pilot.pause()
        rows = screen.table.row_count
    return {
        "rows": rows,
        "apply_median_ms": statistics.median(applies) * 1000,
        "apply_max_ms": max(applies) * 1000,
        "reload_median_ms": statistics.median(reloads) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    _setup_home()
    poll = asyncio.run(bench_poller(args.interval, args.running, args.history))
    table = asyncio.run(bench_table(args.runs))
    print(
        f"history {poll['history']} batches, {poll['running']} running (sandbox, hang_validating)"
    )
    print(f"setup (submit {poll['running']} + insert rest): {poll['setup_seconds']:.2f} s")
    ratio = poll["round_seconds"] / poll["interval"]
    print(
        f"one poll round: {poll['round_polls']} batches in {poll['round_seconds'] * 1000:.0f} ms "
        f"= {ratio:.2f}x the {poll['interval']:.1f} s interval "
        f"(concurrency {poll['concurrency']}, max in flight {poll['max_in_flight']})"
    )
    print(
        f"poll loop over {poll['interval'] * 4.5:.1f} s: {poll['loop_polls']} polls of "
        f"{poll['loop_batches']} batches; shortest gap between polls of one batch "
        f"{poll['min_gap']:.3f} s; polled twice within an interval: "
        f"{poll['polled_twice_in_interval']}"
    )
    print(
        f"table update, {table['rows']} rows, 100 changed: median {table['apply_median_ms']:.1f} ms, "
        f"max {table['apply_max_ms']:.1f} ms (budget 50 ms); full reload from history "
        f"(sqlite read + apply): median {table['reload_median_ms']:.1f} ms"
    )
    ok = (
        ratio < 1.0
        and poll["polled_twice_in_interval"] == 0
        and poll["max_in_flight"] <= poll["concurrency"]
        and table["apply_median_ms"] < 50
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
