"""Text from servers, files and users is shown as it is: never read as Textual markup,
never a crash (a message like "upstream [/api/v1] unavailable" once took the app down)."""

from __future__ import annotations

from pathlib import Path

from fr_tui.core.config import load_config
from fr_tui.core.models import Batch
from fr_tui.core.paths import get_paths
from fr_tui.tui.app import FrTuiApp
from fr_tui.tui.screens.batch_details import BatchDetailsScreen
from fr_tui.tui.screens.batches import BatchesScreen

from .test_shell import wait_for

SAMPLES = Path(__file__).resolve().parents[2] / "fr_tui" / "samples"
WEIRD = "upstream [/api/v1] unavailable [bold"


def screen_text(app: FrTuiApp) -> str:
    return "\n".join(
        "".join(segment.text for segment in strip)
        for strip in app.screen._compositor.render_strips()
    )


async def test_bracketed_server_text_shows_as_text() -> None:
    app = FrTuiApp(config=load_config(), paths=get_paths(), start_path=SAMPLES, sandbox=True)
    async with app.run_test(size=(120, 40)) as pilot:
        store = app.store
        batch = Batch.parse(
            {
                "id": "fr_batch-[/x]",
                "status": "failed",
                "created_at": 1_700_000_000,
                "errors": {"data": [{"code": "bad", "line": 2, "message": WEIRD}]},
            }
        )
        store.record_created(batch, origin="sandbox", profile="elsewhere", name="[/weird] name")
        running = Batch.parse({"id": "fr_batch-run", "status": "in_progress"})
        store.record_created(running, origin="sandbox", profile="elsewhere", name="running")
        store.mark_poll_error("sandbox", "fr_batch-run", WEIRD)
        app.notify(WEIRD, title="[/title]")
        app.open_batches(select="fr_batch-[/x]")
        # shown, and the navigation done (it selects the batch last)
        await wait_for(pilot, lambda: app.pending_batch_select is None)
        await wait_for(pilot, lambda: "[/weird] name" in screen_text(app))
        assert isinstance(app.screen, BatchesScreen)
        await app.push_screen(BatchDetailsScreen("fr_batch-[/x]"))
        await wait_for(pilot, lambda: WEIRD in screen_text(app))
        assert app.is_running


async def test_millisecond_timestamps_do_not_break_details() -> None:
    app = FrTuiApp(config=load_config(), paths=get_paths(), start_path=SAMPLES, sandbox=True)
    async with app.run_test(size=(80, 24)) as pilot:
        batch = Batch.parse(
            {"id": "fr_batch-ms", "status": "completed", "created_at": 1_700_000_000_000}
        )
        app.store.record_created(batch, origin="sandbox", profile="elsewhere")
        await app.push_screen(BatchDetailsScreen("fr_batch-ms"))
        # read as milliseconds, not year 55840
        await wait_for(pilot, lambda: "2023-11-14" in screen_text(app))
