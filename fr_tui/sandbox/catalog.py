"""The sandbox's models: what `GET /v1/models` lists and what answers.py bills.

One table, so an estimate made from the catalog can be checked against the bill. Made-up
but realistic list prices in USD per million tokens; batch rows are billed at half of
them (BATCH_DISCOUNT), like FastRouter's "50% savings". The catalog answer is shaped like
FastRouter's (OpenRouter's): per-token prices as strings.

Some rows exist to exercise the client: `openai/gpt-4o-mini` is listed without a price
(a client falls back to genai-prices, which knows it), `sandbox/tiny-context` has a small
context and no published price (only a user's `[prices]` entry prices it), and
`openai/gpt-4-0314` is inactive. The fault models of faults.py are listed too; the
`sandbox/fail-<status>` ones for the statuses answers.py names, and a few
`sandbox/flaky-<percent>` ones (limits.py; the sandbox takes any percent).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from fr_tui.core.catalog import CatalogLoader
from fr_tui.core.config import SANDBOX_ORIGIN
from fr_tui.core.paths import Paths

BATCH_DISCOUNT = Decimal("0.5")
MILLION = Decimal(1_000_000)
CREATED = 1_735_689_600  # 2025-01-01, fixed so answers are deterministic


@dataclass(frozen=True)
class SandboxModel:
    id: str
    context_length: int
    max_completion_tokens: int | None
    input_per_million: Decimal
    output_per_million: Decimal
    active: bool = True
    published_price: bool = True  # does /v1/models show its price
    # The sandbox's usage.prompt_tokens is core/tokens.py's estimate times this: 1 for the
    # OpenAI-style models (so enqueued-token limits test exactly), more for Anthropic's,
    # whose tokenizer counts more tokens for the same text (so an estimate's correction
    # has something to learn).
    tokenizer_ratio: Decimal = Decimal(1)

    @property
    def input_price(self) -> Decimal:
        """USD per token, list price."""
        return self.input_per_million / MILLION

    @property
    def output_price(self) -> Decimal:
        return self.output_per_million / MILLION


def _m(
    model_id: str,
    context: int,
    max_out: int | None,
    price_in: str,
    price_out: str,
    **extra: Any,
) -> SandboxModel:
    return SandboxModel(model_id, context, max_out, Decimal(price_in), Decimal(price_out), **extra)


_ANTHROPIC = Decimal("1.2")
_FLAKY = (5, 10, 20, 25, 30, 50)
_FAULT_STATUSES = (400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503)

MODELS: dict[str, SandboxModel] = {
    m.id: m
    for m in (
        _m("openai/gpt-4.1-nano", 1_047_576, 32_768, "0.10", "0.40"),
        _m("openai/gpt-4.1-mini", 1_047_576, 32_768, "0.40", "1.60"),
        _m("openai/gpt-4o-mini", 128_000, 16_384, "0.15", "0.60", published_price=False),
        _m("openai/text-embedding-3-small", 8_192, None, "0.02", "0"),
        _m("openai/text-embedding-3-large", 8_192, None, "0.13", "0"),
        _m("openai/gpt-4-0314", 8_192, 4_096, "30", "60", active=False),
        _m("anthropic/claude-4.5-sonnet", 200_000, 64_000, "3", "15", tokenizer_ratio=_ANTHROPIC),
        _m("anthropic/claude-3.5-haiku", 200_000, 8_192, "0.80", "4", tokenizer_ratio=_ANTHROPIC),
        _m("sandbox/tiny-context", 512, 128, "1", "2", published_price=False),
        _m("sandbox/drop", 128_000, 4_096, "0.10", "0.40"),
        *(
            _m(f"sandbox/fail-{status}", 128_000, 4_096, "0.10", "0.40")
            for status in _FAULT_STATUSES
        ),
        # limits.py: rows that fail once with a 500, then succeed (any percent works)
        *(_m(f"sandbox/flaky-{share}", 128_000, 4_096, "0.10", "0.40") for share in _FLAKY),
    )
}
# A model the table does not know is billed like the cheapest chat model.
DEFAULT_MODEL = MODELS["openai/gpt-4.1-nano"]


def prompt_tokens_for(model_id: Any, estimate: int) -> int:
    """The sandbox's usage.prompt_tokens for a row the core estimator puts at `estimate`."""
    ratio = model_for(model_id).tokenizer_ratio
    return estimate if ratio == 1 else int((estimate * ratio).to_integral_value(ROUND_CEILING))


def model_for(model_id: Any) -> SandboxModel:
    if isinstance(model_id, str):
        found = MODELS.get(model_id) or MODELS.get(model_id.partition(":")[0])
        if found is not None:
            return found
    return DEFAULT_MODEL


def _per_token_text(amount: Decimal) -> str:
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def sandbox_catalog_loader(paths: Paths) -> CatalogLoader:
    """The embedded sandbox's catalog, read from this table (what its /v1/models gives)
    without starting the server."""
    return CatalogLoader(paths, SANDBOX_ORIGIN, models_answer, local=True)


def models_answer() -> dict[str, Any]:
    """The body of `GET /v1/models`."""
    data = []
    for m in MODELS.values():
        entry: dict[str, Any] = {
            "id": m.id,
            "object": "model",
            "created": CREATED,
            "owned_by": m.id.partition("/")[0],
            "name": m.id,
            "context_length": m.context_length,
            "is_active": m.active,
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "top_provider": {
                "context_length": m.context_length,
                "max_completion_tokens": m.max_completion_tokens,
            },
        }
        if m.published_price:
            entry["pricing"] = {
                "prompt": _per_token_text(m.input_price),
                "completion": _per_token_text(m.output_price),
            }
        data.append(entry)
    return {"object": "list", "data": data}
