"""Spend from history: what finished batches cost, by model, provider or day; and what
running ones may still cost (their high estimates). Works offline.

A finished batch's cost is, best first: the per-model costs read from its results
(core/actual.py, kept by core/costlog.py); else the cost the batch object reported
(`usage.cost`), split over its models in proportion to their estimated cost when there
is an estimate; else it is counted as unpriced. Days are local days of submission.
Sandbox batches are play money: left out unless the sandbox profile is asked for.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fr_tui.core.catalog import provider_of
from fr_tui.core.config import SANDBOX
from fr_tui.core.costlog import BatchModelCost, batch_costs
from fr_tui.core.store import BatchRecord, HistoryStore
from fr_tui.core.units import json_money, parse_money

BY_CHOICES = ("model", "provider", "day")
UNKNOWN = "(unknown)"


@dataclass
class SpendPart:
    model: str
    provider: str
    cost: Decimal
    rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class BatchSpend:
    origin: str
    batch_id: str
    profile: str | None
    day: dt.date
    status: str
    in_flight: bool
    cost: Decimal | None  # finished: what it cost; in flight: its high estimate
    source: str  # "results" | "usage" | "estimate" | "none"
    parts: list[SpendPart] = field(default_factory=list)


def _provider(model: str) -> str:
    return provider_of(model) or UNKNOWN


def _estimate_split(
    total: Decimal, rows: list[BatchModelCost], fallback_model: str
) -> list[SpendPart]:
    weights = [(r, r.est_cost_high or r.est_cost_low or Decimal(0)) for r in rows]
    weight_sum = sum((w for _, w in weights), Decimal(0))
    if not rows or not weight_sum:
        return [SpendPart(fallback_model, _provider(fallback_model), total)]
    return [
        SpendPart(r.model, r.provider or _provider(r.model), total * w / weight_sum, r.rows)
        for r, w in weights
    ]


def batch_spend(record: BatchRecord, rows: list[BatchModelCost]) -> BatchSpend:
    created = record.created_at or int(record.submitted_at)
    spend = BatchSpend(
        origin=record.origin,
        batch_id=record.id,
        profile=record.profile,
        day=dt.datetime.fromtimestamp(created).date(),
        status=record.status,
        in_flight=not record.terminal,
        cost=None,
        source="none",
    )
    if not record.terminal:
        spend.parts = [
            SpendPart(r.model, r.provider or _provider(r.model), r.est_cost_high, r.rows)
            for r in rows
            if r.est_cost_high is not None
        ]
        if spend.parts:
            spend.cost = sum((p.cost for p in spend.parts), Decimal(0))
            spend.source = "estimate"
        return spend
    actual = [r for r in rows if r.has_actual and r.actual_cost is not None]
    reported = parse_money(record.cost)  # the batch object's usage.cost
    if actual:
        spend.parts = [
            SpendPart(
                r.model,
                r.provider or _provider(r.model),
                r.actual_cost or Decimal(0),
                r.ok_rows or 0,
                r.actual_input_tokens or 0,
                r.actual_output_tokens or 0,
            )
            for r in actual
        ]
        spend.cost = sum((p.cost for p in spend.parts), Decimal(0))
        spend.source = "results"
    elif reported is not None:
        spend.cost = reported
        model = record.raw.get("model")
        spend.parts = _estimate_split(
            reported, rows, model if isinstance(model, str) and model else UNKNOWN
        )
        usage = record.usage or {}
        if len(spend.parts) == 1:
            only = spend.parts[0]
            only.input_tokens = int(usage.get("input_tokens") or 0)
            only.output_tokens = int(usage.get("output_tokens") or 0)
            only.rows = record.request_completed or only.rows
        spend.source = "usage"
    return spend


def batch_spends(
    store: HistoryStore,
    *,
    since: dt.date | None = None,
    profile: str | None = None,
    records: Iterable[BatchRecord] | None = None,
) -> list[BatchSpend]:
    """Every batch since the date (local), of one profile or of all but the sandbox."""
    chosen = []
    for record in store.batches() if records is None else records:
        if profile is not None and record.profile != profile:
            continue
        if profile is None and record.profile == SANDBOX:
            continue
        created = record.created_at or int(record.submitted_at)
        if since is not None and dt.datetime.fromtimestamp(created).date() < since:
            continue
        chosen.append(record)
    costs = batch_costs(store, [(r.origin, r.id) for r in chosen])
    return [batch_spend(r, costs.get((r.origin, r.id), [])) for r in chosen]


@dataclass
class SpendGroup:
    key: str
    cost: Decimal = Decimal(0)
    batches: set[tuple[str, str]] = field(default_factory=set)  # (origin, id)
    rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cost": json_money(self.cost),
            "batches": len(self.batches),
            "rows": self.rows,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass
class SpendReport:
    by: str
    groups: list[SpendGroup]
    total: Decimal
    batches: int
    in_flight_batches: int
    in_flight_high: Decimal
    unpriced_batches: int

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "currency": "USD",
            "total": json_money(self.total),
            "batches": self.batches,
            "unpriced_batches": self.unpriced_batches,
            "in_flight": {
                "batches": self.in_flight_batches,
                "cost_high": json_money(self.in_flight_high),
            },
            "groups": [g.to_json() for g in self.groups],
        }


def spend_report(spends: list[BatchSpend], by: str = "model") -> SpendReport:
    if by not in BY_CHOICES:
        raise ValueError(f"by must be one of {', '.join(BY_CHOICES)}")
    groups: dict[str, SpendGroup] = {}
    total = in_flight_high = Decimal(0)
    finished = in_flight = unpriced = 0
    for spend in spends:
        if spend.in_flight:
            in_flight += 1
            in_flight_high += spend.cost or Decimal(0)
            continue
        if spend.cost is None:
            unpriced += 1
            continue
        finished += 1
        total += spend.cost
        for part in spend.parts:
            key = (
                part.model
                if by == "model"
                else part.provider
                if by == "provider"
                else spend.day.isoformat()
            )
            group = groups.setdefault(key, SpendGroup(key))
            group.cost += part.cost
            group.batches.add((spend.origin, spend.batch_id))
            group.rows += part.rows
            group.input_tokens += part.input_tokens
            group.output_tokens += part.output_tokens
    ordered = sorted(groups.values(), key=lambda g: (g.key if by == "day" else -g.cost, g.key))
    return SpendReport(by, ordered, total, finished, in_flight, in_flight_high, unpriced)


def committed_since(store: HistoryStore, profile: str, since: dt.date) -> Decimal:
    """What a profile has spent since a day plus what its running batches may still cost
    (their high estimates): the figure a daily budget is checked against."""
    total = Decimal(0)
    for spend in batch_spends(store, since=since, profile=profile):
        total += spend.cost or Decimal(0)
    return total


def today() -> dt.date:
    return dt.date.fromtimestamp(time.time())
