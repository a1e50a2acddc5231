"""A progress cell never cuts a number (the tour read `? 570` as `? 57` and `? 15` as `? 1`):
its text fits the column, with shorter numbers first (2,935 -> 2.9k), then with trailing
fields left out and marked `…`. Checked on what the screen shows, against the sandbox."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from job_helpers import add_job
from rich.cells import cell_len
from textual.widgets import DataTable

from fr_tui.core.jobs_store import Job, JobStore
from fr_tui.core.results import join_results
from fr_tui.tui.screens.job_details import JobDetailsScreen
from fr_tui.tui.widgets.batch_format import bar_text, counts_text
from fr_tui.tui.widgets.result_view import _CELL as RESULT_CELLS
from fr_tui.tui.widgets.result_view import layout_columns

from .test_batches import SIZES, SandboxClock, open_batches, submit
from .test_jobs_tui import batches_screen, make_app, wait_for

# ----------------------------------------------------------------- reading a cell


def reads_as(shown: str, true: int) -> bool:
    """Whether a number as shown (`2,935`, `2.9k`, `12k`, `1.2M`) is a fair reading of
    `true`: exact digits are the count itself; a shortened one is it rounded to its last
    digit."""
    found = re.fullmatch(r"(\d[\d,]*(?:\.\d+)?)([kM]?)", shown)
    if not found:
        return False
    digits, unit = found.groups()
    if not unit:
        return "." not in digits and int(digits.replace(",", "")) == true
    scale = 1000 if unit == "k" else 1_000_000
    places = len(digits.partition(".")[2])
    step = scale / 10**places
    return abs(float(digits.replace(",", "")) * scale - true) <= step / 2 + 1e-9


def check_counts(cell: str, ok: int, failed: int, missing: int) -> None:
    """`cell` reads `✓ ok ✗ failed ? missing` (zeros but ok left out) with every number
    shown true; fields may be left out from the end only when a `…` says so."""
    expected = [("✓", ok)] + [(g, n) for g, n in (("✗", failed), ("?", missing)) if n]
    words = cell.split()
    dropped = bool(words) and words[-1] == "…"
    if dropped:
        words = words[:-1]
    assert len(words) % 2 == 0 and words, f"a glyph without its number in {cell!r}"
    pairs = list(zip(words[::2], words[1::2], strict=True))
    assert len(pairs) == len(expected) or (dropped and len(pairs) < len(expected)), cell
    for (glyph, number), (want_glyph, true) in zip(pairs, expected, strict=False):
        assert glyph == want_glyph, cell
        assert reads_as(number, true), f"{cell!r} shows {glyph} {number} for {true:,}"


def check_bar(cell: str, done: int, total: int) -> None:
    shown_done, _, shown_total = cell.split()[-1].partition("/")
    assert reads_as(shown_done, done) and reads_as(shown_total, total), (cell, done, total)


def screen_cell(app: Any, table: DataTable[Any], row_key: str, column: str) -> str:
    """What the screen shows in one cell of `table` (the rendered screen, cut where the
    column ends, as the user reads it)."""
    row = table.get_row_index(row_key)
    y = table.region.y + table.header_height + row - int(table.scroll_y)
    x = table.region.x - int(table.scroll_x)
    for key, col in table.columns.items():
        if key.value == column:
            x += table.cell_padding
            strip = app.screen._compositor.render_strips()[y]
            return str(strip.crop(x, x + col.get_render_width(table) - 2 * table.cell_padding).text)
        x += col.get_render_width(table)
    raise AssertionError(f"no column {column}")


# ----------------------------------------------------------------- the fitting itself


@pytest.mark.parametrize(
    ("counts", "width"),
    [
        ((2_935, 50, 15), 14),
        ((2_935, 50, 15), 15),
        ((408, 22, 570), 14),
        ((408, 22, 570), 15),
        ((0, 0, 2_549), 6),
        ((408, 22, 2_549), 14),
        ((45_061, 4_939, 12), 14),
        ((12_345, 0, 0), 7),
        ((1_234_567, 98_765, 4_321), 14),
        ((1_234_567, 98_765, 4_321), 9),
        ((999_999, 9_999, 99), 10),
        ((5, 0, 0), 3),
        ((12_345, 0, 0), 3),
        ((12_345, 1, 1), 1),
    ],
)
def test_counts_fit_their_width_and_never_cut_a_number(
    counts: tuple[int, int, int], width: int
) -> None:
    text = counts_text(*counts, width)
    assert cell_len(text) <= width, text
    if text != "…":
        check_counts(text, *counts)


def test_counts_keep_exact_numbers_when_they_fit_then_shorten_then_leave_fields_out() -> None:
    assert counts_text(2_935, 50, 15, 18) == "✓ 2,935 ✗ 50 ? 15"
    assert counts_text(2_935, 50, 15, 16) == "✓ 2.9k ✗ 50 ? 15"
    assert counts_text(2_935, 50, 15, 14) == "✓ 2,935 ✗ 50 …"
    assert counts_text(408, 22, 570, 14) == "✓ 408 ✗ 22 …"
    assert counts_text(12_345, 0, 0, 7) == "✓ 12k"
    assert counts_text(60, 0, 0, 14) == "✓ 60"


@pytest.mark.parametrize("width", range(1, 20))
@pytest.mark.parametrize(("done", "total"), [(597, 600), (5_398, 12_000), (123_456, 1_000_000)])
def test_a_running_bar_fits_and_never_cuts_a_number(done: int, total: int, width: int) -> None:
    text = bar_text(done, total, width)
    assert cell_len(text) <= width, text
    if "/" in text:
        check_bar(text, done, total)
    else:  # too narrow for done/total: a share, or only that something is left out
        assert re.fullmatch(r"\d{1,3}%|…", text), text


# ----------------------------------------------------------------- on screen


def write_rows(path: Path, models: list[str]) -> Path:
    """One chat request per model (`sandbox/fail-400` fails, `sandbox/drop` goes missing)."""
    with path.open("w") as handle:
        for i, model in enumerate(models):
            body = {
                "model": model,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"{i}"}],
            }
            request = {
                "custom_id": f"row-{i:05d}",
                "provider": model.partition("/")[0],
                "method": "POST",
                "url": "/v1/chat/completions",
            }
            handle.write(json.dumps({**request, "body": body}) + "\n")
    return path


def mixed(ok: int, failed: int, missing: int) -> list[str]:
    """Failed and missing rows spread through the ok ones."""
    models = ["openai/gpt-4.1-nano"] * ok
    for index, model in enumerate(["sandbox/fail-400"] * failed + ["sandbox/drop"] * missing):
        models.insert((index * 7919) % (len(models) + 1), model)
    return models


@pytest.mark.parametrize("size", SIZES)
async def test_a_batch_row_shows_true_numbers_running_and_ended(
    size: tuple[int, int], tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "in.jsonl", mixed(2_935, 50, 15))
    app = make_app(tick=1.0)
    async with app.run_test(size=size) as pilot:
        clock = SandboxClock()
        app.sandbox_server.app.store.clock = clock
        screen = await open_batches(app, pilot)
        batch_id = await submit(app, path, name="mixed")
        table = screen.table

        def record() -> Any:
            return app.store.get("sandbox", batch_id)

        await wait_for(pilot, lambda: record() is not None and record().status == "validating")
        clock.now += 1.5
        await wait_for(pilot, lambda: record().status == "in_progress")
        clock.now += 3.5  # about half way through
        await wait_for(pilot, lambda: (record().request_completed or 0) > 0)
        await pilot.pause()
        shown = record()
        done = (shown.request_completed or 0) + (shown.request_failed or 0)
        await wait_for(pilot, lambda: "/" in screen_cell(app, table, batch_id, "progress"))
        check_bar(screen_cell(app, table, batch_id, "progress"), done, 3_000)
        clock.now += 100.0
        await wait_for(pilot, lambda: record().status == "completed")
        await wait_for(pilot, lambda: "✓" in screen_cell(app, table, batch_id, "progress"))
        check_counts(screen_cell(app, table, batch_id, "progress"), 2_935, 50, 15)


@pytest.mark.parametrize("size", SIZES)
async def test_a_job_its_parts_and_its_details_show_true_numbers(
    size: tuple[int, int], tmp_path: Path
) -> None:
    # two parts of 500 rows, each 204 ok, 11 failed and 285 missing; one round only
    path = write_rows(tmp_path / "in.jsonl", mixed(204, 11, 285) + mixed(204, 11, 285))
    app = make_app()
    async with app.run_test(size=size) as pilot:
        job = add_job(app.store, path, max_rows=500, rounds=1)
        await pilot.press("2")
        screen = batches_screen(app)
        key = f"job:{job.id}"
        table = screen.table

        def ended() -> Job | None:
            found = JobStore(app.store).get(job.id)
            return found if found is not None and found.terminal else None

        await wait_for(pilot, ended)
        await wait_for(pilot, lambda: "✓" in screen_cell(app, table, key, "progress"))
        check_counts(screen_cell(app, table, key, "progress"), 408, 22, 570)
        screen.select_batch(key)
        await pilot.press("space")
        made = JobStore(app.store).batch_ids(job.id)
        await wait_for(pilot, lambda: table.order == [key, *made])
        for batch_id in made:
            check_counts(screen_cell(app, table, batch_id, "progress"), 204, 11, 285)
        screen.select_batch(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailsScreen))
        details = app.screen
        await wait_for(pilot, lambda: details.table.row_count == 2)
        for part in ("1:1", "1:2"):
            check_counts(screen_cell(app, details.table, part, "progress"), 204, 11, 285)
        # the exact figures stay in the summary
        summary = str(details.query_one("#job-summary").render())
        assert "✓ 408 ok · ✗ 22 failed · ? 570 missing" in summary
        # at another width the columns are laid out again, and the rows shown again
        shown_id = "id" in [c.key for c in details.table.columns_shown]
        await pilot.resize_terminal(*(SIZES[0] if size != SIZES[0] else SIZES[1]))
        await wait_for(
            pilot, lambda: ("id" in [c.key for c in details.table.columns_shown]) != shown_id
        )
        await wait_for(pilot, lambda: details.table.row_count == 2)
        for part in ("1:1", "1:2"):
            check_counts(screen_cell(app, details.table, part, "progress"), 204, 11, 285)


def test_a_results_row_shows_its_token_counts_true(tmp_path: Path) -> None:
    """A long prompt's `128000/4096` in the 10-wide `tok in/out` column: shortened to
    `128k/4.1k`, not cut to `128000/40…`."""
    source = write_rows(tmp_path / "in.jsonl", ["openai/gpt-4.1-nano"] * 2)
    usage = [(128_000, 4_096), (1_200, 57)]
    with (tmp_path / "out.jsonl").open("w") as handle:
        for i, (t_in, t_out) in enumerate(usage):
            body = {"choices": [], "usage": {"prompt_tokens": t_in, "completion_tokens": t_out}}
            line = {"custom_id": f"row-{i:05d}", "response": {"status_code": 200, "body": body}}
            handle.write(json.dumps(line) + "\n")
    joined = join_results(source, tmp_path / "out.jsonl", None, index=False)
    width = next(c.width for c in layout_columns(joined, 120) if c.key == "tokens")
    for row, (t_in, t_out) in enumerate(usage):
        text = RESULT_CELLS["tokens"](joined, row)
        assert cell_len(text) <= width, text
        shown_in, _, shown_out = text.partition("/")
        assert reads_as(shown_in, t_in) and reads_as(shown_out, t_out), text
    assert RESULT_CELLS["tokens"](joined, 1) == "1200/57"
