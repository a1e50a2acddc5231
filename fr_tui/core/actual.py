"""What a finished batch really cost, from its result lines, split by model and provider.

Each row's cost is its `usage.cost` (FastRouter bills every answer with it) where the
line has one, else its tokens times the model's batch price (core/prices.py). The input
row's model names the row (the answer's model may carry a version suffix).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fr_tui.core.catalog import provider_of
from fr_tui.core.prices import PriceBook
from fr_tui.core.results import OK, JoinedResults
from fr_tui.core.units import json_money, money, parse_money

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
    computed_cost: Decimal = Decimal(0)
    computed_rows: int = 0
    unpriced_rows: int = 0  # answered rows with no cost and no price
    _outputs: list[int] = field(default_factory=list, repr=False)

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
        total = self.total
        if total is None:
            return "cost unknown"
        text = money(total)
        if self.unpriced_rows:
            text += f" (+{self.unpriced_rows:,} unpriced rows)"
        return text


def result_cost(
    joined: JoinedResults, prices: PriceBook | Callable[[], PriceBook] | None = None
) -> ResultCost:
    """Sum the rows' costs per model. `prices` (or a function making them, called only
    if a row has tokens but no cost) prices the rows without `usage.cost`."""
    models: dict[str, ModelActual] = {}
    book: PriceBook | None = prices if isinstance(prices, PriceBook) else None
    for i in range(len(joined)):
        model = joined.models[i] or "(no model)"
        actual = models.get(model)
        if actual is None:
            provider = joined.providers[i] or provider_of(model)
            actual = models[model] = ModelActual(model, provider)
        actual.rows += 1
        ok = joined.outcomes[i] == OK
        tokens_in = joined.tokens_in_col[i] or 0
        tokens_out = joined.tokens_out_col[i] or 0
        if ok:
            actual.ok_rows += 1
            actual.input_tokens += tokens_in
            actual.output_tokens += tokens_out
            actual._outputs.append(tokens_out)
        cost = joined.costs[i]
        amount = parse_money(cost)
        if amount is not None:
            actual.usage_cost += amount
            actual.usage_rows += 1
        elif ok and (tokens_in or tokens_out):
            if book is None and callable(prices):
                book = prices()
            price = book.price(model) if book is not None else None
            if price is None:
                actual.unpriced_rows += 1
            else:
                actual.computed_cost += price.cost(tokens_in, tokens_out)
                actual.computed_rows += 1
    for actual in models.values():
        if actual._outputs:
            actual.output_median = int(statistics.median_low(actual._outputs))
            actual._outputs = []
    return ResultCost(models)
