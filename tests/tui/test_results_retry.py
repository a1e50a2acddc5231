"""Retrying from the results screen against the real sandbox: the chosen kinds of
failure only, a new batch with its lineage, its results merged (and not when they are
incomplete), and, in the real app, landing on Batches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from textual.widgets import Static

from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.validate import validate_path
from fr_tui.core.workflow import poll_batch
from fr_tui.tui.modals.retry import RetryModal
from fr_tui.tui.screens.results import ResultsScreen

from .conftest import run_batch
from .test_results_screen import Harness, loaded, status_of, wait_for


async def test_retry_only_the_chosen_kinds_of_failure(finished: Any) -> None:
    from textual.widgets import SelectionList

    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(app, pilot)
        await pilot.press("R")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, RetryModal)
        groups = modal.query_one("#retry-groups", SelectionList)
        groups.focus()
        await pilot.pause()
        # A 400 fails the same way again: not chosen until the user says so.
        invalid = next(g for g in modal.groups if g[1] == "invalid_request")
        assert invalid[0] not in modal.chosen and "missing" in modal.chosen
        # a box says what it is without colour: ▐X▌ chosen, ▐ ▌ not (as a screen reads)
        boxes = {
            groups.get_option_at_index(i).value: groups.render_line(i).text[:3]
            for i in range(len(modal.groups))
        }
        assert boxes[invalid[0]] == "▐ ▌" and boxes["missing"] == "▐X▌"
        # Walk the list with the keyboard: tick the 400s, untick the "missing" kind.
        for _ in range(len(modal.groups)):
            option = groups.get_option_at_index(groups.highlighted or 0)
            if option.value in ("missing", invalid[0]):
                await pilot.press("space")
            await pilot.press("down")
        await pilot.pause()
        assert "3 rows from 2 kinds of failure" in str(
            modal.query_one("#retry-preview", Static).content
        )
        modal.query_one("#retry-go").focus()
        await pilot.press("enter")
        await wait_for(lambda: app.opened_batches, pilot)
    record = HistoryStore(get_paths().history_db).find(batch_id)[0]
    retry_path = record.results_folder(get_paths()) / "retry-1.jsonl"
    ids = [msgspec.json.decode(line)["custom_id"] for line in retry_path.read_bytes().splitlines()]
    assert ids == ["fails-03", "fails-06", "fails-08"]  # fails-09 (missing) left out


async def test_retry_builds_validates_submits_and_merges(finished: Any, fails_file: Path) -> None:
    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("R")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, RetryModal)
        # server errors and the missing row are chosen, the 400 is not (it would fail again)
        preview = str(modal.query_one("#retry-preview", Static).content)
        assert preview.startswith("3 rows from 2 kinds of failure"), preview
        await pilot.press("enter")  # the Retry button has focus
        await wait_for(lambda: app.opened_batches, pilot)
        new_id = app.opened_batches[0]
        assert new_id and new_id != batch_id
    store = HistoryStore(get_paths().history_db)
    child = store.find(new_id)[0]
    assert child is not None and child.parent_batch_id == batch_id
    assert child.metadata and child.metadata.get("parent_batch_id") == batch_id
    retry_path = store.find(batch_id)[0].results_folder(get_paths()) / "retry-1.jsonl"
    assert child.input_path == str(retry_path.resolve())
    ids = [msgspec.json.decode(line)["custom_id"] for line in retry_path.read_bytes().splitlines()]
    assert ids == ["fails-03", "fails-08", "fails-09"]  # fails-06's 400 is not chosen
    assert validate_path(retry_path).valid
    # let the retry run (it fails again: same fault models), then the parent shows the merge
    for _ in range(300):
        batch, _old = await poll_batch(client, store, new_id)
        if batch.terminal:
            break
        await asyncio.sleep(0.02)
    app = Harness(get_paths(), client, new_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)  # downloads the child's results
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert screen.merged_children == [new_id]
        assert "merged 1 retry" in status_of(screen)
        assert screen.joined is not None and len(screen.joined) == 10


async def test_a_retry_whose_results_are_incomplete_is_not_merged(
    finished: Any, tmp_path: Path
) -> None:
    """A retry's result files are checked like the batch's own before they are merged
    over its failures: one cut short (an interrupted download) is left out, and said."""
    from fr_tui.core.export import build_retry_file
    from fr_tui.core.results import join_results
    from fr_tui.core.workflow import fetch_results

    batch_id, client = finished
    store = HistoryStore(get_paths().history_db)
    parent = store.find(batch_id)[0]
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)  # the parent's results are downloaded
    parent = store.find(batch_id)[0]
    with join_results(parent.input_path, parent.output_path, parent.error_path) as joined:
        plan = build_retry_file(joined, joined.input_path, tmp_path / "retry.jsonl")
    child_id = await run_batch(client, store, plan.path, parent_batch_id=batch_id)
    child = store.find(child_id)[0]
    # the same rows fail again (the same fault models): the retry has an error file
    _, errors = await fetch_results(client, store, child, child.results_folder(get_paths()))
    assert errors is not None
    whole = errors.read_bytes()
    errors.write_bytes(whole[: whole.index(b"\n") + 20])  # a line and a half
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert screen.merged_children == []
        assert any("incomplete" in str(n.message) for n in app._notifications)


async def test_in_the_real_app_retry_lands_on_batches(fails_file: Path) -> None:
    """Through FrTuiApp on its own sandbox: open results, retry, land on Batches."""
    from fr_tui.core.config import load_config
    from fr_tui.tui.app import FrTuiApp

    app = FrTuiApp(config=load_config(), paths=get_paths(), sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.client is not None
        batch_id = await run_batch(app.client, app.store, fails_file)
        app.open_results(batch_id)
        screen = await loaded(app, pilot)  # type: ignore[arg-type]
        assert screen.joined is not None and screen.joined.counts["missing"] == 1
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RetryModal)
        await pilot.press("enter")
        await wait_for(lambda: app.current_mode == "batches", pilot)
        await pilot.pause()
        assert not isinstance(app.screen, ResultsScreen)
        children = app.store.children("sandbox", batch_id)
        assert len(children) == 1 and children[0].input_rows == 3  # not the 400
        assert children[0].metadata is not None
        assert children[0].metadata["parent_batch_id"] == batch_id
