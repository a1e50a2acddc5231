"""The headless subcommands (`fr-tui validate|submit|status|...`). No Textual here.

Each `cmd_*` takes the parsed arguments and returns the exit code; errors are raised
(CliError, ApiError, OSError) and turned into one line by cli.main, which looks the
commands up here: validate, split, status, list, cancel, sandbox and paths live here;
submit in headless_submit.py, results and retry in headless_results.py, estimate and
spend in headless_cost.py.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from fr_tui.cli_errors import EXIT_INVALID, EXIT_OK, CliError
from fr_tui.cli_support import counts_text, err, limits_of, readable
from fr_tui.cli_support import load_profile as config_and_profile
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.config import Config, KeyError_, Profile
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import plural
from fr_tui.headless_compare import cmd_compare  # noqa: F401 - looked up by name by cli.main
from fr_tui.headless_cost import (  # noqa: F401 - cmd_* are looked up by name by cli.main
    catalog_json,
    catalog_line,
    cmd_estimate,
    cmd_spend,
    corrected_prompt_tokens,
    validate_with_catalog,
)
from fr_tui.headless_results import cmd_results, cmd_retry  # noqa: F401 - as cmd_estimate
from fr_tui.headless_session import (
    open_session,
    open_store,
    run,
    say_reconciled,
    target_for,
)
from fr_tui.headless_submit import cmd_submit  # noqa: F401 - looked up by name by cli.main

if TYPE_CHECKING:  # the client pulls in httpx: only the commands that talk to the API load it
    from fr_tui.core.reconcile import ReconcileOutcome

# --------------------------------------------------------------------- jobs


# The jobs commands import the jobs engine (and asyncio): only when one runs, since
# validate's start-up time counts against its budget (bench/bench_validate.py).
def cmd_run(args: argparse.Namespace) -> int:
    from fr_tui.headless_jobs import cmd_run as run_job

    return run_job(args)


def cmd_jobs(args: argparse.Namespace) -> int:
    from fr_tui.headless_jobs import cmd_jobs as jobs

    return jobs(args)


def cmd_job(args: argparse.Namespace) -> int:
    from fr_tui.headless_jobs import cmd_job as job

    return job(args)


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


def _status_text(batch: Any, models: list[tuple[str, int]]) -> str:
    lines = [f"{batch.id}  {batch.status}"]
    if batch.endpoint:
        lines.append(f"  endpoint: {batch.endpoint}")
    if len(models) == 1:
        lines.append(f"  model: {models[0][0]}")
    elif models:  # as the TUI's batch details name them
        lines.append("  models: " + ", ".join(f"{m} ({plural(rows, 'row')})" for m, rows in models))
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
    from fr_tui.core.costlog import batch_models
    from fr_tui.core.workflow import poll_batch

    async def go() -> int:
        async with open_session(args, batch_id=args.batch_id) as session:
            batch, _ = await poll_batch(session.client, session.store, args.batch_id)
            record = session.store.get(session.client.origin, batch.id)
            models = batch_models(session.store, record) if record is not None else []
        if args.json:
            data = _status_json(batch)
            if models:  # beside the server's `model`, which names one
                data["models"] = [{"model": m, "rows": rows} for m, rows in models]
            _print_json(data)
        else:
            print(_status_text(batch, models))
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
        print(f"{r.id:<36} {r.status:<12} {counts_text(r):>22}  {created}  {r.label}")
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


# --------------------------------------------------------------------- sandbox / paths


def cmd_sandbox(args: argparse.Namespace) -> int:
    from fr_tui.sandbox.server import serve_forever

    paths = get_paths().ensure()
    # serve_forever prints the one banner (address, key, state dir).
    serve_forever(
        host=args.host,
        port=args.port,
        state_dir=paths.sandbox_dir,
        tick=args.tick,
        max_enqueued_tokens=args.max_enqueued_tokens,
    )
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
        "jobs": str(paths.jobs_dir),
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
