"""The bare parsing loops that the scale budgets are measured against.

Issue 11 states its budgets against "a bare orjson loop over the same file": that loop
stays the yardstick, and a budget passes or fails on its ratio to it. fr-tui itself
parses with msgspec, so the ratio to a bare msgspec loop is printed beside it, for
information (it says how much of the time is fr-tui's own work rather than parsing).

orjson is needed only here: `pip install -e '.[bench]'` (the test suite does not need it).
"""

from __future__ import annotations

import importlib.util

# What each library's bare loop imports as `loads`.
LIBRARIES = {
    "orjson": "from orjson import loads",
    "msgspec": "from msgspec.json import decode as loads",
}


def parse_loop(library: str) -> str:
    """A program that parses every line of the file argv[1] and nothing more (timed from
    outside, as a whole process)."""
    return f"""
import sys
{LIBRARIES[library]}
with open(sys.argv[1], "rb") as f:
    for line in f:
        loads(line)
"""


def timed_parse_loop(library: str) -> str:
    """A program that parses every line of the files argv[1:] and prints the seconds the
    loop took (its interpreter's start-up left out)."""
    return f"""
import sys, time
{LIBRARIES[library]}
start = time.perf_counter()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for line in f:
            loads(line)
print(time.perf_counter() - start)
"""


def require_orjson() -> None:
    """Stop with a one-line message when the budgets' yardstick cannot be run."""
    if importlib.util.find_spec("orjson") is None:
        raise SystemExit(
            "orjson is not installed: the budgets are stated against a bare orjson loop. "
            "Install it with: pip install -e '.[bench]'"
        )
