"""`fr-tui submit` (with `--wait`) and the submit every command that creates a batch
goes through. No Textual here."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.cli_errors import EXIT_INVALID, EXIT_OK, EXIT_ROWS_NOT_OK, EXIT_TIMEOUT, CliError
from fr_tui.cli_support import invalid_file, readable
from fr_tui.cli_support import load_profile as config_and_profile
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.config import SANDBOX_ORIGIN
from fr_tui.core.paths import get_paths
from fr_tui.core.records import BatchRecord
from fr_tui.core.units import json_money, plural
from fr_tui.headless_cost import budget_refusal, parse_max_cost, prepare
from fr_tui.headless_session import (
    Session,
    open_session,
    open_store,
    run,
    say_reconciled,
    target_for,
)

if TYPE_CHECKING:  # the client pulls in httpx: only the commands that talk to the API load it
    from fr_tui.core.models import Batch


def _parse_metadata(pairs: list[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--metadata wants KEY=VALUE, got {pair!r}")
        metadata[key.strip()] = value
    return metadata


def _progress_line(batch: Batch) -> str:
    counts = batch.request_counts
    if counts is None:
        return f"{batch.id}: {batch.status}"
    done = counts.completed + counts.failed
    return f"{batch.id}: {batch.status} {done}/{counts.total} ({counts.failed} failed)"


# A batch still running this long after its expires_at has a status fr-tui cannot read
# as finished: stop waiting rather than poll for ever.
EXPIRY_GRACE_SECONDS = 600.0
# Without expires_at: the 24 h completion window, plus that grace.
WINDOW_SECONDS = 24 * 3600.0


class WaitTimeout(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_TIMEOUT)


def _wait_deadline(batch: Batch, timeout: float | None, started: float) -> tuple[float, str]:
    """(wall-clock time to give up at, why) for `submit --wait`."""
    limits: list[tuple[float, str]] = []
    if timeout is not None:
        limits.append((started + timeout, f"--timeout {timeout:g}s passed"))
    expires = batch.timestamps.get("expires_at")
    if expires:
        limits.append((expires + EXPIRY_GRACE_SECONDS, "its expires_at passed"))
    else:
        created = batch.created_at or started
        limits.append((created + WINDOW_SECONDS + EXPIRY_GRACE_SECONDS, "its 24 h window passed"))
    return min(limits)


async def _wait(
    session: Session, batch_id: str, interval: float, timeout: float | None = None
) -> Any:
    from fr_tui.core.workflow import poll_batch

    last = ""
    tty = sys.stderr.isatty()
    started = time.time()
    while True:
        batch, _ = await poll_batch(session.client, session.store, batch_id)
        line = _progress_line(batch)
        if line != last:
            if tty:
                sys.stderr.write("\r\033[K" + line)
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()
            last = line
        if batch.terminal:
            if tty:
                sys.stderr.write("\n")
            return batch
        give_up, why = _wait_deadline(batch, timeout, started)
        if time.time() >= give_up:
            if tty:
                sys.stderr.write("\n")
            raise WaitTimeout(
                f"stopped waiting for {batch_id}: {why} and it is still {batch.status!r}. "
                f"Check it later with: fr-tui status {batch_id}"
            )
        import asyncio

        await asyncio.sleep(max(0.0, min(interval, give_up - time.time())))


def _final_code(batch: Batch) -> int:
    """0 every row ok; 4 completed, but rows failed or went missing; 1 not completed."""
    if batch.status != "completed":
        return EXIT_INVALID
    counts = batch.request_counts
    if counts is not None and (counts.failed or counts.total > counts.completed + counts.failed):
        return EXIT_ROWS_NOT_OK
    return EXIT_OK


def _endpoint(given: str | None, detected: str | None) -> str | None:
    """--endpoint, checked against the rows' url before anything is uploaded: the server
    would fail the whole batch (url_mismatch) after the upload."""
    if not given:
        return detected
    endpoint = "/" + given.strip().strip("/")
    if not endpoint.startswith("/v1/"):
        endpoint = "/v1" + endpoint
    if detected and endpoint != detected:
        raise CliError(
            f"--endpoint {given} does not match the rows' url {detected}; the server would "
            f"fail the batch (url_mismatch). Leave --endpoint out to use {detected}.",
            EXIT_INVALID,
        )
    return endpoint


def cmd_submit(args: argparse.Namespace) -> int:
    config, profile = config_and_profile(args)
    readable(args.file)
    metadata = _parse_metadata(args.metadata)
    max_cost = parse_max_cost(args.max_cost)
    target = target_for(args, config, profile)
    # Checked, estimated and held to the budgets before anything is uploaded.
    store = open_store(get_paths().ensure())
    prepared, _ = prepare(
        args.file, target.origin, target.profile, config, store, max_cost=max_cost
    )
    report, estimate = prepared.report, prepared.estimate
    if not report.valid:
        raise invalid_file(args.file, report)
    if report.warnings_total and not args.force:
        first = report.warnings[0]
        raise CliError(
            f"{args.file} has {plural(report.warnings_total, 'warning')} (line {first.line}: "
            f"{first.message.rstrip('.')}). Check with `fr-tui validate`, or pass --force to "
            "submit anyway.",
            EXIT_INVALID,
        )
    endpoint = _endpoint(args.endpoint, report.endpoint)
    refusal = budget_refusal(prepared)
    if refusal:
        raise CliError(f"{args.file}: {refusal}", EXIT_INVALID)

    async def go() -> int:
        async with open_session(args) as session:
            record = await _submit(
                args,
                session,
                args.file,
                endpoint=endpoint,
                metadata=metadata,
                name=args.name,
                rows=report.rows,
                estimate=estimate,  # kept with the intent: spend, budgets, corrections
                expect=prepared.signature,
            )
            result: dict[str, Any] = {
                "batch_id": record.id,
                "input_file_id": record.input_file_id,
                "status": record.status,
                "estimate": {
                    "cost_low": json_money(estimate.cost_low),
                    "cost_high": json_money(estimate.cost_high),
                    "input_tokens": estimate.input_tokens,
                    "currency": estimate.currency,
                },
            }
            code = EXIT_OK
            if args.wait:
                interval = args.poll_interval or (0.2 if session.origin == SANDBOX_ORIGIN else 10.0)
                try:
                    batch = await _wait(session, record.id, interval, args.timeout)
                except WaitTimeout:
                    if args.json:
                        _print_json({**result, "status": "waiting_timed_out"})
                    raise
                result["status"] = batch.status
                result["request_counts"] = (
                    batch.request_counts.to_dict() if batch.request_counts else None
                )
                code = _final_code(batch)
            if args.json:
                _print_json(result)
            else:
                print(
                    f"submitted {record.id} ({result['status']}), estimated "
                    f"{estimate.cost_range_text()}"
                )
            return code

    return run(go)


async def _submit(
    args: argparse.Namespace, session: Session, path: Path, **options: Any
) -> BatchRecord:
    """workflow.submit_file with the CLI's answers: reconciled submits said on stderr, a
    duplicate refused unless --force, a batch the history could not take printed."""
    from fr_tui.core.store import HistoryWriteError
    from fr_tui.core.workflow import (
        DuplicateSubmitError,
        FileChangedError,
        MetadataError,
        UnrecordedBatchError,
        submit_file,
    )

    try:
        return await submit_file(
            session.client,
            session.store,
            path,
            profile=session.profile.name,
            allow_duplicate=bool(args.force),
            on_reconciled=say_reconciled,
            **options,
        )
    except (MetadataError, FileChangedError) as exc:
        raise CliError(str(exc)) from None
    except HistoryWriteError as exc:
        raise CliError(str(exc)) from None
    except DuplicateSubmitError as exc:
        raise CliError(f"{exc}. Pass --force to submit it anyway.", EXIT_INVALID) from None
    except UnrecordedBatchError as exc:
        # The one place an id could be lost: it goes to stdout (and --json) as well.
        if getattr(args, "json", False):
            _print_json({"batch_id": exc.batch.id, "status": exc.batch.status, "recorded": False})
        else:
            print(exc.batch.id)
        raise CliError(str(exc)) from None
