"""The headless subcommands (`fr-tui validate|submit|status|...`). No Textual here.

Each `cmd_*` takes the parsed arguments and returns the exit code; errors are raised
(CliError, ApiError, OSError) and turned into one line by cli.main.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fr_tui.cli_errors import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_ROWS_NOT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
)
from fr_tui.cli_support import err, limits_of, readable
from fr_tui.cli_support import load_profile as config_and_profile
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.config import (
    SANDBOX_ORIGIN,
    Config,
    KeyError_,
    Profile,
)
from fr_tui.core.paths import get_paths
from fr_tui.core.records import BatchRecord
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import json_money, plural
from fr_tui.headless_cost import (  # noqa: F401 - cmd_* are looked up by name by cli.main
    budget_refusal,
    catalog_json,
    catalog_line,
    cmd_estimate,
    cmd_spend,
    corrected_prompt_tokens,
    parse_max_cost,
    prepare,
    results_cost,
    results_cost_lines,
    validate_with_catalog,
)
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
    from fr_tui.core.reconcile import ReconcileOutcome

# --------------------------------------------------------------------- validate / split


def cmd_validate(args: argparse.Namespace) -> int:
    from fr_tui.core.validate import format_report

    config, profile = config_and_profile(args)
    readable(args.file)
    target = target_for(args, config, profile)
    checked = validate_with_catalog(target.origin, args.file, limits_of(profile))
    report = checked.report
    if args.json:
        _print_json({**report.to_json(), "catalog": catalog_json(checked.catalog)})
    else:
        text = format_report(
            report, str(args.file), prompt=corrected_prompt_tokens(report, checked.loader.origin)
        )
        line = catalog_line(checked.catalog, checked.loader)
        if line:
            head, sep, rest = text.partition("\n\n")
            text = head + "\n" + line + sep + rest
        print(text)
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_split(args: argparse.Namespace) -> int:
    from fr_tui.core.split import split_file

    _, profile = config_and_profile(args)
    readable(args.file)
    try:
        parts = split_file(
            args.file,
            max_rows=args.max_rows or profile.max_rows,
            max_bytes=args.max_bytes or profile.max_bytes,
            out_dir=args.out_dir,
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    if args.json:
        _print_json({"parts": [str(p) for p in parts]})
    else:
        for part in parts:
            print(part)
    return EXIT_OK


# --------------------------------------------------------------------- submit / wait


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
        first = report.errors[0] if report.errors else None
        where = f" (line {first.line}: {first.message.rstrip('.')})" if first else ""
        raise CliError(
            f"{args.file} is not a valid batch file: {plural(report.errors_total, 'error')}"
            f"{where}. Run: fr-tui validate {args.file}",
            EXIT_INVALID,
        )
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


# --------------------------------------------------------------------- status / list / cancel


def _status_json(batch: Any) -> dict[str, Any]:
    data = dict(batch.raw)
    data.update(
        id=batch.id,
        status=batch.status,
        request_counts=batch.request_counts.to_dict() if batch.request_counts else None,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
    )
    data.pop("batch_id", None)
    return data


def _status_text(batch: Any) -> str:
    lines = [f"{batch.id}  {batch.status}"]
    model = batch.raw.get("model") if isinstance(batch.raw, dict) else None
    for label, value in (("endpoint", batch.endpoint), ("model", model)):
        if value:
            lines.append(f"  {label}: {value}")
    if batch.request_counts:
        c = batch.request_counts
        counts = f"  requests: {c.completed:,} ok, {c.failed:,} failed"
        missing = c.total - c.completed - c.failed
        if batch.terminal and missing > 0:
            counts += f", {missing:,} missing"
        lines.append(f"{counts} of {c.total:,}")
    else:
        lines.append("  requests: unknown (the server gives no counts)")
    if batch.metadata:
        pairs = ", ".join(f"{key}={value}" for key, value in batch.metadata.items())
        lines.append(f"  metadata: {pairs}")
    for name, value in batch.timestamps.items():
        if value:
            lines.append(f"  {name}: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(value))}")
    for label, value in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
        if value:
            lines.append(f"  {label} file: {value}")
    for error in batch.errors:
        where = f"line {error.line}: " if error.line else ""
        lines.append(f"  error {error.code or ''}: {where}{error.message}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    from fr_tui.core.workflow import poll_batch

    async def go() -> int:
        async with open_session(args, batch_id=args.batch_id) as session:
            batch, _ = await poll_batch(session.client, session.store, args.batch_id)
        if args.json:
            _print_json(_status_json(batch))
        else:
            print(_status_text(batch))
        return EXIT_INVALID if batch.status in ("failed", "expired") else EXIT_OK

    return run(go)


def cmd_list(args: argparse.Namespace) -> int:
    from fr_tui.core.intents import IntentLog

    config, profile = config_and_profile(args)
    paths = get_paths().ensure()
    store = open_store(paths, read_only=None)  # read-only when it cannot be written
    intents = IntentLog(store)
    reconciled = [] if store.read_only else _reconcile_for_list(args, config, profile, store)
    records = store.batches(args.limit)
    unknown = intents.unknown()
    if args.json:
        _print_json(
            {
                "batches": [r.to_dict() for r in records],
                "outcome_unknown": [u.to_dict() for u in unknown],
                "reconciled": [
                    {
                        "token": o.intent.token,
                        "state": o.state,
                        "batch_id": o.batch.id if o.batch else None,
                        "input_path": o.intent.input_path,
                    }
                    for o in reconciled
                ],
                "read_only": store.read_only,
            }
        )
        return EXIT_OK
    if not records and not unknown:
        print("no batches in history yet (fr-tui submit FILE)")
    for r in records:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at or r.submitted_at))
        counts = (
            f"{(r.request_completed or 0) + (r.request_failed or 0)}/{r.request_total}"
            if r.has_counts
            else "-"
        )
        print(f"{r.id:<36} {r.status:<12} {counts:>11}  {created}  {r.label}")
    for u in unknown:
        where = f"input file {u.input_file_id}, " if u.input_file_id else ""
        print(
            f"! outcome unknown: submit of {u.input_path or u.label} ({where}{u.origin or '?'}): "
            f"{u.message or 'the create answer was lost'}"
        )
    return EXIT_OK


def _reconcile_for_list(
    args: argparse.Namespace, config: Config, profile: Profile, store: HistoryStore
) -> list[ReconcileOutcome]:
    """Settle interrupted submits of this session's server before listing. Only then is
    a client (or the sandbox) started; without a key or a connection `list` still lists."""
    from fr_tui.core.intents import IN_FLIGHT, UNKNOWN, IntentLog

    target = target_for(args, config, profile)
    if not IntentLog(store).in_states(IN_FLIGHT | {UNKNOWN}, target.origin):
        return []
    if not target.sandbox:
        try:
            if not target.profile.resolve_key():
                return []
        except KeyError_:
            return []

    async def go() -> list[ReconcileOutcome]:
        from fr_tui.core.reconcile import reconcile

        async with open_session(args) as session:
            session.client.retry_budget = 10.0  # `list` works offline: fail fast
            return await reconcile(session.client, session.store)

    try:
        outcomes = run(go)
    except (CliError, OSError) as exc:
        err(f"could not check interrupted submits: {exc}")
        return []
    for outcome in outcomes:
        say_reconciled(outcome)
    return outcomes


def cmd_cancel(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_session(args, batch_id=args.batch_id) as session:
            batch = await session.client.cancel_batch(args.batch_id)
            session.store.update_from_api(batch, origin=session.origin)
        if args.json:
            _print_json(_status_json(batch))
        else:
            print(f"{batch.id}: {batch.status}")
        return EXIT_OK

    return run(go)


# --------------------------------------------------------------------- results / retry


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


# --------------------------------------------------------------------- sandbox / paths


def cmd_sandbox(args: argparse.Namespace) -> int:
    from fr_tui.sandbox.server import serve_forever

    paths = get_paths().ensure()
    # serve_forever prints the one banner (address, key, state dir).
    serve_forever(host=args.host, port=args.port, state_dir=paths.sandbox_dir, tick=args.tick)
    return EXIT_OK


def cmd_paths(args: argparse.Namespace) -> int:
    paths = get_paths()
    info = {
        "config_dir": str(paths.config_dir),
        "config_file": str(paths.config_file),
        "history": str(paths.history_db),
        "catalog": str(paths.config_dir / "catalog"),
        "data_dir": str(paths.data_dir),
        "results": str(paths.results_dir),
        "sandbox": str(paths.sandbox_dir),
        "logs": str(paths.log_dir),
    }
    if args.json:
        _print_json(info)
    else:
        width = max(map(len, info))
        for name, value in info.items():
            print(f"{name:<{width}}  {value}")
    return EXIT_OK
