"""What a model costs per token, and where that figure came from.

Resolution, first found wins (issue 12):

1. the server's catalog (`core/catalog.py`), when it prices the model;
2. the `genai-prices` package's offline price database, for the models it knows (names
   are mapped onto it: a routing suffix like `:online` is dropped, `provider/model` is
   tried under the provider, then as OpenRouter names it, which FastRouter's names
   follow, then FastRouter's `claude-4.5-sonnet` as Anthropic's `claude-sonnet-4-5`);
3. the user's `[prices]` table in config.toml.

`genai_prices` pulls in pydantic, so it is imported only here, and only when a price is
needed that the catalog does not have: never at start-up, never by `validate`.

List prices get the profile's `batch_discount` (0.5: half price, as FastRouter's batch
pricing); a `[prices]` entry marked `batch = true` is already a batch price.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fr_tui.core.catalog import Catalog
from fr_tui.core.config import DEFAULT_BATCH_DISCOUNT, UserPrice

log = logging.getLogger("fr_tui.prices")

CATALOG, GENAI_PRICES, CONFIG = "catalog", "genai-prices", "config"
_SAMPLE_TOKENS = 1000  # priced below any tier threshold (tiers start at 128k-200k tokens)
_CLAUDE_OLD_STYLE = re.compile(r"^claude-(\d+(?:\.\d+)?)-(opus|sonnet|haiku)(.*)$")


@dataclass(frozen=True)
class Price:
    """USD per token for one model: list prices, and what a batch row is charged."""

    model: str
    list_input: Decimal
    list_output: Decimal
    source: str  # CATALOG | GENAI_PRICES | CONFIG
    discount: Decimal  # the share taken off the list price (0: already a batch price)
    matched: str | None = None  # the id genai-prices matched, when it differs

    @property
    def input(self) -> Decimal:
        return self.list_input * (1 - self.discount)

    @property
    def output(self) -> Decimal:
        return self.list_output * (1 - self.discount)

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return self.input * input_tokens + self.output * output_tokens

    @property
    def discount_label(self) -> str:
        """ "batch -50%", or "" when no discount applies."""
        if not self.discount:
            return ""
        return f"batch -{(self.discount * 100).normalize():f}%"

    @property
    def label(self) -> str:
        """Where it came from, for people: "catalog, batch -50%"."""
        source = self.source
        if self.matched and self.matched != self.model:
            source += f" as {self.matched}"
        return ", ".join(p for p in (source, self.discount_label) if p)

    def to_json(self) -> dict[str, Any]:
        million = Decimal(1_000_000)
        return {
            "source": self.source,
            "matched": self.matched,
            "input_per_million": self.list_input * million,
            "output_per_million": self.list_output * million,
            "batch_discount": self.discount,
        }


def _genai_candidates(model: str) -> list[tuple[str, str | None]]:
    """(model_ref, provider_id) pairs to try, best first."""
    base = model.partition(":")[0]
    provider, _, name = base.rpartition("/")
    tries: list[tuple[str, str | None]] = []
    if provider:
        tries.append((name, provider))
        tries.append((base, "openrouter"))
    tries.append((name, None))
    renamed = _CLAUDE_OLD_STYLE.match(name)
    if renamed:
        version, family, rest = renamed.groups()
        new_name = f"claude-{family}-{version.replace('.', '-')}{rest}"
        tries.append((new_name, provider or "anthropic"))
    return tries


def genai_price(model: str) -> tuple[Decimal, Decimal, str] | None:
    """(input, output, matched id) in USD per token from genai-prices, or None."""
    try:
        import genai_prices  # lazy: it imports pydantic
    except ImportError:  # an install without it still works, with one fallback fewer
        return None
    usage = genai_prices.Usage(input_tokens=_SAMPLE_TOKENS, output_tokens=_SAMPLE_TOKENS)
    for ref, provider in _genai_candidates(model):
        try:
            if provider is None:
                calc = genai_prices.calc_price(usage, ref)
            else:
                calc = genai_prices.calc_price(usage, ref, provider_id=provider)
        except LookupError:
            continue
        except Exception as exc:  # its data or its validation: no price, never a crash
            log.info("genai-prices failed on %s: %s", ref, exc)
            continue
        matched = f"{calc.provider.id}/{calc.model.id}"
        return (
            Decimal(calc.input_price) / _SAMPLE_TOKENS,
            Decimal(calc.output_price) / _SAMPLE_TOKENS,
            matched,
        )
    return None


class PriceBook:
    """Resolves and remembers the price of each model (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        user_prices: dict[str, UserPrice] | None = None,
        batch_discount: Decimal = DEFAULT_BATCH_DISCOUNT,
        *,
        use_genai_prices: bool = True,
    ) -> None:
        self.catalog = catalog
        self.user_prices = user_prices or {}
        self.batch_discount = batch_discount
        self.use_genai_prices = use_genai_prices
        self._cache: dict[str, Price | None] = {}

    def price(self, model: str) -> Price | None:
        if model not in self._cache:
            self._cache[model] = self._resolve(model)
        return self._cache[model]

    def _resolve(self, model: str) -> Price | None:
        info = self.catalog.get(model) if self.catalog is not None else None
        if info is not None and info.input_price is not None and info.output_price is not None:
            return Price(model, info.input_price, info.output_price, CATALOG, self.batch_discount)
        if self.use_genai_prices:
            found = genai_price(model)
            if found is not None:
                price_in, price_out, matched = found
                return Price(model, price_in, price_out, GENAI_PRICES, self.batch_discount, matched)
        user = self.user_prices.get(model) or self.user_prices.get(model.partition(":")[0])
        if user is not None:
            discount = Decimal(0) if user.batch else self.batch_discount
            return Price(model, user.input, user.output, CONFIG, discount)
        return None
