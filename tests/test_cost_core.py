"""The pieces of issue 12 that need no server: reading catalog answers of any shape,
money formatting, the cost settings of config.toml, and the validator's observer hook."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fr_tui.core.catalog import CatalogError, CatalogLoader, parse_catalog
from fr_tui.core.config import load_config, save_config
from fr_tui.core.paths import get_paths
from fr_tui.core.precheck import PreSubmitChecks
from fr_tui.core.units import human_count, money
from fr_tui.core.validate import Problem, validate_bytes, validate_path


def test_catalog_answers_are_read_defensively() -> None:
    answer = {
        "data": [
            {  # OpenRouter/FastRouter style: per-token strings
                "id": "openai/a",
                "context_length": 1000,
                "top_provider": {"max_completion_tokens": 100},
                "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
            },
            {  # per-million numbers, inactive, limits as strings
                "id": "anthropic/b",
                "context_length": "2000",
                "is_active": False,
                "pricing": {"input": 3, "output": 15},
            },
            {"id": "x/varies", "pricing": {"prompt": "-1", "completion": "-1"}},
            {"id": "x/embed", "pricing": {"prompt": "0.00000002"}},
            {"id": ""},
            {"name": "no id"},
            "not an object",
            {"id": "x/odd", "context_length": "lots", "top_provider": [], "pricing": "free"},
        ]
    }
    catalog = parse_catalog(answer, "test", 0.0)
    assert catalog.skipped == 3
    a, b = catalog.models["openai/a"], catalog.models["anthropic/b"]
    assert (a.context_length, a.max_completion_tokens, a.active) == (1000, 100, True)
    assert (a.input_price, a.output_price) == (Decimal("0.00000015"), Decimal("0.0000006"))
    assert (b.context_length, b.active) == (2000, False)
    assert (b.input_price, b.output_price) == (Decimal("0.000003"), Decimal("0.000015"))
    assert catalog.models["x/varies"].input_price is None
    assert catalog.models["x/embed"].output_price == 0
    odd = catalog.models["x/odd"]
    assert odd.context_length is None and odd.input_price is None
    assert catalog.get("openai/a:online") is a
    assert parse_catalog([{"id": "bare/list"}], "t", 0).models.keys() == {"bare/list"}
    for bad in ({"data": "nope"}, "html", None, 3):
        with pytest.raises(CatalogError):
            parse_catalog(bad, "t", 0)


def test_a_broken_cache_is_ignored_and_replaced() -> None:
    paths = get_paths().ensure()
    answers = iter([{"data": [{"id": "m/one"}]}])
    loader = CatalogLoader(paths, "test-origin", lambda: next(answers), mode="auto")
    first = loader.load()
    assert first is not None and "m/one" in first.models
    cache = next((paths.config_dir / "catalog").glob("*.json"))
    cache.write_text("{not json")
    again = CatalogLoader(paths, "test-origin", lambda: {"data": [{"id": "m/two"}]}, mode="auto")
    catalog = again.load()
    assert catalog is not None and "m/two" in catalog.models


@given(
    st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e7"), allow_nan=False, places=14)
)
def test_money_is_never_printed_with_an_exponent(amount: Decimal) -> None:
    text = money(amount)
    assert "e" not in text.lower()
    if amount < Decimal("0.000001"):
        assert text == "<$0.000001"
        return
    assert text.startswith("$")
    shown = Decimal(text[1:].replace(",", ""))
    # rounded for display only: to cents from a dollar up, else to two significant digits
    allowed = Decimal("0.005") if shown >= 1 else amount * Decimal("0.05")
    assert abs(shown - amount) <= allowed


def test_money_examples() -> None:
    assert money(Decimal("0.00008675")) == "$0.000087"
    assert money(Decimal("0.000087")) == "$0.000087"
    assert money(Decimal("0.5")) == "$0.50"
    assert money(Decimal("1234.567")) == "$1,234.57"
    assert money(Decimal(0)) == "$0.00"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (999, "999"),
        (1_234, "1.2k"),
        (9_949, "9.9k"),
        (9_950, "10k"),
        (999_499, "999k"),
        (999_999, "1.0M"),  # the unit is chosen after rounding
        (1_638_400_000, "1.6B"),  # an upper bound of output tokens reads as one
        (999_949_999, "999.9M"),
        (999_950_000, "1.0B"),
    ],
)
def test_counts_read_in_the_unit_they_round_to(value: int, shown: str) -> None:
    assert human_count(value) == shown


def test_cost_settings_are_read_checked_and_kept_on_save(fr_home: Path) -> None:
    path = fr_home / "config" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        """
[profiles.default]
batch_discount = 0.4
max_cost_per_batch = 2.5
max_cost_per_day = "10"
[profiles.bad]
batch_discount = 3
max_cost_per_day = "lots"
[prices."my/model"]
input = 0.15
output = 0.6
batch = true
[prices."broken/model"]
input = "cheap"
"""
    )
    path.chmod(0o600)
    config = load_config()
    default = config.profile("default")
    assert default.batch_discount == Decimal("0.4")
    assert (default.max_cost_per_batch, default.max_cost_per_day) == (Decimal("2.5"), 10)
    bad = config.profile("bad")
    assert bad.batch_discount == Decimal("0.5") and bad.max_cost_per_day is None
    assert len([w for w in config.warnings if "profile 'bad'" in w]) == 2
    assert config.prices["my/model"].input == Decimal("0.15") / 1_000_000
    assert config.prices["my/model"].batch is True
    assert "broken/model" not in config.prices
    assert any("broken/model" in w for w in config.warnings)

    save_config(config)  # the TUI's settings screen saves: nothing cost-related is lost
    again = load_config()
    assert again.profile("default").max_cost_per_batch == Decimal("2.5")
    assert again.profile("default").batch_discount == Decimal("0.4")
    assert again.prices["my/model"] == config.prices["my/model"]


def _line(custom_id: str, model: str, text: str, **body: object) -> bytes:
    import msgspec

    return msgspec.json.encode(
        {
            "custom_id": custom_id,
            "provider": model.partition("/")[0],
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
        }
    )


def test_the_observer_sees_every_row_fast_or_slow(tmp_path: Path) -> None:
    rows = [
        _line("a", "openai/x", "abcd" * 3, max_tokens=5),  # ordinary: the fast path
        _line("b", "openai/x", "abcd" * 3, max_tokens=5),
        _line("b", "openai/x", "abcd", max_tokens=7),  # duplicate id: the slow path
        _line("c", "y/other", "abcdabcd"),  # unknown provider: slow path, no max_tokens
        b'{"custom_id": "d", "body": "not a dict"}',
        b"not json",
    ]
    data = b"\n".join(rows) + b"\n"
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    checks = PreSubmitChecks()
    report = validate_path(path, observer=checks)
    tally = checks.tallies["openai/x"]
    # core/tokens.py: a token per four characters, 3 per message, 3 per request
    assert (tally.rows, tally.prompt_tokens, tally.output_bound) == (3, 9 + 9 + 7, 17)
    other = checks.tallies["y/other"]
    assert (other.rows, other.prompt_tokens, other.unbounded_rows) == (1, 8, 1)
    # without an observer, nothing changes in the report
    plain = validate_bytes(data)
    assert (plain.errors_total, plain.warnings_total) == (
        report.errors_total,
        report.warnings_total,
    )


def test_a_batchs_cost_is_read_from_its_rows_once(tmp_path: Path) -> None:
    """Walking every row for the cost costs seconds at a million rows: the per-model
    tallies are kept beside the result files and reused while those are unchanged (a
    rewritten output file is walked again), and pricing them gives what a walk gives."""
    import msgspec

    from fr_tui.core.actual import result_cost
    from fr_tui.core.config import UserPrice
    from fr_tui.core.prices import PriceBook
    from fr_tui.core.results import join_results

    def answer(custom_id: str, tokens: tuple[int, int], cost: float | None) -> bytes:
        usage: dict = {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}
        if cost is not None:
            usage["cost"] = cost
        body = {"choices": [{"message": {"content": "ok"}}], "usage": usage}
        response = {"status_code": 200, "body": body}
        return msgspec.json.encode({"custom_id": custom_id, "response": response, "error": None})

    inputs = tmp_path / "in.jsonl"
    inputs.write_bytes(b"\n".join(_line(f"r{i}", "test/m", "hi") for i in range(4)) + b"\n")
    output = tmp_path / "results" / "output.jsonl"
    output.parent.mkdir()
    output.write_bytes(
        answer("r0", (100, 10), 0.25) + b"\n" + answer("r1", (1000, 500), None) + b"\n"
    )
    sources = (inputs, output, None)
    book = PriceBook(None, {"test/m": UserPrice(Decimal(1), Decimal(2))}, Decimal("0.5"),
                     use_genai_prices=False)  # fmt: skip

    class NoWalk(list):
        def __getitem__(self, i: object) -> object:
            raise AssertionError("the rows were walked again")

    with join_results(*sources) as joined:
        first = result_cost(joined, book, cache_for=sources)
    (model,) = first.models.values()
    # one row billed by the server, one priced from its tokens at half the list price
    assert (model.usage_rows, model.computed_rows, model.ok_rows) == (1, 1, 2)
    assert first.total == Decimal("0.25") + (1000 * 1 + 500 * 2) * Decimal("0.5")
    with join_results(*sources) as joined:
        joined.models = NoWalk(joined.models)
        again = result_cost(joined, book, cache_for=sources)
    assert again.to_json() == first.to_json() and again.models["test/m"].output_median == 10
    output.write_bytes(output.read_bytes() + answer("r2", (1, 1), 1.0) + b"\n")
    with join_results(*sources) as joined:
        changed = result_cost(joined, book, cache_for=sources)
    assert changed.total == first.total + 1


def test_an_embeddings_file_has_no_output_tokens_not_at_most_zero(samples: Path) -> None:
    from fr_tui.core.config import Profile
    from fr_tui.core.prepare import CostBasis, prepare_submit
    from fr_tui.headless_cost import estimate_lines

    estimate = prepare_submit(samples / "embeddings.jsonl", CostBasis("x", Profile("p"))).estimate
    for text in (estimate.summary_text(), estimate_lines(estimate, "embeddings.jsonl")[0]):
        assert "no output tokens" in text and "0 output tokens" not in text, text


class _EveryRow:
    """The same checks, as an observer that is shown every row (no summing)."""

    def __init__(self, checks: PreSubmitChecks) -> None:
        self.checks = checks

    def row(self, line: int, body: dict[str, Any], prompt_tokens: int) -> list[Problem] | None:
        return self.checks.row(line, body, prompt_tokens)

    def finish(self) -> list[Problem]:
        return self.checks.finish()


_MODELS = {  # (context_length, max_completion_tokens, active)
    "openai/both": (40, 20, True),
    "openai/context-only": (30, None, True),
    "openai/completion-only": (None, 30, True),
    "openai/neither": (None, None, True),
    "openai/inactive": (45, 25, False),
}


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*_MODELS, "openai/unknown", "openai/both"]),
            st.integers(0, 120),  # characters of the prompt
            st.one_of(st.none(), st.integers(1, 50)),  # max_tokens
            st.booleans(),  # an extra body key: the row takes the slow path
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
# rows within each bound alone but over the context with max_tokens; over max_tokens
@example([("openai/both", 100, 15, False)] * 3, False)
@example([("openai/inactive", 20, 30, False)] * 3, False)
@example([("openai/context-only", 110, None, False)] * 3, True)
def test_summed_rows_count_as_rows_shown_one_by_one(
    rows: list[tuple[str, int, int | None, bool]], embeddings: bool
) -> None:
    """The validator sums up the ordinary rows that cannot warrant a warning instead of
    showing them to PreSubmitChecks: its tallies and warnings stay those of every row."""
    import msgspec

    from fr_tui.core.catalog import Catalog, ModelInfo

    models = {m: ModelInfo(m, c, mc, active) for m, (c, mc, active) in _MODELS.items()}
    lines = []
    for number, (model, chars, max_tokens, extra) in enumerate(rows):
        body: dict[str, Any] = {"model": model}
        if embeddings:
            body["input"] = "x" * max(chars, 1)
        else:
            body["messages"] = [{"role": "user", "content": "x" * max(chars, 1)}]
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
        if extra:
            body["temperature"] = 0
        url = "/v1/embeddings" if embeddings else "/v1/chat/completions"
        line = {"custom_id": f"r{number}", "provider": "openai", "method": "POST", "url": url}
        lines.append(msgspec.json.encode({**line, "body": body}))
    data = b"\n".join(lines) + b"\n"
    summing = PreSubmitChecks(Catalog("x", dict(models), 0.0))
    every = PreSubmitChecks(Catalog("x", dict(models), 0.0))
    summed_report = validate_bytes(data, observer=summing)
    every_report = validate_bytes(data, observer=_EveryRow(every))
    assert summing.tallies == every.tallies
    assert summed_report.to_json() == every_report.to_json()
