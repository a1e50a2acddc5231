"""Property tests: no result line, however mangled, breaks the parser or the join."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fr_tui.core.results import join_results, parse_result_line

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
KEYS = [
    "custom_id",
    "response",
    "error",
    "status_code",
    "body",
    "choices",
    "message",
    "content",
    "usage",
    "code",
    "data",
]

# Lines shaped like results, with any field replaced by any JSON value.
result_like = st.fixed_dictionaries(
    {
        "custom_id": st.text(max_size=5) | json_values,
        "response": st.none()
        | json_values
        | st.fixed_dictionaries(
            {
                "status_code": st.integers(0, 700) | json_values,
                "body": json_values
                | st.fixed_dictionaries(
                    {
                        "choices": json_values
                        | st.lists(
                            st.fixed_dictionaries(
                                {"message": json_values, "finish_reason": json_values}
                            ),
                            max_size=2,
                        ),
                        "usage": json_values
                        | st.dictionaries(
                            st.sampled_from(["prompt_tokens", "completion_tokens", "cost"]),
                            json_values,
                        ),
                        "error": json_values,
                        "data": json_values,
                    }
                ),
            }
        ),
        "error": st.none()
        | json_values
        | st.fixed_dictionaries({"code": json_values, "message": json_values}),
    }
)


def mutate(raw: bytes, cuts: list[int]) -> bytes:
    data = bytearray(raw)
    for cut in cuts:
        if data:
            position = cut % len(data)
            data[position] = (data[position] + cut) % 256
    return bytes(data)


@settings(max_examples=400)
@given(result_like, st.lists(st.integers(0, 10_000), max_size=3))
def test_parser_never_raises_and_classifies_consistently(
    obj: dict[str, Any], cuts: list[int]
) -> None:
    raw = json.dumps(obj).encode()  # stdlib: also writes ints beyond 64 bits
    for line in (raw, mutate(raw, cuts), raw[: len(raw) // 2]):
        parsed = parse_result_line(line)
        if parsed.problem is not None:
            assert parsed.custom_id is None
            continue
        assert isinstance(parsed.custom_id, str)
        if parsed.ok:
            assert parsed.error_code is None and parsed.status_code is not None
            assert 200 <= parsed.status_code < 300
        else:
            assert parsed.error_code  # every failure has a groupable code


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_result_line(raw)
    assert parsed.problem is not None or isinstance(parsed.custom_id, str)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(0, 30),
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(["ok", "err", "http", "junk", "other"])),
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_every_input_row_gets_exactly_one_outcome(
    tmp_path: Path, n_inputs: int, results: list[tuple[int, str]], rnd: random.Random
) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(
        b"".join(
            msgspec.json.encode({"custom_id": f"c{i}", "body": {"model": "m"}}) + b"\n"
            for i in range(n_inputs)
        )
    )
    out_lines: list[bytes] = []
    err_lines: list[bytes] = []
    for target, kind in results:
        cid = f"c{target}"
        if kind == "ok":
            out_lines.append(
                msgspec.json.encode(
                    {"custom_id": cid, "response": {"status_code": 200, "body": {}}, "error": None}
                )
            )
        elif kind == "err":
            err_lines.append(
                msgspec.json.encode(
                    {"custom_id": cid, "response": None, "error": {"code": "x", "message": "y"}}
                )
            )
        elif kind == "http":
            err_lines.append(
                msgspec.json.encode(
                    {"custom_id": cid, "response": {"status_code": 400, "body": {}}, "error": None}
                )
            )
        elif kind == "junk":
            out_lines.append(b"{" + cid.encode())
        else:
            err_lines.append(b'"just a string"')
    rnd.shuffle(out_lines)
    rnd.shuffle(err_lines)
    out = tmp_path / "out.jsonl"
    err = tmp_path / "err.jsonl"
    out.write_bytes(b"\n".join(out_lines))  # no final newline, on purpose
    err.write_bytes(b"\r\n".join(err_lines))
    with join_results(inp, out, err) as joined:
        counts = joined.counts
        assert counts["ok"] + counts["failed"] + counts["missing"] == counts["total"] == n_inputs
        assert sorted(
            joined.filter("ok") + joined.filter("failed") + joined.filter("missing")
        ) == list(range(n_inputs))
        assert sum(g[3] for g in joined.error_groups()) == counts["failed"] + counts["missing"]
        answered = {t for t, kind in results if kind in ("ok", "err", "http") and t < n_inputs}
        assert counts["ok"] + counts["failed"] == len(answered)
        result_lines = sum(1 for _, kind in results if kind in ("ok", "err", "http"))
        joined_lines = (
            counts["ok"] + counts["failed"] + len(joined.duplicates) + len(joined.unknown_ids)
        )
        assert joined_lines == result_lines  # every parseable line is accounted for once
        assert len(joined.bad_lines) == sum(1 for _, kind in results if kind in ("junk", "other"))


# Lines near the two shapes the results index reads a block at a time (resultline.OkLine,
# resultline.FailedLine): those readers must say of a line what the full parse says. A
# line of one of the shapes, then a field or two of it set to anything (or removed).
OK_LINE = {
    "custom_id": "a",
    "response": {
        "status_code": 200,
        "body": {
            "model": "m",
            "choices": [{"message": {"content": " a\nb"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "cost": 0.25},
        },
    },
    "error": None,
}
FAILED_LINES = [
    {"custom_id": "a", "response": None, "error": {"code": "x", "message": "m"}},
    {
        "custom_id": "a",
        "response": {"status_code": 429, "body": {"error": {"code": "x", "message": "m"}}},
    },
]


def paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, (*at, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += paths(value, (*at, index))
    return found


@st.composite
def near_ordinary(draw: st.DrawFn) -> dict[str, Any]:
    line = json.loads(json.dumps(draw(st.sampled_from([OK_LINE, *FAILED_LINES]))))
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(paths(line)))
        *parents, last = path
        target = line
        for key in parents:
            target = target[key]
        if draw(st.booleans()) and isinstance(target, dict):
            del target[last]
        else:
            target[last] = draw(
                st.sampled_from(["", "x", 0, 200, 404, -1, 1.5, None, True, [], {}]) | json_values
            )
        if not paths(line):
            break
    extra = draw(st.sampled_from([{}, {"outcome": "failed"}, {"model": 1}, {"type": "t"}]))
    target = line
    for key in draw(st.sampled_from([(), ("response", "body"), ("error",)])):
        target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.update(extra)
    return line


@settings(max_examples=500)
@given(near_ordinary())
def test_the_readers_of_ordinary_lines_agree_with_the_full_parse(obj: dict[str, Any]) -> None:
    from fr_tui.core.resultline import (
        _decode_failed_line,
        failure_of,
        parse_other_line,
        read_ok_line,
    )

    raw = json.dumps(obj).encode()
    full = parse_other_line(raw)
    event("an OkLine" if read_ok_line(raw) else "not an OkLine")
    assert parse_result_line(raw) == full  # through OkLine when it reads the line
    try:
        failure = failure_of(_decode_failed_line(raw))
    except msgspec.DecodeError:
        failure = None
    event("a FailedLine" if failure else "not a FailedLine")
    if failure is not None:
        assert read_ok_line(raw) is None
        assert (full.ok, full.outcome, full.model, full.tokens_in, full.cost) == (
            False,
            None,
            None,
            None,
            None,
        )
        assert (full.status_code, full.error_code, full.error_message) == failure
