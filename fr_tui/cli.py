"""fr-tui's entry point: the TUI, or a headless subcommand.

Headless commands never import Textual (start-up cost); the TUI is imported lazily.
Exit codes: 0 success; 1 the input is invalid, the batch failed, or a submit would repeat
an earlier one; 2 usage or local I/O error; 3 API or network error; 4 the batch finished,
but some rows failed or went missing (`results`, `submit --wait`); 124 `submit --wait`
stopped waiting (--timeout or the batch's expiry) while the batch still runs; 141 stdout
was closed early (a broken pipe: quiet). Errors are one line on stderr; --debug adds the
traceback. --json prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fr_tui import __version__
from fr_tui.cli_errors import EXIT_API, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, CliError
from fr_tui.core.retry_kinds import RETRY_KINDS

COMMANDS = (
    "validate",
    "split",
    "submit",
    "status",
    "list",
    "cancel",
    "results",
    "retry",
    "compare",
    "estimate",
    "spend",
    "run",
    "jobs",
    "job",
    "sandbox",
    "paths",
)
LOCAL_COMMANDS = frozenset({"validate", "split", "paths"})


def _globals(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    # On subcommands the defaults are suppressed so that a global option given before
    # the command (`fr-tui --sandbox submit F`) is not reset by the subparser.
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument(
        "--profile", help="profile from config.toml (default: the active one)", **extra
    )
    parser.add_argument("--base-url", help="API base URL, the part before /v1", **extra)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="use an embedded sandbox server (no key, offline)",
        **extra,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logs", **extra
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fr-tui",
        description="Terminal app for FastRouter's Batch API. Without a command, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"fr-tui {__version__}")
    _globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _globals(common, suppress=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, parents=[common], argument_default=None
        )

    p = add("validate", "check a batch input file")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true")

    p = add("split", "split a file over the limits into valid parts")
    p.add_argument("file", type=Path)
    p.add_argument("--max-rows", type=int)
    p.add_argument("--max-bytes", type=int)
    p.add_argument("-o", "--out-dir", type=Path)
    p.add_argument("--json", action="store_true")

    p = add("submit", "upload a file and create a batch")
    p.add_argument("file", type=Path)
    p.add_argument("--endpoint", help="default: the url of the file's lines")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--name", help="a name for the batch in history")
    p.add_argument(
        "--force",
        action="store_true",
        help="submit despite warnings (never errors), and even if the same content was "
        "submitted before (a second batch, paid twice)",
    )
    p.add_argument(
        "--max-cost",
        metavar="USD",
        help="refuse (before uploading) if the high cost estimate is over this",
    )
    p.add_argument("--wait", action="store_true", help="poll until the batch ends")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --wait: stop waiting after this long (exit 124); without it, waiting "
        "stops once the batch is past its expires_at",
    )
    p.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")

    p = add("status", "show a batch's status")
    p.add_argument("batch_id")
    p.add_argument("--json", action="store_true")

    p = add("list", "batch history")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=None)

    p = add("cancel", "cancel a batch")
    p.add_argument("batch_id")
    p.add_argument("--json", action="store_true")

    p = add("results", "download a batch's results and join them to the input")
    p.add_argument("batch_id")
    p.add_argument("-o", "--output", type=Path, help="write the joined rows here")
    p.add_argument("--format", choices=("jsonl", "csv"), default=None)
    p.add_argument("--json", action="store_true")

    p = add("retry", "new input file from the failed, expired and missing rows")
    p.add_argument("batch_id")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--submit", action="store_true", help="submit it as a new batch")
    p.add_argument(
        "--force", action="store_true", help="submit even if the same rows were retried before"
    )
    p.add_argument("--json", action="store_true")

    p = add("compare", "two runs side by side: batches or jobs joined by custom_id")
    p.add_argument("a", metavar="A", help="a batch or job id (the first run)")
    p.add_argument("b", metavar="B", help="a batch or job id (the run to compare with it)")
    p.add_argument("-o", "--output", type=Path, help="write the joined rows here")
    p.add_argument("--format", choices=("csv", "jsonl"), default=None)
    p.add_argument("--json", action="store_true")

    p = add("estimate", "tokens and a cost range for a file, before anything is uploaded")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true")

    p = add("spend", "what batches cost, from history (works offline)")
    p.add_argument("--since", metavar="DATE", help="YYYY-MM-DD, today, week, or Nd (7d)")
    p.add_argument("--by", choices=("model", "provider", "day"), default="model")
    p.add_argument("--json", action="store_true")

    p = add("run", "run a file of any size as a job: parts, retry rounds, one merged result")
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="a name for the job")
    p.add_argument("--max-rows", type=int, help="rows per part (default: the profile's)")
    p.add_argument("--max-bytes", type=int, help="bytes per part (default: the profile's)")
    p.add_argument(
        "--max-enqueued-tokens",
        metavar="N|MODEL=N,...",
        help="the provider's enqueued-token limit: parts are planned under it (one number, "
        "or per model); default: the profile's max_enqueued_tokens",
    )
    p.add_argument("--max-in-flight", type=int, default=4, help="batches running at once")
    p.add_argument("--rounds", type=int, default=3, help="rounds at most, the first included")
    p.add_argument(
        "--retry-kinds",
        metavar="K,...",
        help=f"failures to retry (default: server_error, rate_limit, batch_expired, missing, "
        f"timeout; 'default' stands for those). Kinds: {', '.join(RETRY_KINDS)}",
    )
    p.add_argument(
        "--max-cost",
        metavar="USD",
        help="refuse (before uploading) if the high cost estimate is over this",
    )
    p.add_argument("--new", action="store_true", help="a new job even if this file ran before")
    p.add_argument("-o", "--output", type=Path, metavar="MERGED", help="also write it here")
    p.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")

    p = add("jobs", "job history (works offline)")
    p.add_argument("--json", action="store_true")

    p = add("job", "a job's status, results, or cancel it")
    actions = p.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    for name, text in (
        ("status", "a job's status"),
        ("results", "a job's merged result (exportable to CSV)"),
        ("cancel", "cancel a job's running batches and the job"),
    ):
        action = actions.add_parser(name, help=text, description=text, parents=[common])
        action.add_argument("job_id")
        if name == "results":
            action.add_argument("-o", "--output", type=Path, help="write the rows here")
            action.add_argument("--format", choices=("jsonl", "csv"), default=None)
        action.add_argument("--json", action="store_true")

    p = add("sandbox", "run the sandbox server alone")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--tick", type=float, default=None, help="seconds per processing step")
    p.add_argument(
        "--max-enqueued-tokens",
        type=int,
        metavar="N",
        help="fail a batch's validation with token_limit_exceeded when its prompt tokens "
        "plus those of the batches in progress would go over N",
    )

    p = add("paths", "print where config, history and results are kept")
    p.add_argument("--json", action="store_true")
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def build_tui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fr-tui",
        description="Open the TUI. Commands: " + ", ".join(COMMANDS) + " (fr-tui COMMAND -h).",
    )
    parser.add_argument("--version", action="version", version=f"fr-tui {__version__}")
    _globals(parser)
    parser.add_argument("path", nargs="?", type=Path, help="a folder to browse or a file to open")
    return parser


def _first_positional(argv: Sequence[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--profile", "--base-url"):
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def _setup_logging(debug: bool) -> None:
    from fr_tui.core.logs import setup_logging

    setup_logging(debug=debug)


def _quiet_logging() -> None:
    """fr-tui's log goes to its file (and stderr with --debug), never to Python's
    last-resort stderr handler: without a file (a local command, an unwritable log dir)
    records are dropped, and a log write that fails (a full disk) is not reported."""
    root = logging.getLogger("fr_tui")
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


def _stdout_closed() -> int:
    """The reader of stdout went away (`fr-tui list | head`): stop quietly. stdout is
    pointed at /dev/null so the interpreter's last flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: Sequence[str] | None = None) -> int:
    _quiet_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = _first_positional(argv)
    if first in COMMANDS or "-h" in argv[:1] or "--help" in argv[:1]:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            # argparse would blame the top level ("fr-tui [-h] ... COMMAND"); the mistake
            # is in the command's arguments, so its own usage is what helps.
            _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    else:
        args = build_tui_parser().parse_args(argv)
        args.command = None
    debug = bool(getattr(args, "debug", False))
    # Local commands skip the log file: it is for API conversations, and validate's
    # start-up time counts against its budget.
    if args.command not in LOCAL_COMMANDS:
        try:
            _setup_logging(debug)
        except OSError:
            pass  # an unwritable log dir must not stop the app
    try:
        if args.command is None:
            return _run_tui(args)
        from fr_tui import headless

        handler = getattr(headless, "cmd_" + args.command)
        result: int = handler(args)
        return result
    except KeyboardInterrupt:
        print("fr-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    except CliError as exc:
        print(f"fr-tui: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:  # one clear line, never a traceback (unless --debug)
        from fr_tui.core.errors import ApiError

        logging.getLogger("fr_tui").exception("command failed")
        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, ApiError):
            print(f"fr-tui: {exc.message}", file=sys.stderr)
            return exc.exit_code
        from fr_tui.core.store import StoreError

        if isinstance(exc, StoreError):
            print(f"fr-tui: {exc}", file=sys.stderr)
            return EXIT_USAGE
        import sqlite3

        if isinstance(exc, sqlite3.Error):
            print(f"fr-tui: the history could not be used: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, OSError):
            from fr_tui.core.userfiles import describe

            print(f"fr-tui: {describe(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"fr-tui: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_API


def _run_tui(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.exists():
        raise CliError(f"no such file or folder: {args.path}")
    if args.path is not None and not args.path.is_dir():
        from fr_tui.core.userfiles import check_regular, describe

        try:
            check_regular(args.path)  # a FIFO or a device would hang or break the preview
        except OSError as exc:
            raise CliError(describe(exc)) from None
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise CliError("the TUI needs a terminal; for scripts use a command (fr-tui -h)")
    from fr_tui.tui.run import run_tui

    return run_tui(
        path=args.path, sandbox=args.sandbox, profile=args.profile, base_url=args.base_url
    )
