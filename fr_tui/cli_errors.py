"""Exit codes and the error a headless command raises to end with one of them.

Shared by cli.py (the entry point, which turns a CliError into one line on stderr) and
headless.py (the commands, which raise it), so that neither imports the other's module
for them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INVALID = 1  # the input is invalid, or the batch failed
EXIT_USAGE = 2  # usage or local I/O error
EXIT_API = 3  # API or network error
EXIT_ROWS_NOT_OK = 4  # the batch finished, but some rows failed or never came back
EXIT_TIMEOUT = 124  # as timeout(1): gave up waiting, the batch itself may still finish
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code
