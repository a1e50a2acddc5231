"""The cost history is keyed like the batch history, by (origin, id): two servers may
hand out the same batch id, and each batch keeps its own estimate and actual cost."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_cost_cli import KEY, row, run_json, submit_and_read, write

from fr_tui.core.costlog import batch_costs, model_history
from fr_tui.core.store import MIGRATIONS, SCHEMA_VERSION, HistoryStore


def hand_out(server: Any, batch_id: str) -> None:
    """Make `server` give its next batches the id `batch_id`. No real server can be asked
    to, so the sandbox's store is told here; everything else goes over HTTP."""
    store = server.app.store
    create = store.create_batch

    def create_batch(*args: Any, **kwargs: Any) -> dict[str, Any]:
        made = create(*args, **kwargs)
        with store._locked():
            record = store.batches.pop(made["id"])
            record["id"] = batch_id
            store.batches[batch_id] = record
            store._save()
        return {**made, "id": batch_id, "batch_id": batch_id}

    store.create_batch = create_batch


def test_two_servers_same_batch_id_keep_their_own_costs(
    sandbox: Any, samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fr_tui.sandbox.server import SandboxServer

    monkeypatch.setenv("FR_TUI_CATALOG", "auto")
    first = {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": KEY}
    chat_submit, chat = submit_and_read(samples / "chat.jsonl", first)
    with SandboxServer(state_dir=tmp_path / "second-sandbox", tick=0.01) as other:
        second = {"FASTROUTER_BASE_URL": other.base_url, "FASTROUTER_API_KEY": KEY}
        hand_out(other, chat_submit["batch_id"])
        emb_submit, emb = submit_and_read(samples / "embeddings.jsonl", second)
    assert emb_submit["batch_id"] == chat_submit["batch_id"]  # the same id, two servers

    # each batch's results show its own estimate beside its own cost
    assert emb["estimate"]["cost_high"] == emb_submit["estimate"]["cost_high"]
    again = run_json("results", chat_submit["batch_id"], env=first, code=0)
    assert again["estimate"]["cost_high"] == chat_submit["estimate"]["cost_high"]
    assert again["cost"] == chat["cost"]

    # spend counts each batch once, with its own cost
    spend = run_json("spend", env=first)
    assert spend["batches"] == 2
    assert spend["total"] == chat["cost"] + emb["cost"]
    expected = {
        m["model"]: (m["cost"], 1)
        for m in chat["cost_detail"]["models"] + emb["cost_detail"]["models"]
    }
    assert {g["key"]: (g["cost"], g["batches"]) for g in spend["groups"]} == expected


def test_two_servers_same_batch_id_keep_their_own_results_folders(
    sandbox: Any, samples: Path, tmp_path: Path
) -> None:
    """Each batch's files (output, errors, index, retry files) live in a folder of its
    own server: the same id on another server never shares it."""
    from fr_tui.sandbox.server import SandboxServer

    first = {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": KEY}
    chat_submit, chat = submit_and_read(samples / "chat.jsonl", first)
    with SandboxServer(state_dir=tmp_path / "second-sandbox", tick=0.01) as other:
        second = {"FASTROUTER_BASE_URL": other.base_url, "FASTROUTER_API_KEY": KEY}
        hand_out(other, chat_submit["batch_id"])
        _, emb = submit_and_read(samples / "embeddings.jsonl", second)
        again = run_json("results", chat_submit["batch_id"], env=first, code=0)
        emb_again = run_json("results", chat_submit["batch_id"], env=second, code=0)
    assert Path(chat["output_path"]).parent != Path(emb["output_path"]).parent
    assert (again["output_path"], emb_again["output_path"]) == (
        chat["output_path"],
        emb["output_path"],
    )
    assert (again["ok"], emb_again["ok"]) == (chat["ok"], emb["ok"])
    assert again["ok"] != emb_again["ok"]  # two different batches, each read from its own


def test_one_servers_batches_never_correct_another_servers_estimates(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded sandbox bills Anthropic prompts x1.2 on purpose: what it teaches is
    about itself. Its batches correct its own estimates, never a real server's (here the
    test sandbox, reached by --base-url like any server), and the other way round."""
    monkeypatch.setenv("FR_TUI_CATALOG", "auto")
    rows = []
    for i in range(8):
        r = row(f"r{i}", "anthropic/claude-3.5-haiku", "abcd", 20)
        r["body"]["messages"] = [{"role": "user", "content": "ab"} for _ in range(10)]
        rows.append(r)
    path = write(tmp_path / "chatty.jsonl", rows)
    embedded = {"FASTROUTER_API_KEY": KEY}
    submitted = run_json(
        "--sandbox", "submit", str(path), "--wait", "--poll-interval", "0.05", env=embedded
    )
    run_json("--sandbox", "results", submitted["batch_id"], env=embedded)
    (own,) = run_json("--sandbox", "estimate", str(path), env=embedded)["models"]
    assert own["correction"] is not None and own["expected_output_from"] == "history"

    server = {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": KEY}
    (other,) = run_json("estimate", str(path), env=server)["models"]
    assert other["correction"] is None and other["expected_output_from"] == "max_tokens"

    # and the server's own batch teaches the server, not the embedded sandbox
    submit_and_read(path, server)
    (learnt,) = run_json("estimate", str(path), env=server)["models"]
    assert learnt["correction"]["batches"] == 1
    (again,) = run_json("--sandbox", "estimate", str(path), env=embedded)["models"]
    assert again["correction"]["batches"] == 1


V4 = 4  # the schema before batch_models knew the origin


def _history_at_v4(db: Path) -> None:
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:V4]:
        conn.executescript(script)
    for origin, batch_id in (
        ("https://a.example", "b-unique"),
        ("https://a.example", "b-twice"),
        ("sandbox", "b-twice"),
    ):
        conn.execute(
            "INSERT INTO batches (origin, id, status, submitted_at) VALUES (?, ?, 'completed', 1)",
            (origin, batch_id),
        )
    for batch_id, at in (("b-unique", 3.0), ("b-twice", 2.0), ("b-forgotten", 1.0)):
        conn.execute(
            "INSERT INTO batch_models (batch_id, model, rows, est_input_tokens, "
            "est_input_tokens_raw, est_cost_high, ok_rows, actual_input_tokens, "
            "actual_output_median, actual_cost, actual_at) "
            "VALUES (?, 'openai/gpt-4.1-nano', 10, 100, 100, '0.5', 10, 120, 7, '0.25', ?)",
            (batch_id, at),
        )
    conn.execute(f"PRAGMA user_version = {V4}")
    conn.commit()
    conn.close()


def test_migration_carries_cost_rows_over_with_their_origin(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _history_at_v4(db)
    store = HistoryStore(db)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    costs = batch_costs(
        store,
        [
            ("https://a.example", "b-unique"),
            ("https://a.example", "b-twice"),
            ("sandbox", "b-twice"),
        ],
    )
    # a unique id takes the origin of its batch; an id two servers share cannot be told
    # apart, so it is shown for neither (but kept)
    assert list(costs) == [("https://a.example", "b-unique")]
    (row,) = costs[("https://a.example", "b-unique")]
    assert row.origin == "https://a.example" and row.actual_cost == Decimal("0.25")
    assert row.est_cost_high == Decimal("0.5")
    # the row of a known server teaches that server; rows of no known server teach none
    model = "openai/gpt-4.1-nano"
    history = model_history(store, [model], "https://a.example")[model]
    assert history.correction_batches == 1 and history.correction == Decimal("1.2")
    assert model_history(store, [model], "sandbox") == {}
    # nothing is lost: the rows are kept
    with sqlite3.connect(db) as check:
        kept = check.execute("SELECT origin, batch_id FROM batch_models ORDER BY batch_id")
        assert kept.fetchall() == [
            ("", "b-forgotten"),
            ("", "b-twice"),
            ("https://a.example", "b-unique"),
        ]


def test_a_batch_is_priced_with_its_own_profiles_discount(tmp_path: Path, fr_home: Path) -> None:
    """Rows without usage.cost are priced by tokens: with the catalog, [prices] and
    batch_discount of the batch's own server and profile, not of the active profile."""
    import json

    from fault_helpers import TinyBatchServer
    from test_cost_cli import write_config

    answer = {"choices": [{"message": {"content": "hi"}}], "model": "test/priced"}
    answer["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500}  # no cost
    output = (
        json.dumps(
            {"custom_id": "r1", "response": {"status_code": 200, "body": answer}, "error": None}
        ).encode()
        + b"\n"
    )
    path = write(tmp_path / "priced.jsonl", [row("r1", "test/priced", "hi", 500)])
    with TinyBatchServer() as server:
        write_config(
            fr_home,
            'active_profile = "a"\n'
            '[profiles.a]\nbase_url = "http://127.0.0.1:9"\napi_key = "sk-a"\n'
            "batch_discount = 0.5\n"
            f'[profiles.b]\nbase_url = "{server.base_url}"\napi_key = "sk-b"\n'
            "batch_discount = 0\n"
            '[prices."test/priced"]\ninput = 1.0\noutput = 2.0\n',
        )
        submitted = run_json("--profile", "b", "submit", str(path), "--force", env={})
        batch = server.batches[submitted["batch_id"]]
        batch.update(status="completed", output_file_id="file-out")
        batch["request_counts"] = {"total": 1, "completed": 1, "failed": 0}
        server.routes[("GET", "/v1/files/file-out/content")] = lambda r: (200, {}, output)
        results = run_json("results", submitted["batch_id"], env={})  # profile a is active
    # (1000 x $1 + 500 x $2) per million tokens, and profile b takes nothing off
    assert results["cost"] == Decimal("0.002"), results["cost_detail"]
