"""Start-up budget: fr-tui's start to first frame is at most 1.3x a minimal Textual app's,
measured in the same run.

Each sample is a fresh `python` process (so interpreter start-up and imports count, as
they do for a user) that runs the app headless at 80x24. The first frame is the first
time the app hands a screen update to its display (App._display, where a terminal is
written to); the time is taken from just before the process is spawned. Work an app
defers until after its first frame (fr-tui mounts its tree and lower panes and starts
the poller then) is not counted, as a user already sees the screen. The time the app's
Ready handler runs is printed too, for information: it comes after the first frame and
after whatever the event loop had queued by then (Lazy mounts among them). The two apps
alternate so machine noise hits both alike; the medians are compared.

Both start from bytecode, as a user's do: pip compiles an installed package's modules,
and an editable install's are cached by its first run. fr-tui's are compiled here first,
since a machine with PYTHONDONTWRITEBYTECODE set (as these are) never caches them, and
each start would compile every module of fr-tui's from source while Textual's come from
the .pyc files pip wrote.

    python bench/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET_RATIO = 1.3

# Both children: the wall-clock time of the first frame, then of the Ready handler.
PROBE = """
import time
from textual.app import App

_first_frame = []
_display = App._display

def _timed_display(self, screen, renderable):
    if renderable is not None and not _first_frame:
        _first_frame.append(time.time())
    return _display(self, screen, renderable)

App._display = _timed_display

class Probe:
    def on_ready(self):
        print(_first_frame[0], time.time(), flush=True)
        self.exit()
"""

MINIMAL = (
    PROBE
    + """
from textual.widgets import Footer, Header, Static

class Minimal(Probe, App):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

Minimal().run(headless=True, size=(80, 24))
"""
)

FR_TUI = (
    PROBE
    + """
import os
from pathlib import Path
from fr_tui.core.config import load_config
from fr_tui.core.paths import get_paths
from fr_tui.tui.app import FrTuiApp

class Timed(Probe, FrTuiApp):
    pass

Timed(config=load_config(), paths=get_paths(), start_path=Path(os.environ["BENCH_DIR"])).run(
    headless=True, size=(80, 24)
)
"""
)


def sample(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(to the first frame, to the Ready handler), in seconds from the spawn."""
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    frame, ready = (float(word) for word in done.stdout.split()[:2])
    return frame - start, ready - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import fr_tui

    compileall.compile_dir(os.path.dirname(fr_tui.__file__), quiet=1)
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
        minimal: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for _ in range(args.runs):
            minimal.append(sample(MINIMAL, env))
            ours.append(sample(FR_TUI, env))
    ratios = []
    for i, what in enumerate(("first frame", "Ready handler")):
        m = statistics.median(s[i] for s in minimal)
        o = statistics.median(s[i] for s in ours)
        ratios.append(o / m)
        print(
            f"{what}: minimal Textual app median {m * 1000:.0f} ms; fr-tui median "
            f"{o * 1000:.0f} ms ({args.runs} runs each): {o / m:.2f}x"
        )
    ratio = ratios[0]  # the budget is the first frame's
    verdict = "OK" if ratio <= BUDGET_RATIO else "OVER"
    print(f"first frame ratio {ratio:.2f}x (budget {BUDGET_RATIO}x) -> {verdict}")
    return 0 if ratio <= BUDGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
