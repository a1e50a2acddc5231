"""Build a stored results index (results_index.py) in one streaming pass over the files.

The same join as results_join.py (the reference: a property test holds the two equal),
but made for a million rows: the files are read sequentially, never mapped; each row
keeps a few fixed-size numbers in arrays, and its strings go straight to temporary blob
files beside the index (in the order they arrive, each row remembering where its own
are). Only the custom_id -> row map is a Python dict. The ordinary successful chat line
is read by a fast path here; every other line goes through resultline.parse_result_line.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from fr_tui.core.export import atomic_write
from fr_tui.core.resultline import _str, first_line, parse_result_line
from fr_tui.core.results_index import _MAGIC, _NONE, _PREFIX, INDEX_VERSION
from fr_tui.core.results_join import (
    _NO_SOURCE,
    FAILED,
    MISSING,
    MISSING_KEY,
    OK,
    UNREADABLE_KEY,
    ResultIssue,
    group_key,
    waiting_row,
)

ProgressFn = Callable[[int, int], None]
_BUFFER = 1 << 20
_INT32 = 1 << 31
_INT64 = 1 << 62


class Unindexable(ValueError):
    """A value the index's columns cannot hold (a negative or enormous token count, a
    status code beyond 32 bits): the caller joins in memory instead."""


def _checked(value: int, limit: int) -> int:
    if not 0 <= value < limit:
        raise Unindexable(f"{value} does not fit the index")
    return value


class _Blob:
    """Strings appended to a temporary file; each gets (start, length) in the blob."""

    def __init__(self, folder: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".index-blob.", suffix=".tmp", dir=folder)
        self.path = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb", buffering=_BUFFER)
        self.size = 0

    def add(self, text: str) -> tuple[int, int]:
        data = text.encode("utf-8", "surrogatepass")
        start = self.size
        self.file.write(data)
        self.size += len(data)
        return start, len(data)

    def close(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _Categories:
    def __init__(self, rows: int = 0) -> None:
        self.codes = array("i", [_NONE]) * rows
        self.values: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        if value is None:
            return _NONE
        code = self.values.get(value)
        if code is None:
            code = self.values[value] = len(self.values)
        return code


class _Strings:
    """A string column whose values arrive in any row order."""

    def __init__(self, blob: _Blob, rows: int) -> None:
        self.blob = blob
        self.starts = array("q", [_NONE]) * rows
        self.lengths = array("i", [0]) * rows

    def set(self, row: int, text: str | None) -> None:
        if text is not None:
            self.starts[row], self.lengths[row] = self.blob.add(text)


def _lines(path: Path, ends: array[int]) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line, bytes read so far) for each line, recording each line's end
    offset in ``ends`` as LineIndex does. A line keeps its ending (JSON whitespace)."""
    position = 0
    add_end = ends.append
    with open(path, "rb", buffering=_BUFFER) as handle:
        for number, raw in enumerate(handle):
            position += len(raw)
            add_end(position - 1 if raw[-1] == 10 else position)  # 10: b"\n"
            yield number, raw, position


class IndexBuilder:
    """Streams an input file and its result files into the columns of an index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.text_blob = _Blob(folder)
        self.ids: list[str | None] = []  # the same strings as by_id's keys
        self.id_nones = bytearray()
        self.input_line = array("i")
        self.models = _Categories()
        self.providers = _Categories()
        self.by_id: dict[str, int] = {}
        self.more_by_id: dict[str, list[int]] = {}
        self.ends: list[array[int]] = []
        self.kinds: list[Literal["output", "error"]] = []
        self.issues: dict[str, list[ResultIssue]] = {
            "duplicates": [],
            "unknown_ids": [],
            "bad_lines": [],
        }
        self.groups: dict[str, list[int]] = {}
        self.group_info: dict[str, tuple[str, str]] = {}

    def close(self) -> None:
        self.text_blob.close()

    # -- the input ------------------------------------------------------------------

    def add_input(self, path: Path, progress: Callable[[int], None]) -> None:
        ends = array("q")
        self.ends.append(ends)
        loads = msgspec.json.decode
        by_id = self.by_id
        ids = self.ids
        add_line = self.input_line.append
        add_none = self.id_nones.append
        provider_code, add_provider = self.providers.code, self.providers.codes.append
        model_code, add_model = self.models.code, self.models.codes.append
        for number, raw, position in _lines(path, ends):
            if not number & 1023:
                progress(position)
            if raw.isspace():  # blank lines are no requests
                continue
            custom_id = provider = model = None
            try:
                obj = loads(raw)
            except (msgspec.DecodeError, RecursionError):
                obj = None
            if type(obj) is dict:
                custom_id = obj.get("custom_id")
                if type(custom_id) is not str:
                    if isinstance(custom_id, int) and not isinstance(custom_id, bool):
                        custom_id = str(custom_id)
                    elif not isinstance(custom_id, str):
                        custom_id = None
                provider = obj.get("provider")
                if type(provider) is not str:
                    provider = _str(provider)
                body = obj.get("body")
                if type(body) is dict:
                    model = body.get("model")
                    if type(model) is not str:
                        model = _str(model)
            row = len(ids)
            add_line(_checked(number, _INT32))
            add_provider(provider_code(provider))
            add_model(model_code(model))
            ids.append(custom_id)
            if custom_id is None:
                add_none(1)
            else:
                add_none(0)
                if custom_id not in by_id:
                    by_id[custom_id] = row
                else:
                    self.more_by_id.setdefault(custom_id, []).append(row)
        rows = len(self.input_line)
        self.outcomes = bytearray([MISSING]) * rows
        self.src = bytearray([_NO_SOURCE]) * rows
        self.src_line = array("i", [0]) * rows
        self.status = array("i", [_NONE]) * rows
        self.tokens_in = array("q", [_NONE]) * rows
        self.tokens_out = array("q", [_NONE]) * rows
        self.costs = array("d", [math.nan]) * rows
        self.rounds = array("i", [_NONE]) * rows
        self.finish_reasons = _Categories(rows)
        self.error_codes = _Categories(rows)
        self.batch_ids = _Categories(rows)
        self.contents = _Strings(self.text_blob, rows)
        self.error_messages = _Strings(self.text_blob, rows)

    # -- result files ---------------------------------------------------------------

    def add_results(
        self, kind: Literal["output", "error"], path: Path, progress: Callable[[int], None]
    ) -> None:
        source = len(self.kinds)
        self.kinds.append(kind)
        ends = array("q")
        self.ends.append(ends)
        loads = msgspec.json.decode
        row_of = self.by_id.get
        src, src_line = self.src, self.src_line
        outcomes, status_col = self.outcomes, self.status
        tokens_in_col, tokens_out_col = self.tokens_in, self.tokens_out
        costs = self.costs
        model_codes, model_code = self.models.codes, self.models.code
        finish_codes, finish_code = self.finish_reasons.codes, self.finish_reasons.code
        set_content = self.contents.set
        for number, raw, position in _lines(path, ends):
            if not number & 1023:
                progress(position)
            if raw.isspace():
                continue
            # The ordinary successful chat line, read here; any other goes through
            # parse_result_line, which handles every shape (results_join.py does the same).
            try:
                obj = loads(raw)
                custom_id = obj["custom_id"]
                response = obj["response"]
                status = response["status_code"]
                body = response["body"]
                usage = body["usage"]
                tokens_in = usage["prompt_tokens"]
                tokens_out = usage["completion_tokens"]
                cost = usage["cost"]
                choice = body["choices"][0]
                content = choice["message"]["content"]
                model = body.get("model")
                finish = choice.get("finish_reason")
                ordinary = (
                    type(custom_id) is str
                    and obj["error"] is None
                    and "outcome" not in obj
                    and type(status) is int
                    and 200 <= status < 300
                    and type(tokens_in) is int
                    and type(tokens_out) is int
                    and 0 <= tokens_in < _INT64
                    and 0 <= tokens_out < _INT64
                    and (type(cost) is float or type(cost) is int)
                    and type(content) is str
                    and content != ""
                    and (model is None or type(model) is str)
                    and (finish is None or type(finish) is str)
                )
            except (
                msgspec.DecodeError,
                RecursionError,
                KeyError,
                TypeError,
                IndexError,
                AttributeError,
            ):
                ordinary = False
            if not ordinary:
                parsed = parse_result_line(raw)
                if parsed.problem is not None:
                    issue = ResultIssue(kind, path, number + 1, None, parsed.problem)
                    self.issues["bad_lines"].append(issue)
                    continue
                assert parsed.custom_id is not None
                custom_id = parsed.custom_id
            row = row_of(custom_id)
            if row is None or src[row] != _NO_SOURCE:
                row = waiting_row(custom_id, self.by_id, self.more_by_id, src)
                if row is None or row < 0:
                    reason = "unknown custom_id" if row is None else "duplicate result"
                    name = "unknown_ids" if row is None else "duplicates"
                    issue = ResultIssue(kind, path, number + 1, custom_id, reason)
                    self.issues[name].append(issue)
                    continue
            src[row] = source
            src_line[row] = _checked(number, _INT32)
            if not ordinary:
                self._set(row, parsed)
                continue
            outcomes[row] = OK
            status_col[row] = status
            if model and model_codes[row] == _NONE:
                model_codes[row] = model_code(model)
            tokens_in_col[row] = tokens_in
            tokens_out_col[row] = tokens_out
            costs[row] = float(cost)
            finish_codes[row] = finish_code(finish)
            set_content(row, first_line(content))

    def _set(self, row: int, parsed: Any) -> None:
        outcome = MISSING if parsed.outcome == "missing" else OK if parsed.ok else FAILED
        self.outcomes[row] = outcome
        if parsed.status_code is not None:
            self.status[row] = _checked(parsed.status_code, _INT32)
        if parsed.model and self.models.codes[row] == _NONE:
            self.models.codes[row] = self.models.code(parsed.model)
        if parsed.tokens_in is not None:
            self.tokens_in[row] = _checked(parsed.tokens_in, _INT64)
        if parsed.tokens_out is not None:
            self.tokens_out[row] = _checked(parsed.tokens_out, _INT64)
        if parsed.cost is not None:
            self.costs[row] = parsed.cost
        self.finish_reasons.codes[row] = self.finish_reasons.code(parsed.finish_reason)
        self.contents.set(row, parsed.content_first_line)
        self.error_codes.codes[row] = self.error_codes.code(parsed.error_code)
        self.error_messages.set(row, parsed.error_message)
        self.batch_ids.codes[row] = self.batch_ids.code(parsed.batch_id)
        if parsed.round is not None:
            self.rounds[row] = _checked(parsed.round, _INT32)
        if outcome == FAILED:
            key = group_key(parsed.error_code, parsed.error_message)
            self.groups.setdefault(key, []).append(row)
            if key not in self.group_info:
                self.group_info[key] = (parsed.error_code or "error", parsed.error_message or "")

    # -- the end --------------------------------------------------------------------

    def _finish_groups(self) -> dict[str, list[int]]:
        groups = {key: sorted(rows) for key, rows in self.groups.items()}
        find = self.outcomes.find
        row = find(MISSING)
        while row >= 0:
            named = not self.id_nones[row]
            key = MISSING_KEY if named else UNREADABLE_KEY
            groups.setdefault(key, []).append(row)
            if key not in self.group_info:
                self.group_info[key] = (
                    (key, "no result line in the output or error file")
                    if named
                    else (key, "the input line has no readable custom_id")
                )
            row = find(MISSING, row + 1)
        return groups

    def write(self, path: Path, signatures: list[dict[str, Any] | None]) -> None:
        """Write the index file (atomically: temp file, fsync, rename)."""
        self.text_blob.file.flush()
        groups = self._finish_groups()
        id_blob = "".join(i for i in self.ids if i is not None).encode("utf-8", "surrogatepass")
        id_offsets = array("q", [0])
        total = 0
        for custom_id in self.ids:
            if custom_id is not None:
                total += (
                    len(custom_id.encode("utf-8", "surrogatepass"))
                    if not custom_id.isascii()
                    else len(custom_id)
                )
            id_offsets.append(total)
        pieces: list[tuple[str, str, Any]] = []  # (name, typecode, array / bytes / blob)
        add = pieces.append
        add(("outcome", "B", self.outcomes))
        add(("src", "B", self.src))
        for name, values in (
            ("input_line", self.input_line),
            ("src_line", self.src_line),
            ("tokens_in", self.tokens_in),
            ("tokens_out", self.tokens_out),
            ("cost", self.costs),
            ("status", self.status),
            ("round", self.rounds),
            ("model", self.models.codes),
            ("provider", self.providers.codes),
            ("finish_reason", self.finish_reasons.codes),
            ("error_code", self.error_codes.codes),
            ("batch_id", self.batch_ids.codes),
            ("custom_id.offsets", id_offsets),
            ("content.starts", self.contents.starts),
            ("content.lengths", self.contents.lengths),
            ("error_message.starts", self.error_messages.starts),
            ("error_message.lengths", self.error_messages.lengths),
        ):
            add((name, values.typecode, values))
        add(("custom_id.none", "B", self.id_nones))
        add(("custom_id.blob", "B", id_blob))
        add(("text.blob", "B", self.text_blob))
        for number, ends in enumerate(self.ends):
            add((f"ends.{number}", "q", ends))
        for outcome, name in ((OK, "ok"), (FAILED, "failed"), (MISSING, "missing")):
            found = array("q")
            find = self.outcomes.find
            row = find(outcome)
            while row >= 0:
                found.append(row)
                row = find(outcome, row + 1)
            add((f"rows.{name}", "q", found))
        group_list = []
        for number, (key, rows) in enumerate(groups.items()):
            add((f"group.{number}", "q", array("q", rows)))
            group_list.append([key, *self.group_info[key]])

        def size(item: Any) -> int:
            if isinstance(item, _Blob):
                return item.size
            if isinstance(item, array):
                return len(item) * item.itemsize
            return len(item)

        layout: dict[str, list[Any]] = {}
        offset = 0
        for name, code, item in pieces:
            layout[name] = [code, offset, size(item)]
            offset += (size(item) + 7) // 8 * 8
        header = {
            "version": INDEX_VERSION,
            "sources": signatures,
            "source_kinds": self.kinds,
            "rows": len(self.outcomes),
            "columns": layout,
            "categories": {
                name: list(cats.values)
                for name, cats in (
                    ("model", self.models),
                    ("provider", self.providers),
                    ("finish_reason", self.finish_reasons),
                    ("error_code", self.error_codes),
                    ("batch_id", self.batch_ids),
                )
            },
            "groups": group_list,
            "totals": self._totals(),
            "issues": {
                name: [
                    {
                        "file": i.file,
                        "path": str(i.path),
                        "line": i.line,
                        "custom_id": i.custom_id,
                        "reason": i.reason,
                    }  # fmt: skip
                    for i in issues
                ]
                for name, issues in self.issues.items()
            },
        }
        with atomic_write(path) as handle:
            # the header's CRC of the data is known only at the end: reserve its place
            header["crc32"] = "00000000"
            placeholder = msgspec.json.encode(header)
            head = _PREFIX.pack(_MAGIC, INDEX_VERSION, len(placeholder)) + placeholder
            handle.write(head + bytes(-len(head) % 8))
            crc = 0
            for _, _, item in pieces:
                crc = _write_piece(handle, item, crc)
            handle.seek(len(head) - len(placeholder))
            handle.write(placeholder.replace(b'"crc32":"00000000"', b'"crc32":"%08x"' % crc))
            handle.seek(0, os.SEEK_END)

    def _totals(self) -> dict[str, Any]:
        # the same sums, in the same order, as JoinedResults' properties (float addition
        # depends on its order); NaN marks a row without a cost
        has_cost = any(c == c for c in self.costs)
        return {
            "tokens_in": sum(t for t in self.tokens_in if t > 0),
            "tokens_out": sum(t for t in self.tokens_out if t > 0),
            "cost": repr(sum(c for c in self.costs if c == c)) if has_cost else None,
        }


def _write_piece(handle: IO[bytes], item: Any, crc: int) -> int:
    if isinstance(item, _Blob):
        with open(item.path, "rb") as blob:
            while chunk := blob.read(_BUFFER):
                handle.write(chunk)
                crc = zlib.crc32(chunk, crc)
        size = item.size
    else:
        data = memoryview(item).cast("B")  # arrays and bytes are written without a copy
        handle.write(data)
        crc = zlib.crc32(data, crc)
        size = len(data)
    padding = bytes(-size % 8)
    handle.write(padding)
    return zlib.crc32(padding, crc)


def build_index(
    sources: list[Path | None],
    path: Path,
    signatures: list[dict[str, Any] | None],
    on_progress: ProgressFn | None = None,
) -> None:
    """Join ``sources`` (input, output, error; the last two may be None) into the index
    file at ``path``. Raises OSError if a file cannot be read or the index written."""
    files = [(kind, p) for kind, p in zip(("input", "output", "error"), sources, strict=True) if p]
    total = sum(p.stat().st_size for _, p in files) or 1
    done = 0

    def progress(offset: int) -> None:
        if on_progress is not None:
            on_progress(done + offset, total)

    builder = IndexBuilder(path.parent)
    try:
        for kind, file in files:
            if kind == "input":
                builder.add_input(file, progress)
            else:
                builder.add_results(kind, file, progress)  # type: ignore[arg-type]
            done += file.stat().st_size
        builder.by_id, builder.more_by_id = {}, {}  # the join is done: free it before writing
        builder.write(path, signatures)
    finally:
        builder.close()
    if on_progress is not None:
        on_progress(total, total)


__all__ = ["IndexBuilder", "Unindexable", "build_index"]
