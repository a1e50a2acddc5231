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

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"
SUPPORTED_URLS = (CHAT_URL, EMBEDDINGS_URL)

# Batch provider slugs. FastRouter documents "openai" and "anthropic" for batches; its
# models also use "google/" (Gemini batch support is announced), and the others are the
# prefixes FastRouter's model catalogue uses. Anything else is only a warning, because
# the documented list is known to be incomplete.
KNOWN_PROVIDERS: frozenset[str] = frozenset(
    {"openai", "anthropic", "google", "x-ai", "mistralai", "meta-llama", "deepseek", "qwen"}
)

KNOWN_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOP_LEVEL_KEYS = frozenset({"custom_id", "provider", "method", "url", "body"})
MAX_KEPT_PROBLEMS = 1000
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


# Every problem code. Codes listed here are warnings; all others are errors.
WARNING_CODES = frozenset(
    {
        "blank_line",
        "crlf_line_endings",
        "missing_final_newline",
        "unknown_provider",
        "provider_model_mismatch",
        "model_without_prefix",
        "unknown_key",
        "unknown_role",
        "empty_input",
    }
)
# What to do about a problem, shown once per code ({max_rows}/{max_bytes} are the limits).
HINTS = {
    "empty_file": "A batch needs at least one request line.",
    "too_many_rows": "Split it: fr-tui split FILE --max-rows {max_rows}",
    "file_too_large": "Split it: fr-tui split FILE --max-bytes {max_bytes}",
    "line_too_long": "Check that the file really has one request per line.",
    "bom": "Save the file as UTF-8 without BOM.",
    "invalid_utf8": "Batch files must be UTF-8 text; re-export the file as UTF-8.",
    "invalid_json": "Each line must hold exactly one complete JSON object.",
    "blank_line": "Remove blank lines: some batch servers count them as invalid requests.",
    "crlf_line_endings": "JSON parsers accept them, but LF endings are safer.",
    "missing_final_newline": "Add a newline at the end so files can be joined safely.",
    "duplicate_custom_id": "Every request needs its own custom_id; results are matched by it.",
    "unknown_provider": "FastRouter documents batch support for openai and anthropic.",
    "provider_model_mismatch": "Set provider to the part of the model name before the slash.",
    "missing_provider": 'Add "provider", e.g. "openai" for model "openai/gpt-4.1-nano".',
    "unknown_key": "Request parameters belong inside body.",
    "model_without_prefix": 'FastRouter models are named "provider/model", '
    'e.g. "openai/gpt-4.1-nano".',
    "stream_not_supported": 'Remove "stream" from the body.',
    "unknown_role": "Roles are system, developer, user, assistant and tool.",
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


def _describe(value: object) -> str:
    """Plain words for a JSON value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _message_chars(content: object) -> int:
    """Characters of text in a chat message content (string or list of parts)."""
    if type(content) is str:
        return len(content)
    total = 0
    if type(content) is list:
        for part in content:
            if type(part) is dict:
                text = part.get("text")
                if type(text) is str:
                    total += len(text)
    return total


class _SlowPath(Exception):
    """Raised inside Validator.feed's fast path to hand a row to the full checks."""


class Validator:
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

    def _missing_or_invalid(
        self, line_no: int, container: dict[str, Any], key: str, label: str, expected: str
    ) -> None:
        """Report a required field that is absent (missing_KEY) or wrong (invalid_KEY)."""
        if key not in container:
            self._flag(line_no, f"missing_{key}", f"{label} is missing; it must be {expected}.")
        else:
            value = container[key]
            shown = orjson.dumps(value).decode()[:60] if type(value) is str else _describe(value)
            message = f"{label} must be {expected}, not {shown}."
            self._flag(line_no, f"invalid_{key}", message)

    # -- lines ------------------------------------------------------------------------

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

    def _check_row(self, line_no: int, obj: dict[str, Any]) -> None:
        # custom_id: unique, non-empty string.
        custom_id = obj.get("custom_id")
        if type(custom_id) is str and custom_id:
            first = self.seen_ids.setdefault(custom_id, line_no)
            if first != line_no:
                self._flag(
                    line_no,
                    "duplicate_custom_id",
                    f'custom_id "{custom_id}" is already used on line {first}.',
                    other_line=first,
                )
        else:
            self._missing_or_invalid(line_no, obj, "custom_id", "custom_id", "a non-empty string")

        # method: always POST.
        method = obj.get("method")
        if method != "POST":
            self._missing_or_invalid(line_no, obj, "method", "method", '"POST"')

        # url: a supported endpoint, the same on every line.
        url = obj.get("url")
        if url == self.endpoint and url is not None:
            pass
        elif url in SUPPORTED_URLS:
            if self.endpoint is None:
                self.endpoint = CHAT_URL if url == CHAT_URL else EMBEDDINGS_URL
                self.endpoint_line = line_no
            else:
                self._flag(
                    line_no,
                    "url_mismatch",
                    f'url is "{url}" but line {self.endpoint_line} uses "{self.endpoint}"; '
                    "every line of a batch must use the same url.",
                    other_line=self.endpoint_line,
                )
        else:
            expected = f'"{CHAT_URL}" or "{EMBEDDINGS_URL}"'
            self._missing_or_invalid(line_no, obj, "url", "url", expected)

        # body: an object with a model and the endpoint's payload.
        body = obj.get("body")
        model: str | None = None
        if type(body) is dict:
            # A line whose url differs from the file's already has its error; checking
            # its body against either endpoint would only add noise, so skip the shape.
            shape = None if url in SUPPORTED_URLS and url != self.endpoint else self.endpoint
            model = self._check_body(line_no, body, shape)
        else:
            self._missing_or_invalid(line_no, obj, "body", "body", "an object")

        # provider: a slug, ideally known and matching the model's prefix.
        provider = obj.get("provider")
        if type(provider) is str and provider:
            self.providers[provider] = self.providers.get(provider, 0) + 1
            if provider not in KNOWN_PROVIDERS:
                self._flag(
                    line_no,
                    "unknown_provider",
                    f'provider "{provider}" is not one fr-tui knows '
                    f"({', '.join(sorted(KNOWN_PROVIDERS))}).",
                )
            if model is not None:
                prefix = self.model_prefix.get(model)
                if prefix is None:
                    prefix = self.model_prefix[model] = (
                        model.partition("/")[0] if "/" in model else ""
                    )
                if prefix == provider and provider in KNOWN_PROVIDERS:
                    self.good_model_prefix[model] = prefix
                elif prefix and prefix != provider:
                    self._flag(
                        line_no,
                        "provider_model_mismatch",
                        f'provider is "{provider}" but the model "{model}" belongs to "{prefix}".',
                    )
        else:
            self._missing_or_invalid(line_no, obj, "provider", "provider", "a non-empty string")

        unknown = [key for key in obj if key not in TOP_LEVEL_KEYS]
        if unknown:
            names = ", ".join(f'"{key}"' for key in unknown[:5])
            self._flag(
                line_no,
                "unknown_key",
                f"Unknown top-level key{'s' if len(unknown) > 1 else ''} {names}; "
                "the server ignores or rejects it.",
            )

    def _check_body(self, line_no: int, body: dict[str, Any], url: str | None) -> str | None:
        """Check body; return the model name when it is a usable string."""
        model = body.get("model")
        result: str | None = None
        if type(model) is str and model:
            result = model
            self.models[model] = self.models.get(model, 0) + 1
            if "/" not in model:
                self._flag(
                    line_no,
                    "model_without_prefix",
                    f'model "{model}" has no provider prefix.',
                )
        else:
            self._missing_or_invalid(line_no, body, "model", "body.model", "a non-empty string")

        stream = body.get("stream")
        if stream is not None and stream is not False:
            self._flag(
                line_no,
                "stream_not_supported",
                "body.stream is set; batch requests cannot stream.",
            )

        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_completion_tokens")
        if max_tokens is not None:
            if type(max_tokens) is int and max_tokens > 0:
                self.max_tokens_sum += max_tokens
            else:
                self._flag(
                    line_no,
                    "invalid_max_tokens",
                    f"max_tokens must be a positive whole number, not {orjson.dumps(max_tokens).decode()}.",
                )

        if url == CHAT_URL:
            self._check_messages(line_no, body)
        elif url == EMBEDDINGS_URL:
            self._check_input(line_no, body)
        return result

    def _check_messages(self, line_no: int, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if type(messages) is not list or not messages:
            expected = "a non-empty list of messages"
            self._missing_or_invalid(line_no, body, "messages", "body.messages", expected)
            return
        chars = 0
        for index, message in enumerate(messages):
            if type(message) is not dict:
                self._flag(
                    line_no,
                    "invalid_message",
                    f"body.messages[{index}] must be an object, not {_describe(message)}.",
                )
                continue
            role = message.get("role")
            if type(role) is not str or role not in KNOWN_ROLES:
                if type(role) is str and role:
                    self._flag(
                        line_no,
                        "unknown_role",
                        f'body.messages[{index}] has role "{role}", which is not a chat role.',
                    )
                else:
                    self._flag(
                        line_no,
                        "invalid_message",
                        f"body.messages[{index}] has no role."
                        if role is None
                        else f"body.messages[{index}].role must be a string, not {_describe(role)}.",
                    )
            content = message.get("content")
            if type(content) is str:
                chars += len(content)
            elif type(content) is list:
                chars += _message_chars(content)
            elif content is None and (
                "tool_calls" in message or "function_call" in message or "refusal" in message
            ):
                pass  # an assistant turn that only calls tools has no content
            else:
                self._flag(
                    line_no,
                    "invalid_message",
                    f"body.messages[{index}] has no content."
                    if "content" not in message
                    else f"body.messages[{index}].content must be a string or a list of parts, "
                    f"not {_describe(content)}.",
                )
        self.text_chars += chars

    def _check_input(self, line_no: int, body: dict[str, Any]) -> None:
        value = body.get("input")
        if type(value) is str:
            self.text_chars += len(value)
            if not value:
                self._flag(line_no, "empty_input", "body.input is an empty string.")
            return
        if type(value) is list and value:
            for item in value:
                if type(item) is str:
                    self.text_chars += len(item)
                elif type(item) is int or type(item) is list:
                    # token ids: one token each (times four to keep "chars/4" honest)
                    self.text_chars += 4 * (len(item) if type(item) is list else 1)
                else:
                    self._flag(
                        line_no,
                        "invalid_input",
                        f"body.input items must be strings or token lists, not {_describe(item)}.",
                    )
                    return
            return
        expected = "a string or a non-empty list"
        self._missing_or_invalid(line_no, body, "input", "body.input", expected)

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
    with path.open("rb", buffering=_READ_BUFFER) as handle:
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


_SHOWN_PER_CODE = 20


def format_report(report: Report, path: str) -> str:
    """Human-readable report: a summary, then problems grouped by code, each with its line."""
    size = report.bytes
    human = (
        f"{size / 1e6:.1f} MB"
        if size >= 1e6
        else f"{size / 1e3:.1f} KB"
        if size >= 1e3
        else f"{size} B"
    )
    verdict = (
        "valid"
        if report.valid
        else "INVALID"
        if report.complete
        else "not fully checked (cancelled)"
    )
    lines = [
        f"{path}: {verdict}",
        f"  {report.rows:,} request{'s' if report.rows != 1 else ''}, {human}, "
        f"endpoint {report.endpoint or 'unknown'}",
        f"  {report.errors_total:,} error{'s' if report.errors_total != 1 else ''}, "
        f"{report.warnings_total:,} warning{'s' if report.warnings_total != 1 else ''}",
    ]
    stats = report.stats
    if stats.get("models"):
        models = ", ".join(f"{name} ({count:,})" for name, count in stats["models"].items())
        lines.append(f"  models: {models}")
    if stats.get("est_input_tokens"):
        lines.append(
            f"  about {stats['est_input_tokens']:,} input tokens (estimated as characters/4), "
            f"max_tokens total {stats.get('max_tokens_sum', 0):,}"
        )
    for title, problems, total in (
        ("Errors", report.errors, report.errors_total),
        ("Warnings", report.warnings, report.warnings_total),
    ):
        if not problems:
            continue
        lines.append("")
        lines.append(f"{title}:")
        groups: dict[str, list[Problem]] = {}
        for problem in problems:
            groups.setdefault(problem.code, []).append(problem)
        for code, group in groups.items():
            lines.append(f"  {code} ({len(group):,}):")
            for problem in group[:_SHOWN_PER_CODE]:
                where = f"line {problem.line}"
                if problem.column is not None:
                    where += f", column {problem.column}"
                lines.append(f"    {where}: {problem.message}")
            if len(group) > _SHOWN_PER_CODE:
                lines.append(f"    ... and {len(group) - _SHOWN_PER_CODE:,} more")
            hint = next((p.hint for p in group if p.hint), None)
            if hint:
                lines.append(f"    hint: {hint}")
        if total > len(problems):
            lines.append(
                f"  ({total - len(problems):,} more not listed: only the first {MAX_KEPT_PROBLEMS} problems are kept)"
            )
    return "\n".join(lines)
