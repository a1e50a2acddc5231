"""Tokens and a cost range for a batch file, before anything is uploaded.

Made from the per-model tallies the pre-submit checks keep while the file is validated
(core/precheck.py), so it costs no second pass:

* input tokens: the validator's estimate of each row's prompt, times the model's
  correction factor learnt from past batches (core/costlog.py) when there is one;
* output tokens, high: each row's `max_tokens`, else the model's maximum completion
  tokens, else what its context leaves after the prompt (embeddings: none);
* output tokens, low (expected): the median output tokens per row of the model's past
  answers where there are any, else the same as the high bound;
* cost: tokens times the model's batch price (core/prices.py). A range per model and in
  total; models without a price are listed apart and left out of the totals, which are
  None when no model could be priced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fr_tui.core.catalog import provider_of
from fr_tui.core.precheck import ModelTally
from fr_tui.core.prices import Price, PriceBook
from fr_tui.core.tokens import PromptTokens, corrected_tokens
from fr_tui.core.units import human_count, json_money, money, plural

CURRENCY = "USD"


@dataclass(frozen=True)
class ModelHistory:
    model: str
    median_output: int | None = None  # output tokens per answered row
    output_batches: int = 0
    correction: Decimal | None = None  # actual / estimated prompt tokens
    correction_batches: int = 0
    within_pct: int | None = None  # the worst error of the estimates shown, in percent
    quality_batches: int = 0

    @property
    def quality_text(self) -> str | None:
        if self.within_pct is None:
            return None
        count = self.quality_batches
        last = "your last batch" if count == 1 else f"your last {plural(count, 'batch', 'batches')}"
        return f"estimate within {self.within_pct}% on {last}"


@dataclass
class ModelEstimate:
    model: str
    provider: str
    rows: int
    input_tokens: int  # after the correction
    input_tokens_raw: int
    output_tokens_low: int | None  # None: some rows have no upper bound
    output_tokens_max: int | None
    expected_from: str  # "history" | "max_tokens"
    price: Price | None
    cost_low: Decimal | None
    cost_high: Decimal | None
    history: ModelHistory | None = None

    @property
    def corrected(self) -> bool:
        """Whether past batches corrected the prompt-token estimate."""
        return self.history is not None and bool(self.history.correction)

    def to_json(self) -> dict[str, Any]:
        history = self.history
        return {
            "model": self.model,
            "provider": self.provider,
            "rows": self.rows,
            "input_tokens": self.input_tokens,
            "input_tokens_uncorrected": self.input_tokens_raw,
            "output_tokens_expected": self.output_tokens_low,
            "output_tokens_max": self.output_tokens_max,
            "expected_output_from": self.expected_from,
            "cost_low": json_money(self.cost_low),
            "cost_high": json_money(self.cost_high),
            "price_source": self.price.source if self.price else None,
            "price": self.price.to_json() if self.price else None,
            "correction": None
            if history is None or history.correction is None
            else {
                "factor": history.correction,
                "batches": history.correction_batches,
                "within_pct": history.within_pct,
                "quality_batches": history.quality_batches,
            },
        }


@dataclass
class Estimate:
    rows: int
    models: list[ModelEstimate]
    batch_discount: Decimal
    currency: str = CURRENCY
    valid: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        return sum(m.input_tokens for m in self.models)

    @property
    def prompt_tokens(self) -> PromptTokens:
        """The file's prompt tokens as shown everywhere (corrected, and saying so)."""
        return PromptTokens(self.input_tokens, sum(1 for m in self.models if m.corrected))

    @property
    def output_tokens_max(self) -> int | None:
        values = [m.output_tokens_max for m in self.models]
        return None if None in values else sum(v or 0 for v in values)

    @property
    def unpriced_models(self) -> list[str]:
        return [m.model for m in self.models if m.price is None]

    @property
    def unbounded_models(self) -> list[str]:
        return [m.model for m in self.models if m.price is not None and m.cost_high is None]

    def _total(self, name: str) -> Decimal | None:
        priced = [m for m in self.models if m.price is not None]
        if not priced:
            return None
        values = [getattr(m, name) for m in priced]
        return None if None in values else sum(values, Decimal(0))

    @property
    def cost_low(self) -> Decimal | None:
        return self._total("cost_low")

    @property
    def cost_high(self) -> Decimal | None:
        return self._total("cost_high")

    @property
    def complete(self) -> bool:
        """Every model priced and bounded: the range covers the whole file."""
        return not self.unpriced_models and not self.unbounded_models

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "input_tokens": self.input_tokens,
            "output_tokens_max": self.output_tokens_max,
            "cost_low": json_money(self.cost_low),
            "cost_high": json_money(self.cost_high),
            "currency": self.currency,
            "batch_discount": self.batch_discount,
            "complete": self.complete,
            "valid": self.valid,
            "models": [m.to_json() for m in self.models],
            "unpriced_models": self.unpriced_models,
            "notes": self.notes,
        }

    def cost_range_text(self) -> str:
        """ "$0.0042–$0.0061" (one figure when both ends agree), or "unpriced". Before
        any batch of a model has ended, its low end is its max_tokens bound too: the one
        figure is then a maximum, "≤$0.014" (answers are usually far shorter)."""
        text = cost_range(self.cost_low, self.cost_high)
        bounded = any(m.expected_from == "max_tokens" and m.output_tokens_max for m in self.models)
        one_figure = self.cost_low is not None and money(self.cost_low) == text
        if bounded and one_figure and not text.startswith("<"):
            return f"≤{text}"
        return text

    def cost_text(self) -> str:
        """The cost range with its discount: "$0.0042–$0.0061 (batch -50%)"."""
        cost = self.cost_range_text()
        discount = next((m.price.discount_label for m in self.models if m.price), "")
        return f"{cost} ({discount})" if discount else cost

    def summary_text(self) -> str:
        """One line beside a file's summary (which shows its rows and prompt tokens): the
        cost range and its discount, then the output bound."""
        parts = [self.cost_text()]
        if self.unpriced_models:
            parts.append(plural(len(self.unpriced_models), "model") + " unpriced")
        parts.append(self.output_text(short=True))
        return " · ".join(parts)

    def output_text(self, *, short: bool = False) -> str:
        """ "≤1.2k output tokens" (short) or "at most 1,200 output tokens"; "no output
        tokens" for embeddings; "output unbounded" when a row has no bound."""
        out_max = self.output_tokens_max
        if out_max is None:
            return "output unbounded" if short else "output tokens unbounded"
        if out_max == 0:
            return "no output tokens"
        return (
            f"≤{human_count(out_max)} output tokens"
            if short
            else f"at most {out_max:,} output tokens"
        )


def cost_range(low: Decimal | None, high: Decimal | None) -> str:
    if low is None and high is None:
        return "unpriced"
    if low is None or high is None:
        known = low if low is not None else high
        assert known is not None
        return f"{money(known)}+" if high is None else f"≤{money(known)}"
    low_text, high_text = money(low), money(high)
    return low_text if low_text == high_text else f"{low_text}–{high_text}"


def build_estimate(
    tallies: Mapping[str, ModelTally],
    rows: int,
    prices: PriceBook,
    history: Mapping[str, ModelHistory] | None = None,
) -> Estimate:
    history = history or {}
    models = []
    for tally in tallies.values():
        past = history.get(tally.model)
        raw = tally.prompt_tokens
        corrected = corrected_tokens(raw, past.correction if past is not None else None)
        high = None if tally.unbounded_rows else tally.output_bound
        answered = tally.rows - tally.embedding_rows
        low: int | None
        if past is not None and past.median_output is not None and answered:
            expected = past.median_output * answered
            low = min(expected, high) if high is not None else expected
            expected_from = "history"
        else:
            low, expected_from = high, "max_tokens"
        price = prices.price(tally.model)
        cost_low = cost_high = None
        if price is not None:
            cost_low = price.cost(corrected, low) if low is not None else None
            cost_high = price.cost(corrected, high) if high is not None else None
        models.append(
            ModelEstimate(
                model=tally.model,
                provider=provider_of(tally.model),
                rows=tally.rows,
                input_tokens=corrected,
                input_tokens_raw=raw,
                output_tokens_low=low,
                output_tokens_max=high,
                expected_from=expected_from,
                price=price,
                cost_low=cost_low,
                cost_high=cost_high,
                history=past,
            )
        )
    return Estimate(rows=rows, models=models, batch_discount=prices.batch_discount)
