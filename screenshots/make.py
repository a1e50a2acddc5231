"""Regenerate the README's screenshots from deterministic sandbox data.

    python screenshots/make.py

Everything runs in a throwaway FR_TUI_HOME: a sandbox server at test speed, a few batches
from the shipped samples (all ok; ok + failed + missing; failed validation; embeddings),
their results downloaded, then each screen at 80x24 and 120x40 through Textual's headless
driver. Only the sandbox's fixed, non-secret key is ever in play, so no real key can
end up in a picture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "fr_tui" / "samples"
SIZES = [(80, 24), (120, 40)]


async def seed(paths) -> dict[str, str]:
    """Submit the samples to a sandbox on the history's own state dir; wait; download."""
    from fr_tui.core.api import BatchClient
    from fr_tui.core.config import SANDBOX_API_KEY
    from fr_tui.core.store import HistoryStore
    from fr_tui.core.workflow import fetch_results, poll_batch, submit_file
    from fr_tui.sandbox.server import SandboxServer

    store = HistoryStore(paths.history_db)
    ids: dict[str, str] = {}
    # the chat sample again on another model, to compare with the first run
    mini = paths.data_dir / "chat-on-gpt-4.1-mini.jsonl"
    mini.write_text((SAMPLES / "chat.jsonl").read_text().replace("gpt-4.1-nano", "gpt-4.1-mini"))
    with SandboxServer(state_dir=paths.sandbox_dir, tick=0.01) as server:
        async with BatchClient(server.base_url, SANDBOX_API_KEY, origin="sandbox") as client:
            plan = [
                ("chat", "chat.jsonl", None, "chat smoke test"),
                ("embeddings", "embeddings.jsonl", None, None),
                ("fails", "server_fails.jsonl", None, "nightly eval"),
                ("invalid", "chat.jsonl", {"sandbox_fault": "fail_validation"}, "bad upload"),
                ("mini", mini, None, "chat on gpt-4.1-mini"),
            ]
            for key, sample, metadata, name in plan:
                record = await submit_file(
                    client,
                    store,
                    SAMPLES / sample if isinstance(sample, str) else sample,
                    profile="sandbox",
                    metadata=metadata,
                    name=name,
                    allow_duplicate=True,  # chat.jsonl goes twice on purpose
                )
                ids[key] = record.id
            for batch_id in ids.values():
                for _ in range(500):
                    batch, _ = await poll_batch(client, store, batch_id)
                    if batch.terminal:
                        break
                    await asyncio.sleep(0.02)
                record = store.get("sandbox", batch_id)
                if record and record.status == "completed":
                    await fetch_results(client, store, record, record.results_folder(paths))
    ids["job"] = run_job(paths)
    return ids


def run_job(paths) -> str:
    """A job of three parts over the chat sample on a flaky model (so a retry round
    runs), driven to its end by `fr-tui run` on the same sandbox state."""
    import json
    import subprocess

    flaky = paths.data_dir / "chat-flaky.jsonl"
    rows = [json.loads(line) for line in (SAMPLES / "chat.jsonl").read_text().splitlines()]
    for row in rows:
        row["body"]["model"] = "sandbox/flaky-40"
    flaky.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = subprocess.run(
        [sys.executable, "-m", "fr_tui", "--sandbox", "run", str(flaky), "--name",
         "flaky eval", "--max-rows", "5", "--poll-interval", "0.02", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 4):
        raise SystemExit(f"fr-tui run failed: {done.stderr}")
    return str(json.loads(done.stdout)["job_id"])


async def until(pilot, check: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check() and time.monotonic() < deadline:
        await pilot.pause(0.05)


async def shoot(
    name: str, size: tuple[int, int], steps: Callable[[object, object], Awaitable[None]]
) -> Path:
    from fr_tui.core.config import load_config
    from fr_tui.core.paths import get_paths
    from fr_tui.tui.app import FrTuiApp

    app = FrTuiApp(
        config=load_config(), paths=get_paths(), start_path=SAMPLES, sandbox=True, sandbox_tick=0.01
    )
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        await steps(app, pilot)
        await pilot.pause(0.5)
        svg = app.export_screenshot(title=f"fr-tui: {name}")
    target = HERE / f"{name}-{size[0]}x{size[1]}.svg"
    target.write_text(svg, encoding="utf-8")
    app.stop_sandbox()
    return target


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="fr-tui-shots-"))
    os.environ["FR_TUI_HOME"] = str(home)
    os.environ.pop("FASTROUTER_API_KEY", None)
    os.environ["TZ"] = "UTC"
    try:
        from fr_tui.core.paths import get_paths

        paths = get_paths().ensure()
        ids = asyncio.run(seed(paths))

        async def files(app, pilot) -> None:
            app.open_file(SAMPLES / "broken.jsonl")
            await pilot.pause(1.0)
            await pilot.press("n")

        async def batches(app, pilot) -> None:
            app.open_batches(select=ids["fails"])
            await pilot.pause(0.8)

        async def details(app, pilot) -> None:
            app.open_details(ids["fails"])
            await pilot.pause(0.8)

        async def results(app, pilot) -> None:
            app.open_results(ids["fails"])
            await pilot.pause(1.5)

        async def result_detail(app, pilot) -> None:
            app.open_results(ids["fails"])
            await pilot.pause(1.5)
            await pilot.press("f", "f")  # all -> ok -> failed rows
            await pilot.pause(0.2)
            await pilot.press("enter")
            await pilot.pause(0.5)

        async def submit(app, pilot) -> None:
            app.open_file(SAMPLES / "chat.jsonl")
            await pilot.pause(1.0)
            await pilot.press("s")
            await pilot.pause(0.5)

        async def compare(app, pilot) -> None:
            app.open_batches(select=ids["chat"])
            await pilot.pause(0.8)
            await pilot.press("m")
            app.screen.select_batch(ids["mini"])
            await pilot.pause(0.2)
            await pilot.press("equals_sign")
            await until(pilot, lambda: getattr(app.screen, "comparison", None) is not None)
            await pilot.press("j", "j")

        async def compare_detail(app, pilot) -> None:
            await compare(app, pilot)
            await pilot.press("enter")
            await until(pilot, lambda: getattr(app.screen, "detail_position", None) is not None)

        async def jobs(app, pilot) -> None:
            app.open_batches(select=f"job:{ids['job']}")
            await until(pilot, lambda: getattr(app.screen, "highlighted_key", lambda: None)()
                        == f"job:{ids['job']}")  # fmt: skip
            await pilot.press("space")  # the job's parts and rounds, under its row
            await pilot.pause(0.3)

        async def job_details(app, pilot) -> None:
            await jobs(app, pilot)
            await pilot.press("enter")
            await pilot.pause(0.8)

        async def help_screen(app, pilot) -> None:
            await pilot.press("question_mark")
            await pilot.pause(0.3)

        shots = {
            "files": files,
            "batches": batches,
            "details": details,
            "results": results,
            "result-detail": result_detail,
            "submit": submit,
            "compare": compare,
            "compare-detail": compare_detail,
            "jobs": jobs,
            "job-details": job_details,
            "help": help_screen,
        }
        for name, steps in shots.items():
            for size in SIZES:
                target = asyncio.run(shoot(name, size, steps))
                print(f"wrote {target.relative_to(ROOT)}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
