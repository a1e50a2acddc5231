"""The Files screen: tree, virtual preview, streamed validation, problems, find."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.widgets import Input

from fr_tui.core.paths import SAMPLES_DIR
from fr_tui.tui.screens import files as files_module
from fr_tui.tui.screens.files import FilesScreen
from fr_tui.tui.widgets.jsonl_tree import JsonlTree, root_label, sandbox_start
from fr_tui.tui.widgets.jsonl_view import JsonlView

from .test_shell import SAMPLES, SIZES, make_app, screen_text, wait_for


def files_screen(app: Any) -> FilesScreen:
    screen = app.screen
    assert isinstance(screen, FilesScreen)
    return screen


def rows_without_provider(path: Path, count: int) -> Path:
    """`count` chat rows r0, r1, ... that all lack a provider (one error each)."""
    row = {
        "custom_id": "x",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]},
    }
    with path.open("wb") as handle:
        for i in range(count):
            row["custom_id"] = f"r{i}"
            handle.write(msgspec.json.encode(row) + b"\n")
    return path


async def open_validated(pilot: Any, app: Any) -> FilesScreen:
    await pilot.pause()
    screen = files_screen(app)
    await wait_for(pilot, lambda: screen.report is not None)
    await pilot.pause()
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_broken_file_problems_marked_and_n_N_jump_between_them(
    size: tuple[int, int],
) -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=size) as pilot:
        screen = await open_validated(pilot, app)
        report = screen.report
        assert report is not None and not report.valid
        lines = screen.problem_lines
        assert len(lines) >= 3
        view = screen.query_one(JsonlView)
        # every problem line has a mark in the gutter, and the glyph is on screen
        assert all(line - 1 in view.marks for line in lines)
        assert "✖" in screen_text(app)
        assert "invalid" in screen_text(app)
        view.goto(0)
        await pilot.press("n")
        assert view.cursor == lines[0] - 1
        await pilot.press("n")
        assert view.cursor == lines[1] - 1
        await pilot.press("N")
        assert view.cursor == lines[0] - 1
        await pilot.press("N")  # wraps to the last problem
        assert view.cursor == lines[-1] - 1
        # the detail pane shows the problem and the line of the cursor
        await pilot.press("n")
        await pilot.pause()
        detail = str(screen.query_one("#detail-title").render())
        assert detail == f"Line {view.cursor + 1}"


async def test_problems_panel_groups_expand_and_enter_jumps_to_the_line() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        panel = screen.panel
        groups = len(panel.groups)
        assert panel.option_count == groups  # one line per kind of problem, collapsed
        panel.focus()
        panel.highlighted = 0
        first = next(iter(g for g in panel.groups.values() if g.severity == "error"))
        await pilot.press("enter")  # expands the group
        await pilot.pause()
        assert panel.option_count == groups + len(first.kept)
        await pilot.press("down", "enter")  # its first line: jump there
        await pilot.pause()
        assert screen.view.cursor == first.kept[0].line - 1
        assert app.focused is screen.view


async def test_problems_follow_the_cursor_and_n_N() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        panel = screen.panel
        screen.view.focus()
        screen.view.goto(0)
        for _ in range(len(screen.problem_lines)):
            await pilot.press("n")
            await pilot.pause()
            line = screen.view.cursor + 1
            code, index = panel._rows[panel.highlighted]
            assert panel.groups[code].kept[index].line == line
            top = int(panel.scroll_y)  # a long message wraps: lines, not options
            first = panel._index_to_line[panel.highlighted]
            assert top <= first < top + panel.scrollable_content_region.height
        # a cursor move onto a problem line does the same
        screen.view.goto(screen.problem_lines[0] - 1)
        await pilot.pause()
        code, index = panel._rows[panel.highlighted]
        assert panel.groups[code].kept[index].line == screen.problem_lines[0]


async def test_fifty_thousand_identical_problems_are_one_line(tmp_path: Path) -> None:
    path = rows_without_provider(tmp_path / "no-provider.jsonl", 50_000)
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_validated(pilot, app)
        panel = screen.panel
        assert panel.option_count == 1
        assert "✖ 50,000 × provider is missing" in screen_text(app)
        assert "50,000 errors" in screen_text(app)
        panel.focus()
        panel.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        kept = len(panel.groups["missing_provider"].kept)
        assert panel.option_count == 1 + kept + 1  # the lines kept, then "… N more"
        assert f"{50_000 - kept:,} more" in str(panel.get_option_at_index(kept + 1).prompt)


async def test_valid_file_summary_and_detail() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_validated(pilot, app)
        assert screen.report is not None and screen.report.valid
        text = screen_text(app)
        assert "✔ valid" in text and "/v1/chat/completions" in text and "12 rows" in text
        assert '"custom_id": "chat-01"' in text  # pretty JSON of the selected line
        await pilot.press("n")  # no problems: says so, cursor stays
        assert screen.view.cursor == 0


async def test_the_summary_says_what_s_does_for_this_file(tmp_path: Path) -> None:
    """`s submits` only on a valid file; a file only over one batch's limits runs as a
    job; a file with invalid rows offers neither."""
    from fr_tui.core.validate import Limits

    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_validated(pilot, app)
        summary = lambda: str(screen.query_one("#summary").render())  # noqa: E731
        assert "s submits" in summary()
        screen.open_path(SAMPLES / "broken.jsonl")
        await wait_for(pilot, lambda: screen.report is not None and not screen.report.valid)
        assert "s submits" not in summary() and "job" not in summary()
        assert "invalid" in summary()
        screen._limits = lambda: Limits(max_rows=5)  # type: ignore[method-assign]
        screen.open_path(SAMPLES / "chat.jsonl")
        await wait_for(pilot, lambda: screen.report is not None and screen.report.rows == 12)
        await wait_for(pilot, lambda: "s runs it as a job" in summary())
        assert "s submits" not in summary()
        # not "invalid": every row is fine, there are only too many for one batch
        assert "over one batch's limits" in summary() and "invalid" not in summary()


async def test_find_moves_to_the_matching_line() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        await pilot.press("slash")
        await pilot.pause()
        find_bar = screen.query_one("#find-bar", Input)
        assert app.focused is find_bar
        await pilot.press(*"chat-05", "enter")
        await pilot.pause()
        assert screen.view.cursor == 4
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.has_class("-finding")


async def test_tree_shows_jsonl_and_toggles_all_files(tmp_path: Path) -> None:
    tmp_path = tmp_path / "data"
    tmp_path.mkdir()
    (tmp_path / "a.jsonl").write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    (tmp_path / "notes.txt").write_text("hello\n")
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "a.jsonl" in screen_text(app))
        assert "notes.txt" not in screen_text(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: "notes.txt" in screen_text(app))
        tree = app.screen.query_one(JsonlTree)
        tree.focus()
        await pilot.press("down")  # highlight a.jsonl: previewed (and, being small, validated)
        screen = files_screen(app)
        await wait_for(pilot, lambda: screen.report is not None)
        assert screen.current_path == tmp_path / "a.jsonl"


async def test_big_file_first_rows_at_once_rest_in_background(tmp_path: Path) -> None:
    path = rows_without_provider(tmp_path / "big.jsonl", 60_000)
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = files_screen(app)
        screen.open_path(path, validate=True)
        assert screen.view.line_count >= 200  # the head, synchronously
        await pilot.pause()
        assert '"custom_id":"r0"' in screen_text(app)
        await wait_for(pilot, lambda: screen.report is not None, timeout=30)
        assert screen.view.line_count == 60_000
        screen.view.focus()
        await pilot.press("G")
        await pilot.pause()
        assert '"custom_id":"r59999"' in screen_text(app)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_files_broken(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        screen = await open_validated(pilot, pilot.app)
        screen.view.focus()
        await pilot.press("n")
        await pilot.pause()

    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_the_sandbox_opens_the_current_folder_when_it_has_jsonl(tmp_path: Path) -> None:
    assert sandbox_start(tmp_path) == SAMPLES_DIR  # nothing to try here: the samples
    (tmp_path / "mine.jsonl").write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    assert sandbox_start(tmp_path) == tmp_path


async def test_tree_names_its_folder_reloads_and_moves_with_j_k_g_G(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    (home / "a.jsonl").write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "a.jsonl" in screen_text(app))
        tree = app.screen.query_one(JsonlTree)
        assert str(tree.root.label) == root_label(home)  # not a bare folder icon
        assert str(tree.root.label).endswith("/data") and root_label(SAMPLES) == "fr-tui samples"
        assert "Sample files:" in screen_text(app)  # and where the samples are
        (home / "b.jsonl").write_bytes((SAMPLES / "chat.jsonl").read_bytes())
        tree.focus()
        await pilot.press("r")  # new files show without toggling anything
        await wait_for(pilot, lambda: "b.jsonl" in screen_text(app))
        await pilot.press("j", "j")
        await wait_for(pilot, lambda: files_screen(app).current_path == home / "b.jsonl")
        await pilot.press("k")
        await wait_for(pilot, lambda: files_screen(app).current_path == home / "a.jsonl")
        await pilot.press("G")  # the last entry, then the first (the folder)
        await wait_for(pilot, lambda: files_screen(app).current_path == home / "b.jsonl")
        await pilot.press("g")
        await wait_for(pilot, lambda: tree.cursor_line == 0)
        # back from another screen: read again
        (home / "c.jsonl").write_bytes((SAMPLES / "chat.jsonl").read_bytes())
        await pilot.press("2")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilesScreen))
        await pilot.press("1")
        await wait_for(pilot, lambda: "c.jsonl" in screen_text(app))


async def test_at_80_columns_problems_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "AUTO_VALIDATE_BYTES", 0)  # wait for enter
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "broken.jsonl" in screen_text(app))
        screen = files_screen(app)
        screen.open_path(SAMPLES / "broken.jsonl", validate=False)
        await wait_for(pilot, lambda: "Problems: enter checks the file" in screen_text(app))
        screen.start_validation()
        await wait_for(pilot, lambda: screen.report is not None)
        # the first message ends on screen, not in an ellipsis
        await wait_for(pilot, lambda: 'missing } ] or ").' in screen_text(app))
        await wait_for(pilot, lambda: "(batch -50%)" in screen_text(app))  # the summary's end


async def test_the_footer_does_not_offer_validate_while_typing_a_find() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        assert "Validate" in screen_text(app).splitlines()[-1]
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        await wait_for(pilot, lambda: "Validate" not in screen_text(app).splitlines()[-1])
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Validate" in screen_text(app).splitlines()[-1])
        assert screen.view.has_focus


@pytest.mark.parametrize("key", ["v", "s"])
async def test_a_file_edited_after_it_opened_is_read_again(key: str, tmp_path: Path) -> None:
    """The user fixes the file in an editor beside fr-tui and validates (or submits)
    again: the preview and the check are of the file as it is now, not as it opened."""
    path = rows_without_provider(tmp_path / "fix-me.jsonl", 3)
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        assert screen.report is not None and not screen.report.valid
        old_index = screen.index
        fixed = path.read_text().replace('"method"', '"provider":"openai","method"')
        again = fixed.replace('"custom_id":"r', '"custom_id":"s')
        path.write_text(fixed + again)  # 6 rows, each with a provider
        screen.query_one(JsonlView).focus()
        await pilot.press(key)
        await wait_for(pilot, lambda: screen.report is not None and screen.report.valid)
        assert screen.index is not old_index and len(screen.index) == 6
        if key == "v":  # the preview shows the lines as they are now
            assert '"provider":"openai"' in screen_text(app)
        else:  # checked again, then the submit dialog opens on the new rows
            await wait_for(pilot, lambda: "Submit fix-me.jsonl" in screen_text(app))
            assert "6 rows" in screen_text(app)


async def test_a_file_changed_on_disk_is_read_again_on_its_own(tmp_path: Path) -> None:
    """Cut short in another window while it is open: the preview never goes on showing
    lines the file no longer has; it is read and checked again, and the user is told."""
    path = tmp_path / "shrinks.jsonl"
    path.write_bytes((SAMPLES / "chat.jsonl").read_bytes())
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        assert len(screen.index) == 12
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:5]))
        await wait_for(pilot, lambda: screen.index is not None and len(screen.index) == 5)
        await wait_for(pilot, lambda: screen.report is not None and screen.report.rows == 5)
        assert "shrinks.jsonl changed on disk" in " ".join(
            str(n.message) for n in app._notifications
        )
        path.unlink()  # gone: said once, and what was shown stays
        await wait_for(
            pilot,
            lambda: any("is gone from disk" in str(n.message) for n in app._notifications),
        )
        assert len(screen.index) == 5


def cursor_rows_shown(app: Any, view: JsonlView) -> list[int]:
    """The preview rows the screen shows with the cursor's background."""
    cursor = view.get_component_rich_style("jsonl-view--cursor").bgcolor
    strips = app.screen._compositor.render_strips()
    region = view.region
    shown = []
    for y in range(region.y, region.bottom):
        first = next(iter(strips[y].crop(region.x, region.x + 1)), None)
        if first is not None and first.style is not None and first.style.bgcolor == cursor:
            shown.append(y - region.y)
    return shown


async def test_one_row_shows_the_cursor_after_the_preview_scrolled() -> None:
    """Scrolled down, moving the cursor (keys, find) left the old row lit as well."""
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        view = screen.query_one(JsonlView)
        view.focus()
        await pilot.press("G")
        await pilot.pause()
        assert view.scroll_offset.y > 0
        for key in ("k", "k", "j"):
            await pilot.press(key)
            await pilot.pause()
            assert cursor_rows_shown(app, view) == [view.cursor - view.scroll_offset.y]


async def test_the_problems_panel_goes_to_its_ends_and_help_says_how() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.01, start_path=SAMPLES / "broken.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_validated(pilot, app)
        panel = screen.panel
        panel.focus()
        await pilot.press("G")
        assert panel.highlighted == panel.option_count - 1 > 0
        await pilot.press("g")
        assert panel.highlighted == 0
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: hasattr(app.screen, "sections"))
        rows = [row for _, section in app.screen.sections() for row in section]
        assert ("g G enter", "In the problems: first, last, open a kind or go to its line") in rows
