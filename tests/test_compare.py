"""compare's core on hand-made result files: the join by custom_id (against a naive one,
with duplicates, rows without ids and forced hash collisions), the row states and the
summary, word and JSON field diffs, cosine similarity, the export, and a job's merged
result file as one side."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fr_tui.core import compare_join
from fr_tui.core.compare import (
    A_NOT_OK,
    B_NOT_OK,
    DIFFERENT,
    NEITHER_OK,
    ONLY_A,
    ONLY_B,
    SAME,
    compare,
    join_ids,
)
from fr_tui.core.compare_export import COMPARE_COLUMNS, export_comparison
from fr_tui.core.result_sets import JobResultSet, ResultSetUnavailable
from fr_tui.core.results import join_results
from fr_tui.core.results_index import IndexedResults
from fr_tui.core.textdiff import (
    NOT_JSON,
    cosine,
    embedding_vectors,
    json_diff,
    parse_json_answer,
    word_diff,
)

# -- building result files ------------------------------------------------------------


def chat_body(content: str, *, finish: str = "stop", tokens: tuple[int, int] = (10, 5)) -> dict:
    return {
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "cost": 0.0001},
    }


def write_run(
    folder: Path, rows: list[tuple[str, str, Any]], *, inputs: list[str] | None = None
) -> tuple[Path, Path, Path]:
    """A run: `rows` are (custom_id, "ok" | "failed" | "missing", answer body or None);
    the input file lists `inputs` (default: the rows' ids in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = inputs if inputs is not None else [cid for cid, _, _ in rows]
    input_path = folder / "input.jsonl"
    input_path.write_bytes(
        b"".join(
            msgspec.json.encode({"custom_id": cid, "body": {"model": "m", "messages": []}}) + b"\n"
            for cid in ids
        )
    )
    out, err = [], []
    for cid, outcome, body in rows:
        if outcome == "ok":
            out.append(
                {"custom_id": cid, "response": {"status_code": 200, "body": body}, "error": None}
            )
        elif outcome == "failed":
            err.append(
                {
                    "custom_id": cid,
                    "response": {
                        "status_code": 500,
                        "body": {"error": {"code": "boom", "message": "it broke"}},
                    },
                    "error": None,
                }
            )
    output, errors = folder / "output.jsonl", folder / "errors.jsonl"
    output.write_bytes(b"".join(msgspec.json.encode(x) + b"\n" for x in reversed(out)))
    errors.write_bytes(b"".join(msgspec.json.encode(x) + b"\n" for x in err))
    return input_path, output, errors


def opened(paths: tuple[Path, Path, Path]) -> Any:
    return join_results(*paths)


# -- the join -------------------------------------------------------------------------


def naive_join(a: list[str | None], b: list[str | None]) -> tuple[list[int], list[int]]:
    """The k-th row of A with an id pairs with the k-th row of B with that id."""
    waiting: dict[str, list[int]] = {}
    for row, cid in enumerate(b):
        if cid is not None:
            waiting.setdefault(cid, []).append(row)
    b_of_a, matched = [], set()
    for cid in a:
        rows = waiting.get(cid) if cid is not None else None
        if rows:
            b_of_a.append(rows.pop(0))
            matched.add(b_of_a[-1])
        else:
            b_of_a.append(-1)
    return b_of_a, [row for row in range(len(b)) if row not in matched]


ids = st.lists(st.one_of(st.none(), st.sampled_from([f"id-{i}" for i in range(12)])), max_size=40)


@settings(max_examples=300, deadline=None)
@given(a=ids, b=ids)
def test_the_join_pairs_ids_like_a_naive_join(a: list[str | None], b: list[str | None]) -> None:
    b_of_a, only_b = join_ids(a, b)
    expected_b_of_a, expected_only_b = naive_join(a, b)
    if b_of_a is None:  # the identity: same ids in the same order, none missing
        assert a == b and None not in a
        b_of_a = list(range(len(a)))  # type: ignore[assignment]
    assert list(b_of_a) == expected_b_of_a  # type: ignore[arg-type]
    assert list(only_b) == expected_only_b


def test_hash_collisions_never_pair_different_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # every id hashes to its length: "id-1" and "id-2" collide, as do "ab" and "cd"
    monkeypatch.setattr(compare_join, "_id_hash", len)
    a = ["id-1", "ab", "id-2", "id-1", "zz", None, "cd"]
    b = ["cd", "id-2", "id-1", "xy", "id-1", "id-1"]
    b_of_a, only_b = join_ids(a, b)
    assert (list(b_of_a or []), list(only_b)) == tuple(map(list, naive_join(a, b)))
    assert list(b_of_a or []) == [2, -1, 1, 4, -1, -1, 0]
    assert list(only_b) == [3, 5]


def test_two_runs_of_one_input_file_join_as_the_identity(tmp_path: Path) -> None:
    rows = [(f"r{i}", "ok", chat_body(f"answer {i}")) for i in range(5)]
    a = opened(write_run(tmp_path / "a", rows))
    b_paths = write_run(tmp_path / "b", rows)
    b = join_results(tmp_path / "a" / "input.jsonl", b_paths[1], b_paths[2])
    assert isinstance(a, IndexedResults) and isinstance(b, IndexedResults)
    comparison = compare(a, b)
    assert comparison.identical_ids and len(comparison) == 5
    assert comparison.summary().same == 5
    reordered = opened(write_run(tmp_path / "c", rows, inputs=[f"r{i}" for i in (4, 3, 2, 1, 0)]))
    assert not compare(a, reordered).identical_ids
    assert compare(a, reordered).summary().same == 5


# -- states and summary ---------------------------------------------------------------


@pytest.fixture
def two_runs(tmp_path: Path) -> Any:
    a_rows = [
        ("same", "ok", chat_body("Paris is the capital.", tokens=(10, 4))),
        ("spacing", "ok", chat_body("one  two\nthree")),
        ("differs", "ok", chat_body("The answer is 42.")),
        ("a-fails", "failed", None),
        ("b-fails", "ok", chat_body("fine", finish="length")),
        ("both-fail", "failed", None),
        ("a-missing", "missing", None),
        ("only-a", "ok", chat_body("mine")),
        ("json", "ok", chat_body('{"answer": "yes", "score": 1, "tags": ["a"]}')),
    ]
    b_rows = [
        ("json", "ok", chat_body('{"tags": ["a", "b"], "score": 1.0, "answer": "yes"}')),
        ("same", "ok", chat_body("Paris is the capital.", tokens=(10, 6))),
        ("spacing", "ok", chat_body(" one two three ")),
        ("differs", "ok", chat_body("The answer is 43.", finish="length")),
        ("a-fails", "ok", chat_body("got it")),
        ("b-fails", "failed", None),
        ("both-fail", "missing", None),
        ("a-missing", "ok", chat_body("here")),
        ("only-b", "ok", chat_body("theirs")),
    ]
    a = opened(write_run(tmp_path / "a", a_rows))
    b = opened(write_run(tmp_path / "b", b_rows))
    yield compare(a, b, a_label="first", b_label="second")
    a.close()
    b.close()


def test_each_row_gets_its_state_and_the_summary_counts_them(two_runs: Any) -> None:
    comparison = two_runs
    states = {comparison.custom_id(p): comparison.states[p] for p in range(len(comparison))}
    assert states == {
        "same": SAME,
        "spacing": SAME,  # whitespace does not count
        "differs": DIFFERENT,
        "a-fails": A_NOT_OK,
        "b-fails": B_NOT_OK,
        "both-fail": NEITHER_OK,
        "a-missing": A_NOT_OK,
        "only-a": ONLY_A,
        "json": DIFFERENT,  # 1 and 1.0 differ, and so do the tags
        "only-b": ONLY_B,
    }
    # A's rows in A's order, then B's own rows
    assert [comparison.custom_id(p) for p in range(len(comparison))][-1] == "only-b"
    summary = comparison.summary()
    assert (summary.both, summary.only_a, summary.only_b) == (8, 1, 1)
    assert (summary.same, summary.different, summary.one_ok, summary.neither_ok) == (2, 2, 3, 1)
    assert summary.agreement == pytest.approx(2 / 4)
    assert (summary.a.ok, summary.a.failed, summary.a.missing) == (6, 2, 1)
    assert (summary.b.ok, summary.b.failed, summary.b.missing) == (7, 1, 1)
    assert summary.a.length_cutoffs == 1 and summary.b.length_cutoffs == 1
    assert summary.b.output_tokens - summary.a.output_tokens == summary.deltas()["output_tokens"]
    assert str(summary.a.cost) == "0.0006"  # six ok rows at 0.0001, summed exactly
    assert summary.failure_kinds() == [("boom: it broke", 2, 1), ("missing", 1, 1)]


def test_filters_and_find_cover_both_sides(two_runs: Any) -> None:
    comparison = two_runs

    def ids(kind: str) -> list[str]:
        return [comparison.custom_id(p) for p in comparison.filter(kind)]

    assert ids("different") == ["differs", "json"]
    assert ids("one_failed") == ["a-fails", "b-fails", "a-missing"]
    assert ids("only_a") == ["only-a"] and ids("only_b") == ["only-b"]
    assert "finish:length" in comparison.filters()
    assert ids("finish:length") == ["differs", "b-fails"]
    found = [comparison.custom_id(p) for p in comparison.search("THEIRS")]
    assert found == ["only-b"]  # B's answer, found though A lacks the row
    assert [comparison.custom_id(p) for p in comparison.search("43")] == ["differs"]


def test_find_over_big_sides_scans_slices_and_finds_the_same(
    two_runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above HAYSTACK_ROWS a find reads the columns a slice at a time (handing the pages
    back after each, to stay in the 300 MB budget): it finds what the kept haystack does,
    across slice boundaries."""
    from fr_tui.core import compare as compare_module

    comparison = two_runs
    expected = {text: comparison.search(text) for text in ("THEIRS", "43", "boom", "a-")}
    monkeypatch.setattr(compare_module, "HAYSTACK_ROWS", 0)
    monkeypatch.setattr(compare_module, "SCAN_CHUNK", 3)
    for text, positions in expected.items():
        assert comparison.search(text) == positions, text
    assert expected["a-"]  # the ids a-fails and a-missing, in two slices


def test_a_rows_detail_has_the_word_diff_and_the_json_field_diff(two_runs: Any) -> None:
    comparison = two_runs
    position = next(p for p in range(len(comparison)) if comparison.custom_id(p) == "differs")
    detail = comparison.detail(position)
    assert detail.kind == "text" and detail.words is not None
    assert [(c.a_text, c.b_text) for c in detail.words.changes] == [("42.", "43.")]
    assert detail.a_shown is not None and detail.b_shown is not None
    start, end = detail.words.a_spans[0]
    assert detail.a_shown[start:end] == "42."
    assert detail.request is not None and detail.request["custom_id"] == "differs"
    position = next(p for p in range(len(comparison)) if comparison.custom_id(p) == "json")
    detail = comparison.detail(position)
    assert detail.kind == "json" and detail.fields is not None
    assert [(f.path, f.kind) for f in detail.fields] == [("score", "changed"), ("tags[1]", "added")]
    position = next(p for p in range(len(comparison)) if comparison.custom_id(p) == "a-fails")
    detail = comparison.detail(position)
    assert detail.a.outcome == "failed" and detail.a.error == "boom: it broke"
    assert detail.b.text == "got it" and detail.words is None


def test_export_writes_every_joined_row(two_runs: Any, tmp_path: Path) -> None:
    comparison = two_runs
    jsonl = tmp_path / "out.jsonl"
    assert export_comparison(comparison, jsonl, "jsonl") == 10
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    by_id = {r["custom_id"]: r for r in records}
    assert by_id["differs"]["same"] is False and by_id["same"]["same"] is True
    assert by_id["a-fails"]["same"] is None and by_id["a-fails"]["error_a"] == "boom: it broke"
    assert by_id["only-b"]["outcome_a"] is None and by_id["only-b"]["answer_b"] == "theirs"
    assert by_id["same"]["tokens_out_a"] == 4 and by_id["same"]["tokens_out_b"] == 6
    assert by_id["spacing"]["answer_a"] == "one  two\nthree"  # the whole answer, as sent
    shown = tmp_path / "different.csv"
    assert export_comparison(comparison, shown, "csv", comparison.filter("different")) == 2
    with shown.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COMPARE_COLUMNS
    assert [(r["custom_id"], r["same"]) for r in rows] == [("differs", "false"), ("json", "false")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_export_never_writes_into_a_fifo(two_runs: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as caught:
        export_comparison(two_runs, fifo, "csv")
    assert str(fifo) in str(caught.value)


# -- diffs of one answer --------------------------------------------------------------


def test_word_diff_ignores_whitespace_and_marks_the_changed_words() -> None:
    assert word_diff("a  b\nc", " a b c ").same
    diff = word_diff("the quick brown fox", "the slow brown dog jumps")
    assert [(c.tag, c.a_text, c.b_text) for c in diff.changes] == [
        ("replace", "quick", "slow"),
        ("replace", "fox", "dog jumps"),
    ]
    assert diff.a_spans == [(4, 9), (16, 19)] and diff.b_spans == [(4, 8), (15, 24)]
    assert diff.ratio == pytest.approx(2 * 2 / 9)


def test_word_diff_of_long_answers_compares_the_rest_as_one_block() -> None:
    a = " ".join(f"w{i}" for i in range(30))
    b = " ".join(f"w{i}" for i in range(29)) + " changed"
    diff = word_diff(a, b, max_words=10)
    assert diff.truncated and [(c.a_text, c.b_text) for c in diff.changes][-1][1].endswith(
        "changed"
    )
    assert word_diff(a, a, max_words=10).same


def test_json_diff_paths_and_types() -> None:
    a = {"x": {"y": [1, 2]}, "gone": True, "n": 1, "weird key": "a"}
    b = {"x": {"y": [1, 3, 4]}, "n": True, "weird key": "b", "new": None}
    changes = [(c.path, c.kind) for c in json_diff(a, b)]
    assert changes == [
        ("x.y[1]", "changed"),
        ("x.y[2]", "added"),
        ("gone", "removed"),
        ("n", "changed"),  # 1 and true are different JSON values
        ('["weird key"]', "changed"),
        ("new", "added"),
    ]
    assert json_diff([1], {"a": 1})[0].where == "(the whole document)"
    assert parse_json_answer(' {"a": 1} ') == {"a": 1}
    assert parse_json_answer("not json") is NOT_JSON


def test_cosine_and_embedding_vectors() -> None:
    assert cosine([1, 0], [0, 1]) == 0
    assert cosine([1, 2, 3], [2, 4, 6]) == pytest.approx(1)
    assert cosine([1, 2], [1, 2, 3]) is None and cosine([0, 0], [1, 1]) is None
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    vectors = embedding_vectors({"data": [{"embedding": packed}, {"embedding": [1, 2]}]})
    assert vectors == [[0.5, -1.0, 2.0], [1.0, 2.0]]
    assert embedding_vectors({"data": [{"embedding": "not base64!"}]}) is None


def test_embedding_rows_have_a_similarity(tmp_path: Path) -> None:
    def body(vector: list[float]) -> dict:
        return {"object": "list", "data": [{"embedding": vector}], "usage": {"prompt_tokens": 3}}

    a = opened(
        write_run(tmp_path / "a", [("e1", "ok", body([1.0, 0.0])), ("e2", "ok", body([1.0, 1.0]))])
    )
    b = opened(
        write_run(tmp_path / "b", [("e1", "ok", body([1.0, 0.0])), ("e2", "ok", body([1.0, 0.0]))])
    )
    comparison = compare(a, b)
    assert [comparison.states[p] for p in range(2)] == [SAME, DIFFERENT]
    assert comparison.similarity(0) == pytest.approx(1.0)
    assert comparison.similarity(1) == pytest.approx(1 / math.sqrt(2))
    assert comparison.detail(1).kind == "embedding"
    stats = comparison.similarity_stats()
    assert stats is not None and stats["rows"] == 2
    assert stats["mean"] == pytest.approx((1 + 1 / math.sqrt(2)) / 2)


# -- a job's merged result file as one side ---------------------------------------------


def test_a_job_merged_file_is_one_side(tmp_path: Path) -> None:
    batch_rows = [(f"r{i}", "ok", chat_body(f"answer {i}")) for i in range(4)]
    batch_paths = write_run(tmp_path / "batch", batch_rows)
    job = tmp_path / "job"
    job.mkdir()
    merged = job / "merged.jsonl"
    lines = [
        {"custom_id": "r0", "outcome": "ok", "batch_id": "b1", "round": 1,
         "response": {"status_code": 200, "body": chat_body("answer 0")}, "error": None},
        {"custom_id": "r1", "outcome": "ok", "batch_id": "b2", "round": 2,
         "response": {"status_code": 200, "body": chat_body("answer one")}, "error": None},
        {"custom_id": "r2", "outcome": "failed", "batch_id": "b2", "round": 2,
         "response": None, "error": {"code": "invalid_request", "message": "bad"}},
        {"custom_id": "r3", "outcome": "missing", "batch_id": None, "round": None,
         "response": None, "error": None},
    ]  # fmt: skip
    merged.write_bytes(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
    source = JobResultSet("job-1", merged, batch_paths[0], label="nightly job")
    asyncio.run(source.ensure())
    try:
        comparison = compare(opened(batch_paths), source.open())
        assert [comparison.states[p] for p in range(4)] == [SAME, DIFFERENT, B_NOT_OK, B_NOT_OK]
        summary = comparison.summary()
        assert (summary.b.ok, summary.b.failed, summary.b.missing) == (2, 1, 1)
        assert source.ref.kind == "job" and source.label == "nightly job"
        assert (job / "index.frx").exists()  # joined on the stored index, beside the file
    finally:
        source.close()
    gone = JobResultSet("job-2", job / "nope.jsonl", batch_paths[0])
    with pytest.raises(ResultSetUnavailable, match="no merged result file"):
        asyncio.run(gone.ensure())
