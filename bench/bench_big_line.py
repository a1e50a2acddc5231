"""How long the UI stalls when the Files preview's cursor lands on a 5 MB single line.

    python bench/bench_big_line.py [--size-mb 5] [--runs 5]

A file of short rows with one 5 MB row in the middle is opened in the Files screen
(Textual's headless driver, 80x24 unless --size). The cursor is moved onto the big row and off it
again, `--runs` times; a task on the UI's event loop wakes every 2 ms and records the
longest gap between its wake-ups while the line's JSON is shown: that gap is how long
the UI could not answer a key. The baseline is the same measure for a short row, in
the same run, so the ratio does not depend on the machine.

Budget: the stall on the big row is at most one frame (about 17 ms at 60 Hz) more than
on a short row; the script exits 1 when it is not.
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

import msgspec

FRAME_MS = 1000 / 60


def make_file(folder: Path, size_mb: float) -> tuple[Path, int]:
    """Rows 1-20 short, row 21 (index 20) big, rows 22-40 short."""

    def row(i: int, text: str) -> bytes:
        return (
            msgspec.json.encode(
                {
                    "custom_id": f"r{i}",
                    "provider": "openai",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": "openai/gpt-4.1-nano",
                        "messages": [{"role": "user", "content": text}],
                    },
                }
            )
            + b"\n"
        )

    path = folder / "big-line.jsonl"
    with path.open("wb") as out:
        for i in range(40):
            text = "lorem ipsum " * int(size_mb * (1 << 20) / 12) if i == 20 else "hello"
            out.write(row(i, text))
    return path, 20


async def measure(
    path: Path, big: int, runs: int, size: tuple[int, int]
) -> tuple[list[float], list[float]]:
    from fr_tui.core.config import load_config
    from fr_tui.core.paths import get_paths
    from fr_tui.tui.app import FrTuiApp

    app = FrTuiApp(config=load_config(), paths=get_paths(), start_path=path, sandbox=False)
    big_stalls: list[float] = []
    small_stalls: list[float] = []
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        for _ in range(200):
            if getattr(screen, "index", None) is not None and screen.index.complete:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)

        async def stall_while(line: int) -> float:
            gaps = [0.0]
            stop = False

            async def ticker() -> None:
                last = time.perf_counter()
                while not stop:
                    await asyncio.sleep(0.002)
                    now = time.perf_counter()
                    gaps[0] = max(gaps[0], now - last)
                    last = now

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0.02)
            screen.view.goto(line)
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                await pilot.pause(0.01)
                if shown(screen, f"r{line}"):
                    break
            await pilot.pause(0.1)
            stop = True
            await task
            return gaps[0] * 1000

        for _ in range(runs):
            big_stalls.append(await stall_while(big))
            small_stalls.append(await stall_while(big + 5))
    return big_stalls, small_stalls


def shown(screen: object, custom_id: str) -> bool:
    """Whether the line's JSON is in the detail pane (old: a Static; new: a JsonPane)."""
    detail = screen.query_one("#detail")  # type: ignore[attr-defined]
    text = getattr(detail, "text", None)
    if isinstance(text, str):
        return custom_id in text and "formatting" not in text
    return custom_id in str(getattr(detail, "renderable", "") or detail.render())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", default="80x24", help="terminal size, WxH")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fr-tui-bench-") as tmp:
        os.environ["FR_TUI_HOME"] = str(Path(tmp) / "home")
        os.environ["FASTROUTER_API_KEY"] = "sk-bench-no-network"  # no welcome screen
        path, big = make_file(Path(tmp), args.size_mb)
        width, height = (int(n) for n in args.size.split("x"))
        big_stalls, small_stalls = asyncio.run(measure(path, big, args.runs, (width, height)))
    big_ms = statistics.median(big_stalls)
    small_ms = statistics.median(small_stalls)
    print(f"longest UI stall at {args.size}, median of {args.runs} (ms):")
    print(f"  cursor onto a {args.size_mb:g} MB line: {big_ms:8.1f}   {big_stalls}")
    print(f"  cursor onto a short line:  {small_ms:8.1f}   {small_stalls}")
    print(f"  extra stall: {big_ms - small_ms:.1f} ms (budget {FRAME_MS:.0f} ms)")
    return 0 if big_ms - small_ms <= FRAME_MS else 1


if __name__ == "__main__":
    sys.exit(main())
