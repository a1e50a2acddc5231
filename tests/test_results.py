"""Joining batch results to their inputs, as a user browsing or exporting them sees it."""

from __future__ import annotations

import asyncio
import csv
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fr_tui.core.api import BatchClient
from fr_tui.core.errors import DownloadError
from fr_tui.core.export import (
    NothingToRetry,
    build_retry_file,
    export_rows,
    merge_child,
    summary_json,
)
from fr_tui.core.results import join_results, parse_result_line
from fr_tui.core.store import BatchRecord, HistoryStore
from fr_tui.core.workflow import fetch_results, poll_batch, submit_file


def input_line(cid: str, model: str = "openai/gpt-4.1-nano", provider: str = "openai") -> bytes:
    return msgspec.json.encode(
        {
            "custom_id": cid,
            "provider": provider,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hi {cid}"}]},
        }
    )


def ok_line(cid: str, text: str = "", fastrouter: bool = False) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1-nano",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text or f"answer {cid}\nmore"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.001},
    }
    if fastrouter:
        return msgspec.json.encode(
            {"custom_id": cid, "error": None, "response": {"body": body, "status_code": 200}}
        )
    return msgspec.json.encode(
        {
            "id": f"batch_req_{cid}",
            "custom_id": cid,
            "response": {"status_code": 200, "request_id": "req_1", "body": body},
            "error": None,
        }
    )


def error_line(cid: str, code: str = "batch_expired", message: str = "not run in time") -> bytes:
    return msgspec.json.encode(
        {"id": "x", "custom_id": cid, "response": None, "error": {"code": code, "message": message}}
    )


def http_error_line(cid: str, status: int = 400) -> bytes:
    """An HTTP failure: error is null, the reason is inside response.body.error."""
    body = {
        "error": {
            "message": "max_tokens is too large",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "invalid_value",
        }
    }
    return msgspec.json.encode(
        {
            "id": "x",
            "custom_id": cid,
            "response": {"status_code": status, "request_id": "r", "body": body},
            "error": None,
        }
    )


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "input.jsonl", [input_line(f"r{i}") for i in range(10)])


def test_shuffled_results_join_on_custom_id(tmp_path: Path, inputs: Path) -> None:
    results = [ok_line(f"r{i}", text=f"answer number {i}") for i in range(10)]
    random.Random(3).shuffle(results)
    out = write_lines(tmp_path / "output.jsonl", results)
    with join_results(inputs, out, None) as joined:
        assert joined.counts == {"total": 10, "ok": 10, "failed": 0, "missing": 0}
        for i in range(10):
            row = joined[i]
            assert (row.custom_id, row.content_first_line) == (f"r{i}", f"answer number {i}")
            assert row.index == i and row.outcome == "ok" and row.status_code == 200
            assert row.provider == "openai" and row.model == "openai/gpt-4.1-nano"
            assert (row.tokens_in, row.tokens_out, row.finish_reason) == (10, 5, "stop")
            assert row.result_file == "output"
            assert joined.response_json(i)["custom_id"] == f"r{i}"  # type: ignore[index]
            assert joined.request_json(i)["custom_id"] == f"r{i}"  # type: ignore[index]
        assert joined.tokens_in == 100 and joined.tokens_out == 50
        assert joined.cost == pytest.approx(0.01)


def test_fastrouter_shaped_lines(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(
        tmp_path / "output.jsonl", [ok_line(f"r{i}", fastrouter=True) for i in range(10)]
    )
    with join_results(inputs, out, None) as joined:
        assert joined.counts["ok"] == 10
        assert joined[0].content_first_line == "answer r0"


def test_mixed_outcomes_duplicates_unknown_and_bad_lines(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(
        tmp_path / "output.jsonl",
        [
            ok_line("r0"),
            ok_line("r1"),
            b"{not json",
            ok_line("r0", text="second copy"),
            ok_line("ghost"),
            b"",
            b"[1]",
        ],
    )
    err = write_lines(
        tmp_path / "errors.jsonl", [error_line("r2"), http_error_line("r3", 429), error_line("r1")]
    )
    with join_results(inputs, out, err) as joined:
        assert joined.counts == {"total": 10, "ok": 2, "failed": 2, "missing": 6}
        assert joined[0].content_first_line == "answer r0"  # the first line for an id wins
        assert [(d.custom_id, d.file, d.line) for d in joined.duplicates] == [
            ("r0", "output", 4),
            ("r1", "error", 3),
        ]
        assert [(u.custom_id, u.line) for u in joined.unknown_ids] == [("ghost", 5)]
        assert [(b.file, b.line) for b in joined.bad_lines] == [("output", 3), ("output", 7)]
        assert joined[3].error_code == "invalid_value" and joined[3].status_code == 429
        assert joined[3].error == "invalid_value: max_tokens is too large"
        assert joined[2].result_file == "error" and joined[2].result_line == 0
        assert joined.filter("ok") == [0, 1]
        assert joined.filter("failed") == [2, 3]
        assert joined.filter("missing") == [4, 5, 6, 7, 8, 9]
        groups = joined.error_groups()
        assert groups[0] == ("missing", "missing", "no result line in the output or error file", 6)
        keys = {g[0]: g[3] for g in groups}
        assert keys == {
            "missing": 6,
            "batch_expired: not run in time": 1,
            "invalid_value: max_tokens is too large": 1,
        }
        assert joined.filter("batch_expired: not run in time") == [2]
        assert joined.response_json(5) is None


def test_http_4xx_with_null_error_is_a_failure(tmp_path: Path, inputs: Path) -> None:
    err = write_lines(tmp_path / "errors.jsonl", [http_error_line("r0", 400)])
    with join_results(inputs, None, err) as joined:
        row = joined[0]
        assert row.outcome == "failed" and row.status_code == 400
        assert row.error_message == "max_tokens is too large"


def test_all_failed_batch_has_no_output_file(tmp_path: Path, inputs: Path) -> None:
    err = write_lines(
        tmp_path / "errors.jsonl",
        [error_line(f"r{i}", "rate_limited", "slow down") for i in range(10)],
    )
    with join_results(inputs, None, err) as joined:
        assert joined.counts == {"total": 10, "ok": 0, "failed": 10, "missing": 0}
        assert joined.error_groups() == [
            ("rate_limited: slow down", "rate_limited", "slow down", 10)
        ]


def test_no_result_files_at_all_means_everything_missing(inputs: Path) -> None:
    with join_results(inputs, None, None) as joined:
        assert joined.counts == {"total": 10, "ok": 0, "failed": 0, "missing": 10}


def test_expired_batch_with_partial_results(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(tmp_path / "output.jsonl", [ok_line(f"r{i}") for i in (7, 2, 5)])
    err = write_lines(tmp_path / "errors.jsonl", [error_line(f"r{i}") for i in (0, 1, 3, 4)])
    with join_results(inputs, out, err) as joined:
        assert joined.counts == {"total": 10, "ok": 3, "failed": 4, "missing": 3}
        assert joined.filter("missing") == [6, 8, 9]
        summary = summary_json("batch_1", "expired", joined, out, err)
    assert summary["ok"] == 3 and summary["failed"] == 4 and summary["missing"] == 3
    assert summary["output_path"] == str(out) and summary["status"] == "expired"
    for key in (
        "batch_id",
        "total",
        "error_path",
        "duplicates",
        "unknown_ids",
        "bad_lines",
        "tokens_in",
        "tokens_out",
        "cost",
    ):
        assert key in summary
    msgspec.json.encode(summary)  # it is a JSON document


def test_blank_and_unreadable_input_lines(tmp_path: Path) -> None:
    inp = write_lines(tmp_path / "input.jsonl", [input_line("a"), b"", b"{broken", input_line("b")])
    out = write_lines(tmp_path / "output.jsonl", [ok_line("b"), ok_line("a")])
    with join_results(inp, out, None) as joined:
        assert len(joined) == 3  # the blank line is no request
        assert [joined[i].index for i in range(3)] == [0, 2, 3]
        assert joined[1].outcome == "missing" and joined[1].custom_id is None
        assert joined[1].group_key == "unreadable_input"
        assert joined.filter("missing") == [1]


def test_search_by_id_content_and_error(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(
        tmp_path / "output.jsonl", [ok_line("r0", text="The Capital of France"), ok_line("r1")]
    )
    err = write_lines(
        tmp_path / "errors.jsonl", [error_line("r2", "server_error", "Upstream exploded")]
    )
    with join_results(inputs, out, err) as joined:
        assert joined.search("capital") == [0]
        assert joined.search("R1") == [1]
        assert joined.search("exploded") == [2]
        assert joined.search("no such text") == []


def test_embeddings_summarised(tmp_path: Path, inputs: Path) -> None:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.1] * 1536, "index": 0}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    out = write_lines(
        tmp_path / "output.jsonl",
        [
            msgspec.json.encode(
                {"custom_id": "r0", "response": {"status_code": 200, "body": body}, "error": None}
            )
        ],
    )
    with join_results(inputs, out, None) as joined:
        assert joined[0].content_first_line == "embedding[1536]"
        assert joined[0].tokens_in == 3 and joined[0].tokens_out is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_holds_every_input_row(tmp_path: Path, inputs: Path, fmt: str) -> None:
    out = write_lines(
        tmp_path / "output.jsonl",
        [ok_line("r4", text='line one\nline two, "quoted"'), ok_line("r0")],
    )
    err = write_lines(tmp_path / "errors.jsonl", [error_line("r1")])
    target = tmp_path / f"export.{fmt}"
    with join_results(inputs, out, err) as joined:
        assert export_rows(joined, target, fmt) == 10  # type: ignore[arg-type]
    if fmt == "csv":
        with target.open(newline="", encoding="utf-8") as handle:
            records: list[dict[str, Any]] = list(csv.DictReader(handle))
    else:
        records = [msgspec.json.decode(line) for line in target.read_bytes().splitlines()]
    assert [r["custom_id"] for r in records] == [f"r{i}" for i in range(10)]
    assert records[4]["content"] == 'line one\nline two, "quoted"'  # the full answer
    assert records[4]["outcome"] == "ok" and str(records[4]["status_code"]) == "200"
    assert (
        records[1]["outcome"] == "failed"
        and records[1]["error"] == "batch_expired: not run in time"
    )
    assert [r["outcome"] for r in records].count("missing") == 7
    assert not list(tmp_path.glob(".export*"))  # no temp file left behind


def test_export_chosen_rows(tmp_path: Path, inputs: Path) -> None:
    with join_results(inputs, None, None) as joined:
        assert export_rows(joined, tmp_path / "some.jsonl", "jsonl", indices=[3, 5]) == 2
    assert [
        msgspec.json.decode(x)["custom_id"]
        for x in (tmp_path / "some.jsonl").read_bytes().splitlines()
    ] == ["r3", "r5"]


def test_retry_file_holds_exactly_failed_and_missing_rows(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(tmp_path / "output.jsonl", [ok_line(f"r{i}") for i in (0, 1, 2, 3, 4)])
    err = write_lines(tmp_path / "errors.jsonl", [error_line("r5"), http_error_line("r6", 500)])
    with join_results(inputs, out, err) as joined:
        plan = build_retry_file(joined, inputs, tmp_path / "retry.jsonl")
        assert plan.rows == 5
        assert plan.reasons == {
            "missing": 3,
            "batch_expired: not run in time": 1,
            "invalid_value: max_tokens is too large": 1,
        }
        original = inputs.read_bytes().splitlines()
        assert plan.path.read_bytes().splitlines() == [original[i] for i in (5, 6, 7, 8, 9)]
        only = build_retry_file(
            joined, inputs, tmp_path / "expired.jsonl", groups=["batch_expired: not run in time"]
        )
        assert only.rows == 1 and only.path.read_bytes() == original[5] + b"\n"
    validate = pytest.importorskip("fr_tui.core.validate")
    assert validate.validate_path(plan.path).valid


def test_retry_refuses_a_different_input_file(tmp_path: Path, inputs: Path) -> None:
    other = write_lines(tmp_path / "other.jsonl", [input_line(f"x{i}") for i in range(10)])
    with join_results(inputs, None, None) as joined, pytest.raises(ValueError, match="input file"):
        build_retry_file(joined, other, tmp_path / "retry.jsonl")
    assert not (tmp_path / "retry.jsonl").exists()


def test_nothing_to_retry(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(tmp_path / "output.jsonl", [ok_line(f"r{i}") for i in range(10)])
    with join_results(inputs, out, None) as joined, pytest.raises(NothingToRetry):
        build_retry_file(joined, inputs, tmp_path / "retry.jsonl")


def test_merged_retry_replaces_failed_and_missing_rows(tmp_path: Path, inputs: Path) -> None:
    out = write_lines(tmp_path / "output.jsonl", [ok_line(f"r{i}") for i in range(6)])
    err = write_lines(tmp_path / "errors.jsonl", [error_line("r6"), error_line("r7")])
    parent = join_results(inputs, out, err)
    plan = build_retry_file(parent, inputs, tmp_path / "retry.jsonl")
    assert plan.rows == 4
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    child_out = write_lines(
        child_dir / "output.jsonl",
        [ok_line("r9", text="retried nine"), ok_line("r6", text="retried six")],
    )
    child_err = write_lines(child_dir / "errors.jsonl", [error_line("r8", "server_error", "boom")])
    child = join_results(plan.path, child_out, child_err)
    merged = merge_child(parent, child)
    assert merged.counts == {"total": 10, "ok": 8, "failed": 2, "missing": 0}
    assert merged[6].content_first_line == "retried six" and merged[6].result_path == child_out
    assert (
        merged.response_json(9)["response"]["body"]["choices"][0]["message"]["content"]
        == "retried nine"
    )  # type: ignore[index]
    assert merged[8].error_code == "server_error"  # the newer failure
    assert merged[7].error_code == "batch_expired"  # not retried successfully: kept
    assert merged.request_json(9)["custom_id"] == "r9"  # type: ignore[index]
    assert parent.counts["ok"] == 6  # the parent is untouched
    merged.close()
    child.close()


# -- fetching a finished batch's files from the sandbox ------------------------------

SANDBOX_KEY = "sk-sandbox-local"


def sandbox_client(base_url: str, **options: Any) -> BatchClient:
    """A client with test-speed retries (the sandbox answers on loopback)."""
    settings = {"read_timeout": 5.0, "retry_budget": 10.0, "backoff_base": 0.01}
    settings.update(options)
    return BatchClient(base_url, SANDBOX_KEY, backoff_cap=0.05, **settings)


async def finished(client: BatchClient, store: HistoryStore, path: Path) -> BatchRecord:
    """Submit `path` to the sandbox and poll until the batch ends; its stored record."""
    created = await submit_file(client, store, path, profile="sandbox")
    for _ in range(500):
        batch, _old = await poll_batch(client, store, created.id)
        if batch.terminal:
            record = store.get(created.origin, created.id)
            assert record is not None and record.status == "completed"
            return record
        await asyncio.sleep(0.02)
    raise AssertionError("the sandbox batch did not finish")


def counting_downloads(client: BatchClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the file ids `client` downloads from now on."""
    calls: list[str] = []
    download = client.download_file

    async def counted(file_id: str, dest: Any, progress: Any = None, **options: Any) -> Path:
        calls.append(file_id)
        return await download(file_id, dest, progress, **options)

    monkeypatch.setattr(client, "download_file", counted)
    return calls


async def test_fetch_results_downloads_records_and_skips_complete_files(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [input_line(f"r{i}") for i in range(4)]
    rows += [input_line("r4", model="sandbox/fail-500"), input_line("r5", model="sandbox/drop")]
    path = write_lines(tmp_path / "input.jsonl", rows)
    store = HistoryStore(tmp_path / "history.db")
    async with sandbox_client(sandbox.base_url) as client:
        record = await finished(client, store, path)
        calls = counting_downloads(client, monkeypatch)
        dest = tmp_path / "results" / record.id
        out, err = await fetch_results(client, store, record, dest)
        assert (out, err) == (dest / "output.jsonl", dest / "errors.jsonl")
        assert calls == [record.output_file_id, record.error_file_id]
        stored = store.get(record.origin, record.id)
        assert stored is not None
        assert (stored.output_path, stored.error_path) == (str(out), str(err))
        with join_results(path, out, err) as joined:
            assert joined.counts == {"total": 6, "ok": 4, "failed": 1, "missing": 1}
            assert joined[4].status_code == 500 and joined[5].outcome == "missing"
        # Fetched again (the user reopens the results): nothing is downloaded twice.
        assert await fetch_results(client, store, record, dest) == (out, err)
        assert len(calls) == 2


async def test_fetch_results_of_an_all_failed_batch(sandbox: Any, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "input.jsonl", [input_line(f"r{i}", model="sandbox/fail-400") for i in range(3)]
    )
    store = HistoryStore(tmp_path / "history.db")
    async with sandbox_client(sandbox.base_url) as client:
        record = await finished(client, store, path)
        assert record.output_file_id is None
        out, err = await fetch_results(client, store, record, tmp_path / "results")
    assert out is None and err == tmp_path / "results" / "errors.jsonl"
    stored = store.get(record.origin, record.id)
    assert stored is not None and (stored.output_path, stored.error_path) == (None, str(err))
    with join_results(path, out, err) as joined:
        assert joined.counts == {"total": 3, "ok": 0, "failed": 3, "missing": 0}


async def test_interrupted_fetch_leaves_no_file_that_looks_complete(
    sandbox: Any, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "input.jsonl", [input_line(f"r{i}") for i in range(20)])
    store = HistoryStore(tmp_path / "history.db")
    dest = tmp_path / "results"
    async with sandbox_client(sandbox.base_url) as client:
        record = await finished(client, store, path)
        sandbox.set_faults({"drop_download_after": 100, "path_prefix": "/v1/files"})
        async with sandbox_client(sandbox.base_url, max_attempts=2) as impatient:
            with pytest.raises(DownloadError):
                await fetch_results(impatient, store, record, dest)
        assert not (dest / "output.jsonl").exists()  # only the partial .part file
        stored = store.get(record.origin, record.id)
        assert stored is not None and stored.output_path is None
        sandbox.set_faults({})
        out, err = await fetch_results(client, store, record, dest)
    assert out == dest / "output.jsonl" and err is None
    with join_results(path, out, err) as joined:
        assert joined.counts == {"total": 20, "ok": 20, "failed": 0, "missing": 0}
    assert len(out.read_bytes().splitlines()) == 20


@pytest.mark.parametrize(
    ("line", "ok", "code"),
    [
        (ok_line("a"), True, None),
        (error_line("a", "batch_cancelled", "cancelled"), False, "batch_cancelled"),
        (http_error_line("a", 503), False, "invalid_value"),
        (
            msgspec.json.encode(
                {"custom_id": "a", "response": {"status_code": 500, "body": "oops"}, "error": None}
            ),
            False,
            "http_500",
        ),
        (
            msgspec.json.encode({"custom_id": "a", "response": {"body": {}}, "error": None}),
            False,
            "no_status",
        ),
        (
            msgspec.json.encode({"custom_id": "a", "response": None, "error": None}),
            False,
            "no_response",
        ),
        (
            msgspec.json.encode(
                {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": "weird"}
            ),
            False,
            "error",
        ),
    ],
)
def test_parse_result_line_classification(line: bytes, ok: bool, code: str | None) -> None:
    parsed = parse_result_line(line)
    assert parsed.problem is None and parsed.ok is ok and parsed.error_code == code


async def test_fetching_the_same_results_twice_at_once_downloads_once(
    sandbox: Any, tmp_path: Path
) -> None:
    import asyncio

    from fr_tui.core.api import BatchClient
    from fr_tui.core.store import HistoryStore
    from fr_tui.core.workflow import fetch_results, poll_batch, submit_file

    samples = Path(__file__).resolve().parent.parent / "fr_tui" / "samples"
    store = HistoryStore(tmp_path / "h.db")
    async with BatchClient(sandbox.base_url, "sk-sandbox-local") as client:
        record = await submit_file(client, store, samples / "chat.jsonl", profile="sandbox")
        for _ in range(500):
            batch, _ = await poll_batch(client, store, record.id)
            if batch.terminal:
                break
            await asyncio.sleep(0.02)
        done = store.get(record.origin, record.id)
        assert done is not None
        calls: list[str] = []
        real = client.download_file

        async def counted(file_id: str, dest: Any, progress: Any = None, **options: Any) -> Any:
            calls.append(file_id)
            return await real(file_id, dest, progress, **options)

        client.download_file = counted  # type: ignore[method-assign]
        results = await asyncio.gather(
            *(fetch_results(client, store, done, tmp_path / "res") for _ in range(3))
        )
    assert len(calls) == 1 and len({r[0] for r in results}) == 1
    assert len((tmp_path / "res" / "output.jsonl").read_bytes().splitlines()) == 12
