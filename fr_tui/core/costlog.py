"""The cost side of history (table `batch_models` in history.db): each batch's estimate
per model at submit, and what the model really used and cost once its results are read.

From it come the two things that make estimates better with use:

* expected output tokens per row: the median of the user's own answers for the model
  (the row-weighted median of the per-batch medians of its last batches on that server);
* a correction of the input-token estimate per model: actual prompt tokens over
  estimated ones on its last batches, and how close the estimates shown were
  ("estimate within 4% on your last 3 batches").
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fr_tui.core.records import BatchRecord
from fr_tui.core.store import HistoryStore

if TYPE_CHECKING:
    import sqlite3

    from fr_tui.core.actual import ResultCost
    from fr_tui.core.estimate import Estimate, ModelHistory

CORRECTION_BATCHES = 5  # the correction factor learns from this many recent batches
QUALITY_BATCHES = 3  # "within N% on your last 3 batches"
OUTPUT_BATCHES = 10  # expected output tokens come from this many recent batches


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# A batch's estimate per model as batch_models keeps it (est_* columns), and as its
# intent carries it (JSON) until the batch exists.
_ESTIMATE_COLUMNS = (
    "model",
    "provider",
    "rows",
    "est_input_tokens",
    "est_input_tokens_raw",
    "est_output_tokens_low",
    "est_output_tokens_max",
    "est_cost_low",
    "est_cost_high",
    "price_source",
)


def estimate_rows(estimate: Estimate) -> list[dict[str, Any]]:
    """The estimate per model, in plain values (money as Decimal text)."""
    return [
        {
            "model": m.model,
            "provider": m.provider,
            "rows": m.rows,
            "est_input_tokens": m.input_tokens,
            "est_input_tokens_raw": m.input_tokens_raw,
            "est_output_tokens_low": m.output_tokens_low,
            "est_output_tokens_max": m.output_tokens_max,
            "est_cost_low": _text(m.cost_low),
            "est_cost_high": _text(m.cost_high),
            "price_source": m.price.source if m.price else None,
        }
        for m in estimate.models
    ]


def write_estimate(
    conn: sqlite3.Connection, origin: str, batch_id: str, rows: list[dict[str, Any]]
) -> None:
    """Keep a batch's estimate rows (estimate_rows), inside the caller's transaction: the
    intent that made the batch records it in the one that records the batch."""
    columns = ", ".join(_ESTIMATE_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _ESTIMATE_COLUMNS[1:])
    for row in rows:
        conn.execute(
            f"INSERT INTO batch_models (origin, batch_id, {columns}) "
            f"VALUES (?, ?, {', '.join('?' for _ in _ESTIMATE_COLUMNS)}) "
            f"ON CONFLICT(origin, batch_id, model) DO UPDATE SET {updates}",
            [origin, batch_id, *(row.get(c) for c in _ESTIMATE_COLUMNS)],
        )


def record_actuals(store: HistoryStore, origin: str, batch_id: str, cost: ResultCost) -> None:
    """Keep what a batch's rows really used and cost, per model (results were read)."""
    now = time.time()
    with store.transaction() as conn:
        for m in cost.models.values():
            conn.execute(
                "INSERT INTO batch_models (origin, batch_id, model, provider, rows, ok_rows, "
                "actual_input_tokens, actual_output_tokens, actual_output_median, actual_cost, "
                "actual_cost_source, actual_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(origin, batch_id, model) DO UPDATE SET ok_rows = excluded.ok_rows, "
                "actual_input_tokens = excluded.actual_input_tokens, "
                "actual_output_tokens = excluded.actual_output_tokens, "
                "actual_output_median = excluded.actual_output_median, "
                "actual_cost = excluded.actual_cost, "
                "actual_cost_source = excluded.actual_cost_source, "
                # the first reading dates it: looking at results again is not a new batch
                "actual_at = COALESCE(batch_models.actual_at, excluded.actual_at)",
                (
                    origin,
                    batch_id,
                    m.model,
                    m.provider,
                    m.rows,
                    m.ok_rows,
                    m.input_tokens,
                    m.output_tokens,
                    m.output_median,
                    _text(m.cost),
                    m.cost_source,
                    now,
                ),
            )


@dataclass(frozen=True)
class BatchModelCost:
    """One row of `batch_models`."""

    origin: str
    batch_id: str
    model: str
    provider: str | None
    rows: int
    est_cost_low: Decimal | None
    est_cost_high: Decimal | None
    est_input_tokens: int | None
    price_source: str | None
    ok_rows: int | None
    actual_input_tokens: int | None
    actual_output_tokens: int | None
    actual_cost: Decimal | None
    actual_cost_source: str | None

    @property
    def has_estimate(self) -> bool:
        return self.est_input_tokens is not None

    @property
    def has_actual(self) -> bool:
        return self.ok_rows is not None


def _row(r: Any) -> BatchModelCost:
    return BatchModelCost(
        origin=r["origin"],
        batch_id=r["batch_id"],
        model=r["model"],
        provider=r["provider"],
        rows=r["rows"] or 0,
        est_cost_low=_decimal(r["est_cost_low"]),
        est_cost_high=_decimal(r["est_cost_high"]),
        est_input_tokens=r["est_input_tokens"],
        price_source=r["price_source"],
        ok_rows=r["ok_rows"],
        actual_input_tokens=r["actual_input_tokens"],
        actual_output_tokens=r["actual_output_tokens"],
        actual_cost=_decimal(r["actual_cost"]),
        actual_cost_source=r["actual_cost_source"],
    )


BatchKey = tuple[str, str]  # (origin, batch id), as history keys a batch


def batch_costs(
    store: HistoryStore, batches: Iterable[BatchKey]
) -> dict[BatchKey, list[BatchModelCost]]:
    """(origin, batch id) -> its per-model rows (only batches that have any)."""
    keys = list(dict.fromkeys(batches))
    out: dict[BatchKey, list[BatchModelCost]] = {}
    with store.connection() as conn:
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            marks = ",".join("(?,?)" for _ in chunk)
            for r in conn.execute(
                f"SELECT * FROM batch_models WHERE (origin, batch_id) IN (VALUES {marks}) "
                "ORDER BY rowid",
                [part for key in chunk for part in key],
            ):
                row = _row(r)
                out.setdefault((row.origin, row.batch_id), []).append(row)
    return out


def batch_models(store: HistoryStore, record: BatchRecord) -> list[tuple[str, int]]:
    """Every model of the batch with its rows, most rows first: from its per-model rows in
    history (its estimate, or its read results), else the one the server's `model` names."""
    rows = batch_costs(store, [record.key]).get(record.key, [])
    if rows:
        return sorted(((r.model, r.rows) for r in rows), key=lambda m: (-m[1], m[0]))
    model = record.raw.get("model") if isinstance(record.raw, dict) else None
    return [(str(model), record.request_total or 0)] if model else []


def _weighted_median(pairs: list[tuple[int, int]]) -> int | None:
    """Median of values given as (value, weight)."""
    pairs = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in pairs)
    if not total:
        return None
    running = 0
    for value, weight in pairs:
        running += weight
        if running * 2 >= total:
            return value
    return pairs[-1][0]


def model_history(
    store: HistoryStore, models: Iterable[str], origin: str
) -> dict[str, ModelHistory]:
    """What the batches of one server (`origin`) say about each model (models with no
    history there are left out). Learnt per server: the embedded sandbox counts and bills
    its own way (on purpose), and no server's figures speak for another's. Rows whose
    server is not known (origin '', from before costs were kept per server) teach none."""
    from fr_tui.core.estimate import ModelHistory

    out: dict[str, ModelHistory] = {}
    with store.connection() as conn:
        for model in models:
            rows = conn.execute(
                "SELECT rows, ok_rows, est_input_tokens, est_input_tokens_raw, "
                "actual_input_tokens, actual_output_median FROM batch_models "
                "WHERE origin = ? AND model = ? AND ok_rows > 0 AND actual_at IS NOT NULL "
                "ORDER BY actual_at DESC LIMIT ?",
                (origin, model, max(CORRECTION_BATCHES, OUTPUT_BATCHES)),
            ).fetchall()
            if not rows:
                continue
            outputs = [
                (r["actual_output_median"], r["ok_rows"])
                for r in rows[:OUTPUT_BATCHES]
                if r["actual_output_median"] is not None
            ]
            # Estimates cover every row, actuals the answered ones: compare like with like
            # by scaling the estimate to the answered share.
            compared = [
                r
                for r in rows[:CORRECTION_BATCHES]
                if r["est_input_tokens_raw"] and r["rows"] and r["actual_input_tokens"] is not None
            ]
            actual = sum(r["actual_input_tokens"] for r in compared)
            estimated = sum(
                Decimal(r["est_input_tokens_raw"]) * r["ok_rows"] / r["rows"] for r in compared
            )
            errors = [
                abs(
                    Decimal(r["actual_input_tokens"])
                    / (Decimal(r["est_input_tokens"]) * r["ok_rows"] / r["rows"])
                    - 1
                )
                for r in compared[:QUALITY_BATCHES]
                if r["est_input_tokens"]
            ]
            out[model] = ModelHistory(
                model=model,
                median_output=_weighted_median(outputs),
                output_batches=len(outputs),
                correction=(Decimal(actual) / estimated).quantize(Decimal("0.0001"))
                if estimated and actual
                else None,
                correction_batches=len(compared),
                within_pct=math.ceil(max(errors) * 100) if errors else None,
                quality_batches=len(errors),
            )
    return out


@dataclass(frozen=True)
class StoredEstimate:
    """A batch's estimate as kept at submit (priced models only in the costs)."""

    low: Decimal | None
    high: Decimal | None
    input_tokens: int

    def to_json(self) -> dict[str, Any]:
        from fr_tui.core.units import json_money

        return {
            "cost_low": json_money(self.low),
            "cost_high": json_money(self.high),
            "input_tokens": self.input_tokens,
        }


def stored_estimate(rows: Iterable[BatchModelCost]) -> StoredEstimate | None:
    estimated = [r for r in rows if r.has_estimate]
    if not estimated:
        return None
    lows = [r.est_cost_low for r in estimated if r.est_cost_low is not None]
    highs = [r.est_cost_high for r in estimated if r.est_cost_high is not None]
    return StoredEstimate(
        low=sum(lows, Decimal(0)) if lows else None,
        high=sum(highs, Decimal(0)) if highs else None,
        input_tokens=sum(r.est_input_tokens or 0 for r in estimated),
    )
