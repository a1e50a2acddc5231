"""core/ never imports Textual, and headless commands do not load it (start-up cost)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fr_tui.core

CORE = [f"fr_tui.core.{m.name}" for m in pkgutil.iter_modules(fr_tui.core.__path__)]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_core_never_imports_textual() -> None:
    assert len(CORE) >= 8
    modules = loaded_after("\n".join(f"import {m}" for m in CORE))
    # (rich may be loaded: httpx imports it for its own CLI when it is installed)
    assert "textual" not in modules


def test_the_tui_starts_without_the_http_client(fr_home: object) -> None:
    """httpx (and ssl contexts, h11...) cost start-up time; the client is made on first
    use, after the first frame."""
    code = (
        "from fr_tui.core.config import load_config\n"
        "from fr_tui.core.paths import get_paths\n"
        "from fr_tui.tui.app import FrTuiApp\n"
        "class FirstFrame(FrTuiApp):\n"
        "    def on_ready(self):\n"
        "        import sys; print('\\n'.join(sys.modules), flush=True); self.exit()\n"
        "FirstFrame(config=load_config(), paths=get_paths()).run(headless=True, size=(80, 24))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(done.stdout.split())
    assert "fr_tui.tui.screens.files" in modules or "fr_tui.tui.screens.welcome" in modules
    assert "httpx" not in modules and "fr_tui.core.api" not in modules


def test_headless_commands_do_not_load_textual(tmp_path) -> None:
    code = (
        "import sys; from fr_tui import cli\n"
        "sys.argv = ['fr-tui', 'paths']\n"
        "try:\n    cli.main(['paths'])\nexcept SystemExit:\n    pass\n"
        "import fr_tui.headless"
    )
    assert "textual" not in loaded_after(code)


def test_genai_prices_is_never_imported_at_start_up_or_by_validate(samples, monkeypatch) -> None:
    """genai-prices pulls in pydantic (a noticeable start-up cost): it is imported only
    when an estimate needs a price that the catalog lacks."""
    monkeypatch.setenv("FR_TUI_CATALOG", "auto")  # validate with the sandbox's catalog
    code = (
        "from fr_tui import cli\n"
        f"cli.main(['--sandbox', 'validate', {str(samples / 'broken.jsonl')!r}])\n"
        "import fr_tui.headless, fr_tui.tui.app, fr_tui.core.estimate, fr_tui.core.prices"
    )
    loaded = loaded_after(code)
    assert "fr_tui.core.precheck" in loaded  # the catalog checks did run
    assert "genai_prices" not in loaded and "pydantic" not in loaded
