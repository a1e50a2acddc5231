"""Start-up budget: fr-tui's start to first frame is at most 1.3x a minimal Textual app's,
measured in the same run.

Each sample is a fresh `python` process (so interpreter start-up and imports count, as
they do for a user) that runs the app headless at 80x24. The time measured is from just
before the process is spawned to the app's Ready event, which Textual sends once the
first frame has been displayed; the child prints the wall-clock time of that event and
exits. Work an app defers until after its first frame (fr-tui mounts its lower panes and
starts the poller then) is not counted, as a user already sees the screen. The two apps
alternate so machine noise hits both alike; the medians are compared.

    python bench/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET_RATIO = 1.3

MINIMAL = """
from textual.app import App
from textual.widgets import Footer, Header, Static

class Minimal(App):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

    def on_ready(self):
        import time
        print(time.time(), flush=True)
        self.exit()

Minimal().run(headless=True, size=(80, 24))
"""

FR_TUI = """
import os
from pathlib import Path
from fr_tui.core.config import load_config
from fr_tui.core.paths import get_paths
from fr_tui.tui.app import FrTuiApp

class Timed(FrTuiApp):
    def on_ready(self):
        import time
        print(time.time(), flush=True)
        self.exit()

Timed(config=load_config(), paths=get_paths(), start_path=Path(os.environ["BENCH_DIR"])).run(
    headless=True, size=(80, 24)
)
"""


def sample(code: str, env: dict[str, str]) -> float:
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.split()[0]) - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "FR_TUI_HOME": home,
            # a key, so the app opens straight on Files (no welcome) against an unused URL
            "FASTROUTER_API_KEY": "sk-bench",
            "FASTROUTER_BASE_URL": "http://127.0.0.1:9",
            "BENCH_DIR": os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "..", "fr_tui", "samples"
            ),
        }
        sample(MINIMAL, env)  # warm the OS file cache for both
        sample(FR_TUI, env)
        minimal: list[float] = []
        ours: list[float] = []
        for _ in range(args.runs):
            minimal.append(sample(MINIMAL, env))
            ours.append(sample(FR_TUI, env))
    m, o = statistics.median(minimal), statistics.median(ours)
    ratio = o / m
    print(
        f"minimal Textual app: median {m * 1000:.0f} ms; fr-tui: median {o * 1000:.0f} ms "
        f"({args.runs} runs each)"
    )
    print(
        f"ratio {ratio:.2f}x (budget {BUDGET_RATIO}x) -> {'OK' if ratio <= BUDGET_RATIO else 'OVER'}"
    )
    return 0 if ratio <= BUDGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
