"""Build a stored results index (results_index.py) in one streaming pass over the files.

The same join as results_join.py (the reference: a property test holds the two equal),
but made for a million rows: the files are read sequentially, never mapped; each row
keeps a few fixed-size numbers in arrays, and its strings go straight to a temporary blob
file beside the index. Only the custom_id -> row map is a Python dict. The ordinary
successful chat line (resultline.OkLine) is read by a fast path here; every other line
goes through resultline.parse_other_line.

Results arrive in any order. Writing a result's dozen fields into arrays indexed by its
row would touch a dozen far-apart places in memory per line (at a million rows that is
most of the build's time), so a result's fields are appended to columns in the order the
results arrive, and each row only notes where its result is (``slot``); the index keeps
it that way and its readers look a row's result up through ``slot``.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from itertools import accumulate, compress, count, filterfalse
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from fr_tui.core.export import atomic_write
from fr_tui.core.resultline import (
    OkLine,
    _decode_ok_line,
    parse_other_line,
    read_input_line,
)
from fr_tui.core.results_blocks import (
    _BUFFER,
    consume,
    first_line_utf8,
    read_blocks,
    take_inputs,
    take_results,
)
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

    def add_bytes(self, data: Any) -> None:
        self.file.write(data)
        self.size += len(memoryview(data).cast("B"))

    def close(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _Categories:
    """A column of codes into a list of distinct values (one per row or result)."""

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


class _Texts:
    """A string column: (start, length) in the blob of each value, -1 for none."""

    def __init__(self, blob: _Blob) -> None:
        self.blob = blob
        self.starts = array("q")
        self.lengths = array("i")

    def append(self, text: str | None) -> None:
        start, length = self.blob.add(text) if text is not None else (_NONE, 0)
        self.starts.append(start)
        self.lengths.append(length)


class _RowTexts:
    """A string column by row, whose values arrive in any row order."""

    def __init__(self, blob: _Blob, rows: int) -> None:
        self.blob = blob
        self.starts = array("q", [_NONE]) * rows
        self.lengths = array("i", [0]) * rows

    def set(self, row: int, text: str | None) -> None:
        if text is not None:
            self.starts[row], self.lengths[row] = self.blob.add(text)


class IndexBuilder:
    """Streams an input file and its result files into the columns of an index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.text_blob = _Blob(folder)
        # What the index will hold that the build does not read again waits in files
        # (the custom_ids, each file's line ends), not in memory.
        self.spilled: list[_Blob] = []
        # per input row, in input order
        self.ids: list[str] = []  # "" where the row has none (see id_nones); then []
        self.id_nones = bytearray()
        self.input_line = array("i")
        self.models = _Categories()
        self.providers = _Categories()
        self.by_id: dict[str, int] = {}
        self.more_by_id: dict[str, list[int]] = {}
        # per result, in the order results arrive (a row finds its own through slot)
        self.src_line = array("i")
        self.status = array("i")
        self.tokens_in = array("q")
        self.tokens_out = array("q")
        self.costs = array("d")
        self.result_models = _Categories()
        self.finish_reasons = _Categories()
        self.contents = _Texts(self.text_blob)
        # per row again, set by the few results that are not ordinary lines (see
        # add_input): error_codes, error_messages, batch_ids, rounds
        self.ends: list[_Blob] = []
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
        for blob in self.spilled:
            blob.close()

    def _spill(self, data: Any) -> _Blob:
        """A blob file of these bytes (or array), to be copied into the index."""
        blob = _Blob(self.folder)
        self.spilled.append(blob)
        blob.add_bytes(data)
        blob.file.flush()
        return blob

    # -- the input ------------------------------------------------------------------

    def add_input(self, path: Path, progress: Callable[[int], None]) -> None:
        ends = array("q")
        read = read_input_line
        add_id = self.ids.append
        add_line = self.input_line.append
        add_none = self.id_nones.append
        provider_of, provider_code = self.providers.values.get, self.providers.code
        model_of, model_code = self.models.values.get, self.models.code
        add_provider, add_model = self.providers.codes.append, self.models.codes.append
        for block in read_blocks(path, ends, progress):
            if take_inputs(self, block):
                continue
            for number, raw in enumerate(block.lines(), block.first):
                if not raw or raw.isspace():  # blank lines are no requests
                    continue
                custom_id, provider, model = read(raw)
                add_line(number if number < _INT32 else _checked(number, _INT32))
                code = provider_of(provider) if provider is not None else _NONE
                add_provider(code if code is not None else provider_code(provider))
                code = model_of(model) if model is not None else _NONE
                add_model(code if code is not None else model_code(model))
                add_id(custom_id if custom_id is not None else "")
                add_none(custom_id is None)
        self.ends.append(self._spill(ends))
        rows = len(self.ids)
        self._map_ids()
        self._spill_ids()
        # each result's outcome, in the order results arrive: a row's is found through
        # slot when the index is written (one write per result, not one into a column
        # of a million rows at a random place)
        self.result_outcomes = bytearray()
        self.src = bytearray([_NO_SOURCE]) * rows
        self.slot = array("i", [_NONE]) * rows
        self.error_codes = _Categories(rows)
        self.batch_ids = _Categories(rows)
        self.rounds = array("i", [_NONE]) * rows
        self.error_messages = _RowTexts(self.text_blob, rows)

    def _map_ids(self) -> None:
        """by_id: each custom_id's first row; more_by_id: the other rows of an id used
        again."""
        rows = len(self.ids)
        if 1 not in self.id_nones:  # the usual case: made in C, at once
            self.by_id = dict(zip(self.ids, range(rows), strict=True))
            if len(self.by_id) == rows:  # and no id used again
                return
        by_id: dict[str, int] = {}  # setdefault keeps the first row of each id
        named = bytes(map(operator.not_, self.id_nones))
        consume(map(by_id.setdefault, compress(self.ids, named), compress(count(), named)))
        self.by_id = by_id
        if len(by_id) < sum(named):  # some custom_id is used again
            for row, custom_id in enumerate(self.ids):
                if not self.id_nones[row] and by_id[custom_id] != row:
                    self.more_by_id.setdefault(custom_id, []).append(row)

    def _spill_ids(self) -> None:
        """The custom_ids as the index keeps them, in a blob file; the list is let go (the
        id map holds the strings while results are joined)."""
        all_ids = "".join(self.ids)
        # each id's end in the blob: its length in UTF-8, added up (in C)
        if all_ids.isascii():
            sizes: Iterator[int] = map(len, self.ids)
        else:
            encode = operator.methodcaller("encode", "utf-8", "surrogatepass")
            sizes = map(len, map(encode, self.ids))
        self.id_offsets = array("q", accumulate(sizes, initial=0))
        self.id_blob = self._spill(all_ids.encode("utf-8", "surrogatepass"))
        self.ids = []

    # -- result files ---------------------------------------------------------------

    def add_results(
        self, kind: Literal["output", "error"], path: Path, progress: Callable[[int], None]
    ) -> None:
        source = len(self.kinds)
        self.kinds.append(kind)
        ends = array("q")
        decode_ok = _decode_ok_line
        row_of = self.by_id.get
        src, slot = self.src, self.slot
        add_outcome = self.result_outcomes.append
        add_src_line, add_status = self.src_line.append, self.status.append
        add_tokens_in, add_tokens_out = self.tokens_in.append, self.tokens_out.append
        add_cost = self.costs.append
        model_of, model_code = self.result_models.values.get, self.result_models.code
        add_model = self.result_models.codes.append
        finish_of, finish_code = self.finish_reasons.values.get, self.finish_reasons.code
        add_finish = self.finish_reasons.codes.append
        add_start, add_length = self.contents.starts.append, self.contents.lengths.append
        blob = self.text_blob
        write_text = blob.file.write
        for block in read_blocks(path, ends, progress):
            if take_results(self, source, block):
                continue
            lines = block.lines()
            first = block.first
            arrived = len(self.src_line)
            # Decode the block, then look all its custom_ids up at once: in one C loop
            # the look-ups in a dict of a million ids wait for memory side by side.
            decoded: list[OkLine | None] = []
            found: list[str] = []
            for raw in lines:
                try:
                    line = decode_ok(raw)
                    found.append(line.custom_id)
                except (msgspec.DecodeError, RecursionError):
                    line = None
                decoded.append(line)
            ordinary_rows = iter(list(map(row_of, found)))
            for number, (raw, ok_line) in enumerate(zip(lines, decoded, strict=True), first):
                if ok_line is not None:
                    custom_id = ok_line.custom_id
                    row = next(ordinary_rows)
                else:
                    if not raw or raw.isspace():
                        continue
                    parsed = parse_other_line(raw)
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
                slot[row] = arrived
                arrived += 1
                add_src_line(number if number < _INT32 else _checked(number, _INT32))
                if ok_line is None:
                    self._add_result(row, parsed)
                    continue
                # The ordinary line: its fields, appended column by column.
                response = ok_line.response
                body = response.body
                usage = body.usage
                choice = body.choices.first
                add_outcome(OK)
                add_status(response.status_code)
                model = body.model
                code = model_of(model) if model else _NONE
                add_model(code if code is not None else model_code(model))
                add_tokens_in(usage.prompt_tokens)
                add_tokens_out(usage.completion_tokens)
                add_cost(usage.cost)
                finish = choice.finish_reason
                code = finish_of(finish) if finish is not None else _NONE
                add_finish(code if code is not None else finish_code(finish))
                data = first_line_utf8(choice.message.content)  # into the text blob
                add_start(blob.size)
                add_length(len(data))
                blob.size += len(data)
                write_text(data)
        self.ends.append(self._spill(ends))

    def _add_result(self, row: int, parsed: Any) -> None:
        """Append the fields of a result that is not an ordinary line."""
        outcome = MISSING if parsed.outcome == "missing" else OK if parsed.ok else FAILED
        self.result_outcomes.append(outcome)
        status, tokens_in, tokens_out = parsed.status_code, parsed.tokens_in, parsed.tokens_out
        self.status.append(_checked(status, _INT32) if status is not None else _NONE)
        models = self.result_models
        models.codes.append(models.code(parsed.model) if parsed.model else _NONE)
        self.tokens_in.append(_checked(tokens_in, _INT64) if tokens_in is not None else _NONE)
        self.tokens_out.append(_checked(tokens_out, _INT64) if tokens_out is not None else _NONE)
        self.costs.append(parsed.cost if parsed.cost is not None else math.nan)
        self.finish_reasons.codes.append(self.finish_reasons.code(parsed.finish_reason))
        self.contents.append(parsed.content_first_line)
        for column, value in (
            (self.error_codes, parsed.error_code),
            (self.batch_ids, parsed.batch_id),
        ):
            column.codes[row] = column.code(value)
        if parsed.round is not None:
            self.rounds[row] = _checked(parsed.round, _INT32)
        self.error_messages.set(row, parsed.error_message)
        if outcome == FAILED:
            key = group_key(parsed.error_code, parsed.error_message)
            self.groups.setdefault(key, []).append(row)
            if key not in self.group_info:
                self.group_info[key] = (parsed.error_code or "error", parsed.error_message or "")

    # -- the end --------------------------------------------------------------------

    def _rows_of(self, outcome: int) -> array[int]:
        """The rows with this outcome, in order (counted in C, not row by row)."""
        wanted = self.outcomes.translate(bytes(code == outcome for code in range(256)))
        return array("q", compress(range(len(self.outcomes)), wanted))

    def _finish_groups(self, missing: array[int]) -> dict[str, list[int]]:
        groups = {key: sorted(rows) for key, rows in self.groups.items()}
        for row in missing:
            named = not self.id_nones[row]
            key = MISSING_KEY if named else UNREADABLE_KEY
            groups.setdefault(key, []).append(row)
            if key not in self.group_info:
                self.group_info[key] = (
                    (key, "no result line in the output or error file")
                    if named
                    else (key, "the input line has no readable custom_id")
                )
        return groups

    def write(self, path: Path, signatures: list[dict[str, Any] | None]) -> None:
        """Write the index file (atomically: temp file, rename)."""
        self.text_blob.file.flush()
        # each row's outcome: its result's, MISSING (at slot -1, the last) without one
        self.outcomes = bytearray(
            map((self.result_outcomes + bytes([MISSING])).__getitem__, self.slot)
        )
        found = {name: self._rows_of(code) for code, name in ((OK, "ok"), (FAILED, "failed"))}
        found["missing"] = self._rows_of(MISSING)
        groups = self._finish_groups(found["missing"])
        pieces: list[tuple[str, str, Any]] = []  # (name, typecode, array / bytes / blob)
        add = pieces.append
        add(("outcome", "B", self.outcomes))
        add(("src", "B", self.src))
        for name, values in (
            # per row
            ("input_line", self.input_line),
            ("slot", self.slot),
            ("model", self.models.codes),
            ("provider", self.providers.codes),
            ("custom_id.offsets", self.id_offsets),
            ("error_code", self.error_codes.codes),
            ("batch_id", self.batch_ids.codes),
            ("round", self.rounds),
            ("error_message.starts", self.error_messages.starts),
            ("error_message.lengths", self.error_messages.lengths),
            # per result, through slot
            ("src_line", self.src_line),
            ("tokens_in", self.tokens_in),
            ("tokens_out", self.tokens_out),
            ("cost", self.costs),
            ("status", self.status),
            ("result_model", self.result_models.codes),
            ("finish_reason", self.finish_reasons.codes),
            ("content.starts", self.contents.starts),
            ("content.lengths", self.contents.lengths),
        ):
            add((name, values.typecode, values))
        add(("custom_id.none", "B", self.id_nones))
        add(("custom_id.blob", "B", self.id_blob))
        add(("text.blob", "B", self.text_blob))
        for number, ends in enumerate(self.ends):
            add((f"ends.{number}", "q", ends))  # a blob of i64
        for name, rows in found.items():
            add((f"rows.{name}", "q", rows))
        group_list = []
        for number, (key, group_rows) in enumerate(groups.items()):
            add((f"group.{number}", "q", array("q", group_rows)))
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
            "results": len(self.src_line),
            "columns": layout,
            "categories": {
                name: list(cats.values)
                for name, cats in (
                    ("model", self.models),
                    ("provider", self.providers),
                    ("result_model", self.result_models),
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
        # No fsync: the index is a cache that is checked (its CRC) on every open, so
        # one cut short by a crash is found and built again.
        with atomic_write(path, durable=False) as handle:
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
        # the same sums as JoinedResults' properties: -1 marks a result without tokens,
        # NaN one without a cost (fsum's sum does not depend on the order of the costs)
        costs = list(filterfalse(math.isnan, self.costs))
        return {
            "tokens_in": sum(self.tokens_in) + self.tokens_in.count(_NONE),
            "tokens_out": sum(self.tokens_out) + self.tokens_out.count(_NONE),
            "cost": repr(math.fsum(costs)) if costs else None,
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
