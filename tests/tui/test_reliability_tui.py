"""Issue 9 in the TUI: a FIFO in Files, a second submit of the same file, results cut
short by an older fr-tui, submits left unfinished by a killed run; and issue 10 item 3:
every batch is polled with its own profile, whichever profile is active."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from textual.widgets import Static

from fr_tui.core.api import BatchClient
from fr_tui.core.config import Profile, load_config
from fr_tui.core.paths import get_paths
from fr_tui.core.workflow import fetch_results, poll_batch, submit_file
from fr_tui.tui.app import FrTuiApp
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.modals.submit import SubmitModal
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.jsonl_tree import JsonlTree

from .test_batches import SandboxClock, open_batches, status_cell
from .test_shell import SAMPLES, make_app, wait_for


async def test_enter_on_a_fifo_says_so_and_the_ui_stays_responsive(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    fifo = folder / "stream.jsonl"
    os.mkfifo(fifo)
    hung = threading.Event()

    def unblock() -> None:  # a reader stuck on the FIFO gets a writer, so the test ends
        hung.set()
        open(fifo, "wb").close()  # noqa: SIM115

    watchdog = threading.Timer(10, unblock)
    watchdog.daemon = True
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query(JsonlTree)))
        tree = app.screen.query_one(JsonlTree)
        tree.focus()
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.last_line >= 1)
        watchdog.start()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: any("FIFO" in n.message for n in app._notifications))
        await pilot.press("2")  # the UI still answers keys
        await wait_for(pilot, lambda: app.current_mode == "batches")
    watchdog.cancel()
    assert not hung.is_set()


def uploads(app: Any) -> set[str]:
    files = app.sandbox_server.app.store.files
    return {file_id for file_id, record in files.items() if record["purpose"] == "batch"}


async def test_the_submit_modal_asks_before_submitting_the_same_file_again() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.client is not None)
        first = await submit_file(app.client, app.store, SAMPLES / "chat.jsonl", profile="sandbox")
        files = app.screen
        await wait_for(pilot, lambda: getattr(files, "report", None) is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
        modal = app.screen
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert first.id in str(app.screen.query_one("#confirm-body", Static).render())
        # nothing was uploaded (the first batch's own output may have come meanwhile)
        assert uploads(app) == {first.input_file_id}
        await pilot.press("n")
        await wait_for(pilot, lambda: modal.phase == "failed")
        assert "Not submitted" in str(modal.query_one("#submit-error", Static).render())
        assert [r.id for r in app.store.batches()] == [first.id]
        await pilot.pause(0.3)  # a button ignores presses during its 0.2 s press effect
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.store.batches()) == 2)


async def test_results_cut_short_by_an_older_fr_tui_are_downloaded_again(
    sandbox: Any, tmp_path: Path
) -> None:
    paths = get_paths()
    app = FrTuiApp(config=load_config(), paths=paths, base_url=sandbox.base_url)
    app.config.profiles["default"].api_key = "sk-results"
    async with BatchClient(sandbox.base_url, "sk-results") as client:
        record = await submit_file(
            client, app.store, SAMPLES / "server_fails.jsonl", profile="default"
        )
        while not (await poll_batch(client, app.store, record.id))[0].terminal:
            pass
        [done] = app.store.batches()
        output, _ = await fetch_results(client, app.store, done, done.results_folder(paths))
    assert output is not None
    whole = output.read_bytes()
    # What an fr-tui that did not check downloads kept: whole lines, then part of one.
    output.write_bytes(whole[: whole.index(b"\n", 300) + 30])
    with sqlite3.connect(paths.history_db) as conn:
        try:  # and it never recorded a checked size
            conn.execute("UPDATE batches SET output_verified_bytes = NULL")
        except sqlite3.OperationalError:
            pass  # a history from before checked sizes
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(record.id)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.joined is not None, timeout=15)
        assert screen.joined.counts == {"total": 10, "ok": 6, "failed": 3, "missing": 1}
        assert output.read_bytes() == whole
        assert any("downloading it again" in n.message for n in app._notifications)


async def test_a_submit_a_killed_run_left_is_recovered_when_the_app_starts() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES)
    # What a `fr-tui --sandbox submit` SIGKILLed after its create left: the batch on the
    # server, an intent 'creating' in history, and no process holding its lock.
    from fr_tui.core.intents import CREATING, Intent, IntentLog, new_token
    from fr_tui.sandbox.server import SandboxServer

    with SandboxServer(state_dir=get_paths().sandbox_dir, tick=0.05) as server:
        async with BatchClient(server.base_url, "sk-x", origin="sandbox") as client:
            uploaded = await client.upload_file(SAMPLES / "chat.jsonl")
            intent = Intent(token=new_token(), origin="sandbox", input_path="/data/chat.jsonl")
            intents = IntentLog(app.store)
            intents.add(intent)
            intents.set_state(intent.token, CREATING, input_file_id=uploaded.id)
            batch = await client.create_batch(
                uploaded.id, "/v1/chat/completions", metadata={"fr_tui_submit": intent.token}
            )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.reconciled_at is not None)
        assert [r.id for r in app.store.batches()] == [batch.id]
        assert any(
            f"Recovered {batch.id} from an interrupted submit of /data/chat.jsonl" in n.message
            for n in app._notifications
        )
        screen = await open_batches(app, pilot)
        await wait_for(pilot, lambda: batch.id in screen.table.order)


async def test_each_batch_is_polled_with_its_own_profile(sandbox: Any) -> None:
    """A batch of the sandbox keeps moving after switching to another profile, and one
    of the other profile's server is followed while the sandbox is active."""
    config = load_config()
    config.profiles["remote"] = Profile("remote", base_url=sandbox.base_url, api_key="sk-remote")
    app = FrTuiApp(config=config, paths=get_paths(), sandbox=True, sandbox_tick=1.0)
    app.config.auto_download = False
    app.poller.interval = 0.03
    async with app.run_test(size=(120, 40)) as pilot:
        clock = SandboxClock()
        app.sandbox_server.app.store.clock = clock
        local = await submit_file(app.client, app.store, SAMPLES / "chat.jsonl", profile="sandbox")
        async with BatchClient(sandbox.base_url, "sk-remote") as remote_client:
            remote = await submit_file(
                remote_client,
                app.store,
                SAMPLES / "embeddings.jsonl",
                profile="remote",
                metadata={"sandbox_fault": "hang_validating"},
            )
        screen = await open_batches(app, pilot)
        await wait_for(pilot, lambda: "validating" in status_cell(screen, local.id))
        # The remote batch is cancelled on its server: the list must see it, though the
        # sandbox profile is the active one.
        async with BatchClient(sandbox.base_url, "sk-remote") as remote_client:
            await remote_client.cancel_batch(remote.id)
        await wait_for(pilot, lambda: "cancel" in status_cell(screen, remote.id))
        app.set_profile("remote", save=False)
        clock.now += 1000  # the sandbox batch finishes while another profile is active
        await wait_for(pilot, lambda: "completed" in status_cell(screen, local.id))
        assert app.store.get("sandbox", local.id).status == "completed"
        stamp = time.time()
        assert app.store.get(remote.origin, remote.id).last_polled_at <= stamp


async def test_interrupted_submits_of_every_profiles_server_are_settled(sandbox: Any) -> None:
    """A killed run left a create in flight on another profile's server: the start-up
    reconcile settles it too (with that profile's key), and `l` looks up an unknown one
    there, whichever profile is active."""
    from fr_tui.core.intents import CREATING, UNKNOWN, Intent, IntentLog, new_token

    config = load_config()
    config.profiles["remote"] = Profile("remote", base_url=sandbox.base_url, api_key="sk-remote")
    app = FrTuiApp(config=config, paths=get_paths(), sandbox=True, sandbox_tick=0.05)
    intents = IntentLog(app.store)

    async def created_then_lost(state: str, name: str) -> tuple[Intent, Any]:
        """What a run that died during its create left: the batch, and an intent."""
        async with BatchClient(sandbox.base_url, "sk-remote") as client:
            uploaded = await client.upload_file(SAMPLES / "chat.jsonl")
            intent = Intent(new_token(), client.origin, profile="remote", input_path=name)
            intents.add(intent)
            intents.set_state(intent.token, state, input_file_id=uploaded.id)
            batch = await client.create_batch(
                uploaded.id, "/v1/chat/completions", metadata={"fr_tui_submit": intent.token}
            )
        return intent, batch

    killed, killed_batch = await created_then_lost(CREATING, "killed.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.reconciled_at is not None)
        assert app.store.get(killed.origin, killed_batch.id) is not None
        lost, lost_batch = await created_then_lost(UNKNOWN, "lost.jsonl")
        screen = await open_batches(app, pilot)
        screen.reload()
        await wait_for(pilot, lambda: f"unknown:{lost.token}" in screen.table.order)
        screen.table.move_cursor(row=screen.table.order.index(f"unknown:{lost.token}"))
        await pilot.press("l")
        await wait_for(pilot, lambda: app.store.get(lost.origin, lost_batch.id) is not None)
