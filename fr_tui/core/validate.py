"""Streaming validator for FastRouter batch input files (JSONL).

One pass over the file, one ``orjson.loads`` per line, a few cheap dictionary checks per
row, and nothing kept but the ``custom_id -> line`` map, so it runs close to the speed of
parsing and in memory that does not grow with line size. Problems are streamed through a
callback as they are found, and a ``threading.Event`` cancels the scan.

Which file-level oddities are errors and which are warnings (the server's view decides):

* UTF-8 byte order mark -> **error** on line 1. The server's JSON parser sees ``\\ufeff``
  before ``{`` and rejects line 1 (Python's ``json.loads`` and orjson both do).
* Invalid UTF-8 -> **error** at the line: JSON text must be UTF-8, the line cannot be parsed.
* CRLF endings -> **warning**, reported once with a count: ``\\r`` is JSON whitespace, so
  every JSON parser accepts the lines, but mixed endings often mean a file was edited on
  another system, and some line splitters keep the ``\\r``.
* Missing final newline -> **warning**: line readers handle it, but concatenating such a
  file with another one merges two requests into one invalid line.
* Blank or whitespace-only lines -> **warning** at each line: FastRouter's documented
  format says nothing about them and most JSONL readers skip them, but OpenAI-style
  validators count them as invalid requests, so the hint says to remove them. They are
  not counted as rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from fr_tui.core.userfiles import open_regular

# Re-exported: other modules import these names from here.
from fr_tui.core.validate_report import HINTS, MAX_KEPT_PROBLEMS, WARNING_CODES, format_report
from fr_tui.core.validate_rows import (
    CHAT_URL,
    EMBEDDINGS_URL,
    KNOWN_PROVIDERS,
    KNOWN_ROLES,
    SUPPORTED_URLS,
    TOP_LEVEL_KEYS,
    RowChecks,
    _describe,
)

# Lines longer than this are reported and skipped rather than read into memory whole,
# so a corrupt file (one 5 GB "line") cannot exhaust memory. No sane request is this big.
MAX_LINE_BYTES = 64 * 1024 * 1024
_READ_BUFFER = 1024 * 1024
_PROGRESS_EVERY_BYTES = 2 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# What Validator._unparsable returns for a blank line (not a request) and for a request
# line that could not be parsed (a request, already reported).
_BLANK = object()
_UNPARSED = object()
# orjson's parse errors, in words a person who is not a parser writer understands.
_JSON_REASONS = {
    "unexpected end of data": 'the line ends before the JSON is complete (a missing } ] or ")',
    "unexpected content after document": "there is more text after the JSON object "
    "(two requests on one line?)",
    "unexpected character, expected a string key": "keys must be in double quotes",
    "unexpected control character in string": "a string is not closed, or holds a raw tab "
    "or control character",
    "trailing comma is not allowed": "a comma before } or ] is not allowed in JSON",
}


@dataclass(frozen=True)
class Limits:
    max_rows: int = 50_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass
class Problem:
    line: int
    code: str
    message: str
    severity: str  # "error" | "warning"
    column: int | None = None
    other_line: int | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "code": self.code, "message": self.message}
        if self.column is not None:
            out["column"] = self.column
        if self.other_line is not None:
            out["other_line"] = self.other_line
        if self.hint is not None:
            out["hint"] = self.hint
        return out


@dataclass
class Report:
    rows: int
    bytes: int
    endpoint: str | None
    errors: list[Problem]
    warnings: list[Problem]
    errors_total: int
    warnings_total: int
    stats: dict[str, Any] = field(default_factory=dict)
    complete: bool = True

    @property
    def valid(self) -> bool:
        return self.complete and self.errors_total == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "complete": self.complete,
            "rows": self.rows,
            "bytes": self.bytes,
            "endpoint": self.endpoint,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
            "errors_total": self.errors_total,
            "warnings_total": self.warnings_total,
            "stats": self.stats,
        }


class _SlowPath(Exception):
    """Raised inside Validator.feed's fast path to hand a row to the full checks."""


class Validator(RowChecks):
    """Incremental validator: ``feed`` every line in order, then ``finish``."""

    def __init__(
        self,
        limits: Limits | None = None,
        on_problem: Callable[[Problem], None] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.max_rows = self.limits.max_rows
        self.max_bytes = self.limits.max_bytes
        self.on_problem = on_problem
        self.kept: list[Problem] = []
        self.errors_total = 0
        self.warnings_total = 0
        self.rows = 0
        self.bytes = 0
        self.lines = 0
        self.blank_lines = 0
        self.endpoint: str | None = None
        self.endpoint_line = 0
        self.seen_ids: dict[str, int] = {}
        self.providers: dict[str, int] = {}
        self.models: dict[str, int] = {}
        self.model_prefix: dict[str, str] = {}
        # model -> its provider prefix, only for models seen with a known matching
        # provider: a row using one of them skips the provider checks in the fast path.
        self.good_model_prefix: dict[str, str] = {}
        # rows counted by the fast path: model -> count (their provider is the prefix)
        self.fast_models: dict[str, int] = {}
        self.text_chars = 0
        self.max_tokens_sum = 0
        self.crlf_lines = 0
        self.first_crlf_line = 0
        self.first_row_over_limit = 0
        self.line_over_bytes = 0
        self.last_byte = b"\n"

    # -- problems ---------------------------------------------------------------------

    def _flag(
        self,
        line: int,
        code: str,
        message: str,
        column: int | None = None,
        other_line: int | None = None,
        keep: bool = False,
    ) -> None:
        """Record a problem; ``keep`` bypasses the cap (file-level summaries)."""
        severity = "warning" if code in WARNING_CODES else "error"
        if severity == "error":
            self.errors_total += 1
        else:
            self.warnings_total += 1
        if keep or len(self.kept) < MAX_KEPT_PROBLEMS:
            hint = HINTS.get(code)
            if hint is not None:
                hint = hint.format(max_rows=self.max_rows, max_bytes=self.max_bytes)
            problem = Problem(line, code, message, severity, column, other_line, hint)
            self.kept.append(problem)
            if self.on_problem is not None:
                self.on_problem(problem)

    # -- lines (the full checks of a row are RowChecks._check_row, validate_rows.py) ----

    def feed(self, line_no: int, raw: bytes) -> None:
        """Check one line; ``raw`` includes its line ending, if it has one."""
        self.lines = line_no
        self.bytes += len(raw)
        if self.bytes > self.max_bytes and not self.line_over_bytes:
            self.line_over_bytes = line_no
        self.last_byte = raw[-1:]
        if raw.endswith(b"\r\n"):
            self._crlf(line_no)
        self._line(line_no, raw)

    def _crlf(self, line_no: int) -> None:
        self.crlf_lines += 1
        if not self.first_crlf_line:
            self.first_crlf_line = line_no

    def _line(self, line_no: int, raw: bytes) -> None:
        """Parse and check one line (the per-line bookkeeping is the caller's)."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            obj = self._unparsable(line_no, raw, exc)
            if obj is _BLANK:
                return
        self.rows += 1
        if self.rows > self.max_rows and not self.first_row_over_limit:
            self.first_row_over_limit = line_no
        if obj is _UNPARSED:
            return
        if type(obj) is not dict:
            self._flag(
                line_no,
                "not_an_object",
                f"Each line must be one JSON object, but this line is {_describe(obj)}.",
            )
            return

        # Fast path: recognise an entirely ordinary row with as few operations as possible
        # (this is what keeps validation near the speed of parsing on small lines). It only
        # records; any deviation at all falls through to _check_row, which explains it.
        try:
            body = obj["body"]
            model = body["model"]
            provider = obj["provider"]
            if (
                len(obj) == 5
                and obj["method"] == "POST"
                and self.endpoint is not None
                and obj["url"] == self.endpoint
                and self.good_model_prefix.get(model) == provider
                and "stream" not in body
            ):
                max_tokens = body.get("max_tokens")
                if max_tokens is not None:
                    if type(max_tokens) is not int or max_tokens <= 0:
                        raise _SlowPath
                elif "max_completion_tokens" in body:
                    raise _SlowPath
                if self.endpoint is CHAT_URL:
                    messages = body["messages"]
                    if type(messages) is not list or not messages:
                        raise _SlowPath
                    chars = 0
                    for message in messages:
                        content = message["content"]
                        if type(content) is not str or message["role"] not in KNOWN_ROLES:
                            raise _SlowPath
                        chars += len(content)
                else:
                    text = body["input"]
                    if type(text) is not str or not text:
                        raise _SlowPath
                    chars = len(text)
                custom_id = obj["custom_id"]
                if (
                    type(custom_id) is str
                    and custom_id
                    and self.seen_ids.setdefault(custom_id, line_no) == line_no
                ):
                    if max_tokens is not None:
                        self.max_tokens_sum += max_tokens
                    self.text_chars += chars
                    self.fast_models[model] = self.fast_models.get(model, 0) + 1
                    return
        except (_SlowPath, KeyError, TypeError):
            pass
        self._check_row(line_no, obj)

    def feed_too_long(self, line_no: int, size: int, ended: bool) -> None:
        """Account for a line longer than MAX_LINE_BYTES that was skipped unread."""
        self.lines = line_no
        self.bytes += size
        self.rows += 1
        self.last_byte = b"\n" if ended else b"x"
        if self.bytes > self.limits.max_bytes and not self.line_over_bytes:
            self.line_over_bytes = line_no
        if self.rows > self.limits.max_rows and not self.first_row_over_limit:
            self.first_row_over_limit = line_no
        self._flag(
            line_no,
            "line_too_long",
            f"This line is {size:,} bytes long; fr-tui does not read lines over "
            f"{MAX_LINE_BYTES // (1024 * 1024)} MiB, and no single request should be this big.",
        )

    def _unparsable(self, line_no: int, raw: bytes, exc: orjson.JSONDecodeError) -> Any:
        """Report why a line did not parse; return the object if it parses after a BOM."""
        if not raw.strip():
            self.blank_lines += 1
            self._flag(
                line_no,
                "blank_line",
                "This line is blank; it is not a request.",
            )
            return _BLANK
        if line_no == 1 and raw.startswith(_BOM):
            self._flag(
                1,
                "bom",
                "The file starts with a UTF-8 byte order mark (BOM), which the server "
                "cannot parse as JSON.",
                column=1,
            )
            raw = raw[len(_BOM) :]
            if not raw.strip():
                return _BLANK
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as inner:
                exc = inner
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            self._flag(
                line_no,
                "invalid_utf8",
                f"This line is not valid UTF-8 (bad byte 0x{raw[bad.start]:02x} at byte "
                f"{bad.start + 1}).",
                column=bad.start + 1,
            )
            return _UNPARSED
        reason = exc.msg
        if "depth" in reason or "recursion" in reason:
            reason = "it is nested too deeply (over 1024 levels)"
        else:
            reason = _JSON_REASONS.get(reason, reason)
        # orjson's position is a character offset into the line; past the end means "at
        # the end of the line", which is where a person should look.
        column = min(exc.pos, len(text.rstrip("\r\n"))) + 1
        self._flag(
            line_no,
            "invalid_json",
            f"This line is not valid JSON: {reason}.",
            column=column,
        )
        return _UNPARSED

    # -- end of file ------------------------------------------------------------------

    def finish(self, *, complete: bool = True) -> Report:
        """File-level checks, then the report. ``complete=False`` marks a cancelled scan."""
        if complete:
            self._file_problems()
        kept = sorted(self.kept, key=lambda p: p.line)
        models = dict(self.models)
        providers = dict(self.providers)
        for model, count in self.fast_models.items():
            models[model] = models.get(model, 0) + count
            prefix = self.good_model_prefix[model]
            providers[prefix] = providers.get(prefix, 0) + count
        return Report(
            rows=self.rows,
            bytes=self.bytes,
            endpoint=self.endpoint,
            errors=[p for p in kept if p.severity == "error"],
            warnings=[p for p in kept if p.severity == "warning"],
            errors_total=self.errors_total,
            warnings_total=self.warnings_total,
            stats={
                "rows": self.rows,
                "bytes": self.bytes,
                "lines": self.lines,
                "blank_lines": self.blank_lines,
                "endpoint": self.endpoint,
                "providers": providers,
                "models": models,
                "est_input_tokens": self.text_chars // 4,
                "est_input_tokens_method": "chars/4 of message text",
                "max_tokens_sum": self.max_tokens_sum,
            },
            complete=complete,
        )

    def _file_problems(self) -> None:
        # File-level findings are few and each sums up many lines: always kept.
        if self.rows == 0:
            message = "The file has no requests." if self.lines else "The file is empty."
            self._flag(1, "empty_file", message, keep=True)
        if self.first_row_over_limit:
            self._flag(
                self.first_row_over_limit,
                "too_many_rows",
                f"The file has {self.rows:,} requests; a batch takes at most "
                f"{self.max_rows:,}. This is the first line over the limit.",
                keep=True,
            )
        if self.line_over_bytes:
            self._flag(
                self.line_over_bytes,
                "file_too_large",
                f"The file is {self.bytes:,} bytes; a batch file may be at most "
                f"{self.max_bytes:,} bytes. The limit is crossed on this line.",
                keep=True,
            )
        if self.crlf_lines:
            plural = "s end" if self.crlf_lines > 1 else " ends"
            self._flag(
                self.first_crlf_line,
                "crlf_line_endings",
                f"{self.crlf_lines:,} line{plural} with CRLF (Windows line endings), "
                "the first one here.",
                keep=True,
            )
        if self.last_byte != b"\n" and self.lines:
            message = "The last line does not end with a newline."
            self._flag(self.lines, "missing_final_newline", message, keep=True)


def validate_path(
    path: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Report:
    """Validate a file in one streaming pass. Raises OSError if it cannot be read.

    ``on_progress(bytes_done, bytes_total, rows)`` is called about every 2 MiB and at the
    end; ``cancel`` is checked just as often and stops the scan (report.complete False).
    """
    validator = Validator(limits, on_problem)
    path = Path(path)
    with open_regular(path, buffering=_READ_BUFFER) as handle:
        total = os.fstat(handle.fileno()).st_size
        read_line = partial(handle.readline, MAX_LINE_BYTES)
        # The per-line bookkeeping of Validator.feed, inlined on local variables: on
        # files of short lines it is a noticeable share of the time.
        check_line = validator._line
        max_bytes = validator.max_bytes
        done = 0
        next_report = _PROGRESS_EVERY_BYTES
        line_no = 0
        raw = b"\n"
        for raw in iter(read_line, b""):
            line_no += 1
            done += len(raw)
            if raw.endswith(b"\r\n"):
                validator._crlf(line_no)
            elif raw[-1:] != b"\n" and len(raw) == MAX_LINE_BYTES:
                validator.lines, validator.bytes = line_no - 1, done - len(raw)
                size, ended = _skip_rest_of_line(handle, len(raw))
                done += size - len(raw)
                validator.feed_too_long(line_no, size, ended)
                raw = b"\n" if ended else b"x"
                continue
            if done > max_bytes and not validator.line_over_bytes:
                validator.line_over_bytes = line_no
            check_line(line_no, raw)
            if done >= next_report:
                next_report = done + _PROGRESS_EVERY_BYTES
                if cancel is not None and cancel.is_set():
                    break
                if on_progress is not None:
                    on_progress(done, total, validator.rows)
        validator.lines = line_no
        validator.bytes = done
        validator.last_byte = raw[-1:]
    if cancel is not None and cancel.is_set():
        return validator.finish(complete=False)
    if on_progress is not None:
        on_progress(done, max(total, done), validator.rows)
    return validator.finish()


def _skip_rest_of_line(handle: Any, already: int) -> tuple[int, bool]:
    """Read past the rest of an overlong line; return its full size and whether it ended."""
    size = already
    while True:
        chunk = handle.readline(_READ_BUFFER)
        if not chunk:
            return size, False
        size += len(chunk)
        if chunk[-1:] == b"\n":
            return size, True


def validate_bytes(data: bytes, limits: Limits | None = None) -> Report:
    """Validate an in-memory file (the sandbox server's upload, tests)."""
    validator = Validator(limits)
    start = 0
    line_no = 0
    length = len(data)
    while start < length:
        end = data.find(b"\n", start)
        end = length if end < 0 else end + 1
        line_no += 1
        if end - start > MAX_LINE_BYTES:
            validator.feed_too_long(line_no, end - start, data[end - 1 : end] == b"\n")
        else:
            validator.feed(line_no, data[start:end])
        start = end
    return validator.finish()


__all__ = [
    "CHAT_URL",
    "EMBEDDINGS_URL",
    "HINTS",
    "KNOWN_PROVIDERS",
    "KNOWN_ROLES",
    "MAX_KEPT_PROBLEMS",
    "MAX_LINE_BYTES",
    "SUPPORTED_URLS",
    "TOP_LEVEL_KEYS",
    "WARNING_CODES",
    "Limits",
    "Problem",
    "Report",
    "Validator",
    "format_report",
    "validate_bytes",
    "validate_path",
]
