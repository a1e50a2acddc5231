"""The cost side of the TUI (issue 12), for worker threads only: the model catalog of
each server, what a batch's cost figures are based on (core/prepare.py's CostBasis: the
active profile's server, or a batch's own server and profile), budgets, actual cost and
spend.

Nothing here runs at start-up: the catalog is read when the first file is validated, and
the TUI never waits on the network for it (with no cached copy, one is fetched in the
background and used from the next validation on). Each function returns None or a plain
text rather than raising: a cost figure must never break a screen.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.core.units import money

if TYPE_CHECKING:
    from fr_tui.core.catalog import Catalog, CatalogLoader
    from fr_tui.core.estimate import Estimate
    from fr_tui.core.prepare import CostBasis
    from fr_tui.core.results import JoinedResults
    from fr_tui.core.store import BatchRecord

log = logging.getLogger("fr_tui.tui.costs")


class CostService:
    """One per app; keeps a catalog loader per server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._loaders: dict[str, CatalogLoader] = {}

    def origin(self) -> str:
        """The active profile's server, as history names it."""
        from fr_tui.core.config import SANDBOX_ORIGIN, origin_for

        app = self.app
        return SANDBOX_ORIGIN if app.is_sandbox else origin_for(app.base_url)

    def loader(self, origin: str) -> CatalogLoader:
        from fr_tui.core.catalog import CatalogLoader, http_source
        from fr_tui.core.config import SANDBOX_ORIGIN

        if origin not in self._loaders:
            if origin == SANDBOX_ORIGIN:
                from fr_tui.sandbox.catalog import sandbox_catalog_loader

                loader = sandbox_catalog_loader(self.app.paths)
            else:
                loader = CatalogLoader(self.app.paths, origin, http_source(origin))
            self._loaders[origin] = loader
        return self._loaders[origin]

    def catalog(self, origin: str) -> Catalog | None:
        """The server's cached catalog, never waiting on the network (the sandbox's is
        local)."""
        from fr_tui.core.config import SANDBOX_ORIGIN

        try:
            return self.loader(origin).load(block=origin == SANDBOX_ORIGIN)
        except Exception as exc:  # a cost figure never breaks a screen
            log.warning("model catalog: %s", exc)
            return None

    def basis(self, record: BatchRecord | None = None) -> CostBasis:
        """What cost figures rest on: the active profile and its server, or (`record`) the
        batch's own server and the profile that talks to it, whichever is active."""
        from fr_tui.core.config import profile_for_origin
        from fr_tui.core.prepare import CostBasis

        app = self.app
        config = getattr(app, "config", None)  # a bare host app (tests, bench) has none
        origin, profile = self.origin(), app.profile
        if record is not None and record.origin:
            origin = record.origin
            if config is not None:
                profile = profile_for_origin(config, origin, record.profile) or profile
        user_prices = config.prices if config is not None else {}
        return CostBasis(origin, profile, self.catalog(origin), user_prices, app.store)

    def budget_problem(self, estimate: Estimate) -> str | None:
        """Why the estimate is over a budget of the active profile, or None."""
        try:
            from fr_tui.core.prepare import budget_of

            check = budget_of(estimate, self.basis())
            return None if check.ok else check.message
        except Exception as exc:
            log.warning("budget check failed: %s", exc)
            return None

    def result_cost_text(
        self,
        record: BatchRecord,
        joined: JoinedResults,
        sources: Sequence[Path | None] | None = None,
    ) -> str | None:
        """ "cost $0.0011 (openai $0.00003, anthropic $0.00107) · estimate $0.0142", and the
        actuals kept in history (spend, the estimate's correction). `sources`: the joined
        (input, output, error) files, whose tallies are kept beside them (reopening does
        not walk the rows again)."""
        try:
            from fr_tui.core.actual import result_cost
            from fr_tui.core.costlog import batch_costs, record_actuals, stored_estimate
            from fr_tui.core.estimate import cost_range

            # rows without a cost: priced for the batch's own server and profile
            cost = result_cost(joined, lambda: self.basis(record).prices(), cache_for=sources)
            store = self.app.store
            record_actuals(store, record.origin, record.id, cost)
            key = (record.origin, record.id)
            estimate = stored_estimate(batch_costs(store, [key]).get(key, []))
        except Exception as exc:
            log.warning("result cost of %s: %s", record.id, exc)
            return None
        text = f"cost {cost.summary_text()}"
        providers = cost.by_provider
        if len(providers) > 1:
            text += " (" + ", ".join(f"{p} {money(v)}" for p, v in providers.items()) + ")"
        if estimate is not None:
            text += f" · estimate {cost_range(estimate.low, estimate.high)}"
        return text

    def learn_from(self, record: BatchRecord, output: Path | None, error: Path | None) -> None:
        """A finished batch's actual cost and tokens, kept in history as soon as its
        results are downloaded (thread): the next estimate of any file learns from them
        (the expected output per row, the token correction) without the Results screen
        having been opened."""
        from fr_tui.core.results import join_results

        if not record.input_path or not Path(record.input_path).is_file():
            return
        try:
            joined = join_results(record.input_path, output, error)
        except (OSError, ValueError) as exc:
            log.warning("results of %s: %s", record.id, exc)
            return
        try:
            self.result_cost_text(record, joined, (Path(record.input_path), output, error))
        finally:
            joined.close()

    def spend_text(self) -> str | None:
        """ "spend today $0.12 · this week $1.40 · 2 running ≤$0.30 (default)": the active
        profile's (short enough for 80 columns)."""
        try:
            from fr_tui.core.spend import batch_spends, spend_report

            now = dt.date.fromtimestamp(time.time())
            week_start = now - dt.timedelta(days=now.weekday())
            profile = self.app.profile.name
            spends = batch_spends(self.app.store, since=week_start, profile=profile)
            week = spend_report(spends)
            today = spend_report([s for s in spends if s.day == now])
        except Exception as exc:
            log.warning("spend: %s", exc)
            return None
        text = f"spend today {money(today.total)} · this week {money(week.total)}"
        if week.in_flight_batches:
            high = money(week.in_flight_high)  # "<$0.000001" is a bound already
            text += f" · {week.in_flight_batches} running {high if high[0] == '<' else '≤' + high}"
        return text + f" ({profile})"


def costs(app: Any) -> CostService:
    """The app's CostService, made on first use."""
    service = getattr(app, "_fr_cost_service", None)
    if service is None:
        service = CostService(app)
        app._fr_cost_service = service
    return service
