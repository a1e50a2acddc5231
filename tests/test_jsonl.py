"""LineIndex: random access to the lines of a JSONL file, built by a forward mmap scan."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fr_tui.core.jsonl import LineIndex, custom_id_of


def expected_lines(data: bytes) -> list[bytes]:
    """What a user means by "the lines": split on \\n, the last empty piece is no line,
    a CR before the newline is part of the line ending."""
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


def write(tmp_path: Path, data: bytes, name: str = "f.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x")),
        max_size=30,
    ),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
)
def test_random_content_round_trips(
    tmp_path: Path, pieces: list[bytes], eol: bytes, final: bool
) -> None:
    data = eol.join(pieces) + (eol if final and pieces else b"")
    path = write(tmp_path, data)
    with LineIndex(path) as index:
        index.build()
        want = expected_lines(data)
        assert index.complete
        assert len(index) == len(want)
        assert [index.line(i) for i in range(len(index))] == want
        assert [raw for _, raw in index.iter_lines()] == want
        assert index.lines(0, 10_000) == want


def test_empty_file_has_no_lines(tmp_path: Path) -> None:
    with LineIndex(write(tmp_path, b"")) as index:
        assert index.complete and index.size == 0
        index.build()
        assert len(index) == 0
        assert index.lines(0, 5) == []
        assert index.find("x", 0) is None
        with pytest.raises(IndexError):
            index.line(0)


def test_final_line_without_newline_counts(tmp_path: Path) -> None:
    with LineIndex(write(tmp_path, b'{"a":1}\n{"b":2}')) as index:
        index.build()
        assert len(index) == 2
        assert index.line(1) == b'{"b":2}'
        assert index.line(-1) == b'{"b":2}'


def test_crlf_lines_lose_their_cr(tmp_path: Path) -> None:
    with LineIndex(write(tmp_path, b"one\r\ntwo\r\n\r\nthree")) as index:
        index.build()
        assert index.lines(0, 4) == [b"one", b"two", b"", b"three"]


def test_single_huge_line(tmp_path: Path) -> None:
    huge = b'{"custom_id":"big","x":"' + b"y" * (9 << 20) + b'"}'
    with LineIndex(write(tmp_path, b"first\n" + huge + b"\nlast\n")) as index:
        index.build()
        assert len(index) == 3
        assert index.line(1) == huge
        assert [raw for _, raw in index.iter_lines()] == [b"first", huge, b"last"]
        assert custom_id_of(index.line(1)) == "big"
        assert index.find("last", 0) == 2
        assert index.find("first", 2, backwards=True) == 0


def test_scan_head_gives_first_lines_then_build_finishes(tmp_path: Path) -> None:
    data = b"".join(b'{"custom_id":"r%d"}\n' % i for i in range(1000))
    with LineIndex(write(tmp_path, data)) as index:
        index.scan_head(50)
        assert len(index) == 50 and not index.complete
        assert custom_id_of(index.line(49)) == "r49"
        index.build()
        assert len(index) == 1000 and index.complete
        assert custom_id_of(index.line(999)) == "r999"


def test_build_reports_progress_and_first_chunk(tmp_path: Path) -> None:
    data = b"".join(b'{"i":%d}\n' % i for i in range(5000))
    seen: list[tuple[int, int]] = []
    with LineIndex(write(tmp_path, data)) as index:
        index.build(
            on_progress=lambda done, total: seen.append((done, total)), first_chunk_lines=10
        )
    assert seen[-1] == (len(data), len(data))
    assert seen[0][0] < len(data)  # the first chunk is announced before the scan ends


def test_build_can_be_cancelled(tmp_path: Path) -> None:
    data = b"x" * 100 + b"\n"
    path = write(tmp_path, data * 300_000)  # 30 MB: several progress steps
    cancel = threading.Event()
    cancel.set()
    with LineIndex(path) as index:
        index.build(cancel=cancel)
        assert not index.complete
        assert 0 < len(index) < 300_000
        index.build()  # a later build picks up where the cancelled one stopped
        assert index.complete and len(index) == 300_000


def test_reads_while_a_thread_builds(tmp_path: Path) -> None:
    data = b"".join(b'{"custom_id":"r%d"}\n' % i for i in range(200_000))
    with LineIndex(write(tmp_path, data)) as index:
        worker = threading.Thread(target=index.build)
        worker.start()
        checked = 0
        while worker.is_alive() or checked == 0:
            n = len(index)
            if n:
                assert index.line(n - 1) == b'{"custom_id":"r%d"}' % (n - 1)
                checked += 1
        worker.join()
        assert len(index) == 200_000


def test_find_forwards_backwards_and_case(tmp_path: Path) -> None:
    data = b"alpha\nBeta\ngamma\nbeta\ndelta\n"
    with LineIndex(write(tmp_path, data)) as index:
        index.build()
        assert index.find("beta", 0) == 1
        assert index.find("beta", 2) == 3
        assert index.find("beta", 4) is None  # no wrapping
        assert index.find("beta", 0, ignore_case=False) == 3
        assert index.find("beta", 4, backwards=True) == 3
        assert index.find("beta", 2, backwards=True) == 1
        assert index.find("beta", 0, backwards=True) is None
        assert index.find("ALPHA", 0) == 0
        assert index.find("nothing", 0) is None
        assert index.find("", 0) is None


def test_find_across_block_boundaries(tmp_path: Path) -> None:
    line = b"z" * 999 + b"\n"
    data = line * 5000 + b"needle here\n" + line * 5000  # ~10 MB, beyond one 4 MB block
    with LineIndex(write(tmp_path, data)) as index:
        index.build()
        assert index.find("NEEDLE", 0) == 5000
        assert index.find("needle", 10_000, backwards=True) == 5000
        assert index.find("needle", 4999, backwards=True) is None


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b'{"custom_id":"a-1","body":{}}', "a-1"),
        (b'{"custom_id": 7}', "7"),
        (b'{"custom_id": null}', None),
        (b"not json", None),
        (b"[1,2]", None),
        (b"", None),
    ],
)
def test_custom_id_of(raw: bytes, want: str | None) -> None:
    assert custom_id_of(raw) == want
