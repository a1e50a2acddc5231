"""Jobs at polling scale (issue 11): a job of 40 running parts plus 100 running batches,
polled in one interval with bounded concurrency, as batches are.

On a sandbox whose batches stay running (a one-hour tick; the 100 plain batches with
`hang_validating`), it measures, each a median of --runs:

  1. `fr-tui run`'s driver: one JobEngine.advance() that polls the job's 40 running
     parts (at most 8 requests at once) and does its bookkeeping from history; against
     a bare loop of the same 40 GETs with the same bound, in the same run;
  2. the TUI: one BatchPoller round over the 140 running batches (the 100 and the job's
     40; concurrency 8) plus one step of the app's job driver (which reads the statuses
     the poller stored), against a bare loop of the same 140 GETs.

Budget: each finishes within one poll interval (--interval, 1 s), never more than the
concurrency in flight. Ratios against the bare loops are printed beside.

Run: python bench/bench_jobs_poll.py [--interval 1.0] [--parts 40] [--running 100] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
CONCURRENCY = 8


def _write_input(path: Path, parts: int, rows_per_part: int) -> None:
    import msgspec

    with path.open("wb") as out:
        for i in range(parts * rows_per_part):
            out.write(
                msgspec.json.encode(
                    {
                        "custom_id": f"row-{i:06d}",
                        "provider": "openai",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "openai/gpt-4.1-nano",
                            "max_tokens": 16,
                            "messages": [{"role": "user", "content": f"What is {i} + 1?"}],
                        },
                    }
                )
                + b"\n"
            )


async def _bare(client: Any, ids: list[str]) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(batch_id: str) -> None:
        async with semaphore:
            await client.get_batch(batch_id)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(b) for b in ids))
    return time.perf_counter() - t0


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from bench_batches import _create_running

    from fr_tui.core.api import BatchClient
    from fr_tui.core.config import SANDBOX_API_KEY, load_config
    from fr_tui.core.jobs import JobEngine
    from fr_tui.core.jobs_store import Job, JobSettings, JobStore
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore
    from fr_tui.sandbox.server import SandboxServer
    from fr_tui.tui.job_driver import JobsDriver
    from fr_tui.tui.poller import BatchPoller

    paths = get_paths().ensure()
    store = HistoryStore(paths.history_db)
    server = SandboxServer(state_dir=paths.sandbox_dir, tick=3600.0)
    server.start()
    client = BatchClient(server.base_url, SANDBOX_API_KEY, origin="sandbox")
    try:
        t0 = time.perf_counter()
        await _create_running(client, store, args.running)
        source = paths.data_dir / "job-input.jsonl"
        _write_input(source, args.parts, 25)
        job = JobStore(store).add(
            Job(
                id="job-bench-000001",
                origin="sandbox",
                input_path=str(source),
                input_sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
                settings=JobSettings(25, 1 << 30, max_in_flight=args.parts),
                profile="sandbox",
                endpoint="/v1/chat/completions",
            )
        )
        engine = JobEngine(client, store, paths, job.id, concurrency=CONCURRENCY)
        while len(JobStore(store).batch_ids(job.id)) < args.parts:
            await engine.advance()
        setup = time.perf_counter() - t0
        job_batches = JobStore(store).batch_ids(job.id)
        everything = [r.id for r in store.active()]
        assert len(everything) == args.running + args.parts, len(everything)

        config = load_config()
        config.poll_interval, config.auto_download = args.interval, False
        app = SimpleNamespace(
            store=store,
            paths=paths,
            client=client,
            config=config,
            is_sandbox=True,  # the job driver prices its parts for the app's server
            profile=config.profile("sandbox"),
            client_for=lambda record: client,
            broadcast=lambda message: None,
            notify=lambda *a, **k: None,
            bell=lambda: None,
        )
        poller = BatchPoller(app, concurrency=CONCURRENCY)
        poller.interval = args.interval
        app.poller = poller
        driver = JobsDriver(app)

        cli, cli_bare, tui, tui_bare, driver_step = [], [], [], [], []
        for _ in range(args.runs):
            cli_bare.append(await _bare(client, job_batches))
            t0 = time.perf_counter()
            await engine.advance()
            cli.append(time.perf_counter() - t0)
            tui_bare.append(await _bare(client, everything))
            poller._pace.clear()  # every batch due: the worst round
            t0 = time.perf_counter()
            await poller.run_round()
            tui.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await driver.step_all()
            driver_step.append(time.perf_counter() - t0)
        driver.stop()
        return {
            "setup": setup,
            "cli": statistics.median(cli),
            "cli_bare": statistics.median(cli_bare),
            "cli_in_flight": engine.max_polls_in_flight,
            "tui": statistics.median(tui),
            "tui_bare": statistics.median(tui_bare),
            "driver_step": statistics.median(driver_step),
            "tui_in_flight": poller.stats.max_in_flight,
            "tui_polls": poller.stats.polls,
        }
    finally:
        await client.aclose()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--parts", type=int, default=40)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ["FR_TUI_HOME"] = tempfile.mkdtemp(prefix="fr-bench-jobs-poll-")
    r = asyncio.run(bench(args))
    total = args.parts + args.running
    tui_total = r["tui"] + r["driver_step"]
    print(
        f"setup: {args.running} running batches and a job of {args.parts} running parts "
        f"in {r['setup']:.1f} s"
    )
    print(
        f"run's driver, one step polling {args.parts} parts: {r['cli'] * 1000:.0f} ms "
        f"(bare {args.parts} GETs {r['cli_bare'] * 1000:.0f} ms, ratio "
        f"{r['cli'] / r['cli_bare']:.2f}); {r['cli'] / args.interval:.2f}x the "
        f"{args.interval:g} s interval; max in flight {r['cli_in_flight']} "
        f"(bound {CONCURRENCY})"
    )
    print(
        f"TUI, poller round over {total} batches {r['tui'] * 1000:.0f} ms + job driver step "
        f"{r['driver_step'] * 1000:.0f} ms = {tui_total * 1000:.0f} ms (bare {total} GETs "
        f"{r['tui_bare'] * 1000:.0f} ms, ratio {tui_total / r['tui_bare']:.2f}); "
        f"{tui_total / args.interval:.2f}x the interval; max in flight {r['tui_in_flight']}"
    )
    ok = (
        r["cli"] < args.interval
        and tui_total < args.interval
        and r["cli_in_flight"] <= CONCURRENCY
        and r["tui_in_flight"] <= CONCURRENCY
    )
    print(f"medians of {args.runs} runs  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
