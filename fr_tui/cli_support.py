"""What every headless command module needs: the config and profile, the validator's
limits, one JSON document on stdout and one-line messages on stderr. Shared by
headless.py and headless_cost.py so neither imports the other."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.cli_errors import CliError
from fr_tui.core.config import SANDBOX_ORIGIN, Config, KeyError_, Profile, load_config
from fr_tui.core.records import NO_ROWS_RAN, BatchRecord

if TYPE_CHECKING:
    from fr_tui.core.validate import Limits, Report


def _plain_money(value: Any) -> Any:
    """``value`` with each Decimal made a plain JSON number (money: never 8.7e-05;
    msgspec would write a Decimal as a string)."""
    if isinstance(value, Decimal):
        import msgspec

        from fr_tui.core.units import plain_number

        return msgspec.Raw(plain_number(value).encode())
    if isinstance(value, dict):
        return {key: _plain_money(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_money(item) for item in value]
    return value


def print_json(value: Any) -> None:
    import msgspec

    # dataclasses and the like made plain first, so a Decimal inside one is money too
    plain = _plain_money(msgspec.to_builtins(value, builtin_types=(Decimal,)))
    text = msgspec.json.format(msgspec.json.encode(plain), indent=2).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(message: str) -> None:
    print(f"fr-tui: {message}", file=sys.stderr)


def readable(path: Path) -> None:
    """A regular file, or one clear line: no such file, a directory, a FIFO..."""
    from fr_tui.core.userfiles import check_regular, describe

    try:
        check_regular(path)
    except OSError as exc:
        raise CliError(describe(exc)) from None


def load_profile(args: argparse.Namespace) -> tuple[Config, Profile]:
    """The config (its warnings said on stderr) and the profile asked for."""
    config = load_config()
    for warning in config.warnings:
        err(warning)
    name = getattr(args, "profile", None)
    if name is None and getattr(args, "sandbox", False):
        name = SANDBOX_ORIGIN  # --sandbox is the sandbox profile (its limits, its budgets)
    try:
        profile = config.profile(name)
    except KeyError_ as exc:
        raise CliError(str(exc)) from None
    return config, profile


def invalid_file(path: Any, report: Report, note: str = "") -> CliError:
    """The one line that refuses an invalid input file, naming its first error."""
    from fr_tui.cli_errors import EXIT_INVALID
    from fr_tui.core.plan import PART_LIMIT_ERRORS
    from fr_tui.core.units import plural

    first = report.errors[0] if report.errors else None
    where = f" (line {first.line}: {first.message.rstrip('.')})" if first else ""
    codes = {problem.code for problem in report.errors}
    if codes and codes <= PART_LIMIT_ERRORS:  # validate would call the file valid
        return CliError(
            f"{path} cannot run as a job: {plural(report.errors_total, 'row')} no part can "
            f"hold{where}.{note} Give the parts more room (--max-enqueued-tokens, "
            "--max-bytes) or shorten those rows.",
            EXIT_INVALID,
        )
    return CliError(
        f"{path} is not a valid batch file: {plural(report.errors_total, 'error')}"
        f"{where}.{note} Run: fr-tui validate {path}",
        EXIT_INVALID,
    )


def limits_of(profile: Profile) -> Limits:
    from fr_tui.core.validate import Limits

    return Limits(max_rows=profile.max_rows, max_bytes=profile.max_bytes)


def counts_text(record: BatchRecord) -> str:
    """What came back once a batch has ended (`✓ 6 ✗ 3 ? 1`: ok, failed, never answered),
    how far it got while it runs (`1,200/50,000`), as the TUI shows them."""
    if record.no_rows_ran:
        return NO_ROWS_RAN
    if not record.has_counts or record.request_total is None:
        return "-"
    ok, failed = record.request_completed or 0, record.request_failed or 0
    if not record.terminal:
        return f"{ok + failed:,}/{record.request_total:,}"
    missing = max(0, record.request_total - ok - failed)
    return f"✓ {ok:,} ✗ {failed:,} ? {missing:,}"
