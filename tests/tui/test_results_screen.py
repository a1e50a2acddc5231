"""The results screen against the real sandbox: ok, failed and missing rows side by side,
filter, find, detail, copy, export, and offline reopening (retry: test_results_retry.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from fr_tui.core.api import BatchClient
from fr_tui.core.clients import NoClientError
from fr_tui.core.config import SANDBOX_API_KEY, Profile
from fr_tui.core.models import Batch
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.tui.modals.export import ExportModal
from fr_tui.tui.modals.retry import RetryModal
from fr_tui.tui.screens.result_detail import ResultDetailScreen
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.result_view import ResultView

from .conftest import run_batch

SIZES = [(80, 24), (120, 40)]


class Harness(App[None]):
    """The parts of FrTuiApp's contract the results screen uses."""

    def __init__(
        self, paths: Paths, client: BatchClient | None, batch_id: str | None = None
    ) -> None:
        super().__init__()
        self.paths = paths
        paths.ensure()
        self.store = HistoryStore(paths.history_db)
        self.client = client
        self.profile = Profile(name="sandbox", base_url="sandbox")
        self.is_sandbox = True
        self.start_batch = batch_id
        self.opened_batches: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield Static("home")

    def on_mount(self) -> None:
        if self.start_batch:
            self.open_results(self.start_batch)

    def open_results(self, batch_id: str, origin: str | None = None) -> None:
        self.push_screen(ResultsScreen(batch_id, origin=origin))

    def client_for(self, record: Any) -> BatchClient:
        if self.client is None:
            raise NoClientError("no client")
        return self.client

    def open_batches(self, select: str | None = None) -> None:
        self.opened_batches.append(select)


async def wait_for(condition: Any, pilot: Any, tries: int = 300) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


async def loaded(app: Harness, pilot: Any) -> ResultsScreen:
    await pilot.pause()
    await wait_for(lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined, pilot)
    screen = app.screen
    assert isinstance(screen, ResultsScreen)
    await pilot.pause()
    return screen


def status_of(screen: ResultsScreen) -> str:
    return str(screen.query_one("#results-status", Static).content)


@pytest.mark.parametrize("size", SIZES)
async def test_filter_cycle_shows_each_outcome(finished: Any, size: tuple[int, int]) -> None:
    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=size) as pilot:
        screen = await loaded(app, pilot)
        summary = str(screen.query_one("#results-summary", Static).content)
        assert "✓ 6 ok" in summary and "✗ 3 failed" in summary and "? 1 missing" in summary
        groups = str(screen.query_one("#results-groups", Static).content)
        assert "2× " in groups and "500" in groups and "400" in groups
        view = screen.query_one(ResultView)
        assert len(view.rows) == 10
        seen = {}
        for _ in range(len(screen.filters)):
            await pilot.press("f")
            name = screen.filters[screen.filter_index]
            seen[name] = [view.joined.outcome(r) for r in view.rows]  # type: ignore[union-attr]
        assert seen["ok"] == ["ok"] * 6
        assert seen["failed"] == ["failed"] * 3
        assert seen["missing"] == ["missing"]
        group_sizes = sorted(
            len(v) for k, v in seen.items() if k not in ("ok", "failed", "missing", "all")
        )
        assert group_sizes == [1, 2]  # the 400 and the two 500s
        assert screen.filters[screen.filter_index] == "all" and len(view.rows) == 10
        # the rendered table says what each row is, in words as well as glyphs
        lines = [view.render_line(y).text for y in range(1, 11)]
        assert sum("✓ ok" in line for line in lines) == 6
        assert sum("✗ failed" in line for line in lines) == 3
        assert sum("? missing" in line for line in lines) == 1
        assert all(len(line) <= size[0] for line in lines)


async def test_a_filter_of_one_row_says_one_row(finished: Any) -> None:
    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("f", "f", "f")  # missing: one row
        await wait_for(lambda: "filter missing" in status_of(screen), pilot)
        assert ": 1 row ·" in status_of(screen) and "1 rows" not in status_of(screen)


async def test_find_detail_and_copy(finished: Any) -> None:
    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        view = screen.query_one(ResultView)
        await pilot.press("slash")
        find = screen.query_one("#results-find", Input)
        assert find.has_focus
        await pilot.press(*"fails-08", "enter")
        assert view.joined is not None and view.current_row is not None
        assert view.joined.custom_ids[view.current_row] == "fails-08"
        assert "find 'fails-08': 1 here" in status_of(screen)
        await pilot.press("n")  # wraps to the same single match
        assert view.joined.custom_ids[view.current_row] == "fails-08"
        await pilot.press("escape")  # clears the find, and stays (the tour left the screen)
        await pilot.pause()
        assert app.screen is screen and "find" not in status_of(screen)
        assert view.joined.custom_ids[view.current_row] == "fails-08"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultDetailScreen)
        title = str(app.screen.query_one("#detail-title", Static).content)
        assert "✗ failed" in title and "fails-08" in title and "HTTP 500" in title
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        # copy an ok row's answer
        await pilot.press("g")
        assert view.joined.outcome(view.current_row) == "ok"
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard and app.clipboard == view.joined.response_text(view.current_row)
        assert any("Copied the answer of fails-01" in str(n.message) for n in app._notifications)
        # a missing row copies its row JSON
        await pilot.press("f", "f", "f")
        assert screen.filters[screen.filter_index] == "missing"
        await pilot.press("y")
        copied = msgspec.json.decode(app.clipboard)
        assert copied["custom_id"] == "fails-09" and copied["outcome"] == "missing"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultDetailScreen)
        assert app.screen.query_one("#detail-response").border_title == "Response: none"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_export_writes_every_input_row(finished: Any, tmp_path: Path, fmt: str) -> None:
    batch_id, client = finished
    app = Harness(get_paths(), client, batch_id)
    target = tmp_path / "out" / f"export.{fmt}"
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ExportModal)
        path_input = modal.query_one("#export-path", Input)
        assert path_input.value.endswith(f"{batch_id}-results.csv")
        path_input.value = str(target.with_suffix(".csv"))
        path_input.focus()
        await pilot.press("enter")  # its folder does not exist: said, not made
        await wait_for(
            lambda: any("no such folder" in str(n.message) for n in app._notifications), pilot
        )
        assert app.screen is modal and not target.parent.exists()
        target.parent.mkdir()
        if fmt == "jsonl":
            modal.query_one("#export-format").value = "jsonl"  # type: ignore[attr-defined]
            await pilot.pause()
            assert path_input.value == str(target)
        path_input.focus()
        await pilot.press("enter")
        await wait_for(lambda: target.exists(), pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert any(f"10 rows written to {target}" in str(n.message) for n in app._notifications)
    if fmt == "csv":
        with target.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [msgspec.json.decode(line) for line in target.read_bytes().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"fails-{i:02d}" for i in range(1, 11)]
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("ok") == 6 and outcomes.count("failed") == 3
    assert outcomes.count("missing") == 1
    assert all(r["content"] for r in rows if r["outcome"] == "ok")


async def test_an_edited_input_file_is_flagged(finished: Any) -> None:
    batch_id, client = finished
    record = HistoryStore(get_paths().history_db).get(client.origin, batch_id)
    assert record is not None and record.input_path
    with open(record.input_path, "ab") as handle:
        handle.write(b"\n")
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        titles = [n.title for n in app._notifications]
        assert "Input file changed" in titles
        assert screen.joined is not None and len(screen.joined) == 10


async def test_past_batch_opens_offline(sandbox: Any, fails_file: Path) -> None:
    client = BatchClient(sandbox.base_url, SANDBOX_API_KEY)
    store = HistoryStore(get_paths().history_db)
    batch_id = await run_batch(client, store, fails_file)
    app = Harness(get_paths(), client, batch_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)  # the first open downloads the files
    await client.aclose()
    sandbox.stop()
    # no client, no server: only what is on disk
    for size in SIZES:
        app = Harness(get_paths(), None, batch_id)
        async with app.run_test(size=size) as pilot:
            screen = await loaded(app, pilot)
            assert screen.joined is not None and screen.joined.counts == {
                "total": 10,
                "ok": 6,
                "failed": 3,
                "missing": 1,
            }


async def test_not_downloaded_and_offline_says_so(tmp_path: Path) -> None:
    paths = get_paths()
    paths.ensure()
    store = HistoryStore(paths.history_db)
    batch = Batch.parse(
        {
            "id": "batch_offline",
            "status": "completed",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file_in",
            "output_file_id": "file_out",
            "request_counts": {"total": 1, "completed": 1, "failed": 0},
        }
    )
    store.record_created(
        batch,
        origin="http://127.0.0.1:9",
        profile="x",
        base_url="http://127.0.0.1:9",
        input_path=str(tmp_path),
    )
    app = Harness(paths, None, "batch_offline")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        await wait_for(lambda: "not downloaded" in screen.query_one(ResultView).note, pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ResultsScreen)


# -- snapshots, from fixed files (no sandbox: ids and answers never change) ----------

SNAP_ID = "batch_snapshot"
SNAP_TOPICS = ["tea", "rivers", "primes", "owls", "bridges", "maps", "glass", "salt"]


def write_snapshot_batch(folder: Path) -> None:
    """A 12-row batch: 8 ok, a 500 in the error file, a 400 in the output file, a
    rate-limit error line, and one row that never came back."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs, outputs, errors = [], [], []
    for i in range(12):
        cid = f"req-{i + 1:02d}"
        inputs.append(
            {
                "custom_id": cid,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "openai/gpt-4.1-nano",
                    "messages": [{"role": "user", "content": f"Tell me about item {i + 1}."}],
                    "max_tokens": 100,
                },
            }
        )
        if i < 8:
            answer = f"Here is a short note about {SNAP_TOPICS[i]}.\nSecond line."
            body = {
                "id": f"chatcmpl-{i}",
                "model": "openai/gpt-4.1-nano",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12 + i, "completion_tokens": 9, "cost": 0.0001},
            }
            outputs.append(
                {"custom_id": cid, "response": {"status_code": 200, "body": body}, "error": None}
            )
        elif i in (8, 10):
            errors.append(
                {
                    "custom_id": cid,
                    "response": {
                        "status_code": 500,
                        "body": {"error": {"message": "Upstream failed", "code": "server_error"}},
                    },
                    "error": None,
                }
            )
        elif i == 9:
            outputs.append(
                {
                    "custom_id": cid,
                    "response": None,
                    "error": {"code": "rate_limit_exceeded", "message": "Too many requests"},
                }
            )
    outputs.reverse()  # results do not come back in input order

    def dump(rows: list[dict[str, Any]]) -> bytes:
        return b"".join(msgspec.json.encode(r) + b"\n" for r in rows)

    (folder / "snap_input.jsonl").write_bytes(dump(inputs))
    (folder / "output.jsonl").write_bytes(dump(outputs))
    (folder / "errors.jsonl").write_bytes(dump(errors))


def snapshot_app(tmp_path: Path) -> Harness:
    paths = get_paths()
    paths.ensure()
    write_snapshot_batch(tmp_path / "snap")
    store = HistoryStore(paths.history_db)
    batch = Batch.parse(
        {
            "id": SNAP_ID,
            "status": "completed",
            "endpoint": "/v1/chat/completions",
            "output_file_id": "file_out",
            "error_file_id": "file_err",
        }
    )
    store.record_created(
        batch, origin="x", profile="x", input_path=str(tmp_path / "snap" / "snap_input.jsonl")
    )
    store.set_result_paths(
        "x",
        SNAP_ID,
        str(tmp_path / "snap" / "output.jsonl"),
        str(tmp_path / "snap" / "errors.jsonl"),
    )
    return Harness(paths, None, SNAP_ID)


async def _until_loaded(pilot: Any) -> None:
    await loaded(pilot.app, pilot)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_results_screen(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("j", "j")

    assert snap_compare(snapshot_app(tmp_path), terminal_size=size, run_before=run_before)


def test_snapshot_results_failed_filter(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("f", "f")

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_detail_screen(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("G", "k", "k", "enter")  # req-10: the rate-limited row
        await pilot.pause()

    assert snap_compare(snapshot_app(tmp_path), terminal_size=size, run_before=run_before)


def test_snapshot_retry_modal(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("R")
        await pilot.pause()

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


async def test_input_file_gone_shows_results_alone(tmp_path: Path) -> None:
    write_snapshot_batch(tmp_path / "snap")
    app = snapshot_app(tmp_path)
    (tmp_path / "snap" / "snap_input.jsonl").unlink()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(app, pilot)
        assert screen.inputs_missing
        assert screen.joined is not None
        assert screen.joined.counts == {"total": 11, "ok": 8, "failed": 3, "missing": 0}
        assert any("input file is gone" in str(n.message) for n in app._notifications)
        await pilot.press("R")
        await pilot.pause()
        assert not isinstance(app.screen, RetryModal)
