"""Screens that say the truth plainly (issue 10, items 7, 10-14, 16, 18)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.style import Style
from textual.color import Color

from fr_tui.core.config import load_config
from fr_tui.core.paths import get_paths
from fr_tui.core.units import money, plain_number, plural
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.modals.export import ExportModal
from fr_tui.tui.modals.submit import SubmitModal
from fr_tui.tui.screens.files import FilesScreen
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.json_pane import JsonPane
from fr_tui.tui.widgets.jsonl_view import JsonlView

from .test_navigation import finished, sandbox_app
from .test_shell import SAMPLES, make_app, screen_text, wait_for


def row(custom_id: str, content: str, model: str = "openai/gpt-4.1-nano") -> bytes:
    return msgspec.json.encode(
        {
            "custom_id": custom_id,
            "provider": model.split("/")[0],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": content}]},
        }
    )


async def files_with(pilot: Any, app: Any, path: Path) -> FilesScreen:
    app.open_file(path)
    await wait_for(
        pilot, lambda: isinstance(app.screen, FilesScreen) and app.screen.report is not None
    )
    await pilot.pause()
    return app.screen


def styles_of(app: Any, widget: Any) -> list[tuple[str, Style]]:
    """(text, style) of what the compositor draws for `widget`, filters applied."""
    region = widget.region
    out = []
    strips = app.screen._compositor.render_strips()
    for y in range(region.y, region.bottom):
        for segment in strips[y]:
            if segment.text.strip():
                out.append((segment.text, segment.style or Style()))
    return out


def contrast(style: Style, app: Any) -> float:
    """WCAG contrast ratio of a segment's text against its background."""
    theme = app.get_css_variables()
    fg = Color.from_rich_color(style.color) if style.color else Color.parse(theme["foreground"])
    bg = Color.from_rich_color(style.bgcolor) if style.bgcolor else Color.parse(theme["background"])
    if style.reverse:
        fg, bg = bg, fg

    def luminance(color: Color) -> float:
        def channel(value: int) -> float:
            c = value / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)

    light, dark = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# ------------------------------------------------------------------ 7 focus


async def test_focus_shows_on_the_preview_and_the_json_pane() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await files_with(pilot, app, SAMPLES / "broken.jsonl")
        view = screen.query_one(JsonlView)
        title = screen.query_one("#detail-title")
        view.focus()
        await pilot.pause()
        cursor_focused = view.get_component_rich_style("jsonl-view--cursor")
        title_blurred = title.rich_style
        screen.query_one(JsonPane).focus()
        await pilot.pause()
        assert view.get_component_rich_style("jsonl-view--cursor") != cursor_focused
        assert title.rich_style != title_blurred  # the focused pane's title lights up


# ------------------------------------------------------------------ 10 export


async def test_export_honours_the_filter_and_asks_before_replacing(tmp_path: Path) -> None:
    app = sandbox_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "server_fails.jsonl")
        app.open_results(batch_id)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined)
        results = app.screen
        await pilot.press("f", "f")  # all -> ok -> failed
        assert results.filters[results.filter_index] == "failed"
        target = tmp_path / "out.csv"
        target.write_text("keep me\n")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        modal = app.screen
        # which is chosen reads without colour: ▐●▌ the filter's rows, ▐ ▌ all rows
        assert "▐●▌ 3 rows of the filter failed" in screen_text(app)
        assert "▐ ▌ all 10 rows" in screen_text(app)
        modal.query_one("#export-path").value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")  # keep the file
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        assert target.read_text() == "keep me\n"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: target.read_text() != "keep me\n")
        with target.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 3 and {r["outcome"] for r in rows} == {"failed"}


# ------------------------------------------------------------------ 11 settings saved


async def test_the_theme_is_saved_without_a_config_file() -> None:
    paths = get_paths()
    assert not paths.config_file.exists()
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.theme = "nord"
        await pilot.pause()
    assert paths.config_file.exists()
    assert load_config().theme == "nord"
    assert make_app().needs_welcome  # a theme alone is no key: still a first run


# ------------------------------------------------------------------ 12 NO_COLOR


@pytest.mark.parametrize("sample", ["broken.jsonl", "chat.jsonl"])
async def test_verdicts_are_readable_under_no_color(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(sandbox=True, sandbox_tick=0.01)
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await files_with(pilot, app, SAMPLES / sample)
        word = "invalid" if sample == "broken.jsonl" else "valid"
        verdicts = [
            (text, style)
            for text, style in styles_of(app, screen.query_one("#summary"))
            if word in text
        ]
        assert verdicts
        for text, style in verdicts:
            assert contrast(style, app) >= 4.5, (text, style)


# ------------------------------------------------------------------ 13, 14 JSON pane


async def test_json_pane_wraps_long_strings(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    long_text = "word " * 60 + "THE-END"
    path.write_bytes(row("long-1", long_text) + b"\n")
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await files_with(pilot, app, path)
        pane = screen.query_one(JsonPane)
        pane.focus()
        await pilot.press("end")
        await pilot.pause()
        assert "THE-END" in screen_text(app)  # the end of the string, wrapped into view


async def test_a_5_mb_line_is_formatted_off_the_ui_thread_and_drawn_by_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.jsonl"
    big = "lorem ipsum " * (5 * 1024 * 1024 // 12)
    path.write_bytes(row("small", "hi") + b"\n" + row("big", big) + b"\n")
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await files_with(pilot, app, path)
        pane = screen.query_one(JsonPane)
        screen.view.goto(1)
        screen._show_detail(1)  # what the cursor move does: it returns at once...
        assert "formatting a 5.0 MB line" in pane.text  # ...the work is in a thread
        await wait_for(pilot, lambda: '"custom_id": "big"' in pane.text, timeout=20)
        await pilot.pause()
        assert pane.virtual_size.height > 50_000  # the whole string, wrapped...
        assert len(pane._cache) <= pane.size.height + 1  # ...of which only what shows


# ------------------------------------------------------------------ 16 submit dialog


async def test_submit_dialog_lists_every_model_and_names_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    models = ["openai/gpt-4.1-nano"] * 5 + ["anthropic/claude-4.5-sonnet"] * 3
    models += ["sandbox/fail-500", "sandbox/drop", "openai/gpt-4.1-mini"]
    path.write_bytes(b"".join(row(f"r{i}", "hi", m) + b"\n" for i, m in enumerate(models)))
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await files_with(pilot, app, path)
        screen.action_submit()
        await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
        modal = app.screen
        await wait_for(pilot, lambda: bool(modal.query("#submit-summary")))
        summary = str(modal.query_one("#submit-summary").render())
        for model in set(models):
            assert model in summary
        assert "openai/gpt-4.1-nano (5)" in summary
        assert modal.query_one("#submit-name").placeholder == "mixed.jsonl"


async def test_empty_file_has_no_detected_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await files_with(pilot, app, path)
        screen.action_submit()
        await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
        await wait_for(pilot, lambda: bool(app.screen.query("#submit-summary")))
        summary = str(app.screen.query_one("#submit-summary").render())
        assert "detected" not in summary and "Endpoint: none" in summary
        assert "0 rows" in summary


# ------------------------------------------------------------------ 18 words and numbers


def test_plurals_and_money() -> None:
    assert plural(1, "error") == "1 error" and plural(2, "error") == "2 errors"
    assert plural(1, "batch", "batches") == "1 batch"
    assert plural(12_345, "row") == "12,345 rows"
    assert money(8.675e-05) == "$0.000087"
    assert money(0.0123) == "$0.012" and money(1.5) == "$1.50" and money(None) == "-"
    assert money(0) == "$0.00" and "e" not in money(1e-9)
    assert plain_number(8.675e-05) == "0.00008675"


async def test_one_error_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_bytes(row("a", "hi") + b"\n" + b'{"custom_id": "b"\n')
    app = make_app(sandbox=True, sandbox_tick=0.01)
    async with app.run_test(size=(120, 40)) as pilot:
        await files_with(pilot, app, path)
        text = screen_text(app)
        assert "1 error " in text and "1 errors" not in text and "2 rows" in text


async def test_costs_never_show_an_exponent() -> None:
    app = sandbox_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        batch_id = await finished(app, SAMPLES / "chat.jsonl")
        app.open_results(batch_id)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined)
        cost = app.screen.joined.cost
        assert cost is not None
        # the batch's actual cost is worked out after the rows show (results.py)
        await wait_for(pilot, lambda: app.screen.cost_text is not None)
        await wait_for(pilot, lambda: money(cost) in screen_text(app))
        assert "e-0" not in screen_text(app)
