"""The streaming planner: parts that hold every request once, in order, within every limit."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fr_tui.core.plan import PlanError, PlanLimits, load_plan, plan_file, split_part
from fr_tui.core.tokens import estimate_prompt_tokens
from fr_tui.core.userfiles import FileSignature
from fr_tui.core.validate import Limits, validate_path

MODELS = [("openai", "openai/gpt-4.1-nano"), ("anthropic", "anthropic/claude-4.5-sonnet")]
BIG = Limits(max_rows=sys.maxsize, max_bytes=sys.maxsize)


def request(index: int, text: str, model: int = 0, **body: Any) -> dict[str, Any]:
    provider, name = MODELS[model]
    return {
        "custom_id": f"r{index}",
        "provider": provider,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": name, "messages": [{"role": "user", "content": text}], **body},
    }


def problems(report: Any) -> list[tuple[int, str]]:
    return sorted((p.line, p.code) for p in report.errors + report.warnings)


@st.composite
def input_files(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(file bytes, the request lines the parts must hold: no blanks, no BOM, LF-ended)."""
    count = draw(st.integers(min_value=1, max_value=30))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines: list[bytes] = []
    requests: list[bytes] = []
    for index in range(count):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from([b"", b"  "])))
        row = request(index, draw(st.text(max_size=200)), draw(st.integers(0, 1)))
        if draw(st.booleans()):
            row["body"]["max_tokens"] = draw(st.integers(1, 500))
        if draw(st.integers(0, 14)) == 0:  # an invalid row now and then
            row["method"] = "GET"
        raw = msgspec.json.encode(row)
        lines.append(raw)
        requests.append(raw + ending)
    data = b"".join(line + ending for line in lines)
    if draw(st.booleans()):
        data = data[: -len(ending)]  # no final newline
        requests[-1] = requests[-1][: -len(ending)] + b"\n"
    if draw(st.integers(0, 5)) == 0:
        data = b"\xef\xbb\xbf" + data
    return data, b"".join(requests)


@settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    made=input_files(),
    max_rows=st.integers(1, 12),
    extra_bytes=st.integers(0, 1500),
    token_limit=st.one_of(st.none(), st.integers(20, 200)),
    per_model=st.booleans(),
)
def test_parts_hold_every_request_once_within_every_limit(
    tmp_path_factory: pytest.TempPathFactory,
    made: tuple[bytes, bytes],
    max_rows: int,
    extra_bytes: int,
    token_limit: int | None,
    per_model: bool,
) -> None:
    data, requests = made
    folder = tmp_path_factory.mktemp("plan")
    source = folder / "in.jsonl"
    source.write_bytes(data)
    max_bytes = max(len(line) for line in requests.splitlines(keepends=True)) + extra_bytes
    tokens: int | dict[str, int] | None = token_limit
    if per_model and token_limit is not None:
        tokens = {MODELS[0][1]: token_limit}  # the other model: no limit
    limits = PlanLimits(max_rows=max_rows, max_bytes=max_bytes, max_tokens=tokens)
    expected = validate_path(source, BIG)
    try:
        plan = plan_file(source, folder / "plan", limits)
    except PlanError as exc:
        assert exc.report is not None
        assert not (folder / "plan").exists()
        assert [p for p in os.listdir(folder) if p != "in.jsonl"] == []
        codes = {p.code for p in exc.report.errors}
        over = {"row_over_token_limit", "row_over_byte_limit"}
        if codes & over:  # the planner's own findings come on top of validate's
            assert not expected.errors_total or codes - over
            return
        assert problems(exc.report) == problems(expected)
        assert not expected.valid or expected.rows == 0
        return
    assert expected.valid or {p.code for p in expected.errors} == {"bom"}
    assert problems(plan.report) == problems(expected)
    assert b"".join(plan.part_path(p).read_bytes() for p in plan.parts) == requests
    assert plan.input_signature == FileSignature.of(source)
    assert load_plan(folder / "plan") is not None
    previous_end = 1
    for part in plan.parts:
        body = plan.part_path(part).read_bytes()
        rows = body.splitlines()
        assert 1 <= part.rows == len(rows) <= max_rows
        assert part.bytes == len(body) <= max_bytes
        assert part.first_line >= previous_end and part.end_line > part.first_line
        previous_end = part.end_line
        per: dict[str, int] = {}
        for raw in rows:
            row_body = msgspec.json.decode(raw)["body"]
            model = row_body["model"]
            per[model] = per.get(model, 0) + estimate_prompt_tokens(row_body)
        assert per == part.tokens
        if isinstance(limits.max_tokens, int):  # one number: all the part's models together
            assert sum(per.values()) <= limits.max_tokens
        for model, used in per.items():
            limit = limits.tokens_for(model)
            assert limit is None or used <= limit


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(msgspec.json.encode(row) + b"\n" for row in rows))


def test_a_row_over_the_token_limit_is_an_error_at_its_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(0, "short"), request(1, "x" * 4000), request(2, "short")])
    with pytest.raises(PlanError) as caught:
        plan_file(source, tmp_path / "plan", PlanLimits(max_tokens=500))
    assert caught.value.report is not None
    assert [(p.line, p.code) for p in caught.value.report.errors] == [(2, "row_over_token_limit")]
    assert not (tmp_path / "plan").exists()


def test_the_manifest_describes_the_parts_and_the_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(i, "hello " * 20, i % 2) for i in range(10)])
    plan = plan_file(source, tmp_path / "plan", PlanLimits(max_rows=4))
    manifest = msgspec.json.decode((tmp_path / "plan" / "plan.json").read_bytes())
    assert manifest["version"] == 2 and manifest["totals"]["rows"] == 10
    assert [p["file"] for p in manifest["parts"]] == [
        "parts/part-00001.jsonl",
        "parts/part-00002.jsonl",
        "parts/part-00003.jsonl",
    ]
    assert [(p["first_line"], p["end_line"], p["rows"]) for p in manifest["parts"]] == [
        (1, 5, 4),
        (5, 9, 4),
        (9, 11, 2),
    ]
    info = source.stat()
    assert (manifest["input"]["size"], manifest["input"]["mtime_ns"]) == (
        info.st_size,
        info.st_mtime_ns,
    )
    assert manifest["input"]["inode"] == info.st_ino
    assert load_plan(tmp_path / "plan").input_signature == FileSignature.of(source)
    # a damaged manifest or a missing part: no plan
    manifest_path = tmp_path / "plan" / "plan.json"
    del manifest["input"]["inode"]
    manifest_path.write_bytes(msgspec.json.encode(manifest))
    assert load_plan(tmp_path / "plan") is None
    plan.part_path(plan.parts[1]).unlink()
    assert load_plan(tmp_path / "plan") is None


def test_split_part_plans_one_part_again_with_tighter_limits(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(i, "y" * 400) for i in range(6)])
    plan = plan_file(source, tmp_path / "plan")
    (part,) = plan.parts
    per_row = part.tokens[MODELS[0][1]] // 6
    smaller = split_part(
        plan.part_path(part), tmp_path / "again", PlanLimits(max_tokens=per_row * 2)
    )
    assert [p.rows for p in smaller.parts] == [2, 2, 2]
    assert b"".join(smaller.part_path(p).read_bytes() for p in smaller.parts) == source.read_bytes()


def test_parts_cut_across_many_blocks_hold_the_requests_byte_for_byte(tmp_path: Path) -> None:
    # Several of the validator's 256 KiB blocks: whole blocks go to a part at once, and
    # the blocks where a part ends (or that hold a blank line) go row by row.
    source = tmp_path / "in.jsonl"
    lines, requests = [], []
    for i in range(6000):
        raw = msgspec.json.encode(request(i, f"question {i} " + "word " * (i % 40), i % 2))
        ending = b"\r\n" if i % 7 == 0 else b"\n"
        lines.append(raw + ending)
        requests.append(raw + ending)
        if i % 997 == 0:
            lines.append(b"   \n")  # blank: left out of the parts
    data = b"".join(lines)
    source.write_bytes(data[:-1])  # and no final newline
    assert len(data) > 4 * 256 * 1024
    plan = plan_file(source, tmp_path / "plan", PlanLimits(max_rows=1700))
    assert [p.rows for p in plan.parts] == [1700, 1700, 1700, 900]
    assert b"".join(plan.part_path(p).read_bytes() for p in plan.parts) == b"".join(requests)


def test_parts_are_the_same_when_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # copy_file_range is Linux's, and some file systems refuse it: the bytes then go
    # through a buffer, and the parts are the same.
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(i, "word " * (i % 50), i % 2) for i in range(5000)])
    calls = []

    def refuse(*args: object) -> int:
        calls.append(args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    plan = plan_file(source, tmp_path / "plan", PlanLimits(max_rows=1300))
    assert calls, "the kernel copy was not tried"
    assert [p.rows for p in plan.parts] == [1300, 1300, 1300, 1100]
    assert b"".join(plan.part_path(p).read_bytes() for p in plan.parts) == source.read_bytes()


def test_a_plan_is_refused_when_the_file_is_not_the_one_that_was_checked(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(i, "hello") for i in range(10)])
    checked = FileSignature.of(source)
    assert plan_file(source, tmp_path / "plan", expect=checked).totals["rows"] == 10
    # replaced by another file of the same size and time (an editor's rename)
    other = tmp_path / "other.jsonl"
    write_rows(other, [request(i, "howdy") for i in range(10)])
    os.utime(other, ns=(checked.mtime_ns, checked.mtime_ns))
    os.replace(other, source)
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (checked.size, checked.mtime_ns)
    with pytest.raises(PlanError, match="changed since it was checked"):
        plan_file(source, tmp_path / "again", expect=checked)
    assert not (tmp_path / "again").exists()


def test_an_input_cut_short_while_it_is_planned_is_an_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_rows(source, [request(i, "some words " * 30) for i in range(40_000)])
    size = source.stat().st_size

    def cut_short(done: int, total: int) -> None:
        if done < size // 2:
            os.truncate(source, size // 2)

    with pytest.raises(PlanError, match="shorter|changed"):
        plan_file(source, tmp_path / "plan", PlanLimits(max_rows=5000), on_progress=cut_short)
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl"]


PLANNER = """
import sys
from fr_tui.core.plan import PlanLimits, plan_file
plan_file(sys.argv[1], sys.argv[2], PlanLimits(max_rows=500))
"""


def test_a_planner_killed_midway_leaves_no_plan_and_a_rerun_succeeds(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    row = msgspec.json.encode(request(0, "some words " * 10))
    source.write_bytes(
        b"".join(row.replace(b'"r0"', f'"r{i}"'.encode()) + b"\n" for i in range(300_000))
    )
    out = tmp_path / "plan"
    proc = subprocess.Popen([sys.executable, "-c", PLANNER, str(source), str(out)])
    deadline = time.monotonic() + 60
    try:
        while not list(tmp_path.glob(".plan-tmp-plan-*/parts/part-00003.jsonl")):
            assert proc.poll() is None, "the planner ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)  # polling a state with a deadline, not waiting on time
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and load_plan(out) is None
    plan = plan_file(source, out, PlanLimits(max_rows=50_000))
    assert plan.totals["rows"] == 300_000 and len(plan.parts) == 6
    assert load_plan(out) is not None
    assert not list(tmp_path.glob(".plan-tmp-*"))  # the dead planner's folder is gone
