"""Splitting a batch file: no row lost or repeated, every part within the limits."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fr_tui.core.split import split_file
from fr_tui.core.validate import Limits, validate_path


def rows_file(path: Path, sizes: list[int], ending: bytes = b"\n") -> list[bytes]:
    lines = []
    for index, size in enumerate(sizes):
        row = {
            "custom_id": f"r{index}",
            "provider": "openai",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "openai/gpt-4.1-nano",
                "messages": [{"role": "user", "content": "x" * size}],
            },
        }
        lines.append(msgspec.json.encode(row))
    path.write_bytes(b"".join(line + ending for line in lines))
    return lines


def part_rows(parts: list[Path]) -> list[bytes]:
    return [
        line.rstrip(b"\r\n")
        for part in parts
        for line in part.read_bytes().splitlines(keepends=True)
    ]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40),
    max_rows=st.integers(min_value=1, max_value=15),
    extra_bytes=st.integers(min_value=0, max_value=2000),
    crlf=st.booleans(),
)
def test_round_trip_keeps_every_row_once_within_limits(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    max_rows: int,
    extra_bytes: int,
    crlf: bool,
) -> None:
    folder = tmp_path_factory.mktemp("split")
    source = folder / "batch.jsonl"
    lines = rows_file(source, sizes, b"\r\n" if crlf else b"\n")
    max_bytes = max(len(line) for line in lines) + 2 + extra_bytes
    parts = split_file(source, max_rows=max_rows, max_bytes=max_bytes, out_dir=folder / "out")
    assert part_rows(parts) == lines
    limits = Limits(max_rows=max_rows, max_bytes=max_bytes)
    for number, part in enumerate(parts, start=1):
        assert part.name == f"batch.part{number}.jsonl"
        report = validate_path(part, limits)
        assert report.valid, report.to_json()
        assert report.rows <= max_rows and part.stat().st_size <= max_bytes


def test_parts_fill_up_to_the_row_limit(tmp_path: Path) -> None:
    source = tmp_path / "b.jsonl"
    rows_file(source, [10] * 7)
    parts = split_file(source, max_rows=3)
    assert [p.name for p in parts] == ["b.part1.jsonl", "b.part2.jsonl", "b.part3.jsonl"]
    assert [len(p.read_bytes().splitlines()) for p in parts] == [3, 3, 1]
    assert parts[0].parent == tmp_path


def test_blank_lines_bom_and_missing_newline_are_cleaned(tmp_path: Path) -> None:
    source = tmp_path / "b.jsonl"
    lines = rows_file(source, [5, 5, 5])
    source.write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\n\n   \n" + lines[1] + b"\n" + lines[2])
    parts = split_file(source, max_rows=2)
    assert part_rows(parts) == lines
    assert all(validate_path(p).warnings_total == 0 and validate_path(p).valid for p in parts)


def test_a_row_bigger_than_the_byte_limit_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "b.jsonl"
    rows_file(source, [10, 10, 5000, 10])
    with pytest.raises(ValueError, match="line 3 alone is"):
        split_file(source, max_rows=1, max_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.jsonl"]


def test_bad_limits_are_rejected(tmp_path: Path) -> None:
    source = tmp_path / "b.jsonl"
    rows_file(source, [1])
    with pytest.raises(ValueError):
        split_file(source, max_rows=0)
