"""The job commands: `fr-tui run FILE`, `fr-tui jobs`, `fr-tui job status|results|cancel`.
No Textual here.

`run` is idempotent: a file whose content (sha256) matches an unfinished job of the same
server resumes that job; a finished one prints its summary (`--new` starts another). A
new job is validated, estimated and held to the budget before anything is uploaded. The
process that drives a job holds its lock; a second `run` of it watches (and takes over
if the first one dies). Exit codes as for `submit --wait`: 0 every row ok, 4 finished with
rows failed or missing, 1 failed or cancelled, 3 API errors (and a job blocked on a create
the server cannot account for).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.cli_errors import EXIT_API, EXIT_INVALID, EXIT_OK, EXIT_ROWS_NOT_OK, CliError
from fr_tui.cli_support import counts_text, err, invalid_file, load_profile, print_json
from fr_tui.core.config import SANDBOX_ORIGIN, Config, parse_token_limit, profile_for_origin
from fr_tui.core.jobs_store import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    Job,
    JobSettings,
    JobStore,
    new_job_id,
)
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.retry_kinds import parse_retry_kinds
from fr_tui.core.units import money, plural
from fr_tui.core.userfiles import FileSignature, check_regular, describe
from fr_tui.headless_cost import budget_refusal, parse_max_cost, prepare
from fr_tui.headless_session import (
    NoClient,
    Session,
    Target,
    client_key,
    open_session,
    open_store,
    run,
    target_for,
)

if TYPE_CHECKING:
    from fr_tui.core.jobs import Step
    from fr_tui.core.prepare import CostBasis
    from fr_tui.core.store import HistoryStore

MAX_ROUNDS = 20


# --------------------------------------------------------------------- helpers


def _settings(args: argparse.Namespace, profile: Any) -> JobSettings:
    if args.max_in_flight < 1:
        raise CliError("--max-in-flight must be at least 1")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        raise CliError(f"--rounds must be from 1 to {MAX_ROUNDS}")
    for flag, value in (("--max-rows", args.max_rows), ("--max-bytes", args.max_bytes)):
        if value is not None and value < 1:
            raise CliError(f"{flag} must be at least 1")
    tokens = profile.max_enqueued_tokens
    if args.max_enqueued_tokens:
        tokens = _token_limit(args.max_enqueued_tokens)
    try:
        kinds = parse_retry_kinds(args.retry_kinds) if args.retry_kinds is not None else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return JobSettings(
        max_rows=args.max_rows or profile.max_rows,
        max_bytes=args.max_bytes or profile.max_bytes,
        max_tokens=tokens,
        max_in_flight=args.max_in_flight,
        rounds=args.rounds,
        **({"retry_kinds": kinds} if kinds is not None else {}),
    )


def _say_kept(job: Job, asked: JobSettings) -> None:
    from fr_tui.core.jobs_view import kept_settings

    if kept := kept_settings(job, asked):
        err(f"  {job.id} keeps its own settings ({', '.join(kept)}); --new takes the ones given")


def _token_limit(text: str) -> int | dict[str, int]:
    value: Any = text.strip()
    if "=" in value:
        pairs = {}
        for item in value.split(","):
            model, _, number = item.partition("=")
            pairs[model.strip()] = int(number) if number.strip().isdigit() else -1
        value = pairs
    elif value.isdigit():
        value = int(value)
    limit = parse_token_limit(value)
    if limit is None:
        raise CliError(
            f"--max-enqueued-tokens wants a number or MODEL=N,... (positive); got {text!r}"
        )
    return limit


def _job_target(job: Job) -> Any:
    """open_session's `target_of_job`: the server the job belongs to, with its profile."""

    def pick(config: Config, fallback: Target) -> Target:
        if job.origin == SANDBOX_ORIGIN:
            return Target(config.profile(SANDBOX_ORIGIN), True, "")
        profile = profile_for_origin(config, job.origin, job.profile)
        return Target(profile or fallback.profile, False, job.origin)

    return pick


def _find_job(store: HistoryStore, job_id: str) -> Job:
    job = JobStore(store).get(job_id)
    if job is None:
        raise CliError(f"no job {job_id} in history (fr-tui jobs lists them)")
    return job


def exit_code(job: Job) -> int:
    if job.status == COMPLETED:
        return EXIT_ROWS_NOT_OK if (job.failed or job.missing) else EXIT_OK
    if job.status == BLOCKED:
        return EXIT_API
    return EXIT_INVALID


def summary_lines(store: HistoryStore, job: Job, output: str | None = None) -> list[str]:
    from fr_tui.core.jobs_view import job_json, left_text

    data = job_json(store, job, output)
    lines = [
        f"{job.id} {job.status}: {plural(data['total'] or 0, 'row')}, {data['ok']:,} ok, "
        f"{data['failed']:,} failed, {data['missing']:,} missing · "
        f"{plural(data['parts'], 'part')} · {plural(job.round, 'round')} · "
        f"{plural(len(data['batches']), 'batch', 'batches')}"
        + (f" · {money(data['cost'])}" if data["cost"] is not None else "")
    ]
    if job.reason:
        lines.append(f"  reason: {job.reason}")
    left = left_text(job)
    if left:
        lines.append(f"  left: {left}")
    if data["output_path"]:
        lines.append(f"  merged: {data['output_path']}")
    return lines


def part_lines(store: HistoryStore, job: Job) -> list[str]:
    """Each part of each round: its rows, state, batch and what came back (`job status`
    says where a job stands part by part, as the TUI's job details do)."""
    from fr_tui.core.jobs_view import part_state

    jobs = JobStore(store)
    records = jobs.batch_records(job)
    lines = ["  parts:"]
    for part in jobs.parts(job.id):
        record = records.get(part.batch_id or "")
        batch = f"{part.batch_id} {record.status:<11} {counts_text(record)}" if record else "-"
        note = f"  ({part.note})" if part.note else ""
        lines.append(
            f"    round {part.round} part {part.part:<3} {part.rows:>9,} rows  "
            f"{part_state(job, part, record):<10} {batch}{note}"
        )
    return lines if len(lines) > 1 else []


class ProgressLine:
    """The one progress line on stderr: rewritten in place on a terminal; elsewhere (a
    log file) a new line when the job moves on (status, round, parts, in flight) or every
    NOT_TTY_SECONDS, not for every row counted."""

    NOT_TTY_SECONDS = 30.0

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.last_key = ""
        self.last_at = 0.0

    def show(self, text: str, key: str = "") -> None:
        if text == self.last:
            return
        now = time.monotonic()
        if not self.tty and key == self.last_key and now - self.last_at < self.NOT_TTY_SECONDS:
            return
        self.last, self.last_key, self.last_at = text, key, now
        sys.stderr.write(("\r\033[K" + text) if self.tty else text + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _copy_merged(job: Job, output: Path) -> None:
    from fr_tui.core.export import atomic_write

    assert job.output_path is not None
    with open(job.output_path, "rb") as source, atomic_write(output) as target:
        shutil.copyfileobj(source, target, 1 << 20)


# --------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from fr_tui.core.workflow import signed_sha256

    config, profile = load_profile(args)
    try:
        check_regular(args.file)
    except OSError as exc:
        raise CliError(describe(exc)) from None
    settings = _settings(args, profile)
    max_cost = parse_max_cost(args.max_cost)
    target = target_for(args, config, profile)
    paths = get_paths().ensure()
    store = open_store(paths)
    jobs = JobStore(store)
    sha, signature = signed_sha256(args.file)
    earlier = [] if args.new else jobs.with_content(target.origin, sha)
    unfinished = [j for j in earlier if not j.terminal]
    if unfinished:
        job = unfinished[0]
        err(f"resuming {job.id} ({job.status}, made {_when(job.created_at)}) for {args.file}")
        _say_kept(job, settings)
    elif earlier:
        job = earlier[0]
        if job.status == COMPLETED and not (job.output_path and Path(job.output_path).is_file()):
            err(f"{job.id}: its merged result is gone; merging it again")
            jobs.update(job.id, status="merging")
            job = jobs.get(job.id) or job
        else:
            err(f"{args.file} ran as {job.id} ({job.status}); --new runs it again")
            _say_kept(job, settings)
            return _finish(args, store, job)
    else:
        client_key(target)  # no job is recorded that no client could drive
        job = _new_job(
            args, config, profile, target, paths, store, settings, max_cost, sha, signature
        )

    async def go() -> Job:
        async with open_session(args, target_of_job=_job_target(job)) as session:
            return await _drive(args, session, job.id)

    job = run(go)
    return _finish(args, store, job)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _new_job(
    args: argparse.Namespace,
    config: Config,
    profile: Any,
    target: Target,
    paths: Paths,
    store: HistoryStore,
    settings: JobSettings,
    max_cost: Any,
    sha: str,
    signature: FileSignature,
) -> Job:
    """Validate, estimate and check the budget (nothing is uploaded before), planning the
    parts in the same read (into a staging folder), then make the job in history."""
    from fr_tui.core.jobs_plan import (
        adopt_staging,
        plan_limits,
        staging_dir,
        unused_token_limits,
    )
    from fr_tui.core.jobs_rows import round_dir
    from fr_tui.core.plan import PlanError
    from fr_tui.core.prepare import UNLIMITED

    job_id = new_job_id()
    staging = staging_dir(paths, job_id)
    try:
        prepared, _ = prepare(  # the whole file: its parts fit the limits
            args.file,
            target.origin,
            target.profile,
            config,
            store,
            max_cost=max_cost,
            limits=UNLIMITED,
            plan_into=(round_dir(staging, 1), plan_limits(settings), signature),
        )
        report, estimate = prepared.report, prepared.estimate
        if not report.valid:
            raise invalid_file(args.file, report, " Nothing was uploaded.")
        for model in unused_token_limits(settings, report.stats.get("models") or {}):
            err(f"--max-enqueued-tokens names {model}, which no row of {args.file} uses")
        if report.warnings_total:
            first_warning = report.warnings[0]
            err(
                f"{args.file} has {plural(report.warnings_total, 'warning')} (line "
                f"{first_warning.line}: {first_warning.message.rstrip('.')}); going ahead"
            )
        refusal = budget_refusal(prepared)
        if refusal:
            raise CliError(f"{args.file}: {refusal}", EXIT_INVALID)
        job = Job(
            id=job_id,
            origin=target.origin,
            input_path=str(args.file.resolve()),
            input_sha256=sha,
            settings=settings,
            profile="sandbox" if target.sandbox else profile.name,
            base_url=target.base_url or None,
            name=args.name,
            input_bytes=signature.size,
            input_mtime_ns=signature.mtime_ns,
            input_inode=signature.inode,
            endpoint=report.endpoint,
            estimate_low=estimate.cost_low,
            estimate_high=estimate.cost_high,
        )
        JobStore(store).add(job)
        adopt_staging(staging, paths, job.id)
    except PlanError as exc:  # not the file that was hashed any more
        raise CliError(f"{exc}; run it again", EXIT_INVALID) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # refused (an adopted one is gone)
    err(
        f"made {job.id} for {args.file}: {plural(report.rows, 'row')}, estimated "
        f"{estimate.cost_range_text()}"
    )
    return job


async def _drive(args: argparse.Namespace, session: Session, job_id: str) -> Job:
    """Drive the job to its end (or to a block), or watch the process that drives it and
    take over if it stops."""
    from fr_tui.core.jobs import JobEngine
    from fr_tui.core.jobs_control import JobDriver, driven_elsewhere
    from fr_tui.core.jobs_view import job_progress, progress_line

    interval = args.poll_interval or (0.2 if session.origin == SANDBOX_ORIGIN else 10.0)
    line = ProgressLine()
    jobs = JobStore(session.store)
    said: set[str] = set()

    def show(job: Job) -> None:
        progress = job_progress(session.store, job)
        key = f"{job.status} {job.round} {progress.parts_done} {progress.in_flight}"
        line.show(progress_line(progress), key)

    def on_step(step: Step) -> None:
        show(step.job)
        for note in step.notes:
            if note not in said and "token limit" not in note:
                said.add(note)
                line.end()
                err(note)

    engine = JobEngine(
        session.client, session.store, session.paths, job_id, costs=_cost_basis(session)
    )
    driver = JobDriver(engine, interval=interval)
    watching = False
    try:
        while True:
            if driver.acquire():
                if watching:
                    line.end()
                    err(f"{job_id}: the other process stopped driving it; driving it here")
                try:
                    return await driver.run(on_step)
                finally:
                    driver.release()
            if not watching:
                err(f"{job_id} is driven by another fr-tui process; watching it here")
                watching = True
            job = jobs.get(job_id)
            assert job is not None
            show(job)
            if job.terminal:
                return job
            while driven_elsewhere(session.store, job_id):
                await asyncio.sleep(interval)
                job = jobs.get(job_id)
                assert job is not None
                show(job)
                if job.terminal:
                    return job
    finally:
        line.end()


def _cost_basis(session: Session) -> CostBasis:
    """The parts' estimates and prices: the job's server (its cached catalog: the job was
    estimated with it) and the profile that talks to it."""
    from fr_tui.core.prepare import CostBasis
    from fr_tui.headless_cost import catalog_loader

    catalog = catalog_loader(session.origin, session.paths).cached()
    return CostBasis(session.origin, session.profile, catalog, session.config.prices, session.store)


def _finish(args: argparse.Namespace, store: HistoryStore, job: Job) -> int:
    from fr_tui.core.jobs_view import job_json

    output = None
    if getattr(args, "output", None) and job.status == COMPLETED and job.output_path:
        _copy_merged(job, args.output)
        output = str(args.output)
    if args.json:
        print_json(job_json(store, job, output))
    else:
        for text in summary_lines(store, job, output):
            print(text)
    return exit_code(job)


# --------------------------------------------------------------------- jobs / job


def cmd_jobs(args: argparse.Namespace) -> int:
    from fr_tui.core.jobs_control import driven_elsewhere
    from fr_tui.core.jobs_view import job_json, job_progress, progress_line

    load_profile(args)
    store = open_store(get_paths().ensure(), read_only=None)
    found = JobStore(store).jobs()
    if args.json:
        print_json({"jobs": [job_json(store, j) for j in found]})
        return EXIT_OK
    if not found:
        print("no jobs in history yet (fr-tui run FILE)")
    for job in found:
        driven = " (being driven)" if not job.terminal and driven_elsewhere(store, job.id) else ""
        whose = f"profile {job.profile}" if job.profile else job.origin
        print(f"{progress_line(job_progress(store, job))}  {job.label}{driven} · {whose}")
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    handler = {"status": _job_status, "results": _job_results, "cancel": _job_cancel}
    return handler[args.job_command](args)


def _job_status(args: argparse.Namespace) -> int:
    from fr_tui.core.jobs_control import driven_elsewhere
    from fr_tui.core.jobs_view import (
        job_json,
        job_progress,
        part_details,
        progress_line,
        resume_command,
    )

    config, _ = load_profile(args)
    store = open_store(get_paths().ensure(), read_only=None)
    job = _find_job(store, args.job_id)
    if args.json:
        data = job_json(store, job)
        data["driven"] = driven_elsewhere(store, job.id)
        data["part_details"] = part_details(store, job)
        print_json(data)
    else:
        print(progress_line(job_progress(store, job)))
        for text in summary_lines(store, job)[1:]:
            print(text)
        for text in part_lines(store, job):
            print(text)
        if not job.terminal and not driven_elsewhere(store, job.id):
            again = resume_command(config, job)
            print(f"  nothing drives it now: {again} (or the TUI) goes on")
    return EXIT_INVALID if job.status in ("failed", CANCELLED) else EXIT_OK


def _job_results(args: argparse.Namespace) -> int:
    from fr_tui.core.jobs_results import open_job_results, results_json

    load_profile(args)
    store = open_store(get_paths().ensure())
    job = _find_job(store, args.job_id)
    if job.status == CANCELLED and not (job.output_path and Path(job.output_path).is_file()):

        async def merge_cancelled() -> Job:
            from fr_tui.core.jobs_control import merge_what_ended

            async with open_session(args, target_of_job=_job_target(job)) as session:
                return await merge_what_ended(session.client, session.store, session.paths, job)

        job = run(merge_cancelled)
    if not job.output_path or not Path(job.output_path).is_file():
        raise CliError(
            f"{job.id} is {job.status}: its merged result comes when it ends "
            f"(fr-tui job status {job.id})",
            EXIT_INVALID,
        )
    joined = open_job_results(job)
    with joined:
        summary = results_json(job, joined)
        if args.output:
            fmt = args.format or ("csv" if args.output.suffix == ".csv" else "jsonl")
            summary["export_path"] = str(args.output)
            if fmt == "jsonl":
                _copy_merged(job, args.output)
                summary["exported"] = len(joined)
            else:
                from fr_tui.core.export import export_rows

                summary["exported"] = export_rows(joined, args.output, "csv")
    if args.json:
        print_json(summary)
    else:
        print(
            f"{job.id} {job.status}: {summary['total']:,} rows, {summary['ok']:,} ok, "
            f"{summary['failed']:,} failed, {summary['missing']:,} missing"
        )
        for group in summary["error_groups"]:
            print(f"  {group['count']:>6} × {group['code'] or ''} {group['message'] or ''}")
        for label in ("output_path", "export_path"):
            if summary.get(label):
                print(f"  {label.replace('_', ' ')}: {summary[label]}")
    return exit_code(job) if job.status == COMPLETED else EXIT_INVALID


def _job_cancel(args: argparse.Namespace) -> int:
    from fr_tui.core.jobs_control import ServerNeeded, cancel_job

    config, profile = load_profile(args)
    paths = get_paths().ensure()
    store = open_store(paths)
    job = _find_job(store, args.job_id)
    if job.terminal:
        message = f"{job.id} is {job.status} already; nothing to cancel"
        driven = False
    else:
        target = _job_target(job)(config, target_for(args, config, profile))
        try:
            client_key(target)
            no_client = None
        except NoClient as exc:  # a job with nothing on its server cancels without one
            no_client = exc.reason

        async def go() -> tuple[Job, bool]:
            if no_client is not None:
                return await cancel_job(None, store, paths, job.id)
            async with open_session(args, target_of_job=_job_target(job)) as session:
                return await cancel_job(session.client, session.store, session.paths, job.id)

        try:
            job, driven = run(go)
        except ServerNeeded:
            from fr_tui.core.jobs_view import command_for

            again = command_for(config, job, f"job cancel {job.id}", explicit=True)
            raise CliError(
                f"cannot cancel {job.id}: its batches on {job.origin} need profile "
                f"{target.profile.name!r}, and there is {no_client}. Then: {again}"
            ) from None
        message = (
            f"{job.id}: cancel asked; the process driving it stops it now"
            if driven
            else f"{job.id}: {job.status}"
        )
    if args.json:
        from fr_tui.core.jobs_view import job_json

        print_json({**job_json(store, job), "driven_elsewhere": driven})
    else:
        print(message)
    return EXIT_OK
