"""One navigation model (issue 10, items 1-3, 9, 15, 17): `2` shows the Batches list,
a batch's details and results are pushed on it, R retries from anywhere, the keys that
cannot apply are dimmed, and the list and details tell ok / failed / missing apart.
Driven through the real app against its embedded sandbox."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey

from fr_tui.core.workflow import poll_batch, submit_file
from fr_tui.tui.modals.retry import RetryModal
from fr_tui.tui.modals.submit import SubmitModal
from fr_tui.tui.screens.batch_details import BatchDetailsScreen
from fr_tui.tui.screens.batches import BatchesScreen
from fr_tui.tui.screens.files import FilesScreen
from fr_tui.tui.screens.help import HelpScreen
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.app_header import AppHeader

from .test_shell import SAMPLES, make_app, screen_text, wait_for


def sandbox_app() -> Any:
    app = make_app(sandbox=True, sandbox_tick=0.01)
    app.config.auto_download = False  # R and o must fetch the results themselves
    return app


async def finished(app: Any, path: Path, **kwargs: Any) -> str:
    """Submit `path` to the app's sandbox and wait (on the server) for it to end."""
    record = await submit_file(app.client, app.store, path, profile="sandbox", **kwargs)
    for _ in range(500):
        batch, _ = await poll_batch(app.client, app.store, record.id)
        if batch.terminal:
            break
        await asyncio.sleep(0.02)
    from fr_tui.tui.messages import BatchesChanged

    app.broadcast(BatchesChanged([record.id]))
    return record.id


def header(app: Any) -> str:
    found = app.screen.query(AppHeader)
    return str(found.first().render()) if found else ""


def footer_key(app: Any, key: str) -> FooterKey | None:
    return next((k for k in app.screen.query(FooterKey) if k.key == key), None)


def said(app: Any, message: str) -> bool:
    return any(n.message == message for n in app._notifications)


def on_list(app: Any) -> bool:
    return app.current_mode == "batches" and isinstance(app.screen, BatchesScreen)


async def test_2_always_shows_the_list_and_a_submit_lands_on_it_selected() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        old = await finished(app, SAMPLES / "server_fails.jsonl", name="nightly eval")
        app.open_results(old)
        await wait_for(pilot, lambda: "2 Batches › nightly eval › Results" in header(app))
        await pilot.press("2")  # from Results: the list, not where Batches was left
        await wait_for(pilot, lambda: on_list(app))
        app.screen.select_batch(old)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: "2 Batches › nightly eval " in header(app) and "Results" not in header(app),
        )
        await pilot.press("o")
        # not the name twice: Results under the details of its batch
        await wait_for(pilot, lambda: "2 Batches › nightly eval › Results" in header(app))
        assert header(app).count("nightly eval") == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.press("2")  # on details too
        await wait_for(pilot, lambda: on_list(app))
        # Leave Results of the old batch open, go to Files, submit: the list shows,
        # with the new batch selected.
        app.open_results(old)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen))
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen))
        app.open_file(SAMPLES / "chat.jsonl")
        await wait_for(pilot, lambda: app.screen.report is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
        await pilot.press("enter")
        await wait_for(pilot, lambda: on_list(app) and len(app.store.batches()) == 2)
        new = next(r.id for r in app.store.batches() if r.id != old)
        await wait_for(pilot, lambda: app.screen.highlighted_key() == new)
        assert app.screen_stack == [app.screen]  # nothing left above the list


async def test_1_always_shows_files() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.action_open_settings()
        await wait_for(pilot, lambda: "Settings" in header(app))
        await pilot.pause()
        await pilot.press("2")
        await wait_for(pilot, lambda: on_list(app))
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen))
        assert len(app.screen_stack) == 1


@pytest.mark.parametrize("where", ["list", "details"])
async def test_R_opens_the_same_retry_preview_as_results(where: str) -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl")
        assert not app.store.get("sandbox", batch_id).output_path  # not downloaded yet
        app.open_batches(select=batch_id)
        await wait_for(pilot, lambda: on_list(app) and app.screen.highlighted_key() == batch_id)
        if where == "details":
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RetryModal))
        modal = app.screen
        await wait_for(pilot, lambda: modal.phase == "ready")
        # downloaded on the way, and the same kinds of failure as on Results
        assert app.store.get("sandbox", batch_id).output_path
        kinds = {key for key, *_ in modal.groups}
        assert "missing" in kinds and sum(g[3] for g in modal.groups) == 4
        await pilot.press("enter")  # Retry (the button has focus)
        await wait_for(pilot, lambda: len(app.store.children("sandbox", batch_id)) == 1)
        child = app.store.children("sandbox", batch_id)[0].id
        await wait_for(pilot, lambda: on_list(app) and app.screen.highlighted_key() == child)


async def test_a_batch_with_only_missing_rows_retries_from_the_list(tmp_path: Path) -> None:
    rows = (SAMPLES / "chat.jsonl").read_bytes().splitlines()
    dropped = []
    for index in (2, 7):
        row = msgspec.json.decode(rows[index])
        row["body"]["model"] = "sandbox/drop"
        rows[index] = msgspec.json.encode(row)
        dropped.append(row["custom_id"])
    path = tmp_path / "drops.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    app = sandbox_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, path, metadata={})
        record = app.store.get("sandbox", batch_id)
        assert record.status == "completed" and not record.request_failed
        app.open_batches(select=batch_id)
        await wait_for(pilot, lambda: on_list(app) and app.screen.highlighted_key() == batch_id)
        assert "? 2" in str(app.screen.table.get_cell(batch_id, "progress"))
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RetryModal))
        modal = app.screen
        await wait_for(pilot, lambda: modal.phase == "ready")
        assert [(key, count) for key, _c, _m, count in modal.groups] == [("missing", 2)]
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.store.children("sandbox", batch_id)) == 1)
        retry_file = Path(app.store.children("sandbox", batch_id)[0].input_path)
        assert [
            msgspec.json.decode(line)["custom_id"] for line in retry_file.read_bytes().splitlines()
        ] == (dropped)


async def test_c_and_R_are_dimmed_where_they_cannot_apply() -> None:
    app = sandbox_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        done = await finished(app, SAMPLES / "chat.jsonl")  # completed, every row ok
        running = (
            await submit_file(
                app.client,
                app.store,
                SAMPLES / "chat.jsonl",
                profile="sandbox",
                metadata={"sandbox_fault": "hang_validating"},
                allow_duplicate=True,  # the same file again, on purpose
            )
        ).id
        app.open_batches(select=done)
        await wait_for(pilot, lambda: on_list(app) and app.screen.highlighted_key() == done)
        await pilot.pause()
        assert footer_key(app, "c").has_class("-disabled")
        assert footer_key(app, "R").has_class("-disabled")
        await pilot.press("c")
        # no "cancel?" question for a finished batch, but a word on why not
        await wait_for(pilot, lambda: said(app, "It has ended: nothing to cancel."))
        assert on_list(app)
        await pilot.press("R")
        await wait_for(pilot, lambda: said(app, "Nothing to retry: every row is ok."))
        assert on_list(app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = dict(app.screen.sections()[0][1])
        assert rows["c"].endswith("— not now. It has ended: nothing to cancel.")
        assert rows["="] == "Compare with…: Compare the marked batch or job (m) with this one"
        await pilot.press("escape")
        await wait_for(pilot, lambda: on_list(app))
        app.screen.select_batch(running)
        await wait_for(pilot, lambda: not footer_key(app, "c").has_class("-disabled"))
        assert footer_key(app, "R").has_class("-disabled")
        await pilot.press("R")
        await wait_for(pilot, lambda: said(app, "It is still running: retry once it has ended."))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.pause()
        assert not footer_key(app, "c").has_class("-disabled")
        assert footer_key(app, "R").has_class("-disabled")


async def test_profile_column_at_120_and_filter_at_any_width() -> None:
    app = sandbox_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        mine = await finished(app, SAMPLES / "chat.jsonl", name="mine")
        theirs = (
            await submit_file(
                app.client,
                app.store,
                SAMPLES / "chat.jsonl",
                profile="staging",
                name="theirs",
                allow_duplicate=True,  # the same file again, on purpose
            )
        ).id
        app.open_batches(select=mine)
        await wait_for(pilot, lambda: on_list(app) and theirs in app.screen.table.order)
        screen = app.screen
        table = screen.query_one(DataTable)
        assert "Profile" in [str(c.label) for c in table.columns.values()]
        assert str(table.get_cell(theirs, "profile")) == "staging"
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "profile" not in [c.key for c in screen._columns])
        for _ in range(8):
            if screen.filter_mode == "profile:staging":
                break
            await pilot.press("f")
        assert screen.filter_mode == "profile:staging"
        assert screen.table.order == [theirs]
        assert "filter: profile:staging" in screen_text(app)


async def test_list_and_details_tell_ok_failed_and_missing_apart() -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl", metadata={"team": "evals"})
        app.open_batches(select=batch_id)
        await wait_for(pilot, lambda: on_list(app) and batch_id in app.screen.table.order)
        table = app.screen.table
        status = str(table.get_cell(batch_id, "status"))
        assert status.startswith("!") and "✓" not in status
        assert str(table.get_cell(batch_id, "progress")) == "✓ 6 ✗ 3 ? 1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.pause()
        details = app.screen
        counts = str(details.query_one("#details-counts", Static).render())
        assert "✓ 6 ok" in counts and "✗ 3 failed" in counts and "? 1 missing" in counts
        assert not details.query_one("#details-progress").display  # no 90% bar
        head = str(details.query_one("#details-head", Static).render())
        assert "model openai/gpt-4.1-nano" in head and "chat/completions" in head
        assert "team: evals" in str(details.query_one("#details-metadata", Static).render())
        errors_title = str(details.query_one("#details-errors-title", Static).render())
        assert errors_title == "Batch errors: none (4 rows failed or missing: see Results)"


async def test_results_title_stays_live_until_the_batch_ends(tmp_path: Path) -> None:
    path = tmp_path / "slow.jsonl"
    shutil.copy(SAMPLES / "chat.jsonl", path)
    app = make_app(sandbox=True, sandbox_tick=0.15)
    app.poller.interval = 0.05
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        record = await submit_file(app.client, app.store, path, profile="sandbox")
        app.poller.watch(record.origin, record.id)
        app.open_results(record.id)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and header(app))
        title = app.screen.query_one("#results-title", Static)
        await wait_for(pilot, lambda: "completed" not in str(title.render()))
        await wait_for(pilot, lambda: "completed" in str(title.render()), timeout=20)
        await wait_for(pilot, lambda: app.screen.joined is not None)  # loaded by itself
