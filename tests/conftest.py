"""Shared fixtures: every test gets its own FR_TUI_HOME, and a real sandbox server on
loopback when it asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def fr_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "fr-home"
    monkeypatch.setenv("FR_TUI_HOME", str(home))
    # No test fetches a model catalog over the network (from the real service, above
    # all) unless it asks: tests of the catalog set FR_TUI_CATALOG=auto. The embedded
    # sandbox's catalog is local data and is read anyway.
    monkeypatch.setenv("FR_TUI_CATALOG", "cache")
    for name in ("FASTROUTER_API_KEY", "FASTROUTER_BASE_URL", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[object]:
    """A sandbox server at test speed: `sandbox.base_url`, `sandbox.set_faults({...})`."""
    from fr_tui.sandbox.server import SandboxServer

    with SandboxServer(state_dir=tmp_path / "sandbox-state", tick=0.01) as server:
        yield server


@pytest.fixture
def samples() -> Path:
    return Path(__file__).resolve().parent.parent / "fr_tui" / "samples"


@pytest.fixture
def slow_sandbox(tmp_path: Path) -> Iterator[object]:
    """Batches that stay in progress for a few seconds (cancel, two drivers)."""
    from fr_tui.sandbox.server import SandboxServer

    with SandboxServer(state_dir=tmp_path / "slow", tick=1.0) as server:
        yield server
