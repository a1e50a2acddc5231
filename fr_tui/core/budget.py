"""Budgets: a submit whose high estimate would go over one is refused before anything is
uploaded. Limits: `--max-cost` (submit, and run for jobs), and a profile's
`max_cost_per_batch` and `max_cost_per_day` (today's spend plus the high estimates of its
running batches, core/spend.py). An estimate that cannot bound the cost (a model with no
price, or rows with no bound on their output) is refused too when a limit is set: a
budget is a promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from fr_tui.core.config import Profile
from fr_tui.core.estimate import Estimate
from fr_tui.core.spend import committed_since, today
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import money


@dataclass
class BudgetCheck:
    ok: bool
    high: Decimal | None
    problems: list[str] = field(default_factory=list)
    limited: bool = False  # any limit applied at all

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


def check_budget(
    estimate: Estimate,
    profile: Profile,
    *,
    max_cost: Decimal | None = None,
    store: HistoryStore | None = None,
    max_cost_label: str = "--max-cost",
) -> BudgetCheck:
    per_batch = [
        (limit, label)
        for limit, label in (
            (max_cost, max_cost_label),
            (profile.max_cost_per_batch, f"max_cost_per_batch of profile {profile.name!r}"),
        )
        if limit is not None
    ]
    per_day = profile.max_cost_per_day
    high = estimate.cost_high
    check = BudgetCheck(ok=True, high=high, limited=bool(per_batch) or per_day is not None)
    if not check.limited:
        return check
    if high is None or not estimate.complete:
        check.ok = False
        reasons = []
        if estimate.unpriced_models:
            reasons.append(
                "no price for " + ", ".join(estimate.unpriced_models) + " (add it under "
                "[prices] in config.toml)"
            )
        if estimate.unbounded_models:
            reasons.append(
                "no bound on the output of " + ", ".join(estimate.unbounded_models) + " (set "
                "max_tokens on its rows)"
            )
        check.problems.append("cannot check the budget: " + "; ".join(reasons or ["no estimate"]))
        return check
    for limit, label in per_batch:
        if high > limit:
            check.ok = False
            check.problems.append(
                f"the high estimate {money(high)} is over the budget of {money(limit)} ({label})"
            )
    if per_day is not None and store is not None:
        spent = committed_since(store, profile.name, today())
        if spent + high > per_day:
            check.ok = False
            check.problems.append(
                f"today's spend {money(spent)} plus the high estimate "
                f"{money(high)} is over max_cost_per_day {money(per_day)} of "
                f"profile {profile.name!r}"
            )
    return check
