"""Exit codes and the error a headless command raises to end with one of them.

Shared by cli.py (the entry point, which turns a CliError into one line on stderr),
headless.py (the commands, which raise it) and the TUI's runner, so that none imports
another's module for them. The README's table lists every code here.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INVALID = 1  # the input is invalid, or the batch failed
EXIT_USAGE = 2  # usage or local I/O error
EXIT_API = 3  # API or network error
EXIT_ROWS_NOT_OK = 4  # the batch finished, but some rows failed or never came back
EXIT_TIMEOUT = 124  # as timeout(1): gave up waiting, the batch itself may still finish
# 128 + the signal, as a shell reports a process the signal ended
EXIT_HANGUP = 129  # SIGHUP, or the TUI's terminal went away (a dropped SSH session)
EXIT_INTERRUPTED = 130  # SIGINT (ctrl+c in a headless command)
EXIT_BROKEN_PIPE = 141  # SIGPIPE: stdout was closed early
EXIT_TERMINATED = 143  # SIGTERM


def exit_for_signal(signum: int) -> int:
    return 128 + signum


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code
