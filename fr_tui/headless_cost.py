"""The cost side of the headless commands: the model catalog for `validate` and
`submit`, `fr-tui estimate`, `fr-tui spend`, the budget check of `submit`, and the cost
lines of `results`. No Textual here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.cli_errors import EXIT_INVALID, EXIT_OK, CliError
from fr_tui.cli_support import load_profile, readable
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.config import SANDBOX_ORIGIN, Config, Profile
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.units import money, parse_money, plural
from fr_tui.headless_session import Session, open_store, target_for

if TYPE_CHECKING:
    from fr_tui.core.actual import ResultCost
    from fr_tui.core.catalog import Catalog, CatalogLoader
    from fr_tui.core.costlog import StoredEstimate
    from fr_tui.core.estimate import Estimate
    from fr_tui.core.plan import PlanLimits
    from fr_tui.core.prepare import PreparedSubmit
    from fr_tui.core.prices import PriceBook
    from fr_tui.core.results import JoinedResults
    from fr_tui.core.store import HistoryStore
    from fr_tui.core.tokens import PromptTokens
    from fr_tui.core.userfiles import FileSignature
    from fr_tui.core.validate import Limits, Report

# How long a command about to exit waits for a background catalog refresh to land.
REFRESH_GRACE = 1.5


def catalog_loader(origin: str, paths: Paths) -> CatalogLoader:
    """The catalog of the server `origin`. The embedded sandbox's comes from its model
    table directly (the same answer its /v1/models gives), without starting it."""
    from fr_tui.core.catalog import CatalogLoader, http_source

    if origin == SANDBOX_ORIGIN:
        from fr_tui.sandbox.catalog import sandbox_catalog_loader

        return sandbox_catalog_loader(paths)
    # The catalog is public: no key is sent (and no password manager asked for one).
    return CatalogLoader(paths, origin, http_source(origin))


def catalog_json(catalog: Catalog | None) -> dict[str, Any] | None:
    """`catalog` in --json documents: which catalog checked the models (null: none)."""
    if catalog is None:
        return None
    return {
        "origin": catalog.origin,
        "models": len(catalog.models),
        "fetched_at": int(catalog.fetched_at),
        "age_hours": round(catalog.age() / 3600, 1),
        "skipped_entries": catalog.skipped,
    }


def catalog_line(catalog: Catalog | None, loader: CatalogLoader) -> str | None:
    if catalog is None:
        if loader.error:
            return f"  model catalog: not available ({loader.error}); models not checked"
        return None
    hours = catalog.age() / 3600
    age = f"{hours:.0f} h old" if hours >= 1 else "fresh"
    return f"  model catalog: {catalog.origin}, {len(catalog.models)} models ({age})"


@dataclass
class Checked:
    """A file validated with the model checks (`validate`)."""

    report: Report
    catalog: Catalog | None
    loader: CatalogLoader


def validate_with_catalog(origin: str, path: Path, limits: Limits) -> Checked:
    """Validate with the model checks when the server's catalog is at hand. Without one,
    no observer runs: validation keeps its speed."""
    from fr_tui.core.precheck import PreSubmitChecks
    from fr_tui.core.validate import validate_path

    loader = catalog_loader(origin, get_paths())
    catalog = loader.load()
    checks = PreSubmitChecks(catalog) if catalog is not None else None
    report = validate_path(path, limits, observer=checks)
    loader.wait(REFRESH_GRACE)
    return Checked(report, catalog, loader)


def prepare(
    path: Path,
    origin: str,
    profile: Profile,
    config: Config,
    store: HistoryStore | None,
    *,
    max_cost: Decimal | None = None,
    limits: Limits | None = None,
    plan_into: tuple[Path, PlanLimits, FileSignature] | None = None,
) -> tuple[PreparedSubmit, CatalogLoader]:
    """core.prepare.prepare_submit for a command: the catalog of the server the file goes
    to (`origin`), the profile that sends it, and what its catalog loader found (for the
    catalog line)."""
    from fr_tui.core.prepare import CostBasis, prepare_submit

    loader = catalog_loader(origin, get_paths())
    basis = CostBasis(origin, profile, loader.load(), config.prices, store)
    prepared = prepare_submit(path, basis, max_cost=max_cost, limits=limits, plan_into=plan_into)
    loader.wait(REFRESH_GRACE)
    return prepared, loader


def _history_store() -> HistoryStore | None:
    """History to learn from, read-only when it cannot be written (None: none at all)."""
    from fr_tui.core.store import HistoryStore, StoreError

    try:
        return HistoryStore(get_paths().ensure().history_db, read_only=None)
    except (StoreError, OSError):
        return None  # an estimate without history is still an estimate


def corrected_prompt_tokens(report: Report, origin: str) -> PromptTokens:
    """The file's prompt tokens corrected by past batches on the server `origin`, as
    `estimate` and the TUI show them (history is only read, and only if there is one)."""
    from fr_tui.core.costlog import model_history
    from fr_tui.core.tokens import PromptTokens

    per_model = {m: s["input_tokens"] for m, s in report.stats.get("per_model", {}).items()}
    store = _history_store() if get_paths().history_db.exists() else None
    history = model_history(store, per_model, origin) if store is not None else {}
    return PromptTokens.of(per_model, {m: h.correction for m, h in history.items()})


def estimate_lines(estimate: Estimate, title: str) -> list[str]:
    from fr_tui.core.estimate import cost_range
    from fr_tui.core.units import human_count

    prompt = estimate.prompt_tokens
    lines = [
        f"{title}: {plural(estimate.rows, 'row')}, about {prompt.tokens:,} input tokens"
        f"{prompt.note}, {estimate.output_text()}",
        f"  cost {estimate.cost_range_text()}"
        + (" (low: expected output, high: every row's maximum)" if estimate.models else ""),
    ]
    if estimate.models:
        width = max(len(m.model) for m in estimate.models)
        lines.append(
            f"  {'model':<{width}}  {'rows':>7}  {'input':>7}  {'output≤':>7}  {'cost':<21}  price"
        )
        for m in estimate.models:
            out = human_count(m.output_tokens_max) if m.output_tokens_max is not None else "?"
            source = m.price.label if m.price else "no price"
            lines.append(
                f"  {m.model:<{width}}  {m.rows:>7,}  {human_count(m.input_tokens):>7}  "
                f"{out:>7}  {cost_range(m.cost_low, m.cost_high):<21}  {source}"
            )
        for m in estimate.models:
            if m.history is not None and m.history.quality_text:
                lines.append(f"  {m.model}: {m.history.quality_text}")
    if estimate.unpriced_models:
        lines.append(
            "  no price for: "
            + ", ".join(estimate.unpriced_models)
            + ' (add them to config.toml: [prices."provider/model"] input = ..., output = ... '
            "in USD per million tokens)"
        )
    for note in estimate.notes:
        lines.append(f"  note: {note}")
    return lines


# --------------------------------------------------------------------- estimate


def cmd_estimate(args: argparse.Namespace) -> int:
    config, profile = load_profile(args)
    readable(args.file)
    target = target_for(args, config, profile)
    prepared, loader = prepare(args.file, target.origin, target.profile, config, _history_store())
    estimate, report, catalog = prepared.estimate, prepared.report, prepared.checks.catalog
    if args.json:
        _print_json({**estimate.to_json(), "catalog": catalog_json(catalog)})
    else:
        print("\n".join(estimate_lines(estimate, str(args.file))))
        about_catalog = catalog_line(catalog, loader)
        if about_catalog:
            print(about_catalog)
        if not report.valid:
            errors = plural(report.errors_total, "error")
            print(f"  the file has {errors}: fr-tui validate {args.file}")
    return EXIT_OK if report.valid else EXIT_INVALID


# --------------------------------------------------------------------- submit's budget


def parse_max_cost(value: str | None) -> Decimal | None:
    if value is None:
        return None
    amount = parse_money(value.strip().lstrip("$"))
    if amount is None:
        raise CliError(f"--max-cost wants an amount in USD, like 5 or 0.25; got {value!r}")
    return amount


def budget_refusal(prepared: PreparedSubmit) -> str | None:
    """Why a submit must not go ahead (a sentence with the numbers), or None."""
    budget = prepared.budget
    return None if budget.ok else budget.message + "; nothing was uploaded"


# --------------------------------------------------------------------- results


def results_cost(
    session: Session,
    batch_id: str,
    joined: JoinedResults,
    sources: tuple[Path | None, Path | None, Path | None],
) -> tuple[ResultCost, StoredEstimate | None]:
    """What the batch's rows cost (kept in history for spend and the estimate
    correction), with its estimate beside it for the summary. Rows without a cost are
    priced for the batch's own server and profile: the session's (open_session follows
    the record). `sources`: the joined (input, output, error) files, whose per-model
    tallies are kept beside them (core/actual.py)."""
    from fr_tui.core.actual import result_cost
    from fr_tui.core.costlog import batch_costs, record_actuals, stored_estimate
    from fr_tui.core.prepare import CostBasis

    origin, store = session.origin, session.store

    def prices() -> PriceBook:
        catalog = catalog_loader(origin, session.paths).cached()
        return CostBasis(origin, session.profile, catalog, session.config.prices).prices()

    cost = result_cost(joined, prices, cache_for=sources)
    record_actuals(store, origin, batch_id, cost)
    key = (origin, batch_id)
    estimate = stored_estimate(batch_costs(store, [key]).get(key, []))
    return cost, estimate


def results_cost_lines(cost: ResultCost, estimate: StoredEstimate | None) -> list[str]:
    from fr_tui.core.estimate import cost_range

    line = f"  cost {cost.summary_text()}"
    if estimate is not None:
        line += f" (estimate {cost_range(estimate.low, estimate.high)})"
    lines = [line]
    priced = [m for m in cost.models.values() if m.cost is not None]
    if len(priced) > 1:
        for m in priced:
            assert m.cost is not None
            lines.append(f"    {m.model}: {money(m.cost)} ({m.ok_rows:,} rows)")
    providers = cost.by_provider
    if len(providers) > 1:
        lines.append(
            "    by provider: "
            + ", ".join(f"{name or '?'} {money(v)}" for name, v in providers.items())
        )
    return lines


# --------------------------------------------------------------------- spend


def batches(count: int) -> str:
    return plural(count, "batch", "batches")


def parse_since(value: str | None) -> dt.date | None:
    if value is None:
        return None
    text = value.strip().lower()
    today = dt.date.fromtimestamp(time.time())
    if text == "today":
        return today
    if text == "week":
        return today - dt.timedelta(days=today.weekday())
    if text.endswith("d") and text[:-1].isdigit():
        return today - dt.timedelta(days=int(text[:-1]))
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--since wants a date (YYYY-MM-DD), 'today', 'week' or a number of days like "
            f"'7d'; got {value!r}"
        ) from None


def cmd_spend(args: argparse.Namespace) -> int:
    from fr_tui.core.spend import batch_spends, spend_report

    load_profile(args)  # reports a broken config or an unknown --profile
    since = parse_since(args.since)
    profile = "sandbox" if args.sandbox else args.profile
    store = open_store(get_paths().ensure(), read_only=None)  # spend only reads history
    report = spend_report(batch_spends(store, since=since, profile=profile), args.by or "model")
    if args.json:
        _print_json(
            {
                **report.to_json(),
                "since": since.isoformat() if since else None,
                "profile": profile,
            }
        )
        return EXIT_OK
    who = f"profile {profile}" if profile else "all profiles but the sandbox"
    when = f"since {since.isoformat()}" if since else "in history"
    print(f"spend {when} ({who}): {money(report.total)} on {batches(report.batches)}")
    width = max((len(g.key) for g in report.groups), default=0)
    for group in report.groups:
        print(
            f"  {group.key:<{width}}  {money(group.cost):>12}  "
            f"{batches(len(group.batches))}, {plural(group.rows, 'row')}"
        )
    if report.in_flight_batches:
        print(
            f"  running: {batches(report.in_flight_batches)}, up to "
            f"{money(report.in_flight_high)} more"
        )
    if report.unpriced_batches:
        print(
            f"  {batches(report.unpriced_batches)} finished with no cost known "
            "(fr-tui results BATCH_ID reads their rows' cost)"
        )
    return EXIT_OK
