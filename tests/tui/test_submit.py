"""Submitting from the Files screen: recorded at once, refused when invalid, cancellable,
errors shown with a retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Static

from fr_tui.core.intents import IN_FLIGHT, IntentLog
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.tui.modals.submit import SubmitModal, parse_metadata

from .test_shell import SAMPLES, SIZES, make_app, screen_text, wait_for


async def open_submit(pilot: Any, app: Any) -> SubmitModal:
    await pilot.pause()
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
    await pilot.pause()
    return app.screen


@pytest.mark.parametrize("size", SIZES)
async def test_submit_valid_file_records_it_and_moves_to_batches(size: tuple[int, int]) -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=size) as pilot:
        modal = await open_submit(pilot, app)
        assert "/v1/chat/completions (detected)" in screen_text(app)
        assert "24h" in screen_text(app)
        modal.query_one("#submit-name", Input).value = "first try"
        modal.query_one("#submit-metadata", Input).value = "project=demo team=x"
        await pilot.press("enter")  # the Submit button has focus
        await wait_for(pilot, lambda: app.store.batches())
        record = app.store.batches()[0]
        assert record.name == "first try"
        assert record.input_path == str((SAMPLES / "chat.jsonl").resolve())
        assert record.input_rows == 12
        assert record.metadata is not None
        assert {k: record.metadata[k] for k in ("project", "team")} == {
            "project": "demo",
            "team": "x",
        }
        await wait_for(pilot, lambda: app.current_mode == "batches")
    # the record is on disk, not only in memory
    assert HistoryStore(get_paths().history_db).get("sandbox", record.id) is not None


@pytest.mark.parametrize("size", SIZES)
async def test_invalid_file_is_refused_with_its_reason(size: tuple[int, int]) -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=size) as pilot:
        modal = await open_submit(pilot, app)
        refusal = str(modal.query_one("#submit-refusal", Static).render())
        assert "cannot be submitted" in refusal and "line 2" in refusal
        assert not modal.query("#submit-go")  # nothing to confirm
        assert not modal.query("#submit-split")  # within the limits: no split offered
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SubmitModal)
        assert app.store.batches() == []


async def test_a_file_edited_after_it_was_checked_is_not_uploaded(tmp_path: Path) -> None:
    """The modal shows the report and estimate of the last validation; a file edited since
    (in another pane, say) would be uploaded unchecked. It is refused, and nothing goes."""
    path = tmp_path / "edited.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.report is not None)
        files = app.screen
        modal = await open_submit(pilot, app)
        with path.open("ab") as out:  # an invalid line, after the check said "valid"
            out.write(b'{"custom_id": "late", "body": "not a request"}\n')
        await pilot.press("enter")  # the Submit button has focus
        await wait_for(pilot, lambda: modal.phase == "stale")
        error = str(modal.query_one("#submit-error", Static).render())
        assert "edited.jsonl changed since it was checked; nothing was uploaded" in error
        assert app.sandbox_server.app.store.files == {}
        # its one way on: the file as it is now is read and checked again
        assert str(modal.query_one("#submit-go", Button).label) == "Check again ⏎"
        await pilot.press("enter")
        await wait_for(pilot, lambda: files.report is not None and not files.report.valid)
        assert len(files.index) == 13
        # and the dialog comes again with what the check found: the line is refused
        await wait_for(
            pilot, lambda: isinstance(app.screen, SubmitModal) and app.screen is not modal
        )
        assert app.screen.query("#submit-refusal") and not app.screen.query("#submit-go")
    assert HistoryStore(get_paths().history_db).batches() == []


async def test_over_the_limits_offers_to_run_it_as_a_job(tmp_path: Path) -> None:
    """A file over one batch's limits (and otherwise valid) runs as a job: parts, retry
    rounds, one merged result; the Batches list shows it selected, and it runs."""
    from fr_tui.core.jobs_store import JobStore
    from fr_tui.tui.screens.batches import BatchesScreen

    data = tmp_path / "data"
    data.mkdir()
    path = data / "many.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    app.config.profile("sandbox").max_rows = 5
    app.jobs_driver.interval = 0.03
    app.poller.interval = 0.03
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_submit(pilot, app)
        assert "5" in str(modal.query_one("#submit-refusal", Static).render())
        await pilot.click("#submit-job")
        await wait_for(pilot, lambda: JobStore(app.store).jobs())
        job = JobStore(app.store).jobs()[0]
        assert (job.settings.max_rows, job.input_path) == (5, str(path))
        await wait_for(pilot, lambda: isinstance(app.screen, BatchesScreen))
        await wait_for(pilot, lambda: app.screen.highlighted_key() == f"job:{job.id}")
        await wait_for(pilot, lambda: JobStore(app.store).get(job.id).status == "completed")
        assert len(JobStore(app.store).parts(job.id)) == 3  # 12 rows in parts of 5
        assert app.store.batches() != [] and not list(data.glob("many.part*"))


async def test_a_job_shows_its_cost_parts_and_rounds_and_waits_for_a_deliberate_yes(
    tmp_path: Path, fr_home: Path
) -> None:
    """Users pay for a job: before it is made, the dialog says what it will cost (as
    `fr-tui estimate` says), in how many parts and rounds; a stray enter makes nothing."""
    import json
    from decimal import Decimal

    from fault_helpers import run

    from fr_tui.core.jobs_store import JobStore
    from fr_tui.core.units import money
    from fr_tui.tui.widgets.cost_lines import EstimateLine

    path = tmp_path / "many.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    cli = run("--sandbox", "estimate", str(path), "--json", home=fr_home)
    assert cli.returncode == 0, cli.stderr
    estimate = json.loads(cli.stdout)
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    app.config.profile("sandbox").max_rows = 5
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_submit(pilot, app)
        await wait_for(pilot, lambda: modal.query_one(EstimateLine).checked)
        await pilot.pause()
        text = screen_text(app)
        assert money(Decimal(str(estimate["cost_high"]))) in text, text
        assert "3 parts of at most 5 rows" in text, text  # 12 rows
        assert "up to 3 rounds" in text, text
        assert "Run as a job (j)" in text
        await pilot.press("enter")  # a stray enter: the dialog closes, nothing is made
        await wait_for(pilot, lambda: not isinstance(app.screen, SubmitModal))
        assert JobStore(app.store).jobs() == []
        modal = await open_submit(pilot, app)
        await pilot.press("j")  # the deliberate key
        await wait_for(pilot, lambda: JobStore(app.store).jobs())
        job = JobStore(app.store).jobs()[0]
        assert job.estimate_high == Decimal(str(estimate["cost_high"]))


async def test_a_file_that_ran_as_a_job_is_asked_about_before_it_runs_again(
    tmp_path: Path, fr_home: Path
) -> None:
    """Every row of a second job is paid for again: like `run` (which wants --new), the
    TUI asks first, and no makes nothing."""
    from fr_tui.core.jobs_store import COMPLETED, JobStore
    from fr_tui.tui.modals.confirm import ConfirmModal

    path = tmp_path / "many.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    app.config.profile("sandbox").max_rows = 5
    app.jobs_driver.interval = 0.03
    jobs = JobStore(app.store)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_submit(pilot, app)
        await pilot.press("j")
        await wait_for(pilot, lambda: [j.status for j in jobs.jobs()] == [COMPLETED], 60)
        await pilot.press("1")
        modal = await open_submit(pilot, app)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        body = str(app.screen.query_one("#confirm-body", Static).render())
        assert f"ran as job {jobs.jobs()[0].id} (completed" in body and "paid for again" in body
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is modal)
        assert len(jobs.jobs()) == 1
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(jobs.jobs()) == 2)


async def test_cancel_upload_records_nothing() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        app.sandbox_server.set_faults({"latency": 3.0, "path_prefix": "/v1/files"})
        modal = await open_submit(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: modal.phase == "uploading")  # held by the server
        await pilot.press("escape")  # a bare escape does not cancel an upload
        assert modal.phase in ("hashing", "uploading")
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: modal.phase == "cancelled")
        assert "nothing was submitted" in str(modal.query_one("#submit-error", Static).render())
        # the intent is settled: nothing runs, and nothing can have made a batch
        await wait_for(pilot, lambda: not IntentLog(app.store).in_states(IN_FLIGHT))
        assert app.store.batches() == [] and IntentLog(app.store).unknown() == []
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SubmitModal)


async def test_server_error_is_shown_with_a_retry() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        app.sandbox_server.set_faults(
            {"status": 500, "path_prefix": "/v1/files", "methods": ["POST"]}
        )
        modal = await open_submit(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: modal.phase == "failed")
        assert "✖" in str(modal.query_one("#submit-error", Static).render())
        go = modal.query_one("#submit-go", Button)
        assert "Retry" in str(go.label) and app.focused is go
        app.sandbox_server.set_faults({})  # the server recovers
        await pilot.pause(0.3)  # a button ignores presses during its 0.2 s press effect
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.store.batches())
        await wait_for(pilot, lambda: app.current_mode == "batches")


async def test_too_many_metadata_pairs_are_refused_with_the_servers_limit() -> None:
    """fr-tui keeps one of the server's 16 pairs for itself: 15 fit, and the modal says
    so however many are given (the CLI says the same)."""
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_submit(pilot, app)
        for pairs in (16, 17):
            modal.query_one("#submit-metadata", Input).value = " ".join(
                f"k{i}=v" for i in range(pairs)
            )
            modal.start_submit()
            await wait_for(pilot, lambda: "pairs" in error_of(modal))
            error = error_of(modal)
            assert f"metadata has {pairs} pairs; at most 15 fit" in error, error
            modal.query_one("#submit-error", Static).update("")
        assert app.sandbox_server.app.store.files == {}


def error_of(modal: SubmitModal) -> str:
    return str(modal.query_one("#submit-error", Static).render())


def test_parse_metadata() -> None:
    assert parse_metadata("a=1 b=two, c=x=y") == {"a": "1", "b": "two", "c": "x=y"}
    assert parse_metadata("  ") == {}
    with pytest.raises(ValueError):
        parse_metadata("novalue")


def test_snapshot_submit_modal(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await open_submit(pilot, pilot.app)

    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_submit_refused(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await open_submit(pilot, pilot.app)

    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "broken.jsonl")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def test_a_file_edited_after_it_was_checked_is_not_made_a_job(tmp_path: Path) -> None:
    """As a submit refuses it: a job made of it would fail at once, and stay in history."""
    from fr_tui.core.jobs_store import JobStore

    path = tmp_path / "edited.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    app.config.profile("sandbox").max_rows = 5  # over the limits: a job is offered
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_submit(pilot, app)
        with path.open("ab") as out:  # an invalid line, after the check
            out.write(b'{"custom_id": "late", "body": "not a request"}\n')
        await pilot.click("#submit-job")
        await wait_for(pilot, lambda: modal.phase == "stale")
        error = str(modal.query_one("#submit-error", Static).render())
        assert "edited.jsonl changed since it was checked; no job was made" in error, error
        assert JobStore(app.store).jobs() == []
