"""`fr-tui compare A B` as a user runs it, on batches the sandbox really ran over HTTP:
the same model twice, two models, a failing model on one side, rows only one side has,
embeddings, structured (JSON) answers, the export, and offline use. Every figure of
`--json` is checked against the downloaded result files, read here on their own."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_cli import run as cli

from fr_tui.core.api import BatchClient
from fr_tui.core.compare import Comparison, compare
from fr_tui.core.paths import get_paths
from fr_tui.core.result_sets import BatchResultSet
from fr_tui.core.store import HistoryStore
from fr_tui.core.workflow import poll_batch, submit_file

KEY = "sk-v1-compare-tests"
ARITHMETIC = re.compile(r"-?\d+\s*[+\-*x×]\s*-?\d+")


@contextmanager
def opened_comparison(first: str, second: str) -> Iterator[Comparison]:
    """The two batches as compare's core opens them (offline: already downloaded)."""
    paths = get_paths()
    store = HistoryStore(paths.history_db)
    sides = [BatchResultSet(store.find(i)[0], store, paths) for i in (first, second)]
    try:
        for side in sides:
            asyncio.run(side.ensure())
        yield compare(sides[0].open(), sides[1].open())
    finally:
        for side in sides:
            side.close()


@pytest.fixture
def api(sandbox: Any) -> dict[str, str]:
    return {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": KEY}


def run_batch(sandbox: Any, path: Path, *, wait: bool = True, **kw: Any) -> str:
    """Submit `path` to the sandbox and (with `wait`) wait for it to end; its results are
    not downloaded."""

    async def go() -> str:
        client = BatchClient(sandbox.base_url, KEY)
        store = HistoryStore(get_paths().history_db)
        try:
            record = await submit_file(
                client, store, path, profile="default", allow_duplicate=True, **kw
            )
            if not wait:
                return record.id
            for _ in range(1000):
                batch, _ = await poll_batch(client, store, record.id)
                if batch.terminal:
                    return record.id
                await asyncio.sleep(0.02)
            raise AssertionError("the batch did not end")
        finally:
            await client.aclose()

    return asyncio.run(go())


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def with_model(rows: list[dict[str, Any]], model: str, only: set[str] | None = None) -> list:
    out = []
    for row in rows:
        row = json.loads(json.dumps(row))
        if only is None or row["custom_id"] in only:
            row["body"]["model"] = model
        out.append(row)
    return out


def compare_json(a: str, b: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = cli("compare", a, b, "--json", *extra, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def folder_of(batch_id: str) -> Path:
    """The batch's results folder, as its history record places it."""
    paths = get_paths()
    return HistoryStore(paths.history_db).find(batch_id)[0].results_folder(paths)


def results_of(batch_id: str) -> dict[str, dict[str, Any]]:
    """The downloaded result lines of a batch, by custom_id (output and error files)."""
    folder = folder_of(batch_id)
    lines: dict[str, dict[str, Any]] = {}
    for name in ("output.jsonl", "errors.jsonl"):
        if (folder / name).exists():
            for line in rows_of(folder / name):
                lines[line["custom_id"]] = line
    return lines


def is_ok(line: dict[str, Any] | None) -> bool:
    return bool(line) and line["error"] is None and 200 <= line["response"]["status_code"] < 300  # type: ignore[index]


def expected_stats(batch_id: str, input_rows: list[dict[str, Any]]) -> dict[str, Any]:
    lines = results_of(batch_id)
    ok = sum(1 for r in input_rows if is_ok(lines.get(r["custom_id"])))
    missing = sum(1 for r in input_rows if r["custom_id"] not in lines)
    usages = [
        line["response"]["body"]["usage"]
        for line in lines.values()
        if line.get("response") and "usage" in line["response"]["body"]
    ]
    costs = [Decimal(repr(u["cost"])) for u in usages if "cost" in u]
    return {
        "ok": ok,
        "failed": len(input_rows) - ok - missing,
        "missing": missing,
        "input_tokens": sum(u.get("prompt_tokens", 0) for u in usages),
        "output_tokens": sum(u.get("completion_tokens", 0) for u in usages),
        "cost": float(sum(costs)) if costs else None,
    }


def answer_of(line: dict[str, Any]) -> str:
    return line["response"]["body"]["choices"][0]["message"]["content"]


def check_stats(document: dict[str, Any], side: str, batch_id: str, rows: list) -> None:
    stats, expected = document[f"{side}_stats"], expected_stats(batch_id, rows)
    for key, value in expected.items():
        if key == "cost":
            assert stats[key] == pytest.approx(value, abs=1e-10), key
        else:
            assert stats[key] == value, key


REQUIRED = {"a", "b", "both", "only_a", "only_b", "same", "different", "agreement"}
SIDE_KEYS = {"ok", "failed", "missing", "input_tokens", "output_tokens", "cost"}


def test_the_same_model_twice_agrees_on_every_row(
    sandbox: Any, api: dict[str, str], samples: Path
) -> None:
    first, second = (
        run_batch(sandbox, samples / "chat.jsonl"),
        run_batch(sandbox, samples / "chat.jsonl"),
    )
    document = compare_json(first, second, api)
    assert set(document) >= REQUIRED and set(document["a_stats"]) >= SIDE_KEYS
    assert set(document["b_stats"]) >= SIDE_KEYS
    rows = rows_of(samples / "chat.jsonl")
    assert (document["a"], document["b"]) == (first, second)
    assert (document["both"], document["only_a"], document["only_b"]) == (len(rows), 0, 0)
    assert (document["same"], document["different"], document["agreement"]) == (len(rows), 0, 1)
    check_stats(document, "a", first, rows)
    check_stats(document, "b", second, rows)
    a, b = results_of(first), results_of(second)
    assert all(answer_of(a[cid]) == answer_of(b[cid]) for cid in a)  # by the files too
    human = cli("compare", first, second, env=api)
    assert human.returncode == 0 and "agreement: 100.0%" in human.stdout
    assert f"{len(rows)} in both" in human.stdout


def test_two_models_differ_exactly_where_the_model_changed(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    rows = rows_of(samples / "chat.jsonl")
    mini = write_rows(tmp_path / "mini.jsonl", with_model(rows, "openai/gpt-4.1-mini", {
        r["custom_id"] for r in rows if r["body"]["model"] == "openai/gpt-4.1-nano"
    }))  # fmt: skip
    first, second = run_batch(sandbox, samples / "chat.jsonl"), run_batch(sandbox, mini)
    document = compare_json(first, second, api)
    a, b = results_of(first), results_of(second)
    differ = {cid for cid in a if answer_of(a[cid]) != answer_of(b[cid])}
    changed = {
        r["custom_id"]
        for r in rows
        if r["body"]["model"] == "openai/gpt-4.1-nano"
        and not ARITHMETIC.search(r["body"]["messages"][-1]["content"])
    }
    assert differ == changed and changed  # the sandbox's known way
    assert (document["same"], document["different"]) == (len(rows) - len(changed), len(changed))
    assert document["agreement"] == pytest.approx((len(rows) - len(changed)) / len(rows))
    check_stats(document, "b", second, rows)
    # the row's word diff is the model's name, and nothing else
    with opened_comparison(first, second) as comparison:
        for position in comparison.filter("different"):
            detail = comparison.detail(position)
            assert detail.words is not None
            assert [(c.a_text, c.b_text) for c in detail.words.changes] == [
                ("gpt-4.1-nano:", "gpt-4.1-mini:")
            ]
            assert [c.path for c in detail.request_changes] == ["body.model"]


def test_a_failing_model_on_one_side(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    rows = rows_of(samples / "chat.jsonl")
    broken = {"chat-03", "chat-08"}
    failing = write_rows(tmp_path / "fails.jsonl", with_model(rows, "sandbox/fail-500", broken))
    first, second = run_batch(sandbox, samples / "chat.jsonl"), run_batch(sandbox, failing)
    document = compare_json(first, second, api)
    assert (document["b_not_ok"], document["a_not_ok"], document["one_ok"]) == (2, 0, 2)
    assert document["same"] == len(rows) - 2 and document["different"] == 0
    assert document["agreement"] == 1  # over the rows ok on both sides
    assert document["b_stats"]["failed"] == 2 and document["a_stats"]["failed"] == 0
    check_stats(document, "b", second, rows)
    kinds = {k["key"]: (k["a"], k["b"]) for k in document["failure_kinds"]}
    assert len(kinds) == 1 and next(iter(kinds.values())) == (0, 2)
    assert "internal_error" in next(iter(kinds))
    assert document["delta"]["failed"] == 2 and document["delta"]["ok"] == -2


def test_rows_only_one_side_has(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    rows = rows_of(samples / "chat.jsonl")
    early = write_rows(tmp_path / "early.jsonl", rows[:8])
    late = write_rows(tmp_path / "late.jsonl", rows[3:])
    first, second = run_batch(sandbox, early), run_batch(sandbox, late)
    document = compare_json(first, second, api)
    assert (document["both"], document["only_a"], document["only_b"]) == (5, 3, 4)
    assert document["same"] == 5 and document["agreement"] == 1
    assert document["a_stats"]["rows"] == 8 and document["b_stats"]["rows"] == 9
    check_stats(document, "a", first, rows[:8])
    check_stats(document, "b", second, rows[3:])


def cosine(x: list[float], y: list[float]) -> float:
    dot = sum(a * b for a, b in zip(x, y, strict=True))
    return dot / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))


def test_embeddings_have_their_cosine_similarity(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    rows = rows_of(samples / "embeddings.jsonl")
    large = write_rows(tmp_path / "large.jsonl", with_model(rows, "openai/text-embedding-3-large"))
    first = run_batch(sandbox, samples / "embeddings.jsonl")
    second = run_batch(sandbox, large)
    out = tmp_path / "emb.jsonl"
    document = compare_json(first, second, api, "-o", str(out))
    a, b = results_of(first), results_of(second)
    expected = {
        cid: cosine(
            a[cid]["response"]["body"]["data"][0]["embedding"],
            b[cid]["response"]["body"]["data"][0]["embedding"],
        )
        for cid in a
    }
    assert document["different"] == len(rows) and document["same"] == 0
    assert all(0.5 < v < 0.9999 for v in expected.values())  # close, never equal
    similarity = document["similarity"]
    assert similarity["rows"] == len(rows)
    assert similarity["mean"] == pytest.approx(sum(expected.values()) / len(expected))
    assert similarity["min"] == pytest.approx(min(expected.values()))
    for record in rows_of(out):
        assert record["similarity"] == pytest.approx(expected[record["custom_id"]], abs=1e-6)
    same = compare_json(first, run_batch(sandbox, samples / "embeddings.jsonl"), api)
    assert same["same"] == len(rows) and same["similarity"]["min"] == pytest.approx(1)


def test_structured_answers_get_a_field_diff(
    sandbox: Any, api: dict[str, str], tmp_path: Path
) -> None:
    def row(i: int, model: str) -> dict[str, Any]:
        return {
            "custom_id": f"q-{i}",
            "provider": model.split("/")[0],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": f"Describe city number {i}."}],
                "response_format": {"type": "json_object"},
                "max_tokens": 400,
            },
        }

    nano = write_rows(tmp_path / "nano.jsonl", [row(i, "openai/gpt-4.1-nano") for i in range(4)])
    claude = write_rows(
        tmp_path / "claude.jsonl", [row(i, "anthropic/claude-4.5-sonnet") for i in range(4)]
    )
    first, second = run_batch(sandbox, nano), run_batch(sandbox, claude)
    document = compare_json(first, second, api)
    assert document["different"] == 4
    a, b = results_of(first), results_of(second)
    with opened_comparison(first, second) as comparison:
        for position in range(len(comparison)):
            cid = comparison.custom_id(position)
            x, y = json.loads(answer_of(a[cid])), json.loads(answer_of(b[cid]))
            expected = {(k, "changed") for k in x if k in y and x[k] != y[k]}
            expected |= {(k, "added") for k in y if k not in x}
            detail = comparison.detail(position)
            assert detail.kind == "json" and detail.fields is not None
            assert {(f.path, f.kind) for f in detail.fields} == expected
            assert ("notes", "added") in expected and ("model", "changed") in expected
            assert ("answer", "changed") not in expected  # the facts agree


def test_export_as_csv_and_offline_after_the_download(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    rows = rows_of(samples / "chat.jsonl")
    mini = write_rows(tmp_path / "mini.jsonl", with_model(rows, "openai/gpt-4.1-mini"))
    first, second = run_batch(sandbox, samples / "chat.jsonl"), run_batch(sandbox, mini)
    out = tmp_path / "cmp.csv"
    document = compare_json(first, second, api, "-o", str(out))
    assert document["exported"] == len(rows) and document["export_path"] == str(out)
    with out.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    a, b = results_of(first), results_of(second)
    assert [r["custom_id"] for r in records] == [r["custom_id"] for r in rows]
    for record in records:
        cid = record["custom_id"]
        assert record["answer_a"] == answer_of(a[cid]) and record["answer_b"] == answer_of(b[cid])
        assert record["same"] == ("true" if answer_of(a[cid]) == answer_of(b[cid]) else "false")
        usage = b[cid]["response"]["body"]["usage"]
        assert record["tokens_out_b"] == str(usage["completion_tokens"])
    # the server is gone: downloaded results still compare
    sandbox.stop()
    offline = compare_json(first, second, api, "--format", "jsonl", "-o", str(tmp_path / "x"))
    assert offline["same"] == document["same"] and offline["exported"] == len(rows)
    assert json.loads((tmp_path / "x").read_text().splitlines()[0])["custom_id"] == "chat-01"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_refusals_are_one_line(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    first = run_batch(sandbox, samples / "chat.jsonl")
    unknown = cli("compare", first, "fr_batch-nope", env=api)
    assert unknown.returncode == 2 and "no batch or job fr_batch-nope in history" in unknown.stderr
    assert "Traceback" not in unknown.stderr and len(unknown.stderr.splitlines()) == 1
    itself = cli("compare", first, first, env=api)
    assert itself.returncode == 2 and "same batch" in itself.stderr
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    second = run_batch(sandbox, samples / "chat.jsonl")
    into_fifo = cli("compare", first, second, "-o", str(fifo), env=api)
    assert into_fifo.returncode == 2 and str(fifo) in into_fifo.stderr
    assert "Traceback" not in into_fifo.stderr
    running = run_batch(
        sandbox, samples / "server_fails.jsonl", wait=False,
        metadata={"sandbox_fault": "hang_validating"},
    )  # fmt: skip
    still = cli("compare", first, running, env=api)
    assert still.returncode == 1 and "is still validating" in still.stderr


def test_a_batch_not_downloaded_without_a_connection_says_so(
    sandbox: Any, api: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    first = run_batch(sandbox, samples / "chat.jsonl")
    second = run_batch(sandbox, samples / "chat.jsonl")
    sandbox.stop()
    shutil.rmtree(folder_of(second), ignore_errors=True)
    done = cli("compare", first, second, env=api)
    assert done.returncode == 3, done.stderr  # a network error, said in one line
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_file_that_cannot_be_downloaded_leaves_what_is_here(
    sandbox: Any, api: dict[str, str], samples: Path
) -> None:
    first = run_batch(sandbox, samples / "server_fails.jsonl")
    second = run_batch(sandbox, samples / "server_fails.jsonl")
    assert compare_json(first, second, api)["same"] == 6  # downloads and checks both
    store = HistoryStore(get_paths().history_db)
    record = store.find(second)[0]
    assert record.error_path is not None
    Path(record.error_path).unlink()  # its error file is gone, and the server says 404
    sandbox.set_faults({"status": 404, "path_prefix": "/v1/files"})
    done = cli("compare", first, second, "--json", env=api)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["same"] == 6 and document["b_stats"]["missing"] == 4  # 3 failed + 1
    assert f"could not check the results of server_fails.jsonl ({second})" in done.stderr
