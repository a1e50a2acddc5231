"""The headless subcommands (`fr-tui validate|submit|status|...`). No Textual here.

Each `cmd_*` takes the parsed arguments and returns the exit code; errors are raised
(CliError, ApiError, OSError) and turned into one line by cli.main.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from fr_tui.cli_errors import EXIT_INVALID, EXIT_OK, EXIT_ROWS_NOT_OK, EXIT_USAGE, CliError
from fr_tui.cli_support import err as _err
from fr_tui.cli_support import limits_of as _limits
from fr_tui.cli_support import load_profile as _config
from fr_tui.cli_support import print_json as _print_json
from fr_tui.core.config import (
    BASE_URL_ENV,
    SANDBOX_API_KEY,
    Config,
    KeyError_,
    Profile,
    normalise_base_url,
)
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import json_money, plural
from fr_tui.headless_cost import (  # noqa: F401 - cmd_* are looked up by name by cli.main
    _uses_sandbox,
    budget_refusal,
    catalog_json,
    catalog_line,
    cmd_estimate,
    cmd_spend,
    make_estimate,
    parse_max_cost,
    results_cost,
    results_cost_lines,
    validate_with_catalog,
)

if TYPE_CHECKING:  # the client pulls in httpx: only the commands that talk to the API load it
    from fr_tui.core.api import BatchClient
    from fr_tui.core.models import Batch

T = TypeVar("T")


def _input_file(path: Path) -> Path:
    """The batch input file argument, or a one-line error that says what is wrong."""
    if path.is_dir():
        raise CliError(f"{path} is a directory; give a batch file (e.g. {path}/batch.jsonl)")
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    return path


@dataclass
class Session:
    client: BatchClient
    store: HistoryStore
    paths: Paths
    config: Config
    profile: Profile


@asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[Session]:
    """An API client for the chosen profile (starting an embedded sandbox when asked)."""
    config, profile = _config(args)
    paths = get_paths().ensure()
    store = HistoryStore(paths.history_db)
    if store.notice:
        _err(store.notice)
    server = None
    use_sandbox = args.sandbox or (profile.is_sandbox and not args.base_url)
    if use_sandbox:
        from fr_tui.sandbox.server import SandboxServer

        server = SandboxServer(state_dir=paths.sandbox_dir)
        base_url = server.start()
        key: str | None = SANDBOX_API_KEY
        profile_name = "sandbox"
    else:
        base_url = normalise_base_url(
            args.base_url or os.environ.get(BASE_URL_ENV) or profile.base_url
        )
        try:
            key = profile.resolve_key()
        except KeyError_ as exc:
            raise CliError(str(exc)) from None
        if not key:
            raise CliError(
                f"no API key for profile {profile.name!r}: set FASTROUTER_API_KEY, configure a "
                "key in the TUI (fr-tui), or try the sandbox (--sandbox)"
            )
        profile_name = profile.name
    from fr_tui.core.api import BatchClient

    client = BatchClient(base_url, key or "")
    try:
        yield Session(client, store, paths, config, Profile(profile_name, base_url=base_url))
    finally:
        await client.aclose()
        if server is not None:
            server.stop()


def _run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    import asyncio  # here, not at the top: validate and split never need it

    return asyncio.run(coro_fn())


# --------------------------------------------------------------------- validate / split


def cmd_validate(args: argparse.Namespace) -> int:
    from fr_tui.core.validate import format_report

    _, profile = _config(args)
    _input_file(args.file)
    checked = validate_with_catalog(args, profile, args.file, _limits(profile))
    report = checked.report
    if args.json:
        _print_json({**report.to_json(), "catalog": catalog_json(checked.catalog)})
    else:
        text = format_report(report, str(args.file))
        line = catalog_line(checked.catalog, checked.loader)
        if line:
            head, sep, rest = text.partition("\n\n")
            text = head + "\n" + line + sep + rest
        print(text)
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_split(args: argparse.Namespace) -> int:
    from fr_tui.core.split import split_file

    _, profile = _config(args)
    _input_file(args.file)
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


async def _wait(session: Session, batch_id: str, interval: float) -> Any:
    from fr_tui.core.workflow import poll_batch

    last = ""
    tty = sys.stderr.isatty()
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
        import asyncio

        await asyncio.sleep(interval)


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
    from fr_tui.core.costlog import record_estimate
    from fr_tui.core.workflow import submit_file

    config, profile = _config(args)
    _input_file(args.file)
    metadata = _parse_metadata(args.metadata)
    max_cost = parse_max_cost(args.max_cost)
    checked = validate_with_catalog(
        args, profile, args.file, _limits(profile), tally_without_catalog=True
    )
    report = checked.report
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
    # The estimate is kept with the batch (spend, budgets, the estimate's correction),
    # and a budget is checked before anything is uploaded.
    profile_name = "sandbox" if _uses_sandbox(args, profile) else profile.name
    local_store = HistoryStore(get_paths().ensure().history_db)
    estimate = make_estimate(checked, config, profile, local_store)
    refusal = budget_refusal(estimate, config, profile_name, max_cost, local_store)
    if refusal:
        raise CliError(f"{args.file}: {refusal}", EXIT_INVALID)

    async def go() -> int:
        async with _session(args) as session:
            record = await submit_file(
                session.client,
                session.store,
                args.file,
                profile=session.profile.name,
                endpoint=endpoint,
                metadata=metadata,
                name=args.name,
                rows=report.rows,
            )
            record_estimate(session.store, record.id, estimate)
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
                interval = args.poll_interval or (
                    0.2 if args.sandbox or session.profile.name == "sandbox" else 10.0
                )
                batch = await _wait(session, record.id, interval)
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

    return _run(go)


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
        async with _session(args) as session:
            batch, _ = await poll_batch(session.client, session.store, args.batch_id)
        if args.json:
            _print_json(_status_json(batch))
        else:
            print(_status_text(batch))
        return EXIT_INVALID if batch.status in ("failed", "expired") else EXIT_OK

    return _run(go)


def cmd_list(args: argparse.Namespace) -> int:
    paths = get_paths().ensure()
    store = HistoryStore(paths.history_db)
    if store.notice:
        _err(store.notice)
    records = store.batches(args.limit)
    unknown = store.unknown_creates()
    if args.json:
        _print_json(
            {
                "batches": [r.to_dict() for r in records],
                "outcome_unknown": [
                    {
                        "input_file_id": u.input_file_id,
                        "input_path": u.input_path,
                        "message": u.message,
                    }
                    for u in unknown
                ],
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
        print(f"! outcome unknown: create for {u.input_file_id} ({u.input_path}); check the server")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with _session(args) as session:
            batch = await session.client.cancel_batch(args.batch_id)
            session.store.update_from_api(batch)
        if args.json:
            _print_json(_status_json(batch))
        else:
            print(f"{batch.id}: {batch.status}")
        return EXIT_OK

    return _run(go)


# --------------------------------------------------------------------- results / retry


async def _joined(session: Session, batch_id: str) -> tuple[Any, Any, Path | None, Path | None]:
    """(batch, joined results, output path, error path), downloading what is needed."""
    from fr_tui.core.results import join_results
    from fr_tui.core.workflow import fetch_results, poll_batch

    batch, _ = await poll_batch(session.client, session.store, batch_id)
    if not batch.terminal:
        raise CliError(
            f"{batch_id} is still {batch.status}; wait for it (fr-tui status {batch_id})",
            EXIT_INVALID,
        )
    record = session.store.get(batch_id)
    assert record is not None
    dest = session.paths.results_for(batch_id)
    output_path, error_path = await fetch_results(session.client, session.store, record, dest)
    input_path = Path(record.input_path) if record.input_path else None
    if (
        input_path is not None
        and input_path.is_file()
        and record.input_bytes is not None
        and input_path.stat().st_size != record.input_bytes
    ):
        _err(
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
        async with _session(args) as session:
            batch, joined, output_path, error_path = await _joined(session, args.batch_id)
        with joined:
            summary = summary_json(batch.id, batch.status, joined, output_path, error_path)
            cost, estimate = results_cost(args, session.store, batch.id, joined)
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

    return _run(go)


def cmd_retry(args: argparse.Namespace) -> int:
    import asyncio

    from fr_tui.core.costlog import record_estimate
    from fr_tui.core.export import NothingToRetry, build_retry_file
    from fr_tui.core.validate import validate_path
    from fr_tui.core.workflow import submit_file

    async def go() -> int:
        async with _session(args) as session:
            batch, joined, _, _ = await _joined(session, args.batch_id)
            record = session.store.get(batch.id)
            assert record is not None
            out = (
                args.output
                or session.paths.results_for(batch.id) / f"retry-{int(time.time())}.jsonl"
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
            report = validate_path(plan.path)
            if not report.valid:
                raise CliError(f"the retry file {plan.path} does not validate", EXIT_INVALID)
            if args.submit:
                # a retry is a submit like any other: estimated, and held to the budgets
                config = session.config
                profile = config.profiles.get(session.profile.name) or session.profile
                checked = await asyncio.to_thread(
                    validate_with_catalog,
                    args,
                    profile,
                    plan.path,
                    _limits(profile),
                    tally_without_catalog=True,
                )
                estimate = make_estimate(checked, config, profile, session.store)
                refusal = budget_refusal(
                    estimate, config, session.profile.name, None, session.store
                )
                if refusal:
                    raise CliError(f"retry of {batch.id}: {refusal}", EXIT_INVALID)
                child = await submit_file(
                    session.client,
                    session.store,
                    plan.path,
                    profile=session.profile.name,
                    endpoint=record.endpoint or report.endpoint,
                    parent_batch_id=batch.id,
                    name=f"retry of {record.label}",
                    rows=plan.rows,
                )
                record_estimate(session.store, child.id, estimate)
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

    return _run(go)


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
