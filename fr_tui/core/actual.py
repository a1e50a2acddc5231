"""What a finished batch really cost, from its result lines, split by model and provider.

Each row's cost is its `usage.cost` (FastRouter bills every answer with it) where the
line has one, else its tokens times the model's batch price (core/prices.py). The input
row's model names the row (the answer's model may carry a version suffix).

Walking every row takes seconds at a million rows, so it is done once: the per-model
tallies (rows, tokens, billed cost, and the tokens of the rows still to be priced) are
kept beside the result files (`cost-tally.json`, with the signatures of the files they
were read from) and reused while the files are unchanged. Pricing a tally is a few
multiplications per model, so prices are applied afresh every time.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.catalog import provider_of
from fr_tui.core.export import atomic_write
from fr_tui.core.prices import PriceBook
from fr_tui.core.results import OK, JoinedResults, index_path_for
from fr_tui.core.results_index import source_signatures
from fr_tui.core.units import json_money, money, parse_money

log = logging.getLogger("fr_tui.actual")

CACHE_NAME = "cost-tally.json"
CACHE_VERSION = 1

USAGE, COMPUTED = "usage", "computed"


@dataclass
class ModelActual:
    model: str
    provider: str
    rows: int = 0
    ok_rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    output_median: int | None = None
    usage_cost: Decimal = Decimal(0)
    usage_rows: int = 0
    # answered rows with tokens but no usage.cost: priced from their tokens
    unbilled_rows: int = 0
    unbilled_input: int = 0
    unbilled_output: int = 0
    # set by pricing (priced_cost): what the unbilled rows cost, or how many had no price
    computed_cost: Decimal = Decimal(0)
    computed_rows: int = 0
    unpriced_rows: int = 0

    @property
    def cost(self) -> Decimal | None:
        if not self.usage_rows and not self.computed_rows:
            return None
        return self.usage_cost + self.computed_cost

    @property
    def cost_source(self) -> str | None:
        sources = [s for s, n in ((USAGE, self.usage_rows), (COMPUTED, self.computed_rows)) if n]
        return "+".join(sources) or None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "rows": self.rows,
            "ok_rows": self.ok_rows,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": json_money(self.cost),
            "cost_source": self.cost_source,
            "unpriced_rows": self.unpriced_rows,
        }


@dataclass
class ResultCost:
    models: dict[str, ModelActual]

    @property
    def total(self) -> Decimal | None:
        costs = [m.cost for m in self.models.values() if m.cost is not None]
        return sum(costs, Decimal(0)) if costs else None

    @property
    def by_provider(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for m in self.models.values():
            if m.cost is not None:
                out[m.provider] = out.get(m.provider, Decimal(0)) + m.cost
        return out

    @property
    def unpriced_rows(self) -> int:
        return sum(m.unpriced_rows for m in self.models.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "total": json_money(self.total),
            "currency": "USD",
            "models": [m.to_json() for m in self.models.values()],
            "providers": [
                {"provider": name, "cost": json_money(cost)}
                for name, cost in self.by_provider.items()
            ],
            "unpriced_rows": self.unpriced_rows,
        }

    def summary_text(self) -> str:
        """What follows "cost ": `$0.0011`, `$0.0011 (+3 unpriced rows)`, or `unknown`."""
        total = self.total
        if total is None:
            return "unknown"
        text = money(total)
        if self.unpriced_rows:
            text += f" (+{self.unpriced_rows:,} unpriced rows)"
        return text


Prices = PriceBook | Callable[[], PriceBook] | None


def result_cost(
    joined: JoinedResults,
    prices: Prices = None,
    *,
    cache_for: Sequence[Path | None] | None = None,
) -> ResultCost:
    """The rows' costs per model. `prices` (or a function making them, called only if a
    row has tokens but no cost) prices the rows without `usage.cost`. `cache_for`: the
    join's (input, output, error) files; the tallies are kept beside the result files
    and read from there while the files are unchanged."""
    cache = _cache_path(cache_for) if cache_for is not None else None
    signatures = None
    models = None
    if cache is not None and cache_for is not None:
        signatures = source_signatures([Path(p) if p is not None else None for p in cache_for])
        models = _read_tally(cache, signatures)
    if models is None:
        models = tally_rows(joined)
        if cache is not None:
            _write_tally(cache, signatures, models)
    return priced_cost(models, prices)


def tally_rows(joined: JoinedResults) -> dict[str, ModelActual]:
    """One walk over the rows: per model, rows, tokens, the billed cost, and the tokens
    of the answered rows with no cost (priced by priced_cost)."""
    models: dict[str, ModelActual] = {}
    outputs: dict[str, list[int]] = {}
    for i in range(len(joined)):
        model = joined.models[i] or "(no model)"
        actual = models.get(model)
        if actual is None:
            provider = joined.providers[i] or provider_of(model)
            actual = models[model] = ModelActual(model, provider)
            outputs[model] = []
        actual.rows += 1
        ok = joined.outcomes[i] == OK
        tokens_in = joined.tokens_in_col[i] or 0
        tokens_out = joined.tokens_out_col[i] or 0
        if ok:
            actual.ok_rows += 1
            actual.input_tokens += tokens_in
            actual.output_tokens += tokens_out
            outputs[model].append(tokens_out)
        amount = parse_money(joined.costs[i])
        if amount is not None:
            actual.usage_cost += amount
            actual.usage_rows += 1
        elif ok and (tokens_in or tokens_out):
            actual.unbilled_rows += 1
            actual.unbilled_input += tokens_in
            actual.unbilled_output += tokens_out
    for model, seen in outputs.items():
        if seen:
            models[model].output_median = int(statistics.median_low(seen))
    return models


def priced_cost(models: dict[str, ModelActual], prices: Prices = None) -> ResultCost:
    """The tallies priced: each model's unbilled tokens at its batch price (a price is
    linear in tokens, so the sum of the rows' prices is the price of their sum)."""
    book: PriceBook | None = prices if isinstance(prices, PriceBook) else None
    for actual in models.values():
        actual.computed_cost, actual.computed_rows, actual.unpriced_rows = Decimal(0), 0, 0
        if not actual.unbilled_rows:
            continue
        if book is None and callable(prices):
            book = prices()
        price = book.price(actual.model) if book is not None else None
        if price is None:
            actual.unpriced_rows = actual.unbilled_rows
        else:
            actual.computed_cost = price.cost(actual.unbilled_input, actual.unbilled_output)
            actual.computed_rows = actual.unbilled_rows
    return ResultCost(models)


# -- the kept tallies ---------------------------------------------------------------

_PRICING_FIELDS = {"computed_cost", "computed_rows", "unpriced_rows"}
_TALLY_FIELDS = {f.name for f in fields(ModelActual)} - _PRICING_FIELDS  # the walk's


def _cache_path(sources: Sequence[Path | None]) -> Path | None:
    index = index_path_for(*sources[1:3])
    return index.with_name(CACHE_NAME) if index is not None else None


def _read_tally(path: Path, signatures: Any) -> dict[str, ModelActual] | None:
    try:
        doc = msgspec.json.decode(path.read_bytes())
        if doc.get("version") != CACHE_VERSION or doc.get("sources") != signatures:
            return None
        models = {}
        for entry in doc["models"]:
            entry["usage_cost"] = Decimal(entry["usage_cost"])
            models[entry["model"]] = ModelActual(**entry)
        return models
    except FileNotFoundError:
        return None
    except (
        OSError,
        msgspec.DecodeError,
        RecursionError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
        ArithmeticError,
    ):
        return None  # unreadable or of another shape: walked again and replaced


def _write_tally(path: Path, signatures: Any, models: dict[str, ModelActual]) -> None:
    entries = []
    for actual in models.values():
        entry = {name: value for name, value in asdict(actual).items() if name in _TALLY_FIELDS}
        entry["usage_cost"] = str(actual.usage_cost)
        entries.append(entry)
    doc = {"version": CACHE_VERSION, "sources": signatures, "models": entries}
    try:
        with atomic_write(path) as out:
            out.write(msgspec.json.encode(doc))
    except OSError as exc:  # a read-only folder: the next open walks the rows again
        log.info("could not keep the cost tally %s: %s", path, exc)
