"""Batches and batch details, driven through the real app against the real sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from fr_tui.core.config import load_config
from fr_tui.core.models import Batch
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import submit_file
from fr_tui.tui.screens.batch_details import BatchDetailsScreen
from fr_tui.tui.screens.batches import BatchesScreen

SIZES = [(80, 24), (120, 40)]
FIXED_NOW = 1_750_000_000.0


def make_app(tick: float = 0.02) -> Any:
    from fr_tui.tui.app import FrTuiApp

    app = FrTuiApp(config=load_config(), paths=get_paths(), sandbox=True, sandbox_tick=tick)
    app.config.auto_download = False
    app.poller.interval = 0.03
    return app


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def batches_screen(app: Any) -> BatchesScreen:
    for stack in app._screen_stacks.values():
        for screen in stack:
            if isinstance(screen, BatchesScreen):
                return screen
    raise AssertionError("no batches screen")


def rows_shown(app: Any) -> int:
    """Rows in the Batches table on screen (0 while it is not up yet)."""
    screen = app.screen
    return screen.query_one(DataTable).row_count if isinstance(screen, BatchesScreen) else 0


def lineage_of(screen: Any) -> Any:
    """The lineage list of a details screen once it has its options, else None."""
    if not isinstance(screen, BatchDetailsScreen) or not screen.is_mounted:
        return None
    found = screen.query("#details-lineage")
    return found.first() if found and found.first().option_count else None


def status_cell(screen: BatchesScreen, batch_id: str) -> str:
    if batch_id not in screen.table.order:
        return ""
    return str(screen.table.get_cell(batch_id, "status"))


async def open_batches(app: Any, pilot: Any) -> BatchesScreen:
    await pilot.press("2")
    await wait_for(pilot, lambda: isinstance(app.screen, BatchesScreen) and app.screen.is_mounted)
    return batches_screen(app)


async def submit(app: Any, path: Path, **kwargs: Any) -> str:
    record = await submit_file(
        app.client, app.store, path, profile="sandbox", allow_duplicate=True, **kwargs
    )
    app.poller.watch(record.origin, record.id)
    app.broadcast(__import__("fr_tui.tui.messages", fromlist=["x"]).BatchesChanged([record.id]))
    return record.id


class SandboxClock:
    """The sandbox's clock, moved by the test: each state lasts until the test moves on,
    so the poller cannot miss one however slow the machine is."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("size", SIZES)
async def test_submitted_batches_move_to_completed_by_themselves(
    size: tuple[int, int], samples: Path
) -> None:
    app = make_app(tick=1.0)
    async with app.run_test(size=size) as pilot:
        clock = SandboxClock()
        app.sandbox_server.app.store.clock = clock
        screen = await open_batches(app, pilot)
        ids = [await submit(app, samples / "chat.jsonl", name=f"run-{i}") for i in range(3)]

        def all_show(word: str) -> Callable[[], bool]:
            return lambda: all(word in status_cell(screen, b) for b in ids)

        # Each row goes through the running states, without a key press.
        await wait_for(pilot, all_show("validating"))
        clock.now += 1.5  # one tick: in progress
        await wait_for(pilot, all_show("in progress"))
        clock.now += 100.0  # past finalizing: completed
        await wait_for(pilot, all_show("completed"))
        assert str(screen.table.get_cell(ids[0], "progress")) == "✓ 12"
        await wait_for(
            pilot, lambda: sum("completed" in n.message for n in app._notifications) == 3
        )
        assert all(app.store.get("sandbox", b).notified for b in ids)
        # Newest first.
        assert screen.table.coordinate_to_cell_key((0, 0))[0].value == ids[-1]


async def test_cancel_from_the_list_confirms_then_cancels(samples: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_batches(app, pilot)
        batch_id = await submit(
            app, samples / "chat.jsonl", metadata={"sandbox_fault": "hang_validating"}
        )
        await wait_for(pilot, lambda: batch_id in screen.table.order)
        screen.select_batch(batch_id)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen is not screen)  # the confirm dialog
        await pilot.press("y")
        await wait_for(pilot, lambda: "cancelled" in status_cell(screen, batch_id))
        assert app.store.get("sandbox", batch_id).status == "cancelled"
        assert any("cancelled" in n.message for n in app._notifications)


async def test_failed_validation_shows_errors_with_lines_in_details(samples: Path) -> None:
    app = make_app()
    opened: list[tuple[Path, int | None]] = []
    app.open_file = lambda path, line=None: opened.append((path, line))  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_batches(app, pilot)
        batch_id = await submit(
            app, samples / "chat.jsonl", metadata={"sandbox_fault": "fail_validation"}
        )
        await wait_for(pilot, lambda: "failed" in status_cell(screen, batch_id))
        assert any(n.severity == "error" and "failed" in n.message for n in app._notifications)
        # its input was rejected: not `✓ 0`, which reads as if rows had come back
        assert str(screen.table.get_cell(batch_id, "progress")) == "no rows ran"
        screen.select_batch(batch_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        details = app.screen
        errors = details.query_one("#details-errors")
        assert errors.option_count == 1
        assert "line 1" in str(errors.get_option_at_index(0).prompt)
        errors.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(opened))
        assert opened == [((samples / "chat.jsonl").resolve(), 1)]


async def test_expired_batch_offers_partial_results(samples: Path) -> None:
    from fr_tui.tui.screens.results import ResultsScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_batches(app, pilot)
        batch_id = await submit(app, samples / "chat.jsonl", metadata={"sandbox_fault": "expire"})
        await wait_for(pilot, lambda: "expired" in status_cell(screen, batch_id))
        assert any("Partial results" in n.message for n in app._notifications)
        screen.select_batch(batch_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDetailsScreen))
        head = str(app.screen.query_one("#details-head", Static).render())
        assert "Partial results" in head
        await pilot.press("o")  # the results screen downloads them, then shows them
        await wait_for(
            pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined is not None
        )
        assert app.screen.batch_id == batch_id
        record = app.store.get("sandbox", batch_id)
        assert record.output_path and Path(record.output_path).exists()


@pytest.mark.parametrize("status", [500, 429])
async def test_server_errors_while_polling_warn_then_recover(status: int, samples: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_batches(app, pilot)
        batch_id = await submit(
            app, samples / "chat.jsonl", metadata={"sandbox_fault": "hang_validating"}
        )
        indicator = screen.query_one("#batches-indicator", Static)
        await wait_for(pilot, lambda: app.poller.last_ok_at is not None)
        faults: dict[str, Any] = {
            "status": status,
            "methods": ["GET"],
            "path_prefix": "/v1/batches",
        }
        if status == 429:
            faults["retry_after"] = 0.2
        app.sandbox_server.set_faults(faults)
        await wait_for(pilot, lambda: indicator.has_class("-warning"))
        assert "refresh failing" in str(indicator.render())
        assert app.store.get("sandbox", batch_id).poll_error
        app.sandbox_server.set_faults({})
        await wait_for(pilot, lambda: not indicator.has_class("-warning"))
        assert app.store.get("sandbox", batch_id).poll_error is None


def fixed_batch(index: int, status: str = "completed", **extra: Any) -> Batch:
    created = int(FIXED_NOW) - 3600 - index * 600
    data: dict[str, Any] = {
        "id": f"batch_{index:04d}",
        "status": status,
        "endpoint": "/v1/chat/completions",
        "input_file_id": f"file_in_{index:04d}",
        "created_at": created,
        "request_counts": {
            "total": 100,
            "completed": 100 if status == "completed" else 40,
            "failed": 0,
        },
    }
    if status == "completed":
        data.update(
            in_progress_at=created + 5, finalizing_at=created + 300, completed_at=created + 310
        )
        data["output_file_id"] = f"file_out_{index:04d}"
        data["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "cost": 0.0123}
    elif status == "in_progress":
        data["in_progress_at"] = created + 5
    data.update(extra)
    return Batch.parse(data)


def fill_store(store: HistoryStore, count: int) -> None:
    for i in range(count):
        status = "in_progress" if i % 5 == 0 else "completed"
        store.record_created(
            fixed_batch(i, status), origin="sandbox", name=f"job-{i:03d}", profile="sandbox"
        )


class Harness(App[None]):
    """A bare app with the attributes the batch screens use and no poller running."""

    def __init__(self, screen_factory: Callable[[], Any]) -> None:
        super().__init__()
        self.store = HistoryStore(get_paths().history_db)
        self.config = load_config()
        self.client = None
        self.poller = None
        self._factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self._factory())


async def test_cursor_and_scroll_survive_refreshes() -> None:
    app = Harness(lambda: BatchesScreen(clock=lambda: FIXED_NOW))
    fill_store(app.store, 60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: rows_shown(app) == 60)
        screen = app.screen
        table = screen.query_one(DataTable)
        table.move_cursor(row=40)
        await wait_for(pilot, lambda: table.cursor_row == 40 and table.scroll_y > 0)
        before = (table.cursor_row, table.scroll_y, screen.highlighted_key())
        for i in range(0, 60, 5):  # every running batch moves on
            app.store.update_from_api(fixed_batch(i, "completed"), origin="sandbox")
        screen.reload()
        await wait_for(pilot, lambda: "completed" in str(table.get_cell("batch_0040", "status")))
        assert (table.cursor_row, table.scroll_y, screen.highlighted_key()) == before
        # A new batch arrives at the top: the same batch stays highlighted.
        app.store.record_created(fixed_batch(-5, "validating"), origin="sandbox", name="newest")
        screen.reload()
        await wait_for(pilot, lambda: rows_shown(app) == 61)
        assert screen.highlighted_key() == before[2]
        assert table.coordinate_to_cell_key((0, 0))[0].value == "batch_-005"


async def test_filter_and_find_narrow_the_list() -> None:
    app = Harness(lambda: BatchesScreen(clock=lambda: FIXED_NOW))
    fill_store(app.store, 20)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: rows_shown(app) == 20)
        screen = app.screen
        table = screen.query_one(DataTable)
        await pilot.press("f")  # active
        assert table.row_count == 4
        await pilot.press("f", "f", "f")  # done, failed, all
        assert table.row_count == 20
        await pilot.press("slash", *"job-01")
        await wait_for(pilot, lambda: table.row_count == 10)
        await pilot.press("escape")
        assert table.row_count == 20


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def _snapshot_store() -> None:
    store = HistoryStore(get_paths().history_db)
    fill_store(store, 8)
    store.record_created(
        fixed_batch(
            9,
            "failed",
            errors={"data": [{"code": "invalid_json", "message": "Line is not JSON", "line": 3}]},
            failed_at=int(FIXED_NOW) - 8000,
        ),
        origin="sandbox",
        name="broken input",
        input_path="/data/broken.jsonl",
    )


def test_snapshot_batches_list(snap_compare: Any, utc: None) -> None:
    _snapshot_store()
    assert snap_compare(
        Harness(lambda: BatchesScreen(clock=lambda: FIXED_NOW)), terminal_size=(80, 24)
    )


def test_snapshot_batch_details(snap_compare: Any, utc: None) -> None:
    _snapshot_store()
    app = Harness(lambda: BatchDetailsScreen("batch_0009", clock=lambda: FIXED_NOW))
    assert snap_compare(app, terminal_size=(80, 24))


async def test_details_scroll_with_j_k_g_G(utc: None) -> None:
    """Batch details of a long batch do not fit 80x24: j/k/g/G scroll them as in the
    lists (only the arrows and pgdn did)."""
    from textual.containers import VerticalScroll

    _snapshot_store()
    app = Harness(lambda: BatchDetailsScreen("batch_0009", clock=lambda: FIXED_NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        body = app.screen.query_one("#details-body", VerticalScroll)
        await wait_for(pilot, lambda: body.max_scroll_y > 0)
        await pilot.press("j")
        await wait_for(pilot, lambda: body.scroll_y > 0)
        await pilot.press("G")
        await wait_for(pilot, lambda: body.scroll_y == body.max_scroll_y)
        await pilot.press("g")
        await wait_for(pilot, lambda: body.scroll_y == 0)


def test_snapshot_batches_list_wide(snap_compare: Any, utc: None) -> None:
    _snapshot_store()
    assert snap_compare(
        Harness(lambda: BatchesScreen(clock=lambda: FIXED_NOW)), terminal_size=(120, 40)
    )


_ = asyncio  # asyncio_mode=auto runs the async tests


async def test_server_batches_not_in_history_are_offered_for_import(samples: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        uploaded = await app.client.upload_file(samples / "chat.jsonl")
        elsewhere = await app.client.create_batch(uploaded.id, "/v1/chat/completions", "24h", None)
        screen = await open_batches(app, pilot)
        await wait_for(pilot, lambda: bool(screen.importable))
        assert any("press i to import" in n.message for n in app._notifications)
        await pilot.press("i")
        await wait_for(pilot, lambda: "completed" in status_cell(screen, elsewhere.id))
        assert app.store.get("sandbox", elsewhere.id) is not None


async def test_outcome_unknown_entries_can_be_looked_up_or_forgotten(samples: Path) -> None:
    from fr_tui.core.intents import UNKNOWN, Intent, IntentLog, new_token

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.reconciled_at is not None)  # the one at start
        intents = IntentLog(app.store)
        found = await app.client.upload_file(samples / "chat.jsonl")
        batch = await app.client.create_batch(found.id, "/v1/chat/completions", "24h", None)
        lost = await app.client.upload_file(samples / "embeddings.jsonl")
        fresh = await app.client.upload_file(samples / "server_fails.jsonl")
        long_ago = time.time() - 3600
        for file_id, name, when in (
            (found.id, "chat.jsonl", long_ago),
            (lost.id, "embeddings.jsonl", long_ago),
            (fresh.id, "server_fails.jsonl", time.time()),
        ):
            intent = Intent(
                token=new_token(),
                origin="sandbox",
                state=UNKNOWN,
                input_path=str(samples / name),
                input_file_id=file_id,
                message="The create answer was lost.",
                created_at=when,
            )
            intents.add(intent)
            intents.set_state(intent.token, UNKNOWN)
            with app.store.transaction() as conn:  # as if written an hour ago
                conn.execute(
                    "UPDATE intents SET updated_at = ? WHERE token = ?", (when, intent.token)
                )
        screen = await open_batches(app, pilot)
        rows = [k for k in screen.table.order if k.startswith("unknown:")]
        assert len(rows) == 3
        assert "unknown" in str(screen.table.get_cell(rows[0], "status"))

        def select(label: str) -> None:
            key = next(f"unknown:{u.token}" for u in screen.unknown if u.label == label)
            screen.table.move_cursor(row=screen.table.order.index(key))

        select("chat.jsonl")
        await pilot.pause()
        assert "Outcome unknown" in str(screen.query_one("#batches-hint", Static).render())
        await pilot.press("l")  # found on the server by its input file
        await wait_for(pilot, lambda: batch.id in screen.table.order)
        assert screen.highlighted_key() == batch.id
        assert len(intents.unknown()) == 2
        select("embeddings.jsonl")
        await pilot.press("l")  # the full list lacks it, and it is old: none was made
        await wait_for(pilot, lambda: any("none was made" in n.message for n in app._notifications))
        assert [u.label for u in intents.unknown()] == ["server_fails.jsonl"]
        select("server_fails.jsonl")
        await pilot.press("l")  # recent: the server may still be making it
        await wait_for(pilot, lambda: any("Still unknown" in n.message for n in app._notifications))
        await pilot.press("x")
        await pilot.pause()
        assert intents.unknown() == []
        assert not [k for k in screen.table.order if k.startswith("unknown:")]


async def test_details_lineage_opens_parent_and_child_and_copies_the_id() -> None:
    app = Harness(lambda: BatchDetailsScreen("batch_0001", clock=lambda: FIXED_NOW))
    fill_store(app.store, 3)
    app.store.record_created(
        fixed_batch(-1, "validating"), origin="sandbox", name="retry", parent_batch_id="batch_0001"
    )
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: lineage_of(app.screen) is not None)
        details = app.screen
        lineage = details.query_one("#details-lineage")
        assert "batch_-001" in str(lineage.get_option_at_index(0).prompt)
        await pilot.press("y")
        assert copied == ["batch_0001"]
        lineage.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not details and lineage_of(app.screen))
        child = app.screen
        assert isinstance(child, BatchDetailsScreen) and child.batch_id == "batch_-001"
        parent_option = child.query_one("#details-lineage").get_option_at_index(0)
        assert "parent" in str(parent_option.prompt) and "batch_0001" in str(parent_option.prompt)


def counted(index: int, status: str, total: int, ok: int, failed: int = 0) -> Batch:
    return fixed_batch(
        index, status, request_counts={"total": total, "completed": ok, "failed": failed}
    )


async def test_progress_reads_one_way_and_names_get_the_spare_width() -> None:
    app = Harness(lambda: BatchesScreen(clock=lambda: FIXED_NOW))
    long_name = "nightly evaluation of the support answers"
    for batch, name in (
        (counted(1, "in_progress", 12_000, 5_000, 398), long_name),
        (counted(2, "completed", 60_000, 60_000), "all ok"),
        (counted(3, "completed", 50_000, 45_061, 4_939), "some failed"),
        (counted(4, "expired", 100, 60, 30), "expired"),
    ):
        app.store.record_created(batch, origin="sandbox", name=name)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: rows_shown(app) == 4)
        table = app.screen.query_one(DataTable)

        def progress(index: int) -> str:
            return str(table.get_cell(f"batch_{index:04d}", "progress"))

        assert progress(1).endswith(" 5,398/12,000") and progress(1).startswith("█")
        assert progress(2) == "✓ 60,000"
        assert progress(3) == "✓ 45,061 ✗ 4,939"
        assert progress(4) == "✓ 60 ✗ 30 ? 10"
        assert str(table.get_cell("batch_0001", "name")) == long_name
        assert table.columns["name"].width >= len(long_name)  # type: ignore[index]
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: progress(3) != "✓ 45,061 ✗ 4,939")
        assert progress(3) == "✓ 45k ✗ 4.9k"  # shortened, still with spaces
        assert progress(1).endswith(" 5,398/12,000")
