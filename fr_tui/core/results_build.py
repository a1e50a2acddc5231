"""Build a stored results index (results_index.py) in one streaming pass over the files.

The same join as results_join.py (the reference: a property test holds the two equal),
but made for a million rows: the files are read sequentially, never mapped, a block of
lines at a time (results_blocks.py takes ordinary blocks apart in C); each row keeps a
few fixed-size numbers in arrays, and its strings go straight to temporary blob files
beside the index. Only the custom_id -> result map is a Python dict.

Results arrive in any order. Writing a result's dozen fields into arrays indexed by its
row would touch a dozen far-apart places in memory per line (at a million rows that is
most of the build's time), so the result files are read first and a result's fields are
appended to columns in the order the results arrive; then each input row, read in order,
takes its result by its custom_id and only notes where it is (``slot``). The index keeps
it that way and its readers look a row's result up through ``slot``.

A job's merged file has its results in the order of its input (and a batch's output
often has): while they come in the rows' order, each row takes the result at its own
place, and no custom_id is looked up (a million look-ups at random places in a dict are
a fifth of a build). At the first block of rows that does not match, the results no row
has taken yet are mapped by custom_id and the rows from there on look theirs up.
"""

from __future__ import annotations

import math
import operator
import os
from array import array
from collections.abc import Callable, Iterator
from itertools import accumulate, compress, filterfalse, repeat
from pathlib import Path
from typing import Any, Literal

import msgspec

from fr_tui.core.export import atomic_write
from fr_tui.core.resultline import (
    OkLine,
    _decode_ok_line,
    parse_other_line,
    read_input_line,
)
from fr_tui.core.results_blocks import (
    append,
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
    NO_RESULT_LINE,
    NOT_RETURNED,
    OK,
    UNREADABLE_KEY,
    ResultIssue,
    group_key,
)
from fr_tui.core.results_spill import Blob, Categories, Texts, pass_on, write_piece

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


class IndexBuilder:
    """Streams result files, then their input file, into the columns of an index.

    The results are read first, each appended to the per-result columns as it arrives and
    its custom_id noted (by_id: an id's first result; more_by_id: its later ones). Each
    input row then takes its result by popping its id, in input order: ``slot`` grows by
    one number per row, instead of being written at a random place per result."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.text_blob = Blob(folder)
        # What the index will hold that the build does not read again waits in files
        # (the custom_ids, each file's line ends), not in memory.
        self.spilled: list[Blob] = []
        # per result, in the order results arrive
        self.result_outcomes = bytearray()
        self.result_src = bytearray()  # which result file
        self.src_line = array("i")
        self.status = array("i")
        self.tokens_in = array("q")
        self.tokens_out = array("q")
        self.costs = array("d")
        self.result_models = Categories()
        self.finish_reasons = Categories()
        self.contents = Texts(self.text_blob)
        self.batch_ids = Categories()  # a job's merged lines name their batch and round
        self.rounds = array("i")
        # only failed results have these: kept by result number
        self.error_codes = Categories()
        self.error_code_of: dict[int, int] = {}
        self.message_of: dict[int, tuple[int, int]] = {}  # (start, length) in text_blob
        self.group_keys = Categories()  # the error groups' keys
        self.failure_of: dict[int, int] = {}  # a failed result's group key
        self.result_ids: list[str] = []  # as they arrived, until _leave_order
        # rows take results in the order they arrived, until a row's id is not its
        # result's: then results are looked up by id (by_id, more_by_id)
        self.in_order = True
        self.taken_in_order = 0
        self.taken_ids: set[str] = set()  # the ids of the results taken in order
        self.by_id: dict[str, int] = {}
        self.more_by_id: dict[str, list[int]] = {}
        self.kinds: list[Literal["output", "error"]] = []
        self.paths: list[Path] = []
        self.result_ends: list[Blob] = []
        self.issues: dict[str, list[ResultIssue]] = {
            "duplicates": [],
            "unknown_ids": [],
            "bad_lines": [],
        }
        # per input row, in input order
        self.slot = array("i")  # the number of its result, -1 for none
        self.id_nones = bytearray()
        self.id_blob = Blob(folder)
        self.spilled.append(self.id_blob)
        self.id_offsets = array("q")  # each id's end in id_blob, until passed on to:
        self.id_offsets_file = self._spill(array("q", [0]))
        self.input_line = array("i")
        self.models = Categories()
        self.providers = Categories()
        self.group_info: dict[str, tuple[str, str]] = {}

    def close(self) -> None:
        self.text_blob.close()
        for blob in self.spilled:
            blob.close()

    def _spill(self, data: Any) -> Blob:
        """A blob file of these bytes (or array), to be copied into the index."""
        blob = Blob(self.folder)
        self.spilled.append(blob)
        blob.add_bytes(data)
        blob.file.flush()
        return blob

    # -- result files ---------------------------------------------------------------

    def _leave_order(self) -> None:
        """Look results up by custom_id from now on. by_id: the first result no row took
        yet of each custom_id; more_by_id: its later ones, in order."""
        if not self.in_order:
            return
        self.in_order = False
        ids, self.result_ids = self.result_ids, []
        taken = self.taken_in_order
        self.taken_ids = set(ids[:taken])
        del ids[:taken]
        # made in C at once; inserted last to first, so an id keeps its first result
        numbers = range(taken + len(ids) - 1, taken - 1, -1)
        self.by_id = by_id = dict(zip(reversed(ids), numbers, strict=True))
        if len(by_id) != len(ids):  # an id that came again
            for number, custom_id in enumerate(ids, taken):
                if by_id[custom_id] != number:
                    self.more_by_id.setdefault(custom_id, []).append(number)

    def take_all(self, ids: list[str]) -> list[int]:
        """take() for each of a block of rows' custom_ids."""
        if self.in_order:
            start = self.taken_in_order
            end = start + len(ids)
            if self.result_ids[start:end] == ids:  # each row's result is at its place
                self.taken_in_order = end
                return list(range(start, end))
            self._leave_order()
        taken = list(map(self.by_id.pop, ids, repeat(_NONE)))
        if self.more_by_id and _NONE in taken:
            for index, number in enumerate(taken):
                if number == _NONE:
                    taken[index] = self.take(ids[index])
        return taken

    def add_results(
        self, kind: Literal["output", "error"], path: Path, progress: Callable[[int], None]
    ) -> None:
        source = len(self.kinds)
        self.kinds.append(kind)
        self.paths.append(path)
        ends = array("q")
        ends_file = self._spill(b"")
        decode_ok = _decode_ok_line
        add_outcome = self.result_outcomes.append
        add_status = self.status.append
        add_tokens_in, add_tokens_out = self.tokens_in.append, self.tokens_out.append
        add_cost = self.costs.append
        model_of, model_code = self.result_models.values.get, self.result_models.code
        add_model = self.result_models.codes.append
        finish_of, finish_code = self.finish_reasons.values.get, self.finish_reasons.code
        add_finish = self.finish_reasons.codes.append
        add_start, add_length = self.contents.starts.append, self.contents.lengths.append
        add_batch_id, add_round = self.batch_ids.codes.append, self.rounds.append
        blob = self.text_blob
        write_text = blob.file.write
        for block in read_blocks(path, ends, progress):
            pass_on(ends, ends_file)
            if take_results(self, source, block):
                continue
            for number, raw in enumerate(block.lines(), block.first):
                try:
                    ok_line: OkLine | None = decode_ok(raw)
                except (msgspec.DecodeError, RecursionError):
                    ok_line = None
                if ok_line is None:
                    if not raw or raw.isspace():
                        continue
                    parsed = parse_other_line(raw)
                    if parsed.problem is not None:
                        issue = ResultIssue(kind, path, number + 1, None, parsed.problem)
                        self.issues["bad_lines"].append(issue)
                        continue
                    assert parsed.custom_id is not None
                    self._arrived(parsed.custom_id, source, number)
                    self._add_result(parsed)
                    continue
                self._arrived(ok_line.custom_id, source, number)
                # The ordinary line: its fields, appended column by column.
                response = ok_line.response
                body = response.body
                usage = body.usage
                choice = body.choices.first
                add_outcome(OK)
                add_batch_id(_NONE)
                add_round(_NONE)
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
        pass_on(ends, ends_file, at_least=0)
        self.result_ends.append(ends_file)

    def _arrived(self, custom_id: str, source: int, number: int) -> None:
        """Note one result's id, file and line (its fields are appended next)."""
        self.result_ids.append(custom_id)
        self.result_src.append(source)
        self.src_line.append(number if number < _INT32 else _checked(number, _INT32))

    def _add_result(self, parsed: Any) -> None:
        """Append the fields of a result that is not an ordinary line."""
        arrival = len(self.result_outcomes)
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
        if parsed.error_code is not None:
            self.error_code_of[arrival] = self.error_codes.code(parsed.error_code)
        self.batch_ids.codes.append(self.batch_ids.code(parsed.batch_id))
        self.rounds.append(_checked(parsed.round, _INT32) if parsed.round is not None else _NONE)
        if parsed.error_message is not None:
            self.message_of[arrival] = self.text_blob.add(parsed.error_message)
        if outcome == FAILED:
            code, message = parsed.error_code, parsed.error_message
            self.failure_of[arrival] = self.group_keys.code(group_key(code, message))

    # -- the input ------------------------------------------------------------------

    def add_input(self, path: Path, progress: Callable[[int], None]) -> None:
        ends = array("q")
        self.input_ends = self._spill(b"")
        read = read_input_line
        for block in read_blocks(path, ends, progress):
            pass_on(ends, self.input_ends)
            if take_inputs(self, block):
                continue
            self._leave_order()  # a row without a custom_id takes no result
            ids: list[str] = []
            for number, raw in enumerate(block.lines(), block.first):
                if not raw or raw.isspace():  # blank lines are no requests
                    continue
                custom_id, provider, model = read(raw)
                self.input_line.append(number if number < _INT32 else _checked(number, _INT32))
                self.providers.codes.append(self.providers.code(provider))
                self.models.codes.append(self.models.code(model))
                self.id_nones.append(custom_id is None)
                ids.append(custom_id if custom_id is not None else "")
                self.slot.append(self.take(custom_id) if custom_id is not None else _NONE)
            self.add_ids(ids)
        if self.taken_in_order < len(self.result_ids):  # results no row took
            self._leave_order()
        pass_on(ends, self.input_ends, at_least=0)
        pass_on(self.id_offsets, self.id_offsets_file, at_least=0)

    def take(self, custom_id: str) -> int:
        """The number of the next result for this custom_id that no row has taken yet
        (the first row with an id takes its first result), -1 when none is left."""
        number = self.by_id.pop(custom_id, _NONE)
        if number == _NONE:
            later = self.more_by_id.get(custom_id)
            if later:
                number = later.pop(0)
        return number

    def add_ids(self, ids: list[str]) -> None:
        """Append a block's custom_ids ("" for none) to the blob the index keeps them in."""
        text = "".join(ids)
        # each id's end in the blob: its length in UTF-8, added up (in C)
        if text.isascii():
            sizes: Iterator[int] = map(len, ids)
        else:
            encode = operator.methodcaller("encode", "utf-8", "surrogatepass")
            sizes = map(len, map(encode, ids))
        append(self.id_offsets, list(accumulate(sizes, initial=self.id_blob.size))[1:])
        self.id_blob.add(text)
        pass_on(self.id_offsets, self.id_offsets_file)

    # -- the end --------------------------------------------------------------------

    def _left_over(self) -> set[int]:
        """The results no row took, reported as unknown or duplicate ids (in the order
        they arrived); their numbers."""
        found: list[tuple[int, str, str]] = []
        for custom_id, number in self.by_id.items():  # no row took a result with this id
            # ...since no row has it, or its rows took results in order, before these
            name = "duplicates" if custom_id in self.taken_ids else "unknown_ids"
            found.append((number, custom_id, name))
            for later in self.more_by_id.get(custom_id, ()):
                found.append((later, custom_id, name))
        for custom_id, numbers in self.more_by_id.items():
            if custom_id not in self.by_id:  # its rows have their results already
                found += [(number, custom_id, "duplicates") for number in numbers]
        reasons = {"unknown_ids": "unknown custom_id", "duplicates": "duplicate result"}
        for number, custom_id, name in sorted(found):
            source = self.result_src[number]
            issue = ResultIssue(
                self.kinds[source],
                self.paths[source],
                self.src_line[number] + 1,
                custom_id,
                reasons[name],
            )
            self.issues[name].append(issue)
        return {number for number, _, _ in found}

    def _rows_of(self, outcome: int) -> array[int]:
        """The rows with this outcome, in order (counted in C, not row by row)."""
        wanted = self.outcomes.translate(bytes(code == outcome for code in range(256)))
        return array("q", compress(range(len(self.outcomes)), wanted))

    def _groups(self, failed: array[int], missing: array[int]) -> dict[str, list[int]]:
        """The rows of each error group, in order; each group's code and message those of
        its first row (as JoinedResults._regroup makes them)."""
        groups: dict[str, list[int]] = {}
        slot, failure_of = self.slot, self.failure_of
        keys = list(self.group_keys.values)
        firsts: list[tuple[str, int]] = []  # each group's key and first result
        for row in failed:
            number = slot[row]
            key = keys[failure_of[number]]
            rows = groups.get(key)
            if rows is None:
                rows = groups[key] = []
                firsts.append((key, number))
            rows.append(row)
        codes = list(self.error_codes.values)
        with self.text_blob.reader() as read:
            for key, number in firsts:
                code = self.error_code_of.get(number)
                message = self.message_of.get(number)
                self.group_info[key] = (
                    codes[code] if code is not None else "error",
                    read(*message) if message is not None else "",
                )
        info = self.group_info
        for row in missing:
            named = not self.id_nones[row]
            key = MISSING_KEY if named else UNREADABLE_KEY
            groups.setdefault(key, []).append(row)
            if key not in info:
                if not named:
                    info[key] = (key, "the input line has no readable custom_id")
                else:  # as its first row is missing: a merged line said so, or none
                    said = self.slot[row] != _NONE
                    info[key] = (key, NOT_RETURNED if said else NO_RESULT_LINE)
        return groups

    def _by_result(self, of: dict[int, int], typecode: str, none: int) -> array[int]:
        """A per-result column from the few results that have a value (``of``)."""
        column = array(typecode, [none]) * len(self.src_line)
        view: Any = memoryview(column)
        consume(map(operator.setitem, repeat(view), of.keys(), of.values()))
        view.release()
        return column

    def write(self, path: Path, signatures: list[dict[str, Any] | None]) -> None:
        """Write the index file (atomically: temp file, rename)."""
        for blob in (self.text_blob, *self.spilled):
            blob.file.flush()
        self.orphans = self._left_over()
        # the join is done: let it go before writing
        self.by_id, self.more_by_id, self.taken_ids, self.result_ids = {}, {}, set(), []
        # each row's outcome and source: its result's, none (at slot -1, the last) without
        if self.in_order and self.taken_in_order == len(self.slot):  # row i took result i
            self.outcomes, src = bytearray(self.result_outcomes), bytearray(self.result_src)
        else:
            self.outcomes = bytearray(
                map((self.result_outcomes + bytes([MISSING])).__getitem__, self.slot)
            )
            src = bytearray(map((self.result_src + bytes([_NO_SOURCE])).__getitem__, self.slot))
        found = {name: self._rows_of(code) for code, name in ((OK, "ok"), (FAILED, "failed"))}
        found["missing"] = self._rows_of(MISSING)
        groups = self._groups(found["failed"], found["missing"])
        pieces: list[tuple[str, str, Any]] = []  # (name, typecode, array / bytes / blob)
        add = pieces.append
        add(("outcome", "B", self.outcomes))
        add(("src", "B", src))
        messages = self.message_of
        for name, values in (
            # per row
            ("input_line", self.input_line),
            ("slot", self.slot),
            ("model", self.models.codes),
            ("provider", self.providers.codes),
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
            ("error_code", self._by_result(self.error_code_of, "i", _NONE)),
            ("batch_id", self.batch_ids.codes),
            ("round", self.rounds),
            (
                "error_message.starts",
                self._by_result({n: s for n, (s, _) in messages.items()}, "q", _NONE),
            ),
            (
                "error_message.lengths",
                self._by_result({n: size for n, (_, size) in messages.items()}, "i", 0),
            ),
        ):
            add((name, values.typecode, values))
        add(("custom_id.offsets", "q", self.id_offsets_file))
        add(("custom_id.none", "B", self.id_nones))
        add(("custom_id.blob", "B", self.id_blob))
        add(("text.blob", "B", self.text_blob))
        for number, ends in enumerate([self.input_ends, *self.result_ends]):
            add((f"ends.{number}", "q", ends))  # a blob of i64
        for name, rows in found.items():
            add((f"rows.{name}", "q", rows))
        group_list = []
        for number, (key, group_rows) in enumerate(groups.items()):
            add((f"group.{number}", "q", array("q", group_rows)))
            group_list.append([key, *self.group_info[key]])

        def size(item: Any) -> int:
            if isinstance(item, Blob):
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
                crc = write_piece(handle, item, crc)
            handle.seek(len(head) - len(placeholder))
            handle.write(placeholder.replace(b'"crc32":"00000000"', b'"crc32":"%08x"' % crc))
            handle.seek(0, os.SEEK_END)

    def _totals(self) -> dict[str, Any]:
        # the same sums as JoinedResults' properties, over the results that rows took: -1
        # marks a result without tokens, NaN one without a cost (fsum: the sum does not
        # depend on the order of the costs)
        costs = self.costs
        tokens = [sum(column) + column.count(_NONE) for column in (self.tokens_in, self.tokens_out)]
        if self.orphans:
            costs = array("d", costs)
            for number in self.orphans:
                tokens[0] -= max(self.tokens_in[number], 0)
                tokens[1] -= max(self.tokens_out[number], 0)
                costs[number] = math.nan
        kept = list(filterfalse(math.isnan, costs))
        return {
            "tokens_in": tokens[0],
            "tokens_out": tokens[1],
            "cost": repr(math.fsum(kept)) if kept else None,
        }


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
        # the results first: each input row then takes its result as it is read
        for kind, file in sorted(files, key=lambda named: named[0] == "input"):
            if kind == "input":
                builder.add_input(file, progress)
            else:
                builder.add_results(kind, file, progress)  # type: ignore[arg-type]
            done += file.stat().st_size
        builder.write(path, signatures)
    finally:
        builder.close()
    if on_progress is not None:
        on_progress(total, total)


__all__ = ["IndexBuilder", "Unindexable", "build_index"]
