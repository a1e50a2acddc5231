"""Streaming validator for FastRouter batch input files (JSONL).

One pass over the file in 256 KiB blocks, one msgspec decode per line, and nothing kept
per row but an 8-byte hash of its custom_id, so it runs close to the speed of parsing
and in memory that does not grow with line size. Problems are streamed through a
callback as they are found, and a ``threading.Event`` cancels the scan.

Speed: an entirely ordinary row (the shape almost every row of a real file has) is
recognised by the fast path in ``Validator._feed_ordinary``, which decodes it into the
types of validate_shapes.py (the shape is checked in C) and does a few look-ups more;
any deviation at all sends the row to the full checks (validate_rows.py), which explain
it. Duplicate custom_ids are found when the file ends, from the array of hashes (a hash
match is confirmed on the ids themselves before it is reported), which is much cheaper
per row than a dictionary of every id.

Which file-level oddities are errors and which are warnings (the server's view decides):

* UTF-8 byte order mark -> **error** on line 1. The server's JSON parser sees ``\\ufeff``
  before ``{`` and rejects line 1 (Python's ``json.loads`` and msgspec both do).
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

A ``RowObserver`` sees every request row whose body is an object, with the validator's
token estimate for it (core/tokens.py), and may add problems of its own.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgspec

# Re-exported: other modules import these names from here.
from fr_tui.core.tokens import estimate_prompt_tokens
from fr_tui.core.userfiles import open_regular
from fr_tui.core.validate_file import FileChecks, reread_lines
from fr_tui.core.validate_report import (
    HINTS,
    MAX_KEPT_PROBLEMS,
    WARNING_CODES,
    Limits,
    Problem,
    Report,
    format_report,
)
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
from fr_tui.core.validate_scan import BlockScan
from fr_tui.core.validate_shapes import NO_MAX_TOKENS, ROW_DECODERS

_decode_json = msgspec.json.decode
# model_stats[model] = [provider the fast path accepts (None until one is seen),
#                       rows and tokens, max_tokens, max_tokens shown, tokens shown],
# each of the two counters packed in one integer so that a row adds to each with one
# operation: rows * _ONE_ROW + estimated prompt tokens, and rows without max_tokens *
# _NO_MAX_TOKENS + the sum of max_tokens. The last two are a summing observer's bounds
# (see SummingObserver): an ordinary row is shown to it when its max_tokens is over the
# first or its rows-and-tokens plus max_tokens over the second; -1 shows every row.
_PROVIDER, _ROWS_AND_TOKENS, _MAX_TOKENS, _SHOW_MAX_TOKENS, _SHOW_TOKENS = range(5)
_ONE_ROW = 1 << 64
_NO_MAX_TOKENS = NO_MAX_TOKENS
_MAX_TOKENS_OF = _NO_MAX_TOKENS - 1  # max_tokens & this: the number, 0 for none
_UNBOUNDED = 1 << 200  # a bound no row reaches


class RowObserver(Protocol):
    """Sees every request row whose body is an object (contract 2 of the helper rules)."""

    def row(self, line: int, body: dict[str, Any], prompt_tokens: int) -> list[Problem] | None:
        """``line`` is 1-based; problems returned count like the validator's own."""
        ...

    def finish(self) -> list[Problem]:
        """Called once after the last line of a complete scan."""
        ...


class SummingObserver(RowObserver, Protocol):
    """A row observer that need not see every ordinary row (one the fast path accepts:
    plain text messages or a string input, max_tokens or none, nothing else). After it
    saw a model's first row, ``bounds(model)`` may return (max_tokens, prompt tokens +
    max_tokens): the model's ordinary rows within both are then not shown to ``row`` but
    counted, and handed over by ``summed`` before ``finish``. None: show every row."""

    def bounds(self, model: str) -> tuple[int | None, int | None] | None: ...

    def summed(
        self,
        model: str,
        rows: int,
        prompt_tokens: int,
        max_tokens_rows: int,
        max_tokens: int,
        embeddings: bool,
    ) -> None:
        """The model's rows that were not shown: how many, their estimated prompt tokens,
        how many set max_tokens and its sum, and whether they are embeddings requests."""
        ...


def _decode_of(endpoint: str | None) -> Callable[[bytes], Any] | None:
    """The decoder of an ordinary row of the file's endpoint (None: no endpoint yet)."""
    decoder = ROW_DECODERS.get(endpoint) if endpoint is not None else None
    return decoder.decode if decoder is not None else None


class _SlowPath(Exception):
    """Raised inside the fast path to hand a row to the full checks."""


class Validator(RowChecks, FileChecks, BlockScan):
    """Incremental validator: ``feed`` every line in order (or ``feed_lines`` blocks of
    them), then ``finish``. ``reread(lines)`` may return the raw bytes of the given
    1-based lines; it confirms duplicate custom_ids on the ids themselves."""

    def __init__(
        self,
        limits: Limits | None = None,
        on_problem: Callable[[Problem], None] | None = None,
        *,
        observer: RowObserver | None = None,
        reread: Callable[[set[int]], dict[int, bytes]] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.max_rows = self.limits.max_rows
        self.max_bytes = self.limits.max_bytes
        self.on_problem = on_problem
        self.observer = observer
        self.reread = reread
        self.kept: list[Problem] = []
        self.counts: dict[str, int] = {}
        self.errors_total = 0
        self.warnings_total = 0
        self.bytes = 0
        self.blank_line_numbers: list[int] = []
        self.too_long_lines = 0
        self.endpoint: str | None = None
        self.endpoint_line = 0
        # One entry per line: its custom_id's hash, 0 when the line has no usable id.
        self.id_hashes: array[int] = array("q")
        # the last custom_id seen, and whether every one so far was greater than the one
        # before it (length first, then text: "r-9" < "r-10")
        self.last_id = ""
        self.ids_rising = True
        self.providers: dict[str, int] = {}  # rows of the slow path only
        self.slow_models: dict[str, int] = {}  # rows of the slow path only
        self.model_prefix: dict[str, str] = {}
        self.model_stats: dict[str, list[Any]] = {}
        # per model, what of model_stats' counters the observer was shown, row by row
        self.shown: dict[str, list[int]] = {}
        self.crlf_lines = 0
        self.first_crlf_line = 0
        self.line_over_bytes = 0
        self.last_byte = b"\n"

    @property
    def lines(self) -> int:
        return len(self.id_hashes)

    @property
    def rows(self) -> int:
        return len(self.id_hashes) - len(self.blank_line_numbers)

    # -- lines --------------------------------------------------------------------------

    def feed(self, line_no: int, raw: bytes) -> None:
        """Check one line; ``raw`` includes its line ending, if it has one. Lines must
        come in order, ``line_no`` counting from 1."""
        if line_no != len(self.id_hashes) + 1:
            raise ValueError(f"line {line_no} fed after line {len(self.id_hashes)}")
        self.bytes += len(raw)
        if self.bytes > self.max_bytes and not self.line_over_bytes:
            self.line_over_bytes = line_no
        self.last_byte = raw[-1:]
        if raw.endswith(b"\r\n"):
            self._crlf(line_no)
        self.feed_lines([raw[:-1] if raw.endswith(b"\n") else raw])

    def feed_lines(self, lines: Iterable[bytes]) -> None:
        """Check whole lines in order, each without its b"\\n" (a b"\\r" may remain).
        Byte counts, CRLF and the final newline are the caller's (see ``scan``)."""
        # The hot loop. Decoding into validate_shapes' types checks the shape of an
        # ordinary row in C; what is left here is what no type says: the provider the
        # model's first row established, a non-empty prompt, the custom_id's hash. Any
        # deviation raises _SlowPath (or fails the decoding), and _slow_line checks the
        # row again from scratch and explains what is wrong.
        add_hash = self.id_hashes.append
        # an unknown model gives None, and indexing None raises TypeError: the slow path
        stats_of: Callable[[Any], list[Any]] = self.model_stats.get  # type: ignore[assignment]
        slow = self._slow_line
        endpoint = self.endpoint
        chat = endpoint is CHAT_URL
        # None until the first row set the endpoint: calling None is the slow path too
        decode = _decode_of(endpoint)
        observe = self.observer.row if self.observer is not None else None
        to_dict = msgspec.to_builtins
        last_id, last_id_len = self.last_id, len(self.last_id)
        for raw in lines:
            try:
                row = decode(raw)  # type: ignore[misc]
                body = row.body
                stats = stats_of(body.model)
                if row.provider != stats[_PROVIDER]:
                    raise _SlowPath
                if chat:
                    chars = 0
                    messages = body.messages
                    for message in messages:
                        chars += len(message.content)
                    if not chars:
                        raise _SlowPath  # also an empty list of messages
                    # tokens.chat_tokens for plain-text messages, inlined
                    tokens = (chars + 3) // 4 + 3 * len(messages) + 3 + _ONE_ROW
                    max_tokens = body.max_tokens
                else:
                    tokens = (len(body.input) + 3) // 4 + _ONE_ROW
                    max_tokens = _NO_MAX_TOKENS
                custom_id = row.custom_id
                id_len = len(custom_id)
                # Ids that keep rising (in length, then text order) cannot repeat: while
                # they do, _duplicates has nothing to look for.
                if id_len <= last_id_len and (id_len < last_id_len or custom_id <= last_id):
                    self.ids_rising = False
                last_id, last_id_len = custom_id, id_len
                id_hash = hash(custom_id)
                if not id_hash:
                    raise _SlowPath  # "" hashes to 0: an empty custom_id
            except (_SlowPath, TypeError, msgspec.DecodeError, RecursionError):
                self.last_id = last_id
                slow(raw)
                last_id = self.last_id
                last_id_len = len(last_id)
                endpoint = self.endpoint
                chat = endpoint is CHAT_URL
                decode = _decode_of(endpoint)
                continue
            add_hash(id_hash)
            stats[_ROWS_AND_TOKENS] += tokens
            stats[_MAX_TOKENS] += max_tokens
            if observe is not None and (
                (shown := max_tokens & _MAX_TOKENS_OF) > stats[_SHOW_MAX_TOKENS]
                or tokens + shown > stats[_SHOW_TOKENS]
            ):  # it is handed the body as the dict the line holds
                self._count_shown(body.model, tokens, max_tokens)
                found = observe(len(self.id_hashes), to_dict(body), tokens - _ONE_ROW)
                if found:
                    for problem in found:
                        self.add_problem(problem)
        self.last_id = last_id

    def _observe(self, line_no: int, body: dict[str, Any], tokens: int) -> None:
        assert self.observer is not None
        for problem in self.observer.row(line_no, body, tokens) or ():
            self.add_problem(problem)

    def _slow_line(self, raw: bytes) -> None:
        """The full checks of one line (appends exactly one entry to ``id_hashes``)."""
        line_no = len(self.id_hashes) + 1
        try:
            obj = _decode_json(raw)
        except (msgspec.DecodeError, RecursionError) as exc:
            obj = self._unparsable(line_no, raw, exc)
            if obj is None:  # blank, or a request that could not be parsed
                return
        if type(obj) is not dict:
            self.id_hashes.append(0)
            self._flag(
                line_no,
                "not_an_object",
                f"Each line must be one JSON object, but this line is {_describe(obj)}.",
            )
            return
        body, model, max_tokens = self._check_row(line_no, obj)
        if body is None:
            return
        url = obj.get("url")
        tokens = estimate_prompt_tokens(body, url if url in SUPPORTED_URLS else self.endpoint)
        if model is not None:
            stats = self.model_stats[model]
            stats[_ROWS_AND_TOKENS] += tokens + _ONE_ROW
            stats[_MAX_TOKENS] += max_tokens or _NO_MAX_TOKENS
            if self.observer is not None:
                self._count_shown(model, tokens + _ONE_ROW, max_tokens or _NO_MAX_TOKENS)
        if self.observer is not None:
            self._observe(line_no, body, tokens)
            if model is not None and self.model_stats[model][_SHOW_TOKENS] < 0:
                self._ask_bounds(model)

    def _count_shown(self, model: str, tokens: int, max_tokens: int) -> None:
        """Count a row shown to the observer (in the packed form of model_stats)."""
        shown = self.shown.get(model)
        if shown is None:
            shown = self.shown[model] = [0, 0]
        shown[0] += tokens
        shown[1] += max_tokens

    def _ask_bounds(self, model: str) -> None:
        """A summing observer's bounds for the model's ordinary rows (once it saw one)."""
        ask = getattr(self.observer, "bounds", None)
        found = ask(model) if ask is not None else None
        if found is None:
            return
        max_tokens, tokens = found
        stats = self.model_stats[model]
        stats[_SHOW_MAX_TOKENS] = _UNBOUNDED if max_tokens is None else max_tokens
        stats[_SHOW_TOKENS] = _UNBOUNDED if tokens is None else tokens + _ONE_ROW

    def _hand_over_summed(self) -> None:
        """Tell a summing observer about the rows it was not shown."""
        summed = getattr(self.observer, "summed", None)
        if summed is None:
            return
        embeddings = self.endpoint == EMBEDDINGS_URL
        for model, stats in self.model_stats.items():
            if stats[_SHOW_TOKENS] < 0:
                continue  # every row was shown
            shown_tokens, shown_max = self.shown.get(model, (0, 0))
            rows, tokens = divmod(stats[_ROWS_AND_TOKENS] - shown_tokens, _ONE_ROW)
            without, max_tokens = divmod(stats[_MAX_TOKENS] - shown_max, _NO_MAX_TOKENS)
            if rows:
                summed(model, rows, tokens, rows - without, max_tokens, embeddings)
                self.shown[model] = [stats[_ROWS_AND_TOKENS], stats[_MAX_TOKENS]]  # told

    def _note_id(self, custom_id: str) -> None:
        """Keep ``ids_rising`` for a row of the slow path (every id that is hashed)."""
        last = self.last_id
        if len(custom_id) < len(last) or (len(custom_id) == len(last) and custom_id <= last):
            self.ids_rising = False
        self.last_id = custom_id

    # -- end of file ------------------------------------------------------------------

    def finish(self, *, complete: bool = True) -> Report:
        """File-level checks, then the report. ``complete=False`` marks a cancelled scan."""
        if self.observer is not None:  # its tallies count every row scanned, as before
            self._hand_over_summed()
        if complete:
            self._duplicates()
            self._file_problems()
            if self.observer is not None:
                for problem in self.observer.finish():
                    self.add_problem(problem)
        kept = sorted(self.kept, key=lambda p: p.line)
        return Report(
            rows=self.rows,
            bytes=self.bytes,
            endpoint=self.endpoint,
            errors=[p for p in kept if p.severity == "error"],
            warnings=[p for p in kept if p.severity == "warning"],
            errors_total=self.errors_total,
            warnings_total=self.warnings_total,
            stats=self.stats(),
            complete=complete,
            counts=dict(self.counts),
        )

    def model_tokens(self) -> dict[str, int]:
        """Estimated prompt tokens per model of the rows checked so far."""
        return {model: s[_ROWS_AND_TOKENS] % _ONE_ROW for model, s in self.model_stats.items()}

    def stats(self) -> dict[str, Any]:
        models: dict[str, int] = {}
        providers = dict(self.providers)
        per_model: dict[str, dict[str, int]] = {}
        for model, stats in self.model_stats.items():
            rows, tokens = divmod(stats[_ROWS_AND_TOKENS], _ONE_ROW)
            if not rows:
                continue
            models[model] = rows
            fast_rows = rows - self.slow_models.get(model, 0)
            if fast_rows:
                providers[stats[_PROVIDER]] = providers.get(stats[_PROVIDER], 0) + fast_rows
            without, max_tokens_sum = divmod(stats[_MAX_TOKENS], _NO_MAX_TOKENS)
            per_model[model] = {
                "rows": rows,
                "input_tokens": tokens,
                "max_tokens_sum": max_tokens_sum,
                "rows_without_max_tokens": without,
            }
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "lines": self.lines,
            "blank_lines": len(self.blank_line_numbers),
            "endpoint": self.endpoint,
            "providers": providers,
            "models": models,
            "per_model": per_model,
            "est_input_tokens": sum(s["input_tokens"] for s in per_model.values()),
            "est_input_tokens_method": "text/4 + 3 a message + 3 a request, tools and schemas "
            "as JSON/4 (core/tokens.py)",
            "max_tokens_sum": sum(s["max_tokens_sum"] for s in per_model.values()),
        }


def validate_path(
    path: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    observer: RowObserver | None = None,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Report:
    """Validate a file in one streaming pass. Raises OSError if it cannot be read.

    ``on_progress(bytes_done, bytes_total, rows)`` is called about every 2 MiB and at the
    end; ``cancel`` is checked just as often and stops the scan (report.complete False).
    """
    validator = Validator(limits, on_problem, observer=observer, reread=reread_lines(path))
    with open_regular(path, buffering=0) as handle:
        total = os.fstat(handle.fileno()).st_size

        def progress(done: int, rows: int) -> None:
            if on_progress is not None:
                on_progress(done, total, rows)

        complete = validator.scan(handle, on_progress=progress, cancel=cancel)
    if not complete:
        return validator.finish(complete=False)
    if on_progress is not None:
        on_progress(validator.bytes, max(total, validator.bytes), validator.rows)
    return validator.finish()


def validate_bytes(
    data: bytes, limits: Limits | None = None, *, observer: RowObserver | None = None
) -> Report:
    """Validate an in-memory file (the sandbox server's upload, tests)."""
    import io

    def reread(wanted: set[int]) -> dict[int, bytes]:
        lines = data.split(b"\n")
        return {n: lines[n - 1].rstrip(b"\r") for n in wanted if n <= len(lines)}

    validator = Validator(limits, observer=observer, reread=reread)
    validator.scan(io.BytesIO(data))
    return validator.finish()


__all__ = [
    "CHAT_URL",
    "EMBEDDINGS_URL",
    "HINTS",
    "KNOWN_PROVIDERS",
    "KNOWN_ROLES",
    "MAX_KEPT_PROBLEMS",
    "SUPPORTED_URLS",
    "TOP_LEVEL_KEYS",
    "WARNING_CODES",
    "Limits",
    "Problem",
    "Report",
    "RowObserver",
    "SummingObserver",
    "Validator",
    "format_report",
    "validate_bytes",
    "validate_path",
]
