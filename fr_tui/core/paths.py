"""Where fr-tui keeps its config, history and downloaded results.

`FR_TUI_HOME=DIR` puts everything under DIR (tests always set it). Otherwise the
XDG variables are honoured on every OS (users on macOS ask for ~/.config), then
platformdirs' defaults.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "fr-tui"
# The sample batch files shipped in the package (`fr-tui --sandbox` opens on them).
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
# A batch's downloaded result files, in its `results_for` folder.
OUTPUT_NAME = "output.jsonl"
ERROR_NAME = "errors.jsonl"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def history_db(self) -> Path:
        return self.config_dir / "history.db"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def results_for(self, origin: str, batch_id: str, recorded: Sequence[str | None] = ()) -> Path:
        """A batch's folder (its result files, their index, retry files): per server,
        `results/<server>/<batch id>`, since two servers may hand out the same id.
        Results downloaded before folders were per server stay in `results/<batch id>`:
        that folder is the batch's when its `recorded` result paths are in it (or the
        record has no server)."""
        legacy = self.results_dir / _safe(batch_id)
        if not origin or any(p and Path(p).parent == legacy for p in recorded):
            return legacy
        server = origin.removeprefix("https://").replace("://", "_")
        return self.results_dir / _safe(server) / _safe(batch_id)

    def ensure(self) -> Paths:
        self.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self


def short_path(path: Path) -> str:
    """`path` absolute, with the home folder as `~`."""
    path = path.expanduser().resolve()
    home = Path.home()
    if path == home:
        return "~"
    if path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)


def _safe(name: str) -> str:
    """A name that is one folder, whatever a server sends."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return "_" if safe in ("", ".", "..") else safe


def get_paths() -> Paths:
    home = os.environ.get("FR_TUI_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(config_dir=root / "config", data_dir=root / "data")
    xdg_config = os.environ.get("XDG_CONFIG_HOME")
    xdg_data = os.environ.get("XDG_DATA_HOME")
    if xdg_config:
        config_dir = Path(xdg_config).expanduser() / APP_NAME
    else:
        import platformdirs

        config_dir = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    if xdg_data:
        data_dir = Path(xdg_data).expanduser() / APP_NAME
    else:
        import platformdirs

        data_dir = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return Paths(config_dir=config_dir, data_dir=data_dir)
