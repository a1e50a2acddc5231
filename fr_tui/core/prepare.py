"""The step before every batch fr-tui creates: check the file, estimate it, hold it to the
budgets. CLI submit and retry, the TUI's submit and retry, and jobs all go through it, so
a batch made any way is checked against its server's model catalog, estimated from that
server's past batches and held to the same budgets.

    basis = CostBasis(origin, profile, catalog, config.prices, store)
    prepared = prepare_submit(path, basis, max_cost=limit)
    prepared.report     validation, with the catalog's model warnings (core/precheck.py)
    prepared.estimate   tokens and a cost range (core/estimate.py)
    prepared.budget     core/budget.BudgetCheck: `ok`, and `message` when it is not
    await submit_file(client, store, path, ..., estimate=prepared.estimate,
                      expect=prepared.signature)

A job's input can be planned in the same read (`plan_into`): its parts are written while
it is checked, and `prepared.plan` holds them when the file is valid.

What to do with an invalid file or one over a budget (refuse, or ask) is the caller's.
`submit_file` keeps the estimate with the intent, and refuses a file that changed after
it was checked (`expect`: workflow.FileChangedError).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from fr_tui.core.budget import BudgetCheck, check_budget
from fr_tui.core.catalog import Catalog
from fr_tui.core.config import Profile, UserPrice
from fr_tui.core.costlog import model_history
from fr_tui.core.estimate import Estimate, build_estimate
from fr_tui.core.plan import Plan, PlanError, PlanLimits, plan_file
from fr_tui.core.precheck import PreSubmitChecks
from fr_tui.core.prices import PriceBook
from fr_tui.core.store import HistoryStore
from fr_tui.core.userfiles import FileSignature
from fr_tui.core.validate import Limits, Problem, Report, validate_path

NO_CATALOG_NOTE = "no model catalog: prices from genai-prices and [prices] only"
# A file that goes out as parts (a job) is checked and estimated whole, over any limit.
UNLIMITED = Limits(max_rows=sys.maxsize, max_bytes=sys.maxsize)


@dataclass(frozen=True)
class CostBasis:
    """Where a batch's cost figures come from: the server it goes to (`origin`, as history
    names it), the profile that sends it (its batch_discount and budgets), that server's
    model catalog (None: no model checks, prices from genai-prices and [prices]), the
    user's [prices], and the history that corrections and the daily budget are read from
    (None: neither)."""

    origin: str
    profile: Profile
    catalog: Catalog | None = None
    user_prices: Mapping[str, UserPrice] = field(default_factory=dict)
    store: HistoryStore | None = None

    def prices(self) -> PriceBook:
        return PriceBook(self.catalog, dict(self.user_prices), self.profile.batch_discount)

    def limits(self) -> Limits:
        return Limits(max_rows=self.profile.max_rows, max_bytes=self.profile.max_bytes)


def estimate_of(checks: PreSubmitChecks, report: Report, basis: CostBasis) -> Estimate:
    """The estimate of a validated file from the tallies its checks kept, corrected by the
    batches this server already ran."""
    store = basis.store
    history = model_history(store, checks.tallies, basis.origin) if store is not None else {}
    estimate = build_estimate(checks.tallies, report.rows, basis.prices(), history)
    estimate.valid = report.valid
    if basis.catalog is None:
        estimate.notes.append(NO_CATALOG_NOTE)
    return estimate


def estimate_file(path: str | Path, basis: CostBasis) -> Estimate:
    """The estimate of a file on its own (a job's part, just before it goes out), held to
    no limits and no budget. Raises OSError when the file cannot be read."""
    checks = PreSubmitChecks(basis.catalog)
    report = validate_path(Path(path), UNLIMITED, observer=checks)
    return estimate_of(checks, report, basis)


def budget_of(estimate: Estimate, basis: CostBasis, max_cost: Decimal | None = None) -> BudgetCheck:
    """`max_cost` (a command's own limit) and the profile's budgets; the daily one counts
    today's spend and the running batches of the profile (from the history)."""
    return check_budget(estimate, basis.profile, max_cost=max_cost, store=basis.store)


@dataclass
class PreparedSubmit:
    path: Path
    signature: FileSignature  # the file as it was checked
    report: Report
    checks: PreSubmitChecks
    estimate: Estimate
    budget: BudgetCheck
    plan: Plan | None = None  # the parts, when asked for (`plan_into`) and the file is valid


def prepare_submit(
    path: str | Path,
    basis: CostBasis,
    *,
    max_cost: Decimal | None = None,
    limits: Limits | None = None,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    cancel: threading.Event | None = None,
    plan_into: tuple[Path, PlanLimits, FileSignature] | None = None,
) -> PreparedSubmit:
    """Validate `path` with the catalog's checks riding along (one pass), estimate it and
    check the budgets. Limits default to the profile's; the callbacks and `cancel` are
    validate_path's (a cancelled report is not `complete`). Raises OSError when the file
    cannot be read.

    `plan_into` (folder, limits, the signature the file was hashed with): plan the file
    into that folder in the same pass, checked whole (core/plan.py). Raises PlanError when
    the file is not that file any more, or changed while it was read."""
    path = Path(path)
    signature = FileSignature.of(path)  # taken first: a change while reading shows later
    checks = PreSubmitChecks(basis.catalog)
    plan = None
    if plan_into is not None:
        folder, plan_limits, expect = plan_into
        try:
            plan = plan_file(path, folder, plan_limits, expect=expect, observer=checks)
            report = plan.report
        except PlanError as exc:
            if exc.report is None or exc.report.valid:
                raise  # not the file that was hashed, or it changed while read
            report = exc.report  # invalid: said like any invalid file
        assert report is not None
    else:
        report = validate_path(
            path,
            limits or basis.limits(),
            on_problem=on_problem,
            on_progress=on_progress,
            cancel=cancel,
            observer=checks,
        )
    estimate = estimate_of(checks, report, basis)
    return PreparedSubmit(
        path, signature, report, checks, estimate, budget_of(estimate, basis, max_cost), plan
    )
