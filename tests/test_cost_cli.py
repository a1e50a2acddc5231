"""Issue 12 as a user meets it: the model catalog, pre-submit checks, estimates, budgets,
actual cost and spend, through whole `fr-tui` processes against a sandbox over HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from fr_tui.core.units import money
from fr_tui.sandbox.catalog import MODELS

KEY = "sk-v1-cost-tests"
HALF = Decimal("0.5")
MILLION = Decimal(1_000_000)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fr_tui", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def run_json(*args: str, env: dict[str, str], code: int = 0) -> dict:
    done = run(*args, "--json", env=env)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout, parse_float=Decimal)


@pytest.fixture
def api(sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test sandbox as the server, with the catalog turned on (conftest turns it off)."""
    monkeypatch.setenv("FR_TUI_CATALOG", "auto")
    return {"FASTROUTER_BASE_URL": sandbox.base_url, "FASTROUTER_API_KEY": KEY}


def row(custom_id: str, model: str, text: str, max_tokens: int | None = None) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    provider = model.partition("/")[0]
    return {
        "custom_id": custom_id,
        "provider": provider,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def warnings_by_code(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for warning in report["warnings"]:
        out.setdefault(warning["code"], []).append(warning)
    return out


def test_unknown_and_inactive_models_warn_once_each_with_suggestions(
    api: dict[str, str], tmp_path: Path, sandbox
) -> None:
    rows = [row("a", "openai/gpt-4.1-nano", "hi", 50)]
    rows += [row(f"typo-{i}", "openai/gpt-4.1-nan", "hi", 50) for i in range(3)]
    rows += [row(f"old-{i}", "openai/gpt-4-0314", "hi", 50) for i in range(2)]
    path = write(tmp_path / "models.jsonl", rows)

    report = run_json("validate", str(path), env=api)
    assert report["valid"] and report["catalog"]["origin"] == sandbox.base_url
    found = warnings_by_code(report)
    (typo,) = found["unknown_model"]
    assert typo["line"] == 2 and "3 rows" in typo["message"]
    assert "Did you mean openai/gpt-4.1-nano" in typo["message"]
    (old,) = found["inactive_model"]
    assert old["line"] == 5 and "2 rows" in old["message"]

    # submit treats them like any warning: refused without --force, and nothing uploaded
    done = run("submit", str(path), env=api)
    assert done.returncode == 1 and "--force" in done.stderr
    assert sandbox.app.store.files == {}


def test_context_overflow_and_max_tokens_over_the_model_limit(
    api: dict[str, str], tmp_path: Path
) -> None:
    tiny = MODELS["sandbox/tiny-context"]  # 512-token context, 128 completion tokens
    long_prompt = "word " * 480  # 2,400 characters: about 600 tokens
    path = write(
        tmp_path / "sizes.jsonl",
        [
            row("fits", "sandbox/tiny-context", "short question", 100),
            row("long", "sandbox/tiny-context", long_prompt, 50),
            row("greedy", "sandbox/tiny-context", "short question", 200),
        ],
    )
    report = run_json("validate", str(path), env=api)
    found = warnings_by_code(report)
    assert [w["line"] for w in found["context_overflow"]] == [2]
    assert f"{tiny.context_length:,}-token context" in found["context_overflow"][0]["message"]
    assert [w["line"] for w in found["max_tokens_over_limit"]] == [3]
    assert "at most 128" in found["max_tokens_over_limit"][0]["message"]
    assert report["valid"]  # warnings, not errors


def test_estimate_json_shape_and_numbers(api: dict[str, str], tmp_path: Path) -> None:
    nano = MODELS["openai/gpt-4.1-nano"]
    sonnet = MODELS["anthropic/claude-4.5-sonnet"]
    # Prompts of whole multiples of four characters, so the chars/4 token estimate is exact.
    rows = [row(f"n{i}", nano.id, "abcd" * (i + 1), 100 * (i + 1)) for i in range(4)]
    rows += [row("s0", sonnet.id, "abcdefgh", 300), row("s1", sonnet.id, "abcd", None)]
    path = write(tmp_path / "mixed.jsonl", rows)

    est = run_json("estimate", str(path), env=api)
    for key in (
        "rows",
        "input_tokens",
        "output_tokens_max",
        "cost_low",
        "cost_high",
        "currency",
        "models",
        "unpriced_models",
    ):
        assert key in est
    assert est["rows"] == 6 and est["currency"] == "USD" and est["unpriced_models"] == []

    # core/tokens.py: a quarter token a character, plus 3 per message and 3 per request
    framing = 3 + 3
    nano_in, nano_out = 1 + 2 + 3 + 4 + 4 * framing, 100 + 200 + 300 + 400
    # the row without max_tokens is bounded by the model's maximum completion tokens
    sonnet_in, sonnet_out = 2 + 1 + 2 * framing, 300 + sonnet.max_completion_tokens
    assert est["input_tokens"] == nano_in + sonnet_in
    assert est["output_tokens_max"] == nano_out + sonnet_out

    def cost(model, tokens_in: int, tokens_out: int) -> Decimal:
        return (tokens_in * model.input_price + tokens_out * model.output_price) * HALF

    by_model = {m["model"]: m for m in est["models"]}
    assert set(by_model) == {nano.id, sonnet.id}
    for model, tokens_in, tokens_out in (
        (nano, nano_in, nano_out),
        (sonnet, sonnet_in, sonnet_out),
    ):
        entry = by_model[model.id]
        assert {"model", "rows", "input_tokens", "cost_low", "cost_high", "price_source"} <= set(
            entry
        )
        assert entry["price_source"] == "catalog" and entry["input_tokens"] == tokens_in
        assert entry["cost_high"] == cost(model, tokens_in, tokens_out)
        # no history yet: the expected output is the maximum too
        assert entry["cost_low"] == entry["cost_high"]
    assert est["cost_high"] == cost(nano, nano_in, nano_out) + cost(sonnet, sonnet_in, sonnet_out)
    # money is a plain number, never an exponent
    assert not re.search(r"\d[eE][-+]?\d", run("estimate", str(path), "--json", env=api).stdout)

    text = run("estimate", str(path), env=api)
    assert text.returncode == 0 and "batch -50%" in text.stdout


# "abcd" as the one user message: one token of text, 3 for the message, 3 for the reply
ABCD_TOKENS = 1 + 3 + 3


def cost_of(model_id: str, tokens_in: int, tokens_out: int) -> Decimal:
    """What the sandbox's price table says a batch row costs (list price, half off)."""
    model = MODELS[model_id]
    return (tokens_in * model.input_price + tokens_out * model.output_price) * HALF


def test_estimate_lists_unpriced_models_and_nulls_without_any_price(
    api: dict[str, str], tmp_path: Path
) -> None:
    # sandbox/tiny-context: the catalog gives no price and genai-prices does not know it
    mixed = write(
        tmp_path / "mixed.jsonl",
        [row("a", "openai/gpt-4.1-nano", "abcd", 10), row("b", "sandbox/tiny-context", "abcd", 10)],
    )
    est = run_json("estimate", str(mixed), env=api)
    assert est["unpriced_models"] == ["sandbox/tiny-context"]
    assert est["cost_low"] == est["cost_high"] == cost_of("openai/gpt-4.1-nano", ABCD_TOKENS, 10)
    assert est["complete"] is False

    only = write(tmp_path / "only.jsonl", [row("b", "sandbox/tiny-context", "abcd", 10)])
    est = run_json("estimate", str(only), env=api)
    assert est["cost_low"] is None and est["cost_high"] is None
    assert est["unpriced_models"] == ["sandbox/tiny-context"]


def write_config(home: Path, text: str) -> None:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def test_each_price_fallback_says_its_source(
    api: dict[str, str], tmp_path: Path, fr_home: Path
) -> None:
    genai_prices = pytest.importorskip("genai_prices")
    write_config(
        fr_home,
        """
[prices."sandbox/tiny-context"]
input = 2.5     # USD per million tokens
output = 10
[prices."sandbox/already-batch"]
input = 1
output = 1
batch = true
""",
    )
    path = write(
        tmp_path / "prices.jsonl",
        [
            row("cat", "openai/gpt-4.1-nano", "abcd", 10),  # the catalog prices it
            row("lib", "openai/gpt-4o-mini", "abcd", 10),  # listed without a price
            row("cfg", "sandbox/tiny-context", "abcd", 10),  # only config.toml has it
            row("bat", "sandbox/already-batch", "abcd", 10),  # a batch price: no discount
        ],
    )
    est = run_json("estimate", str(path), env=api)
    by_model = {m["model"]: m for m in est["models"]}
    assert {m: e["price_source"] for m, e in by_model.items()} == {
        "openai/gpt-4.1-nano": "catalog",
        "openai/gpt-4o-mini": "genai-prices",
        "sandbox/tiny-context": "config",
        "sandbox/already-batch": "config",
    }
    assert by_model["openai/gpt-4.1-nano"]["cost_high"] == cost_of(
        "openai/gpt-4.1-nano", ABCD_TOKENS, 10
    )
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=ABCD_TOKENS, output_tokens=10),
        "gpt-4o-mini",
        provider_id="openai",
    )
    assert by_model["openai/gpt-4o-mini"]["cost_high"] == Decimal(calc.total_price) * HALF
    assert (
        by_model["sandbox/tiny-context"]["cost_high"]
        == (ABCD_TOKENS * Decimal("2.5") + 10 * 10) / (MILLION) * HALF
    )
    assert by_model["sandbox/already-batch"]["cost_high"] == Decimal(ABCD_TOKENS + 10) / MILLION
    assert by_model["sandbox/already-batch"]["price"]["batch_discount"] == 0
    assert est["unpriced_models"] == []


def test_max_cost_refuses_before_uploading(
    api: dict[str, str], tmp_path: Path, sandbox, samples: Path
) -> None:
    high = run_json("estimate", str(samples / "chat.jsonl"), env=api)["cost_high"]
    done = run("submit", str(samples / "chat.jsonl"), "--max-cost", "0.001", env=api)
    assert done.returncode == 1
    shown = money(Decimal(str(high)))
    assert f"high estimate {shown} is over the budget of $0.001 " in done.stderr, done.stderr
    assert "nothing was uploaded" in done.stderr
    assert sandbox.app.store.files == {} and sandbox.app.store.batches == {}
    # a budget over the high estimate lets it through
    ok = run_json("submit", str(samples / "chat.jsonl"), "--max-cost", str(high), env=api)
    assert ok["batch_id"] and ok["estimate"]["cost_high"] == high
    bad = run("submit", str(samples / "chat.jsonl"), "--max-cost", "lots", env=api)
    assert bad.returncode == 2 and "--max-cost" in bad.stderr


def test_profile_budgets_per_batch_and_per_day(
    api: dict[str, str], tmp_path: Path, sandbox, samples: Path, fr_home: Path
) -> None:
    high = run_json("estimate", str(samples / "chat.jsonl"), env=api)["cost_high"]
    write_config(fr_home, f"[profiles.default]\nmax_cost_per_batch = {float(high) / 2}\n")
    done = run("submit", str(samples / "chat.jsonl"), env=api)
    assert done.returncode == 1 and "max_cost_per_batch" in done.stderr
    assert sandbox.app.store.files == {}

    # a day's budget for one and a half batches: the first goes, the second would not
    write_config(fr_home, f"[profiles.default]\nmax_cost_per_day = {float(high) * 1.5}\n")
    first = run_json("submit", str(samples / "chat.jsonl"), env=api)
    assert first["batch_id"]
    uploads = len(sandbox.app.store.files)
    second = run("submit", str(samples / "chat.jsonl"), env=api)
    assert second.returncode == 1 and "max_cost_per_day" in second.stderr, second.stderr
    assert len(sandbox.app.store.files) == uploads


def test_an_unpriced_model_cannot_pass_a_budget(
    api: dict[str, str], tmp_path: Path, sandbox
) -> None:
    path = write(tmp_path / "unpriced.jsonl", [row("b", "sandbox/tiny-context", "abcd", 10)])
    done = run("submit", str(path), "--max-cost", "100", env=api)
    assert done.returncode == 1 and "no price for sandbox/tiny-context" in done.stderr
    assert sandbox.app.store.files == {}


def output_costs(path: Path) -> dict[str, Decimal]:
    """model -> the sum of its rows' usage.cost, read straight from an output file."""
    totals: dict[str, Decimal] = {}
    for line in path.read_text().splitlines():
        body = json.loads(line, parse_float=Decimal)["response"]["body"]
        totals[body["model"]] = totals.get(body["model"], Decimal(0)) + body["usage"]["cost"]
    return totals


def submit_and_read(path: Path, env: dict[str, str]) -> tuple[dict, dict]:
    submitted = run_json("submit", str(path), "--wait", "--poll-interval", "0.05", env=env)
    results = run_json("results", submitted["batch_id"], env=env)
    return submitted, results


def test_results_show_actual_cost_by_model_and_provider_beside_the_estimate(
    api: dict[str, str], samples: Path
) -> None:
    submitted, results = submit_and_read(samples / "chat.jsonl", api)
    expected = output_costs(Path(results["output_path"]))
    assert results["cost"] == sum(expected.values())
    detail = results["cost_detail"]
    assert {m["model"]: m["cost"] for m in detail["models"]} == expected
    assert {p["provider"] for p in detail["providers"]} == {"openai", "anthropic"}
    assert all(m["cost_source"] == "usage" for m in detail["models"])
    assert results["estimate"]["cost_high"] == submitted["estimate"]["cost_high"]
    # kept beside the results: reading them again does not walk every row again
    assert (Path(results["output_path"]).parent / "cost-tally.json").is_file()
    text = run("results", submitted["batch_id"], env=api).stdout
    assert "(estimate $" in text and "by provider:" in text


def test_spend_totals_from_history(api: dict[str, str], samples: Path) -> None:
    _, chat = submit_and_read(samples / "chat.jsonl", api)
    _, emb = submit_and_read(samples / "embeddings.jsonl", api)
    spend = run_json("spend", env=api)
    assert spend["total"] == chat["cost"] + emb["cost"] and spend["batches"] == 2
    by_model = {g["key"]: g["cost"] for g in spend["groups"]}
    expected = output_costs(Path(chat["output_path"]))
    expected.update(output_costs(Path(emb["output_path"])))
    assert by_model == expected
    by_provider = run_json("spend", "--by", "provider", env=api)
    assert {g["key"] for g in by_provider["groups"]} == {"openai", "anthropic"}
    assert sum(g["cost"] for g in by_provider["groups"]) == spend["total"]
    by_day = run_json("spend", "--by", "day", "--since", "today", env=api)
    assert len(by_day["groups"]) == 1 and by_day["groups"][0]["cost"] == spend["total"]
    assert run_json("spend", "--since", "2999-01-01", env=api)["total"] == 0
    # offline: no server needed
    assert (
        run_json("spend", env={"FASTROUTER_BASE_URL": "http://127.0.0.1:9"})["total"]
        == (spend["total"])
    )
    assert run("spend", "--since", "yesterdayish", env=api).returncode == 2


def test_estimates_learn_a_correction_from_finished_batches(
    api: dict[str, str], tmp_path: Path
) -> None:
    # The sandbox counts Anthropic prompts with a tokenizer that finds more tokens than
    # the estimate (catalog.py's tokenizer_ratio), so the correction has something to learn.
    rows = []
    for i in range(8):
        r = row(f"r{i}", "anthropic/claude-3.5-haiku", "abcd", 20)
        r["body"]["messages"] = [{"role": "user", "content": "ab"} for _ in range(10)]
        rows.append(r)
    path = write(tmp_path / "chatty.jsonl", rows)
    before = run_json("estimate", str(path), env=api)
    (model,) = before["models"]
    assert model["correction"] is None and model["expected_output_from"] == "max_tokens"
    _, results = submit_and_read(path, api)
    actual_in = results["cost_detail"]["models"][0]["input_tokens"]
    assert actual_in != before["input_tokens"]

    after = run_json("estimate", str(path), env=api)
    (model,) = after["models"]
    assert after["input_tokens"] == actual_in  # same file: the corrected estimate is exact
    assert model["input_tokens_uncorrected"] == before["input_tokens"]
    assert model["correction"]["batches"] == 1
    error = abs(Decimal(actual_in) / before["input_tokens"] - 1) * 100
    assert model["correction"]["within_pct"] == int(
        error.to_integral_value(rounding="ROUND_CEILING")
    )
    # the expected output now comes from the answers seen, so the range opens up
    assert model["expected_output_from"] == "history"
    assert after["cost_low"] < after["cost_high"]
    text = run("estimate", str(path), env=api).stdout
    assert f"estimate within {model['correction']['within_pct']}% on your last batch" in text


def test_the_cached_catalog_works_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fr_tui.sandbox.server import SandboxServer

    monkeypatch.setenv("FR_TUI_CATALOG", "auto")
    server = SandboxServer(state_dir=tmp_path / "state", tick=0.01)
    env = {"FASTROUTER_BASE_URL": server.start(), "FASTROUTER_API_KEY": KEY}
    path = write(
        tmp_path / "typo.jsonl",
        [row("a", "openai/gpt-4.1-nan", "hi", 10), row("b", "openai/gpt-4.1-nano", "hi", 10)],
    )
    try:
        online = run_json("validate", str(path), env=env)
    finally:
        server.stop()
    assert "unknown_model" in warnings_by_code(online)

    offline = run_json("validate", str(path), env=env)
    assert "unknown_model" in warnings_by_code(offline)
    assert offline["catalog"]["fetched_at"] == online["catalog"]["fetched_at"]
    est = run_json("estimate", str(path), env=env)
    sources = {m["model"]: m["price_source"] for m in est["models"]}
    assert sources == {"openai/gpt-4.1-nan": None, "openai/gpt-4.1-nano": "catalog"}

    # A catalog older than a day is still used while a refresh (which fails here) is
    # tried in the background; the command does not wait on the dead server for long.
    cache = next((Path(os.environ["FR_TUI_HOME"]) / "config" / "catalog").glob("*.json"))
    doc = json.loads(cache.read_text())
    doc["fetched_at"] -= 2 * 86400
    cache.write_text(json.dumps(doc))
    started = time.monotonic()
    stale = run_json("validate", str(path), env=env)
    assert time.monotonic() - started < 20
    assert "unknown_model" in warnings_by_code(stale)
    assert stale["catalog"]["age_hours"] >= 48


def test_no_catalog_reachable_means_no_model_checks(
    api: dict[str, str], tmp_path: Path, sandbox
) -> None:
    path = write(tmp_path / "typo.jsonl", [row("a", "openai/gpt-4.1-nan", "hi", 10)])
    sandbox.set_faults({"status": 500, "path_prefix": "/v1/models"})
    report = run_json("validate", str(path), env=api)
    assert report["catalog"] is None and report["warnings"] == []
    text = run("validate", str(path), env=api).stdout
    assert "model catalog: not available" in text
    # a failed fetch is not tried again at once: the next run does not ask the server
    sandbox.set_faults({})
    assert run_json("validate", str(path), env=api)["catalog"] is None


def test_spend_without_read_results_and_with_a_running_batch(
    api: dict[str, str], samples: Path
) -> None:
    done = run_json(
        "submit", str(samples / "chat.jsonl"), "--wait", "--poll-interval", "0.05", env=api
    )
    status = run_json("status", done["batch_id"], env=api)
    reported = status["usage"]["cost"]  # the batch object's usage.cost; results never read
    assert reported > 0
    spend = run_json("spend", env=api)
    assert spend["total"] == reported and spend["batches"] == 1
    # with no per-row costs read, the batch's cost is split by its estimate's shares
    assert {g["key"] for g in spend["groups"]} == {
        "openai/gpt-4.1-nano",
        "anthropic/claude-4.5-sonnet",
    }
    assert abs(sum(g["cost"] for g in spend["groups"]) - reported) < Decimal("1e-9")

    hanging = run_json(
        "submit",
        str(samples / "chat.jsonl"),
        "--metadata",
        "sandbox_fault=hang_validating",
        "--force",  # the same file again: a second batch, on purpose
        env=api,
    )
    spend = run_json("spend", env=api)
    assert spend["in_flight"] == {"batches": 1, "cost_high": hanging["estimate"]["cost_high"]}
    assert spend["total"] == reported
    text = run("spend", env=api).stdout
    assert "on 1 batch\n" in text and "running: 1 batch, up to" in text, text


def test_retry_submit_is_held_to_the_budget_too(
    api: dict[str, str], samples: Path, sandbox, fr_home: Path
) -> None:
    first = run_json(
        "submit",
        str(samples / "server_fails.jsonl"),
        "--force",
        "--wait",
        "--poll-interval",
        "0.05",
        env=api,
        code=4,  # it finished, with failed and missing rows: what retry is for
    )
    write_config(fr_home, "[profiles.default]\nmax_cost_per_batch = 0.0000001\n")
    batches = len(sandbox.app.store.batches)
    done = run("retry", first["batch_id"], "--submit", env=api)
    assert done.returncode == 1 and "max_cost_per_batch" in done.stderr, done.stderr
    assert len(sandbox.app.store.batches) == batches
