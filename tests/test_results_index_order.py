"""The index build's two shortcuts give the rows of the join in memory: a job's merged lines
taken apart a block at a time (results_blocks._take_merged), and rows that take results in
the order they arrived without looking their custom_ids up (IndexBuilder.take_all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_results_index import KINDS, assert_same, make_files

from fr_tui.core.results import join_in_memory, join_results

OK_BODY = {
    "model": "openai/gpt-4.1-nano",
    "choices": [{"message": {"content": "  Yes.\n more"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost": 0.5},
}
HTTP_FAILURE = {"error": {"message": "Rate limit", "type": "rate_limit", "code": "slow_down"}}
# (outcome, response, error) of the merged lines of a job: the ordinary ones, and those
# whose failure or answer only parse_other_line reads (a block keeps them row by row)
MERGED: dict[str, tuple[str, Any, Any]] = {
    "ok": ("ok", {"status_code": 200, "body": OK_BODY}, None),
    "ok, no usage or model": (
        "ok",
        {"status_code": 200, "body": {"choices": OK_BODY["choices"]}},
        None,
    ),
    "ok, an embedding": (
        "ok",
        {"status_code": 200, "body": {"data": [{"embedding": [1.0]}]}},
        None,
    ),
    "ok, no body": ("ok", {"status_code": 200}, None),
    "ok, a 429": ("ok", {"status_code": 429, "body": HTTP_FAILURE}, None),
    "ok, tool calls": (
        "ok",
        {"status_code": 200, "body": {"choices": [{"message": {"tool_calls": []}}]}},
        None,
    ),
    "failed": ("failed", None, {"code": "batch_expired", "message": "too late"}),
    "failed, no message": ("failed", None, {"code": "batch_expired"}),
    "failed, http": ("failed", {"status_code": 429, "body": HTTP_FAILURE}, None),
    "failed, http with a model": (
        "failed",
        {"status_code": 500, "body": {**HTTP_FAILURE, "model": "m"}},
        None,
    ),
    "failed, http and an error": (
        "failed",
        {"status_code": 500, "body": HTTP_FAILURE},
        {"code": "x", "message": "y"},
    ),
    "failed, an answer": ("failed", {"status_code": 200, "body": OK_BODY}, None),
    "failed, neither": ("failed", None, None),
    "failed, a string error": ("failed", None, "plain words"),
    "missing": ("missing", None, None),
    "missing, with a response": ("missing", {"status_code": 200, "body": OK_BODY}, None),
}

NOT_MERGED_LINES = {"ok, tool calls", "failed, a string error"}  # a block of them falls back


def merged(cid: str, shape: str, number: int) -> bytes:
    outcome, response, error = MERGED[shape]
    line = {"custom_id": cid, "outcome": outcome, "batch_id": f"b{number % 3}", "round": 1}
    if shape == "missing":
        line["batch_id"] = line["round"] = None
    return msgspec.json.encode({**line, "response": response, "error": error})


@pytest.mark.parametrize("shape", [*MERGED, "all MergedLines"])
def test_blocks_of_merged_lines_give_the_rows_of_the_join_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    import fr_tui.core.results_blocks as blocks

    monkeypatch.setattr(blocks, "_BUFFER", 4096)  # many blocks from a small file
    taken: list[bool] = []
    take = blocks._take_merged
    monkeypatch.setattr(blocks, "_take_merged", lambda *a: taken.append(take(*a)) or taken[-1])
    count = 600
    inp, out, _ = make_files(tmp_path, [f"c{i}" for i in range(count)], [], 0)
    # each row's merged line, in input order, among ordinary ok and missing ones
    if shape in MERGED:
        shapes = [shape, "ok", "missing"]
    else:
        shapes = [name for name in MERGED if name not in NOT_MERGED_LINES]
    lines = [merged(f"c{i}", shapes[i % len(shapes)], i) for i in range(count)]
    out.write_bytes(b"\n".join(lines) + b"\n")
    with join_in_memory(inp, out, None) as memory, join_results(inp, out, None) as built:
        assert_same(built, memory)
        assert memory.counts["total"] == count
    if shape in NOT_MERGED_LINES:
        assert False in taken  # a block with one: read line by line
    else:
        assert taken.count(True) > 4 and False not in taken


def test_rows_take_results_in_order_until_one_does_not_then_by_custom_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fr_tui.core.results_blocks as blocks

    monkeypatch.setattr(blocks, "_BUFFER", 8192)
    count = 1000
    inputs = [f"c{i}" for i in range(count)]
    inputs[10] = inputs[5]  # a custom_id two rows share, both in the part taken in order
    results = [(cid, "ok_plain") for cid in inputs]
    # past a few blocks taken in order: rows without results, results out of order, a
    # repeat of a result taken in order, an unknown id, and a repeat at the very end
    del results[600:620]
    results[700:720] = reversed(results[700:720])
    results[800:800] = [("c5", "ok_plain"), ("c3", "merged_failed"), ("nobody", "ok_plain")]
    results.append(("c999", "ok_plain"))
    inp, out, err = make_files(tmp_path, inputs, results, 0, shuffle=False)
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)
        assert memory.counts["missing"] == 20
        assert [i.custom_id for i in memory.duplicates] == ["c5", "c3", "c999"]
        assert [i.custom_id for i in memory.unknown_ids] == ["nobody"]


@pytest.mark.parametrize("extra", ["a repeat", "an unknown id", "none"])
def test_results_in_order_with_more_at_the_end(tmp_path: Path, extra: str) -> None:
    inputs = [f"c{i}" for i in range(50)]
    results = [(cid, "ok_plain") for cid in inputs]
    results += {"a repeat": [("c7", "merged_ok")], "an unknown id": [("zz", "ok")], "none": []}[
        extra
    ]
    inp, out, err = make_files(tmp_path, inputs, results, 0, shuffle=False)
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)
        assert len(memory.duplicates) == (extra == "a repeat")
        assert len(memory.unknown_ids) == (extra == "an unknown id")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inputs=st.lists(st.sampled_from(["c1", "c2", "c3", "c10", "c1", "", " "]), max_size=12),
    edits=st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from(["drop", "again", "c9", *KINDS])),
        max_size=4,
    ),
)
def test_results_nearly_in_input_order_give_the_rows_of_the_join_in_memory(
    tmp_path_factory: pytest.TempPathFactory,
    inputs: list[str],
    edits: list[tuple[int, str]],
) -> None:
    # one result per row with an id, in input order, then a few edited in or out
    results = [
        (cid, "merged_ok" if n % 2 else "ok_plain") for n, cid in enumerate(inputs) if cid.strip()
    ]
    for at, edit in edits:
        at = min(at, len(results))
        if edit == "drop" and at < len(results):
            del results[at]
        elif edit == "again" and results:
            results.insert(at, results[at - 1])
        elif edit == "c9":
            results.insert(at, ("c9", "ok_plain"))
        elif edit in KINDS:
            results.insert(at, ("c2", edit))
    folder = tmp_path_factory.mktemp("order")
    inp, out, err = make_files(folder, inputs, results, 0, shuffle=False)
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)


def test_a_jobs_missing_rows_say_no_batch_returned_them(tmp_path: Path) -> None:
    # a batch's missing row has no line in its files; a job's has one that says "missing"
    inputs = ["c1", "c2", "c3"]
    inp, out, err = make_files(tmp_path, inputs, [("c1", "ok_plain")], 0)
    with join_results(inp, out, err) as batch:
        assert batch.missing_reason(1) == "no result line in the output or error file"
    job = [("c1", "merged_ok"), ("c2", "merged_missing"), ("c3", "merged_missing")]
    (tmp_path / "job").mkdir()
    inp, out, err = make_files(tmp_path / "job", inputs, job, 0, shuffle=False)
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        for joined in (memory, built):
            assert joined.error_groups() == [
                ("missing", "missing", "no batch of the job returned it, in any round", 2)
            ]
            assert joined.missing_reason(2) == "no batch of the job returned it, in any round"
