"""run_tui: what `fr-tui [PATH]` and `fr-tui --sandbox [PATH]` call (imported lazily by
the CLI so headless commands never pay for Textual)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fr_tui.cli_errors import EXIT_USAGE


def run_tui(
    path: str | Path | None = None,
    sandbox: bool = False,
    profile: str | None = None,
    base_url: str | None = None,
) -> int:
    """Run the TUI until the user quits; returns the exit code (0, or 128+signal)."""
    from fr_tui.core.config import load_config
    from fr_tui.core.paths import get_paths
    from fr_tui.tui.app import FrTuiApp

    paths = get_paths()
    config = load_config(paths)
    if profile is not None and profile not in config.profiles:
        print(f"fr-tui: no profile named {profile!r}", file=sys.stderr)
        return EXIT_USAGE
    start: Path | None = Path(path).expanduser() if path else None
    if start is not None and not start.exists():
        print(f"fr-tui: {start}: no such file or folder", file=sys.stderr)
        return EXIT_USAGE
    if start is None and sandbox:
        from fr_tui.tui.widgets.jsonl_tree import sandbox_start

        start = sandbox_start(Path.cwd())
    if base_url is None:
        base_url = os.environ.get("FASTROUTER_BASE_URL") or None
    app = FrTuiApp(
        config=config,
        paths=paths,
        start_path=start,
        sandbox=sandbox,
        profile_name=profile,
        base_url=base_url,
        install_signal_handlers=True,
    )
    try:
        result = app.run()
    finally:
        # Belt and braces: the sandbox thread is a daemon, but stop it so its port closes.
        app.stop_sandbox()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)
