"""The compare screen: `m` and `=` in the Batches list of the real app on its sandbox,
the summary, filters, find, a row in full with the changed words highlighted, export,
offline use and what it says when a side cannot be had; snapshots at 80x24 and 120x40
of deterministic runs (answers made by the sandbox's own answer functions)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from fr_tui.core.clients import NoClientError
from fr_tui.core.compare import DIFFERENT, STATE_NAMES
from fr_tui.core.compare_export import COMPARE_COLUMNS
from fr_tui.core.compare_stats import CompareSummary, SideStats
from fr_tui.core.config import Profile
from fr_tui.core.models import Batch
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.result_sets import ResultSetRef
from fr_tui.core.store import HistoryStore
from fr_tui.sandbox.answers import answer
from fr_tui.tui.commands import FrCommands
from fr_tui.tui.modals.export import ExportModal
from fr_tui.tui.screens.batches import BatchesScreen
from fr_tui.tui.screens.compare import CompareScreen, summary_text
from fr_tui.tui.screens.help import HelpScreen
from fr_tui.tui.widgets.compare_detail import CompareDetail

from .test_navigation import finished, on_list, sandbox_app
from .test_shell import SAMPLES, screen_text, wait_for

SIZES = [(80, 24), (120, 40)]


def chat_rows(model_of: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (SAMPLES / "chat.jsonl").read_text().splitlines()]
    for row in rows:
        if model_of and row["custom_id"] in model_of:
            row["body"]["model"] = model_of[row["custom_id"]]
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


async def compare_loaded(app: Any, pilot: Any) -> CompareScreen:
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None,
        timeout=20,
    )
    await pilot.pause()
    return app.screen  # type: ignore[no-any-return]


def summary_of(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-summary", Static).content)


async def test_mark_then_equals_opens_the_comparison(tmp_path: Path) -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        nano = {r["custom_id"] for r in chat_rows() if r["body"]["model"].endswith("nano")}
        mini = write_rows(
            tmp_path / "mini.jsonl",
            chat_rows(
                {**dict.fromkeys(nano, "openai/gpt-4.1-mini"), "chat-08": "sandbox/fail-500"}
            ),
        )
        first = await finished(app, SAMPLES / "chat.jsonl")
        second = await finished(app, mini)
        await pilot.press("2")
        await wait_for(pilot, lambda: on_list(app))
        batches = app.screen
        assert isinstance(batches, BatchesScreen)
        batches.select_batch(second)
        await pilot.press("equals_sign")  # nothing marked yet: said, nothing opens
        await pilot.pause()
        assert isinstance(app.screen, BatchesScreen)
        assert any("Mark a batch with m first" in n.message for n in app._notifications)
        batches.select_batch(first)
        await pilot.press("m")
        await wait_for(pilot, lambda: "◆ chat.jsonl" in screen_text(app))
        await pilot.press("equals_sign")  # on the marked one itself
        await pilot.pause()
        assert isinstance(app.screen, BatchesScreen)
        assert any("This is the marked batch" in n.message for n in app._notifications)
        batches.select_batch(second)
        await pilot.pause()
        assert "= compares it with this" in screen_text(app)
        titles = [title for title, _, _ in FrCommands(batches)._commands()]
        assert "Compare with…" in titles and "Mark" in titles
        await pilot.press("equals_sign")
        screen = await compare_loaded(app, pilot)
        assert (screen.a.id, screen.b.id) == (first, second)
        summary = summary_of(screen)
        assert "12 in both" in summary and "= 6 same" in summary and "≠ 5 different" in summary
        assert "agreement 54.5%" in summary  # 6 of the 11 rows ok on both sides
        # at 80 columns every line of the summary fits, down to B − A
        assert all(len(line) <= 78 for line in summary.splitlines())
        assert "B  ✓ 11 ok  ✗ 1 failed" in summary and "◐ 1 ok on one side" in summary
        assert "B − A" in screen_text(app)
        text = screen_text(app)
        assert "chat-08" in text and "internal_error" in text
        await pilot.press("f1")  # help lists the screen's keys, read from its bindings
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        title, rows = app.screen.sections()[0]
        listed = {text.split(":")[0] for _keys, text in rows}
        assert {"Filter", "Find", "Export", "Back", "Next match"} <= listed
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: on_list(app))
        # the comparison was opened: the mark is gone, the next one starts from m again
        assert batches.marked is None and "◆" not in screen_text(app)
        # two runs of the same file: the title tells them apart by their ids' ends
        again = await finished(app, SAMPLES / "chat.jsonl", allow_duplicate=True)
        await wait_for(pilot, lambda: again in batches.table.order)
        batches.select_batch(first)
        await pilot.press("m")
        await wait_for(pilot, lambda: "◆ chat.jsonl" in screen_text(app))
        batches.select_batch(again)
        await pilot.press("equals_sign")
        screen = await compare_loaded(app, pilot)
        title = str(screen.query_one("#compare-title", Static).content)
        assert f"A chat.jsonl (…{first[-6:]})" in title and f"B chat.jsonl (…{again[-6:]})" in title


def test_no_rows_in_common_is_said_first() -> None:
    side = SideStats(3, 3, 0, 0, 10, 20, None, {}, [])
    summary = CompareSummary(0, 3, 3, 0, 0, 0, 0, 0, side, side)
    text = summary_text(summary, 78)
    assert text.startswith("⚠ No custom_id in common")
    # a job of 50,000 rows against a batch: each side still fits 80 columns
    big = SideStats(50_000, 45_061, 4_939, 0, 1_234_567, 2_345_678, None, {}, [])
    summary = CompareSummary(50_000, 0, 0, 40_000, 5_061, 4_939, 0, 0, big, big)
    assert all(len(line) <= 78 for line in summary_text(summary, 78).splitlines())


@pytest.fixture
def offline_pair(tmp_path: Path) -> tuple[Paths, ResultSetRef, ResultSetRef]:
    """Two batches in history with their result files on disk, made by the sandbox's
    answer functions: the same prompts, B on other models, one row failing in B, one
    row B never sent back, one row only B has, and one cut short at max_tokens."""
    paths = get_paths()
    paths.ensure()
    store = HistoryStore(paths.history_db)
    a_rows = chat_rows()
    b_rows = chat_rows(
        {
            "chat-03": "openai/gpt-4.1-mini",
            "chat-05": "openai/gpt-4.1-mini",
            "chat-06": "sandbox/fail-500",
        }
    )[:10]
    b_rows[8]["body"]["max_tokens"] = 6  # chat-09: cut at six tokens
    b_rows.append(
        {
            "custom_id": "chat-13",
            "body": {
                "model": "openai/gpt-4.1-mini",
                "messages": [{"role": "user", "content": "What is 6 * 7?"}],
            },
        }
    )
    refs = []
    for name, rows, drop in (("a", a_rows[:10], set()), ("b", b_rows, {"chat-07"})):
        folder = tmp_path / name
        folder.mkdir()
        batch_id = f"fr_batch-snap{name}"
        out, err = [], []
        for row in rows:
            cid, body = row["custom_id"], row["body"]
            if cid in drop:
                continue
            if body["model"].startswith("sandbox/fail-"):
                line = {
                    "custom_id": cid,
                    "response": {
                        "status_code": 500,
                        "body": {"error": {"code": "internal_error", "message": "Upstream failed"}},
                    },
                    "error": None,
                }
                err.append(line)
                continue
            reply = answer("/v1/chat/completions", batch_id, cid, body, 1_735_689_600)
            out.append(
                {"custom_id": cid, "response": {"status_code": 200, "body": reply}, "error": None}
            )
        write_rows(folder / "input.jsonl", rows)
        (folder / "output.jsonl").write_bytes(
            b"".join(msgspec.json.encode(x) + b"\n" for x in reversed(out))
        )
        (folder / "errors.jsonl").write_bytes(b"".join(msgspec.json.encode(x) + b"\n" for x in err))
        batch = Batch.parse(
            {
                "id": batch_id,
                "status": "completed",
                "endpoint": "/v1/chat/completions",
                "output_file_id": "file_out",
                "error_file_id": "file_err",
            }
        )
        store.record_created(
            batch, origin="x", profile="x", input_path=str(folder / "input.jsonl"),
            name=f"eval {name.upper()}",
        )  # fmt: skip
        store.set_result_paths(
            "x", batch_id, str(folder / "output.jsonl"), str(folder / "errors.jsonl")
        )
        refs.append(ResultSetRef("batch", batch_id, "x"))
    return paths, refs[0], refs[1]


class Harness(App[None]):
    """What the compare screen needs of FrTuiApp, with no client: everything offline."""

    def __init__(self, paths: Paths, a: ResultSetRef, b: ResultSetRef) -> None:
        super().__init__()
        self.paths = paths
        self.store = HistoryStore(paths.history_db)
        self.client = None
        self.profile = Profile(name="x", base_url="x")
        self.is_sandbox = False
        self.refs = (a, b)

    def compose(self) -> ComposeResult:
        yield Static("home")

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(*self.refs))

    def client_for(self, record: Any) -> Any:
        raise NoClientError("offline")


def by_id(screen: CompareScreen) -> dict[str, str]:
    comparison = screen.comparison
    assert comparison is not None
    return {
        comparison.custom_id(p) or "": STATE_NAMES[comparison.states[p]]
        for p in range(len(comparison))
    }


@pytest.mark.parametrize("size", SIZES)
async def test_offline_filters_find_and_the_row_in_full(offline_pair: Any, size: tuple) -> None:
    paths, a, b = offline_pair
    app = Harness(paths, a, b)
    async with app.run_test(size=size) as pilot:
        screen = await compare_loaded(app, pilot)
        assert by_id(screen) == {
            "chat-01": "same", "chat-02": "same", "chat-03": "different",
            "chat-04": "same", "chat-05": "different", "chat-06": "b_not_ok",
            "chat-07": "b_not_ok", "chat-08": "same", "chat-09": "different",
            "chat-10": "same", "chat-13": "only_b",
        }  # fmt: skip
        view = screen.view

        def shown() -> list[str]:
            assert screen.comparison is not None
            return [screen.comparison.custom_id(p) or "" for p in view.rows]

        await pilot.press("f")  # different
        assert shown() == ["chat-03", "chat-05", "chat-09"]
        await pilot.press("f")  # one side failed
        assert shown() == ["chat-06", "chat-07"]
        while screen.filters[screen.filter_index] != "finish:length":
            await pilot.press("f")
        assert shown() == ["chat-09"]
        await pilot.press("f")
        while screen.filters[screen.filter_index] != "all":
            await pilot.press("f")
        await pilot.press("slash")
        await pilot.press(*"6 * 7", "enter")
        await wait_for(
            pilot, lambda: view.current_row is not None and shown()[view.cursor] == "chat-13"
        )
        await pilot.press(*"kkkkkk")  # up to chat-05
        assert shown()[view.cursor] == "chat-05"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.detail_position is not None)
        await pilot.pause()
        detail = screen.query_one(CompareDetail)
        assert detail.display and not screen.query_one("#compare-list").display
        text = screen_text(app)
        assert text.count("Input: ") == 1 and "Input: Explain what a JSONL file is." in text
        assert "gpt-4.1-nano" in text and "gpt-4.1-mini" in text
        assert "Compare › chat-05" in text
        a_answer = detail.query_one("#cd-a-text", Static).content
        highlighted = [a_answer.plain[s.start : s.end] for s in a_answer.spans]
        assert highlighted == ["gpt-4.1-nano:"]
        b_answer = detail.query_one("#cd-b-text", Static).content
        assert [b_answer.plain[s.start : s.end] for s in b_answer.spans] == ["gpt-4.1-mini:"]
        assert all("Explain what a JSONL file is." in t.plain for t in (a_answer, b_answer))
        if size[0] >= 100:  # side by side
            assert detail.query_one("#cd-a").region.y == detail.query_one("#cd-b").region.y
        else:  # stacked
            assert detail.query_one("#cd-a").region.y < detail.query_one("#cd-b").region.y
        await pilot.press("escape")
        assert screen.detail_position is None and screen.query_one("#compare-list").display
        assert shown()[view.cursor] == "chat-05"


async def test_export_from_the_screen(offline_pair: Any, tmp_path: Path) -> None:
    paths, a, b = offline_pair
    app = Harness(paths, a, b)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await compare_loaded(app, pilot)
        await pilot.press("f")  # different: export offers the filter's rows
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        target = tmp_path / "out.csv"
        box = app.screen.query_one("#export-path", Input)
        box.value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.exists())
        await wait_for(pilot, lambda: any("written to" in n.message for n in app._notifications))
        with target.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert tuple(rows[0]) == COMPARE_COLUMNS
        assert [r["custom_id"] for r in rows] == ["chat-03", "chat-05", "chat-09"]
        assert all(r["state"] == STATE_NAMES[DIFFERENT] and r["same"] == "false" for r in rows)
        assert rows[2]["answer_b"].startswith("Sandbox answer from")
        assert isinstance(app.screen, CompareScreen) and screen.comparison is not None


async def test_a_side_that_cannot_be_had_is_said(offline_pair: Any, tmp_path: Path) -> None:
    paths, a, b = offline_pair
    (tmp_path / "b" / "output.jsonl").unlink()
    (tmp_path / "b" / "errors.jsonl").unlink()
    app = Harness(paths, a, b)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, CompareScreen) and "not downloaded" in screen_text(app),
        )
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.comparison is None
        assert "eval B" in screen.view.note and "no connection" in screen.view.note
        assert any("no connection" in n.message for n in app._notifications)


# -- snapshots ----------------------------------------------------------------------


def _app(offline_pair: Any) -> Harness:
    paths, a, b = offline_pair
    return Harness(paths, a, b)


async def _until_loaded(pilot: Any) -> None:
    await compare_loaded(pilot.app, pilot)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_compare(snap_compare: Any, offline_pair: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("j", "j")

    assert snap_compare(_app(offline_pair), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_compare_detail(snap_compare: Any, offline_pair: Any, size: tuple) -> None:
    async def run_before(pilot: Any) -> None:
        await _until_loaded(pilot)
        await pilot.press("j", "j", "enter")  # chat-03: one model for another
        await wait_for(pilot, lambda: pilot.app.screen.detail_position is not None)
        await pilot.pause()

    assert snap_compare(_app(offline_pair), terminal_size=size, run_before=run_before)
