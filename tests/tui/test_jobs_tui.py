"""Jobs in the TUI (issue 11): a job is one row in the Batches list (expandable to its
batches), its details and its merged results, driven by the app while it is open, and
never by two processes at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from job_helpers import add_job, write_input

from fr_tui.core.config import load_config
from fr_tui.core.jobs_control import job_lock
from fr_tui.core.jobs_store import JobStore
from fr_tui.core.paths import get_paths
from fr_tui.tui.screens.batches import BatchesScreen
from fr_tui.tui.screens.job_details import JobDetailsScreen
from fr_tui.tui.screens.job_results import JobResultsScreen


def make_app(tick: float = 0.01) -> Any:
    from fr_tui.tui.app import FrTuiApp

    app = FrTuiApp(config=load_config(), paths=get_paths(), sandbox=True, sandbox_tick=tick)
    app.config.auto_download = False
    app.poller.interval = 0.03
    app.jobs_driver.interval = 0.03
    return app


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.03)


def said(app: Any, start: str) -> bool:
    return any(n.message.startswith(start) for n in app._notifications)


def batches_screen(app: Any) -> BatchesScreen:
    for stack in app._screen_stacks.values():
        for screen in stack:
            if isinstance(screen, BatchesScreen):
                return screen
    raise AssertionError("no batches screen")


def cell(screen: BatchesScreen, key: str, column: str) -> str:
    return str(screen.table.get_cell(key, column)) if key in screen.table.order else ""


async def test_a_job_runs_in_the_app_as_one_row_that_expands_to_its_batches(
    tmp_path: Path,
) -> None:
    path = write_input(tmp_path / "in.jsonl", 60, "sandbox/flaky-20")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=20)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: "completed" in cell(screen, key, "status"))
        # one row for the job: its batches are under it, hidden until it is expanded
        assert screen.table.order == [key]
        assert "✓ 60" in cell(screen, key, "progress")
        assert cell(screen, key, "name").startswith("▸ in.jsonl")
        screen.select_batch(key)
        await pilot.press("space")
        made = JobStore(app.store).batch_ids(job.id)
        assert len(made) == 4  # 3 parts, and one more round for the flaky rows
        assert screen.table.order == [key, *made]
        # drawn as a tree: every batch but the last on a branch that goes on
        assert cell(screen, made[0], "name").startswith("  ├ part 1")
        assert [cell(screen, b, "name")[:3] for b in made] == ["  ├", "  ├", "  ├", "  └"]
        assert cell(screen, key, "name").startswith("▾")
        await pilot.press("space")
        assert screen.table.order == [key]
        await pilot.press("c", "R")  # they cannot apply to an ended job: they say why
        await wait_for(pilot, lambda: said(app, "It has ended: nothing to cancel."))
        await wait_for(pilot, lambda: said(app, "A job retries its failed rows by itself"))
        # enter: the job's details; o there: its merged rows, offline from the file
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailsScreen))
        details = app.screen
        assert details.table.row_count == 4
        assert "✓ 60 ok · ✗ 0 failed · ? 0 missing · of 60 rows" in str(
            details.query_one("#job-summary").render()
        )
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, JobResultsScreen))
        results = app.screen
        await wait_for(pilot, lambda: results.joined is not None)
        assert results.joined.counts == {"total": 60, "ok": 60, "failed": 0, "missing": 0}
        assert results.joined.custom_ids[59] == "row-00059"
        assert results.check_action("retry", ()) is False  # a job retries by itself
        await wait_for(pilot, lambda: any("Job finished" in n.title for n in app._notifications))
        # a job's batches do not each ring the bell: the job says once when it ends
        assert not any(n.title == "Batch finished" for n in app._notifications)


async def test_a_job_another_process_drives_is_watched_not_driven(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", 20, "openai/gpt-4.1-nano")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        elsewhere = job_lock(app.store, job.id)
        assert elsewhere.acquire(wait=False)  # "another process" holds the job's lock
        try:
            await pilot.press("2")
            screen = batches_screen(app)
            await wait_for(pilot, lambda: job.id in app.jobs_driver.elsewhere)
            screen.reload()
            screen.select_batch(f"job:{job.id}")
            await pilot.pause(0.1)
            hint = str(screen.query_one("#batches-hint").render())
            assert "driven by another fr-tui process: watching" in hint
            assert JobStore(app.store).get(job.id).status == "planning"  # untouched
            assert app.sandbox_server.app.store.batches == {}
        finally:
            elsewhere.release()
        await wait_for(pilot, lambda: JobStore(app.store).get(job.id).status == "completed")


async def test_cancel_a_job_from_its_details(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    app = make_app(tick=5.0)  # its batches stay in progress
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        await wait_for(pilot, lambda: len(JobStore(app.store).batch_ids(job.id)) == 3)
        app.push_screen(JobDetailsScreen(job.id))
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailsScreen))
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#confirm-yes"))
        await pilot.press("y")
        await wait_for(pilot, lambda: JobStore(app.store).get(job.id).status == "cancelled")
        statuses = {b["status"] for b in app.sandbox_server.app.store.batches.values()}
        assert statuses <= {"cancelling", "cancelled"}
        # once its batches have stopped, what they answered is merged (no part is left
        # "running" beside its cancelled batch) and its results open as any job's do
        jobs = JobStore(app.store)
        await wait_for(pilot, lambda: jobs.get(job.id).output_path, 60)
        assert not [p for p in jobs.parts(job.id) if p.state == "running"]
        done = jobs.get(job.id)
        assert (done.ok or 0) + (done.failed or 0) + (done.missing or 0) == 30
        app.push_screen(JobResultsScreen(job.id))
        await wait_for(pilot, lambda: isinstance(app.screen, JobResultsScreen))
        await wait_for(pilot, lambda: app.screen.joined is not None)
        assert len(app.screen.joined) == 30


async def test_a_job_row_is_marked_and_compared_with_a_batch(tmp_path: Path) -> None:
    from fr_tui.core.workflow import poll_batch, submit_file
    from fr_tui.tui.screens.compare import CompareScreen

    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: "completed" in cell(screen, key, "status"))
        record = await submit_file(
            app.client, app.store, path, profile="sandbox", allow_duplicate=True
        )
        while not (await poll_batch(app.client, app.store, record.id))[0].terminal:
            await pilot.pause(0.03)
        await wait_for(pilot, lambda: record.id in screen.table.order)
        screen.select_batch(key)
        await pilot.press("m")
        await wait_for(pilot, lambda: cell(screen, key, "name").startswith("◆"))
        screen.select_batch(record.id)
        await pilot.press("equals_sign")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None,
        )
        compared = app.screen
        assert (compared.a.kind, compared.a.id) == ("job", job.id)
        assert (compared.b.kind, compared.b.id) == ("batch", record.id)
        assert compared.comparison.summary().both == 30


async def test_quitting_while_a_job_runs_asks_first(tmp_path: Path) -> None:
    from fr_tui.tui.modals.confirm import ConfirmModal

    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    app = make_app(tick=5.0)  # its batches stay in progress
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        await wait_for(pilot, lambda: app.jobs_driver.drives(job.id))
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        body = str(app.screen.query_one("#confirm-body").render())
        # the command that resumes it is the one to type: the job is the sandbox's
        assert "1 job is running" in body and f"`fr-tui --sandbox run {path}`" in body, body
        await pilot.press("n")  # it stays open, and the job goes on here
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert app.return_code is None and app.jobs_driver.drives(job.id)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.return_code is not None)


async def test_the_running_line_counts_a_running_job_by_its_estimate(tmp_path: Path) -> None:
    from fr_tui.tui.widgets.cost_lines import SpendLine

    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    app = make_app(tick=5.0)  # its batches stay in progress
    async with app.run_test(size=(80, 24)) as pilot:
        add_job(app.store, path, max_rows=10)
        await wait_for(pilot, lambda: len(app.store.batches()) == 3)
        await pilot.press("2")
        screen = batches_screen(app)
        line = screen.query_one(SpendLine)

        def shown() -> str:
            line.refresh_spend()
            return str(line.render())

        await wait_for(pilot, lambda: "3 running" in shown())
        assert "≤$0.00 " not in shown() and "≤$0" in shown(), shown()


async def test_a_part_with_rows_of_two_models_lists_both_in_its_details(tmp_path: Path) -> None:
    from fr_tui.tui.screens.batch_details import BatchDetailsScreen

    nano = write_input(tmp_path / "nano.jsonl", 6, "openai/gpt-4.1-nano").read_text()
    haiku = write_input(tmp_path / "haiku.jsonl", 4, "anthropic/claude-3.5-haiku").read_text()
    path = tmp_path / "mixed.jsonl"
    path.write_text(nano + haiku.replace('"row-', '"haiku-row-'))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=100)
        await wait_for(pilot, lambda: JobStore(app.store).get(job.id).status == "completed")
        [batch_id] = JobStore(app.store).batch_ids(job.id)
        app.push_screen(BatchDetailsScreen(batch_id, origin="sandbox"))
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.pause()
        head = str(app.screen.query_one("#details-head").render())
        assert "openai/gpt-4.1-nano (6 rows)" in head, head
        assert "anthropic/claude-3.5-haiku (4 rows)" in head, head


async def test_at_80_columns_the_footer_shows_what_applies_to_the_job_row(tmp_path: Path) -> None:
    # The footer drops keys that do not fit. Of results, retry and cancel, the ones that
    # apply to the highlighted row come first: a running job's row shows c Cancel.
    from textual.widgets._footer import FooterKey

    def footer(app: Any) -> dict[str, bool]:  # key -> enabled
        return {k.key: not k.has_class("-disabled") for k in app.screen.query(FooterKey)}

    path = write_input(tmp_path / "in.jsonl", 30, "openai/gpt-4.1-nano")
    app = make_app(tick=5.0)  # its batches stay in progress
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: "running" in cell(screen, key, "status"))
        screen.select_batch(key)
        await wait_for(pilot, lambda: footer(app).get("c") is True)
        assert footer(app)["enter"] and "question_mark" in footer(app) and "q" in footer(app)


async def test_a_job_rows_times_tick_as_a_batch_rows_do(tmp_path: Path) -> None:
    path = write_input(tmp_path / "in.jsonl", 20, "openai/gpt-4.1-nano")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: "completed" in cell(screen, key, "status"))
        assert "ago" in cell(screen, key, "created") and "took" in cell(screen, key, "time")
        later = time.time() + 2 * 3600
        screen.clock = lambda: later  # two hours on: the once-a-second tick redraws it
        await wait_for(pilot, lambda: cell(screen, key, "created").startswith("2h"))


async def test_a_batch_a_job_made_is_not_retried_on_its_own(tmp_path: Path) -> None:
    # Its failed rows went into the job's next round: retrying the batch by itself would
    # pay for rows the job has answered already.
    from fr_tui.tui.screens.batch_details import BatchDetailsScreen
    from fr_tui.tui.screens.results import ResultsScreen

    path = write_input(tmp_path / "in.jsonl", 40, "sandbox/flaky-30")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        job = add_job(app.store, path, max_rows=20)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: "completed" in cell(screen, key, "status"))
        first = JobStore(app.store).batch_ids(job.id)[0]
        words = f"Not retried on its own. It is a batch of job {job.id}"
        screen.select_batch(key)
        await pilot.press("space")
        screen.select_batch(first)

        def hint() -> str:
            return str(screen.query_one("#batches-hint").render())

        await wait_for(pilot, lambda: "its job retries them" in hint())
        assert "R retries" not in hint()
        await pilot.press("R")
        await wait_for(pilot, lambda: said(app, words))
        assert isinstance(app.screen, BatchesScreen)  # no retry dialog
        app._notifications.clear()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        await pilot.press("R")
        await wait_for(pilot, lambda: said(app, words))
        app._notifications.clear()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen))
        await wait_for(pilot, lambda: app.screen.joined is not None)
        assert app.screen.joined.counts["failed"] > 0  # it has failures: R would apply
        await pilot.press("R")
        await wait_for(pilot, lambda: said(app, words))
        assert isinstance(app.screen, ResultsScreen)


async def test_a_job_another_process_ends_shows_ended_without_a_refresh(tmp_path: Path) -> None:
    from fr_tui.core.jobs import JobEngine
    from fr_tui.tui.job_driver import _as_batch

    path = write_input(tmp_path / "in.jsonl", 20, "openai/gpt-4.1-nano")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        elsewhere = job_lock(app.store, job.id)
        assert elsewhere.acquire(wait=False)  # "another process" drives the job to its end
        try:
            await pilot.press("2")
            screen = batches_screen(app)
            key = f"job:{job.id}"
            await wait_for(pilot, lambda: job.id in app.jobs_driver.elsewhere)
            engine = JobEngine(app.client_for(_as_batch(job)), app.store, app.paths, job.id)
            deadline = time.monotonic() + 60
            while not JobStore(app.store).get(job.id).terminal:
                assert time.monotonic() < deadline, "the job did not end"
                await engine.advance()
                await pilot.pause(0.02)
            # the list says so by itself (no r), while the lock is still held elsewhere
            await wait_for(pilot, lambda: "completed" in cell(screen, key, "status"))
            assert "✓ 20" in cell(screen, key, "progress")
        finally:
            elsewhere.release()


async def test_a_job_with_nothing_on_the_server_cancels_without_its_profiles_key(
    tmp_path: Path,
) -> None:
    # a job of the default profile (no key: the app cannot drive it) that made nothing
    path = write_input(tmp_path / "in.jsonl", 20, "openai/gpt-4.1-nano")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        job = add_job(app.store, path, max_rows=10)
        JobStore(app.store).update(job.id, origin="https://api.fastrouter.ai", profile="default")
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        await wait_for(pilot, lambda: job.id in app.jobs_driver.errors)
        await wait_for(pilot, lambda: "planning" in cell(screen, key, "status"))
        screen.select_batch(key)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#confirm-yes"))
        await pilot.press("y")
        await wait_for(pilot, lambda: JobStore(app.store).get(job.id).status == "cancelled")
        assert not said(app, "Cannot cancel")
        await wait_for(pilot, lambda: "cancelled" in cell(screen, key, "status"))
