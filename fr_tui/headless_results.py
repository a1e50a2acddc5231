"""`fr-tui results` and `fr-tui retry`: a finished batch's result files (downloaded and
checked), joined to its input, its cost, an export, and the file of its rows to retry.
No Textual here."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Literal

from fr_tui.cli_errors import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_ROWS_NOT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
)
from fr_tui.cli_support import err
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.units import json_money
from fr_tui.headless_cost import budget_refusal, prepare, results_cost, results_cost_lines
from fr_tui.headless_session import Session, open_session, run
from fr_tui.headless_submit import _submit


async def _joined(session: Session, batch_id: str) -> tuple[Any, Any, Path | None, Path | None]:
    """(batch, joined results, output path, error path), downloading what is needed."""
    from fr_tui.core.results import join_results
    from fr_tui.core.workflow import fetch_results, poll_batch

    batch, _ = await poll_batch(session.client, session.store, batch_id)
    if not batch.terminal:  # not failed, not a usage error: ask again later (124)
        raise CliError(
            f"{batch_id} is still {batch.status}; wait for it (fr-tui status {batch_id})",
            EXIT_TIMEOUT,
        )
    record = session.store.get(session.origin, batch_id)
    assert record is not None
    dest = record.results_folder(session.paths)
    output_path, error_path = await fetch_results(
        session.client, session.store, record, dest, on_note=err
    )
    input_path = Path(record.input_path) if record.input_path else None
    if (
        input_path is not None
        and input_path.is_file()
        and record.input_bytes is not None
        and input_path.stat().st_size != record.input_bytes
    ):
        err(
            f"warning: {input_path} changed since it was submitted; rows are joined by "
            "custom_id, so edited or new rows may not match their results"
        )
    if input_path is None or not input_path.is_file():
        if not batch.input_file_id:
            raise CliError(f"the input file of {batch_id} is unknown", EXIT_USAGE)
        input_path = dest / "input.jsonl"
        if not input_path.exists():
            await session.client.download_file(batch.input_file_id, input_path)
    import asyncio

    joined = await asyncio.to_thread(join_results, input_path, output_path, error_path)
    return batch, joined, output_path, error_path


def cmd_results(args: argparse.Namespace) -> int:
    from fr_tui.core.export import export_rows, summary_json

    async def go() -> int:
        async with open_session(args, batch_id=args.batch_id) as session:
            batch, joined, output_path, error_path = await _joined(session, args.batch_id)
        with joined:
            summary = summary_json(batch.id, batch.status, joined, output_path, error_path)
            sources = (joined.input_path, output_path, error_path)
            cost, estimate = results_cost(session, batch.id, joined, sources)
            summary["cost"] = json_money(cost.total)
            summary["cost_detail"] = cost.to_json()
            summary["estimate"] = estimate.to_json() if estimate else None
            if args.output:
                fmt: Literal["csv", "jsonl"] = args.format or (
                    "csv" if args.output.suffix == ".csv" else "jsonl"
                )
                summary["export_path"] = str(args.output)
                summary["exported"] = export_rows(joined, args.output, fmt)
        if args.json:
            _print_json(summary)
        else:
            print(
                f"{batch.id} {batch.status}: {summary['total']} rows, {summary['ok']} ok, "
                f"{summary['failed']} failed, {summary['missing']} missing"
            )
            for line in results_cost_lines(cost, estimate):
                print(line)
            for group in summary["error_groups"]:
                print(f"  {group['count']:>6} × {group['code'] or ''} {group['message'] or ''}")
            for label in ("output_path", "error_path", "export_path"):
                if summary.get(label):
                    print(f"  {label.replace('_', ' ')}: {summary[label]}")
        if batch.status == "failed":
            return EXIT_INVALID
        return EXIT_ROWS_NOT_OK if summary["failed"] or summary["missing"] else EXIT_OK

    return run(go)


def cmd_retry(args: argparse.Namespace) -> int:
    import asyncio

    from fr_tui.core.export import NothingToRetry, build_retry_file
    from fr_tui.core.jobs_store import JobStore

    async def go() -> int:
        async with open_session(args, batch_id=args.batch_id) as session:
            batch, joined, _, _ = await _joined(session, args.batch_id)
            record = session.store.get(session.origin, batch.id)
            assert record is not None
            out = (
                args.output
                or record.results_folder(session.paths) / f"retry-{int(time.time())}.jsonl"
            )
            with joined:
                try:
                    plan = build_retry_file(joined, joined.input_path, out)
                except NothingToRetry as exc:
                    if args.json:  # --json always prints one document
                        _print_json({"path": None, "rows": 0, "reasons": {}})
                    else:
                        print(f"{batch.id}: {exc}")
                    return EXIT_OK
            result: dict[str, Any] = {
                "path": str(plan.path),
                "rows": plan.rows,
                "reasons": plan.reasons,
            }
            # a retry is a submit like any other: checked with the parent's server's
            # catalog, estimated, and held to the budgets of the parent's profile
            prepared, _ = await asyncio.to_thread(
                prepare, plan.path, session.origin, session.profile, session.config, session.store
            )
            if not prepared.report.valid:
                raise CliError(f"the retry file {plan.path} does not validate", EXIT_INVALID)
            if args.submit:
                job_id = JobStore(session.store).job_of_batch(batch.id)
                if job_id is not None and not args.force:
                    raise CliError(
                        f"retry of {batch.id}: not submitted: it is a batch of job {job_id}, "
                        "whose later rounds took its failed rows (a retry would pay for them "
                        f"again); see fr-tui job status {job_id}. --force submits it anyway",
                        EXIT_INVALID,
                    )
                refusal = budget_refusal(prepared)
                if refusal:
                    raise CliError(f"retry of {batch.id}: {refusal}", EXIT_INVALID)
                child = await _submit(
                    args,
                    session,
                    plan.path,
                    endpoint=record.endpoint or prepared.report.endpoint,
                    parent_batch_id=batch.id,
                    name=f"retry of {record.label}",
                    rows=plan.rows,
                    estimate=prepared.estimate,
                    expect=prepared.signature,
                )
                result["batch_id"] = child.id
        if args.json:
            _print_json(result)
        else:
            print(f"{plan.rows} rows to retry written to {plan.path}")
            for reason, count in plan.reasons.items():
                print(f"  {count:>6} × {reason}")
            if "batch_id" in result:
                print(f"submitted {result['batch_id']}")
        return EXIT_OK

    return run(go)
