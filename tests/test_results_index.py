"""The stored results index: the same rows as the in-memory join, and never trusted stale."""

from __future__ import annotations

import os
import random
from itertools import accumulate
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fr_tui.core.results import INDEX_NAME, join_in_memory, join_results
from fr_tui.core.results_index import IndexedResults, open_index, source_signatures

KINDS = [
    "ok",
    "ok_plain",
    "ok_json",
    "embed",
    "err",
    "http",
    "junk",
    "merged_ok",
    "merged_missing",
    "merged_failed",
]


def plain_ok(cid: str, number: int) -> bytes:
    """The ordinary line: the shape the index builder reads fastest (resultline.OkLine)."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{number}",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"  Answer {number}  \n more"},
                "finish_reason": "stop" if number % 3 else None,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": number, "cost": 0.1 * number},
    }
    if number % 2:
        body["model"] = "openai/gpt-4.1-nano" if number % 4 == 1 else ""
    line = {"id": f"r{number}", "custom_id": cid, "response": {"status_code": 200, "body": body}}
    return msgspec.json.encode({**line, "error": None})


def answer(kind: str, cid: str, number: int) -> bytes:
    """One result line of the given kind for custom_id ``cid``."""
    if kind == "ok_plain":
        return plain_ok(cid, number)
    if kind in ("ok", "ok_json", "embed"):
        if kind == "embed":
            body: dict[str, Any] = {"data": [{"embedding": [0.5, -0.25 * number]}], "usage": {}}
        else:
            text = '{"b": 1, "a": [2]}' if kind == "ok_json" else f"answer  {number}\nmore"
            body = {
                "model": "openai/gpt-4.1-nano",
                "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": number, "cost": 0.0000123},
            }
        return msgspec.json.encode(
            {"custom_id": cid, "response": {"status_code": 200, "body": body}}
        )
    if kind == "err":
        return msgspec.json.encode(
            {"custom_id": cid, "error": {"code": "x", "message": f"m{number % 3}"}}
        )
    if kind == "http":
        body = {"error": {"message": "slow down", "code": "rate_limit"}}
        return msgspec.json.encode(
            {"custom_id": cid, "response": {"status_code": 429, "body": body}}
        )
    if kind == "junk":
        return b"{" + cid.encode()
    outcome = kind.removeprefix("merged_")
    response = None
    if outcome == "ok":
        body = {"choices": [{"message": {"content": f"merged {number}"}}]}
        response = {"status_code": 200, "body": body}
    error = {"code": "server_error", "message": "boom"} if outcome == "failed" else None
    line = {
        "custom_id": cid,
        "outcome": outcome,
        "batch_id": f"batch_{number % 2}",
        "round": number % 3,
    }
    return msgspec.json.encode({**line, "response": response, "error": error})


def make_files(
    folder: Path,
    inputs: list[str],
    results: list[tuple[str, str]],
    seed: int,
    shuffle: bool = True,
) -> tuple[Path, Path, Path]:
    inp, out, err = folder / "in.jsonl", folder / "out.jsonl", folder / "err.jsonl"
    lines = []
    for cid in inputs:
        if cid == "":
            lines.append(b"not json at all")
        elif cid == " ":
            lines.append(b"")
        else:
            lines.append(
                msgspec.json.encode(
                    {"custom_id": cid, "provider": "openai", "body": {"model": "m"}}
                )
            )
    inp.write_bytes(b"\n".join(lines) + b"\n")
    out_lines: list[bytes] = []
    err_lines: list[bytes] = []
    for number, (cid, kind) in enumerate(results):
        target = err_lines if kind in ("err", "http") else out_lines
        target.append(answer(kind, cid, number))
    if shuffle:
        rnd = random.Random(seed)
        rnd.shuffle(out_lines)
        rnd.shuffle(err_lines)
    out.write_bytes(b"\n".join(out_lines) + b"\n")
    err.write_bytes(b"\n".join(err_lines))
    return inp, out, err


def assert_same(indexed: Any, memory: Any) -> None:
    assert isinstance(indexed, IndexedResults)
    assert len(indexed) == len(memory)
    assert [indexed.row(i) for i in range(len(memory))] == [
        memory.row(i) for i in range(len(memory))
    ]
    assert indexed.counts == memory.counts
    assert indexed.error_groups() == memory.error_groups()
    kinds = ["all", "ok", "failed", "missing", *(key for key, *_ in memory.error_groups())]
    for kind in kinds:
        assert indexed.filter(kind) == memory.filter(kind), kind
    for needle in ("c1", "ANSWER", "rate_limit", "m2", "merged", "zz"):
        assert indexed.search(needle) == memory.search(needle), needle
    assert (indexed.tokens_in, indexed.tokens_out, indexed.cost) == (
        memory.tokens_in,
        memory.tokens_out,
        memory.cost,
    )
    for name in ("duplicates", "unknown_ids", "bad_lines"):
        assert getattr(indexed, name) == getattr(memory, name), name
    for i in range(len(memory)):
        assert indexed.request_bytes(i) == memory.request_bytes(i)
        assert indexed.response_bytes(i) == memory.response_bytes(i)
        assert indexed.response_text(i) == memory.response_text(i)
        assert indexed.answer_hashes[i] == memory.answer_hashes[i]
        assert indexed.batch_ids[i] == memory.batch_ids[i]
        assert indexed.rounds[i] == memory.rounds[i]
    assert list(indexed.custom_ids) == memory.custom_ids
    # whole columns (results are kept in arrival order: these put them in row order)
    for name in ("finish_reasons", "costs", "status_codes", "tokens_in_col", "contents"):
        assert list(getattr(indexed, name)) == list(getattr(memory, name)), name


ids = st.sampled_from(["c1", "c2", "c3", "c10", "c1", "", " ", "ü"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inputs=st.lists(ids, max_size=12),
    results=st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3", "c10", "c9", "ü"]), st.sampled_from(KINDS)),
        max_size=20,
    ),
    seed=st.integers(0, 1000),
)
def test_the_index_gives_the_rows_of_the_join_in_memory(
    tmp_path_factory: pytest.TempPathFactory,
    inputs: list[str],
    results: list[tuple[str, str]],
    seed: int,
) -> None:
    inp, out, err = make_files(tmp_path_factory.mktemp("idx"), inputs, results, seed)
    with join_in_memory(inp, out, err) as memory:
        with join_results(inp, out, err) as built:  # builds the index, then maps it
            assert_same(built, memory)
        stamp = (out.parent / INDEX_NAME).stat().st_mtime_ns
        with join_results(inp, out, err) as indexed:  # reopens it
            assert_same(indexed, memory)
        assert (out.parent / INDEX_NAME).stat().st_mtime_ns == stamp  # not rebuilt


def test_blocks_of_ordinary_lines_give_the_rows_of_the_join_in_memory(tmp_path: Path) -> None:
    # Several 1 MiB blocks of ordinary lines (taken apart in C), one of them with a line
    # that is not (read line by line), a repeated result and an unknown id.
    count = 12_000
    inputs = [f"c{i}" for i in range(count)]
    results = [(f"c{i}", "ok_plain") for i in range(count) if i % 50]
    results[7000:7000] = [("c3", "ok_plain"), ("nobody", "ok_plain"), ("c8000", "junk")]
    inp, out, err = make_files(tmp_path, inputs, results, 3)
    assert out.stat().st_size > 2 * (1 << 20)
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)
        assert memory.counts["ok"] == len(results) - 3 and len(memory.duplicates) == 1


# Error-file lines: the two ordinary ones (resultline.FailedLine, taken a block at a time)
# and their neighbours that must be read line by line, each as parse_other_line reads it.
HTTP_FAILURE = {"error": {"message": "Rate limit", "type": "rate_limit", "code": "slow_down"}}
ERROR_LINES: dict[str, dict[str, Any]] = {
    "ordinary": {"response": None, "error": {"code": "batch_expired", "message": "too late"}},
    "http": {"response": {"status_code": 429, "request_id": "r", "body": HTTP_FAILURE}},
    "http, error null": {"response": {"status_code": 500, "body": HTTP_FAILURE}, "error": None},
    "no response key": {"error": {"code": "x", "message": "m"}},
    "extra error keys": {"error": {"code": "x", "type": "t", "message": "m", "param": None}},
    "no message": {"error": {"code": "x"}},
    "empty message": {"error": {"code": "x", "message": ""}},
    "a long message": {"error": {"code": "x", "message": "  two\nlines " + "w" * 300}},
    "empty code": {"error": {"code": "", "type": "from_type", "message": "m"}},
    "no code": {"error": {"message": "only a message"}},
    "numbers": {"error": {"code": 42, "message": 7}},
    "null message": {"error": {"code": "x", "message": None}},
    "a string error": {"error": "plain words"},
    "a response too": {"response": {"status_code": 500, "body": {}}, "error": {"code": "x"}},
    "merged": {"outcome": "failed", "response": None, "error": {"code": "x", "message": "m"}},
    "neither": {"response": None, "error": None},
    "http 200": {"response": {"status_code": 200, "body": HTTP_FAILURE}},
    "http, a status past 32 bits": {"response": {"status_code": 1 << 40, "body": HTTP_FAILURE}},
    "http, a negative status": {"response": {"status_code": -1, "body": HTTP_FAILURE}},
    "http, status true": {"response": {"status_code": True, "body": HTTP_FAILURE}},
    "http, no message": {"response": {"status_code": 429, "body": {"error": {"code": "x"}}}},
    "http, no code": {"response": {"status_code": 429, "body": {"error": {"message": "m"}}}},
    "http, a model": {"response": {"status_code": 429, "body": {**HTTP_FAILURE, "model": "m"}}},
    "http, usage": {
        "response": {"status_code": 429, "body": {**HTTP_FAILURE, "usage": {"prompt_tokens": 3}}}
    },
    "http, no body": {"response": {"status_code": 503}},
    "http, body as text": {"response": {"status_code": 503, "body": '{"error": "x"}'}},
}


@pytest.mark.parametrize("shape", [*ERROR_LINES, "mixed"])
def test_blocks_of_error_lines_give_the_rows_of_the_join_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    import fr_tui.core.results_blocks as blocks

    monkeypatch.setattr(blocks, "_BUFFER", 4096)  # many blocks from a small file
    taken: list[bool] = []
    take = blocks._take_errors
    monkeypatch.setattr(blocks, "_take_errors", lambda *a: taken.append(take(*a)) or taken[-1])
    count = 600
    inp, _, err = make_files(tmp_path, [f"c{i}" for i in range(count)], [], 0)
    shapes = (
        [ERROR_LINES[s] for s in ("ordinary", "http")] if shape == "mixed" else [ERROR_LINES[shape]]
    )
    lines = [
        msgspec.json.encode({"custom_id": f"c{i}", **shapes[i % len(shapes)]})
        for i in range(count - 100)
    ]
    lines[200:200] = [lines[150], lines[400].replace(b'"c400"', b'"nobody"')]  # in one block
    err.write_bytes(b"\n".join(lines) + b"\n")
    with join_in_memory(inp, None, err) as memory, join_results(inp, None, err) as built:
        if "status" in shape and "true" not in shape:  # the index cannot hold it
            assert not isinstance(built, IndexedResults)
        else:
            assert_same(built, memory)
        assert memory.counts["failed" if shape != "http 200" else "ok"] == count - 100
        assert len(memory.duplicates) == len(memory.unknown_ids) == 1
    if shape in (
        "ordinary",
        "http",
        "http, error null",
        "no response key",
        "extra error keys",
        "mixed",
    ):
        assert taken.count(True) > 4 and False not in taken  # repeated, unknown ids too
    elif shape in ("no message", "empty message", "a long message"):
        assert taken.count(True) > 4
    else:
        assert True not in taken


@pytest.mark.parametrize(
    "layout",
    [
        "two on a line, then a blank line",
        "one across two lines, then two on a line",
        "one across two lines, the next line starting with {",
    ],
)
def test_lines_a_block_decoder_would_misread_are_read_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    # A block is read in one decode_lines call, which reads a stream of JSON values, not
    # lines: here it would find as many values as there are lines, each on the wrong one.
    import fr_tui.core.results_blocks as blocks

    monkeypatch.setattr(blocks, "_BUFFER", 1 << 16)
    count = 300
    inp, out, err = make_files(tmp_path, [f"c{i}" for i in range(count)], [], 0)
    lines = [plain_ok(f"c{i}", i) for i in range(count)]
    if layout == "two on a line, then a blank line":
        lines[100:102] = [lines[100] + b" " + lines[101], b""]
    elif layout == "one across two lines, then two on a line":  # it ends with a "}"
        lines[100:102] = [lines[100][:-1] + b', "x": {"y": 1}', b"} " + lines[101]]
    else:
        lines[100:102] = [lines[100][:-1] + b', "x":', b'{"y": 1}} ' + lines[101]]
    out.write_bytes(b"\n".join(lines) + b"\n")
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)
        assert memory.counts["ok"] == count - 2 and len(memory.bad_lines) == 2 - (
            layout == "two on a line, then a blank line"
        )


def test_blocks_are_whole_lines_with_their_ends_as_a_line_index_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from array import array

    import fr_tui.core.results_blocks as blocks
    from fr_tui.core.jsonl import LineIndex

    rnd = random.Random(5)
    for size in (0, 1, 7, 64, 5000):
        for buffer in (1, 3, 16, 4096):
            monkeypatch.setattr(blocks, "_BUFFER", buffer)
            data = bytes(rnd.choice(b"{}\n\r a") for _ in range(size))
            path = tmp_path / f"{size}-{buffer}.jsonl"
            path.write_bytes(data)
            ends: array[int] = array("q")
            read = list(blocks.read_blocks(path, ends, lambda _: None))
            lines = [line for block in read for line in block.lines()]
            expected = data.split(b"\n")
            if data.endswith(b"\n") or not data:
                expected.pop()
            assert lines == expected
            assert [block.first for block in read] == list(
                accumulate((len(block) for block in read[:-1]), initial=0)
            )[: len(read)]
            scanned = LineIndex(path)
            scanned.build()
            assert list(ends) == list(scanned.ends)
            scanned.close()


def test_an_error_group_shows_the_message_of_its_first_row(tmp_path: Path) -> None:
    # Two messages that make one group (its key strips them); the later row's result
    # arrives first. The group says what its first row says, as the join in memory does.
    inp, out, err = make_files(tmp_path, ["c1", "c2", "c3"], [], 0)
    lines = [
        {"custom_id": "c2", "error": {"code": "x", "message": "boom"}},
        {"custom_id": "c1", "error": {"code": "x", "message": "boom  "}},
    ]
    err.write_bytes(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
    with join_in_memory(inp, out, err) as memory, join_results(inp, out, err) as built:
        assert_same(built, memory)
        assert ("x: boom", "x", "boom  ", 2) in built.error_groups()


def test_answer_hashes_are_made_on_first_use_and_kept_beside_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fr_tui.core.results_index as stored

    results = [("c1", "ok_plain"), ("c2", "ok_json"), ("c3", "err"), ("c4", "embed")]
    inp, out, err = make_files(tmp_path, ["c1", "c2", "c3", "c4", "c5"], results, 0)
    kept = tmp_path / (INDEX_NAME + ".answers")
    with join_in_memory(inp, out, err) as memory:
        expected = list(memory.answer_hashes)
    assert expected[0] and expected[1] and expected[3] and expected[2] == expected[4] == 0
    with join_results(inp, out, err) as joined:
        assert not kept.exists()  # the first build does not hash the answers
        assert list(joined.answer_hashes) == expected
    assert kept.exists()
    hashed: list[bytes] = []
    counting = stored.answer_hash_of_line
    monkeypatch.setattr(stored, "answer_hash_of_line", lambda raw: hashed.append(raw) or 0)
    with join_results(inp, out, err) as joined:
        assert list(joined.answer_hashes) == expected  # read back, not hashed again
    assert hashed == []
    monkeypatch.setattr(stored, "answer_hash_of_line", counting)
    kept.write_bytes(kept.read_bytes()[:-3])  # damaged: made again
    with join_results(inp, out, err) as joined:
        assert list(joined.answer_hashes) == expected
    # kept for this index only: a rebuilt index (other sources) makes them again
    out.write_bytes(out.read_bytes().replace(b"Answer", b"ANSWER"))
    with join_results(inp, out, err) as joined, join_in_memory(inp, out, err) as memory:
        assert list(joined.answer_hashes) == list(memory.answer_hashes) != expected


def test_merged_file_outcomes_win_and_keep_batch_and_round(tmp_path: Path) -> None:
    results = [("c1", "merged_ok"), ("c2", "merged_missing"), ("c3", "merged_failed")]
    inp, out, err = make_files(tmp_path, ["c1", "c2", "c3"], results, 0)
    join_results(inp, out, None).close()
    with join_results(inp, out, None) as joined:
        assert isinstance(joined, IndexedResults)
        assert [joined.outcome(i) for i in range(3)] == ["ok", "missing", "failed"]
        assert list(joined.batch_ids) == ["batch_0", "batch_1", "batch_0"]
        assert list(joined.rounds) == [0, 1, 2]
        assert joined.filter("missing") == [1]


def test_a_changed_source_file_rebuilds_the_index(tmp_path: Path) -> None:
    inp, out, err = make_files(tmp_path, ["c1", "c2"], [("c1", "ok")], 0)
    join_results(inp, out, err).close()
    stamp = (tmp_path / INDEX_NAME).stat().st_mtime_ns
    # the same size and (for all the index can tell) the same moment: only the bytes differ
    before = out.stat()
    out.write_bytes(out.read_bytes().replace(b'"c1"', b'"c2"'))
    os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns))
    with join_results(inp, out, err) as joined:
        assert [joined.outcome(i) for i in range(2)] == ["missing", "ok"]
    assert (tmp_path / INDEX_NAME).stat().st_mtime_ns != stamp
    with join_results(inp, out, err) as joined:
        assert isinstance(joined, IndexedResults)
        assert [joined.outcome(i) for i in range(2)] == ["missing", "ok"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "version", "empty"])
def test_a_damaged_or_old_index_is_rebuilt_never_trusted(tmp_path: Path, damage: str) -> None:
    inp, out, err = make_files(tmp_path, ["c1", "c2", "c3"], [("c1", "ok"), ("c2", "err")], 0)
    join_results(inp, out, err).close()
    index = tmp_path / INDEX_NAME
    data = bytearray(index.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-20] ^= 0xFF
    elif damage == "version":
        data[4] += 1
    else:
        data = bytearray()
    index.write_bytes(bytes(data))
    sources = [inp, out, err]
    assert open_index(index, sources, source_signatures(sources)) is None  # not trusted
    with join_results(inp, out, err) as joined, join_in_memory(inp, out, err) as memory:
        assert_same(joined, memory)  # rebuilt
    assert open_index(index, sources, source_signatures(sources)) is not None


@given(
    st.text(
        st.sampled_from(["a", "é", " ", "\n", "\t", "\r", "\u2028", "\U0001f600"]), max_size=700
    )
)
def test_the_index_keeps_the_first_line_of_an_answer_as_results_show_it(text: str) -> None:
    from fr_tui.core.resultline import first_line
    from fr_tui.core.results_blocks import first_line_utf8

    shown = first_line(text)
    assert shown is not None
    assert first_line_utf8(text) == shown.encode("utf-8", "surrogatepass")
