"""The summary of a comparison: what each side's own rows add up to (outcomes, tokens,
cost, finish reasons, failure kinds), read from the columns of its results (never its
answers), and how the two sides' rows agree.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fr_tui.core.results import JoinedResults
from fr_tui.core.units import json_money

_PICO = Decimal("1e-12")


def _cost_sum(costs: Any) -> Decimal | None:
    """The sum of the rows' costs (None when no row has one), summed straight from a
    stored index's column. fsum is correctly rounded (its error is ~1e-15 of the total),
    so rounding it to 1e-12 USD gives the exact decimal sum of costs that have at most
    12 decimals, as servers send them."""
    values = getattr(costs, "_values", None)
    if isinstance(values, memoryview):
        finite = list(filter(math.isfinite, values))  # NaN: no cost
    else:
        finite = [c for c in costs if c is not None and math.isfinite(c)]
    if not finite:
        return None
    total = Decimal(repr(math.fsum(finite))).quantize(_PICO)
    return Decimal(format(total.normalize(), "f"))  # 0.0006, not 0.000600000000 or 1E+2


@dataclass
class SideStats:
    """One side's own rows (all of them, joined or not)."""

    rows: int
    ok: int
    failed: int
    missing: int
    input_tokens: int
    output_tokens: int
    cost: Decimal | None  # the sum of the rows' own cost (usage.cost); None if none has one
    finish_reasons: dict[str, int]
    failures: list[tuple[str, str, str, int]]  # (key, code, message, rows), biggest first

    @property
    def length_cutoffs(self) -> int:
        return self.finish_reasons.get("length", 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "missing": self.missing,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": json_money(self.cost),
            "length_cutoffs": self.length_cutoffs,
            "finish_reasons": dict(self.finish_reasons),
            "failures": [
                {"key": key, "code": code, "message": message, "count": count}
                for key, code, message, count in self.failures
            ],
        }


def side_stats(joined: JoinedResults) -> SideStats:
    counts = joined.counts
    reasons = Counter(r for r in joined.finish_reasons if r is not None)
    return SideStats(
        rows=counts["total"],
        ok=counts["ok"],
        failed=counts["failed"],
        missing=counts["missing"],
        input_tokens=joined.tokens_in,
        output_tokens=joined.tokens_out,
        cost=_cost_sum(joined.costs),
        finish_reasons=dict(reasons.most_common()),
        failures=joined.error_groups(),
    )


_DELTA_FIELDS = ("ok", "failed", "missing", "input_tokens", "output_tokens", "length_cutoffs")


@dataclass
class CompareSummary:
    both: int
    only_a: int
    only_b: int
    same: int
    different: int
    a_not_ok: int  # in both; A failed or missing, B ok
    b_not_ok: int
    neither_ok: int
    a: SideStats
    b: SideStats

    @property
    def both_ok(self) -> int:
        return self.same + self.different

    @property
    def one_ok(self) -> int:
        return self.a_not_ok + self.b_not_ok

    @property
    def agreement(self) -> float | None:
        """same / rows where both are ok; None when no row is ok on both sides."""
        return self.same / self.both_ok if self.both_ok else None

    def deltas(self) -> dict[str, Any]:
        """B minus A for each figure of the sides."""
        out: dict[str, Any] = {
            name: getattr(self.b, name) - getattr(self.a, name) for name in _DELTA_FIELDS
        }
        out["cost"] = (
            (self.b.cost or Decimal(0)) - (self.a.cost or Decimal(0))
            if self.a.cost is not None or self.b.cost is not None
            else None
        )
        return out

    def failure_kinds(self) -> list[tuple[str, int, int]]:
        """(failure key, rows in A, rows in B), biggest first, for both sides' kinds."""
        a = {key: count for key, _, _, count in self.a.failures}
        b = {key: count for key, _, _, count in self.b.failures}
        keys = sorted(set(a) | set(b), key=lambda k: (-(a.get(k, 0) + b.get(k, 0)), k))
        return [(key, a.get(key, 0), b.get(key, 0)) for key in keys]

    def to_json(self) -> dict[str, Any]:
        deltas = self.deltas()
        deltas["cost"] = json_money(deltas["cost"])
        return {
            "both": self.both,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "same": self.same,
            "different": self.different,
            "agreement": self.agreement,
            "one_ok": self.one_ok,
            "a_not_ok": self.a_not_ok,
            "b_not_ok": self.b_not_ok,
            "neither_ok": self.neither_ok,
            "a_stats": self.a.to_json(),
            "b_stats": self.b.to_json(),
            "delta": deltas,
            "failure_kinds": [{"key": key, "a": a, "b": b} for key, a, b in self.failure_kinds()],
        }


__all__ = ["CompareSummary", "SideStats", "side_stats"]
