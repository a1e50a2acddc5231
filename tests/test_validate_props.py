"""Property tests: the validator never raises, and only points at lines that exist."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fr_tui.core.validate import Report, validate_bytes

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line_count(data: bytes) -> int:
    """Lines as a text editor numbers them (an empty file still has line 1)."""
    return max(1, data.count(b"\n") + (0 if data.endswith(b"\n") else 1))


def assert_lines_exist(report: Report, data: bytes) -> None:
    last = line_count(data)
    for problem in report.errors + report.warnings:
        assert 1 <= problem.line <= last, (problem, last)
        if problem.other_line is not None:
            assert 1 <= problem.other_line < problem.line
    assert report.errors_total >= len(report.errors)
    assert report.warnings_total >= len(report.warnings)
    msgspec.json.encode(report.to_json())


texts = st.text(max_size=30)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": texts}
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def valid_files(draw: st.DrawFn) -> bytes:
    count = draw(st.integers(min_value=1, max_value=12))
    provider, model = draw(
        st.sampled_from(
            [("openai", "openai/gpt-4.1-nano"), ("anthropic", "anthropic/claude-4.5-sonnet")]
        )
    )
    rows = []
    for index in range(count):
        body: dict[str, Any] = {"model": model, "messages": draw(messages)}
        if draw(st.booleans()):
            body["max_tokens"] = draw(st.integers(min_value=1, max_value=4000))
        rows.append(
            {
                "custom_id": f"{draw(texts)}-{index}",
                "provider": provider,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }
        )
    return b"".join(msgspec.json.encode(row) + b"\n" for row in rows)


@PROPS
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert_lines_exist(validate_bytes(data), data)


@PROPS
@given(
    st.lists(
        st.sampled_from(
            [
                b"{",
                b"}",
                b'"',
                b":",
                b",",
                b"[",
                b"]",
                b"\n",
                b"\r",
                b"\xef\xbb\xbf",
                b"\xff",
                b" ",
                b"null",
                b'"custom_id"',
                b'"body"',
                b"1",
            ]
        ),
        max_size=60,
    )
)
def test_json_like_noise_never_raises(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert_lines_exist(validate_bytes(data), data)


@PROPS
@given(valid_files())
def test_generated_valid_files_are_valid(data: bytes) -> None:
    report = validate_bytes(data)
    assert report.valid, report.to_json()
    assert report.warnings_total == 0


@PROPS
@given(valid_files(), st.sampled_from(["crlf", "no_final_newline", "both"]))
def test_a_valid_file_stays_valid_when_its_endings_change(data: bytes, change: str) -> None:
    if change in ("crlf", "both"):
        data = data.replace(b"\n", b"\r\n")
    if change in ("no_final_newline", "both"):
        data = data.rstrip(b"\r\n")
    report = validate_bytes(data)
    assert report.valid, report.to_json()
    expected = {"crlf": {"crlf_line_endings"}, "no_final_newline": {"missing_final_newline"}}
    wanted = expected.get(change, {"crlf_line_endings", "missing_final_newline"})
    if change == "both" and data.count(b"\n") == 0:
        wanted = {"missing_final_newline"}  # a one-line file has no CRLF left
    assert {p.code for p in report.warnings} == wanted
    assert_lines_exist(report, data)


@PROPS
@given(
    valid_files(),
    st.lists(
        st.tuples(
            st.integers(min_value=0),
            st.sampled_from(["delete", "insert", "flip"]),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_valid_files_never_raise(data: bytes, edits: list[tuple[int, str, bytes]]) -> None:
    buffer = bytearray(data)
    for position, kind, payload in edits:
        at = position % (len(buffer) + 1)
        if kind == "delete":
            del buffer[at : at + len(payload)]
        elif kind == "insert":
            buffer[at:at] = payload
        elif buffer:
            buffer[at % len(buffer)] ^= payload[0] or 1
    mutated = bytes(buffer)
    assert_lines_exist(validate_bytes(mutated), mutated)


@PROPS
@given(
    ids=st.lists(st.sampled_from(["a", "b", "ab", "r-9", "r-10", "r-11", "zz", "é"]), max_size=14),
    sort=st.booleans(),
    bodies=st.lists(st.booleans(), min_size=14, max_size=14),
)
def test_duplicate_ids_are_found_whatever_their_order(
    ids: list[str], sort: bool, bodies: list[bool]
) -> None:
    # rising ids take the validator's shortcut, others its hash check: both must find
    # exactly the repeats a dictionary finds, each naming its first line, on rows of the
    # fast path and of the full checks (a row without a usable body) alike
    if sort:
        ids = sorted(ids, key=lambda i: (len(i), i))
    rows = []
    for custom_id, usable in zip(ids, bodies, strict=False):
        body: Any = {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "q"}]}
        if not usable:
            body = None
        rows.append(
            {
                "custom_id": custom_id,
                "provider": "openai",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }  # fmt: skip
        )
    data = b"".join(msgspec.json.encode(row) + b"\n" for row in rows)
    first: dict[str, int] = {}
    expected = []
    for line, custom_id in enumerate(ids, 1):
        if first.setdefault(custom_id, line) != line:
            expected.append((line, first[custom_id]))
    report = validate_bytes(data)
    found = [(p.line, p.other_line) for p in report.errors if p.code == "duplicate_custom_id"]
    assert found == expected
