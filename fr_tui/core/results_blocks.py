"""Whole blocks of ordinary lines, taken into a results index (results_build.py) in C.

At a million rows the index build is bound by the interpreter: every Python operation
per line counts. A block (about 1 MiB of whole lines) whose lines are all ordinary (every
request line an object with a string custom_id; every result line a
``resultline.OkLine``, or every one an ordinary error line, ``resultline.FailedLine``, or
every one a line of a job's merged file, ``resultline.MergedLine``) is decoded in one
``decode_lines`` call and taken apart with C loops (``map`` over ``attrgetter``,
``struct.pack``...), column by column. Anything else in a block (a blank line, a line
that is not one object, ok and error lines mixed) makes the functions here return False
having changed nothing, and the builder reads that block line by line. Both ways give the
same index (tests/test_results_index.py, tests/test_results_index_order.py).
"""

from __future__ import annotations

import math
import operator
import struct
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, compress, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.resultline import (
    _FIRST_LINE_MAX,
    FailedLine,
    MergedLine,
    OkLine,
    failure_of,
    parse_other_line,
)
from fr_tui.core.results_index import _NONE
from fr_tui.core.results_join import FAILED, MISSING, OK, group_key

# The builder is results_build.IndexBuilder (a category column: results_spill.Categories),
# typed Any here: results_build imports this module, not the other way round.
IndexBuilder = Any
_Categories = Any
_INT32 = 1 << 31
_BUFFER = 1 << 20
_ids = attrgetter("custom_id")
_providers = attrgetter("provider")
_bodies = attrgetter("body")
_models = attrgetter("model")
_responses = attrgetter("response")
_status_codes = attrgetter("status_code")
_usages = attrgetter("usage")
_prompt_tokens = attrgetter("prompt_tokens")
_completion_tokens = attrgetter("completion_tokens")
_costs = attrgetter("cost")
_first_choices = attrgetter("choices.first")
_finish_reasons = attrgetter("finish_reason")
_contents = attrgetter("message.content")
_errors = attrgetter("error")
_error_codes = attrgetter("code")
_messages = attrgetter("message")
_utf8 = operator.methodcaller("encode", "utf-8", "surrogatepass")


def first_line_utf8(content: str) -> bytes:
    """resultline.first_line of an answer, in UTF-8, copying only that line (answers are
    long: stripping or partitioning the whole text first would copy all of it)."""
    text = content.lstrip()
    cut = text.find("\n")
    line = text[:cut] if cut >= 0 else text
    return line.rstrip()[:_FIRST_LINE_MAX].encode("utf-8", "surrogatepass")


def append(column: array[Any], values: list[Any]) -> None:
    """``column.fromlist(values)`` in a third of the time: an array converts each item by
    parsing a format string, struct does not (a million-row build appends ten million)."""
    column.frombytes(struct.pack(f"{len(values)}{column.typecode}", *values))


def consume(iterator: Iterable[Any]) -> None:
    """Run an iterator (of C calls) to its end."""
    deque(iterator, maxlen=0)


_OPEN, _CLOSE = ord("{"), ord("}")


class Block:
    """Whole lines of a file, numbered from ``first``: ``data[start:end]``, each line
    ending with b"\\n" (at ``newlines``, offsets in ``data``), except the file's last line
    when it has none (then ``newlines`` is empty and the block is that line alone)."""

    __slots__ = ("data", "start", "end", "first", "newlines")

    def __init__(self, data: bytes, start: int, end: int, first: int, newlines: list[int]):
        self.data, self.start, self.end = data, start, end
        self.first, self.newlines = first, newlines

    def __len__(self) -> int:
        """How many lines."""
        return len(self.newlines) or 1

    def lines(self) -> list[bytes]:
        """The lines, without their b"\\n" (a b"\\r" stays: it is JSON whitespace)."""
        if not self.newlines:
            return [self.data[self.start : self.end]]
        return self.data[self.start : self.end - 1].split(b"\n")

    def one_object_a_line(self) -> bool:
        """Whether each line starts with "{" and ends with "}" followed by its b"\\n": then
        a decoder's ``decode_lines`` that reads the block gives one value per line (a line
        cannot end inside a value that the next line goes on with: "}" then "{" never
        follow each other within a JSON value). It reads a whole block in one call, far
        quicker than one call per line."""
        newlines, data = self.newlines, self.data
        if not newlines:
            return False
        # (itemgetter of a single index gives no tuple: each is given one index twice)
        closes: tuple[int, ...] = itemgetter(
            newlines[0] - 1, *map(operator.sub, newlines, repeat(1))
        )(data)
        opens: tuple[int, ...] = itemgetter(
            self.start, self.start, *map(operator.add, newlines[:-1], repeat(1))
        )(data)
        return closes.count(_CLOSE) == len(closes) and opens.count(_OPEN) == len(opens)

    def view(self) -> memoryview:
        return memoryview(self.data)[self.start : self.end]

    def line(self, index: int) -> bytes:
        """Line ``index`` of the block (as lines() gives it), without splitting them all."""
        if not self.newlines:
            return self.data[self.start : self.end]
        start = self.newlines[index - 1] + 1 if index else self.start
        return self.data[start : self.newlines[index]]


def read_blocks(path: Path, ends: array[int], progress: Callable[[int], None]) -> Iterator[Block]:
    """The lines of a file in blocks of about 1 MiB, recording each line's end offset in
    ``ends`` as LineIndex does, and telling ``progress`` the bytes read. The blocks are
    the file's reads themselves, not copies: a line cut by the end of a read is a block
    of its own."""
    position = 0  # of the first byte not yet in a block
    number = 0
    carry: list[bytes] = []  # the start of a line cut by the end of a read
    with open(path, "rb", buffering=0) as handle:
        while data := handle.read(_BUFFER):
            find = data.find
            at = find(b"\n")
            if at < 0:
                carry.append(data)
                continue
            if carry:  # the line that this read ends
                head = b"".join([*carry, data[: at + 1]])
                carry = []
                position += len(head)
                ends.append(position - 1)
                yield Block(head, 0, len(head), number, [len(head) - 1])
                number += 1
                start = at + 1
                at = find(b"\n", start)
            else:
                start = 0
            newlines: list[int] = []
            add = newlines.append
            while at >= 0:
                add(at)
                at = find(b"\n", at + 1)
            if newlines:
                end = newlines[-1] + 1
                append(ends, list(map(operator.add, newlines, repeat(position - start))))
                yield Block(data, start, end, number, newlines)
                number += len(newlines)
                position += end - start
            else:
                end = start
            if end < len(data):
                carry.append(data[end:])
            progress(position)
    if carry:  # a last line without its b"\n"
        last = b"".join(carry)
        ends.append(position + len(last))
        yield Block(last, 0, len(last), number, [])
        progress(position + len(last))


def _code_list(
    categories: _Categories, values: list[Any], falsy_is_none: bool = False
) -> list[int]:
    """The code of each value in ``categories`` (new values are given one; None: none)."""
    codes = list(map(categories.lookup.get, values))
    if None in codes:  # a value not seen before, or "" read as none
        code = categories.code
        for index, value in enumerate(values):
            if codes[index] is None:
                codes[index] = code(value) if value or not falsy_is_none else _NONE
    return codes


def _codes(categories: _Categories, values: list[Any], falsy_is_none: bool = False) -> None:
    """Append the code of each value (None: none) to ``categories``."""
    append(categories.codes, _code_list(categories, values, falsy_is_none))


def take_inputs(builder: IndexBuilder, block: Block) -> bool:
    """Add a block of request lines; False (and nothing added) unless each is an object
    with a string custom_id whose provider and model, if any, are strings."""
    count = len(block)
    if block.first + count >= _INT32 or not block.one_object_a_line():
        return False
    try:
        rows = _decode_plain_inputs(block.view())
    except (msgspec.DecodeError, RecursionError):
        return False
    bodies = list(map(_bodies, rows))
    if len(rows) != count or None in bodies:
        return False
    append(builder.input_line, list(range(block.first, block.first + count)))
    _codes(builder.providers, list(map(_providers, rows)))
    _codes(builder.models, list(map(_models, bodies)))
    ids = list(map(_ids, rows))
    builder.id_nones.extend(bytes(count))
    builder.add_ids(ids)
    append(builder.slot, builder.take_all(ids))
    return True


class _PlainBody(msgspec.Struct, gc=False):
    model: str | None = None


class _PlainInput(msgspec.Struct, gc=False):
    """A request line as read_input_line reads it, when its custom_id is a string and its
    provider and model are strings or absent (msgspec checks the types)."""

    custom_id: str
    provider: str | None = None
    body: _PlainBody | None = None


_decode_plain_inputs = msgspec.json.Decoder(_PlainInput).decode_lines
_decode_ok_lines = msgspec.json.Decoder(OkLine).decode_lines
_decode_failed_lines = msgspec.json.Decoder(FailedLine).decode_lines
_decode_merged_lines = msgspec.json.Decoder(MergedLine).decode_lines


def take_results(builder: IndexBuilder, source: int, block: Block) -> bool:
    """Add a block of result lines; False (and nothing added) unless each is an OkLine,
    or each a FailedLine."""
    count = len(block)
    if block.first + count >= _INT32 or not block.one_object_a_line():
        return False
    try:
        results = _decode_ok_lines(block.view())
    except (msgspec.DecodeError, RecursionError):
        return _take_errors(builder, source, block) or _take_merged(builder, source, block)
    if len(results) != count:
        return False
    _arrived(builder, source, block, results)
    _no_job_fields(builder, count)
    builder.result_outcomes += bytes((OK,)) * count
    responses = list(map(_responses, results))
    append(builder.status, list(map(_status_codes, responses)))
    bodies = list(map(_bodies, responses))
    _codes(builder.result_models, list(map(_models, bodies)), falsy_is_none=True)
    usages = list(map(_usages, bodies))
    append(builder.tokens_in, list(map(_prompt_tokens, usages)))
    append(builder.tokens_out, list(map(_completion_tokens, usages)))
    append(builder.costs, list(map(_costs, usages)))
    choices = list(map(_first_choices, bodies))
    _codes(builder.finish_reasons, list(map(_finish_reasons, choices)))
    # each answer's first line (resultline.first_line), into the text blob
    data = list(map(first_line_utf8, map(_contents, choices)))
    contents = builder.contents
    append(contents.starts, list(_add_texts(builder.text_blob, data)))
    append(contents.lengths, list(map(len, data)))
    return True


def _arrived(builder: IndexBuilder, source: int, block: Block, results: list[Any]) -> None:
    """Note the custom_ids, file and lines of a block of results."""
    builder.result_ids += map(_ids, results)
    builder.result_src.extend(bytes((source,)) * len(results))
    append(builder.src_line, list(range(block.first, block.first + len(results))))


def _add_texts(blob: Any, data: list[bytes]) -> Iterable[int]:
    """Append ``data`` to the text blob; where each piece starts."""
    starts = accumulate(map(len, data[:-1]), initial=blob.size)
    text = b"".join(data)
    blob.file.write(text)
    blob.size += len(text)
    return starts


def _take_errors(builder: IndexBuilder, source: int, block: Block) -> bool:
    """take_results of a block of FailedLines: failed results, with only a status, an
    error code and a message (the last two kept by row, as _add_result keeps them)."""
    try:
        results = _decode_failed_lines(block.view())
    except (msgspec.DecodeError, RecursionError):
        return False
    if len(results) != len(block):
        return False
    failures = list(map(failure_of, results))
    if None in failures:
        return False
    statuses, codes, messages = (list(column) for column in zip(*failures, strict=True))
    known = [status for status in statuses if status is not None]
    if known and (min(known) < 0 or max(known) >= _INT32):
        return False  # read line by line, _add_result says why (Unindexable)
    count = len(results)
    first = len(builder.src_line)
    _arrived(builder, source, block, results)
    _no_job_fields(builder, count)
    builder.result_outcomes += bytes((FAILED,)) * count
    append(builder.status, [_NONE if status is None else status for status in statuses])
    for column in (
        builder.result_models.codes,
        builder.tokens_in,
        builder.tokens_out,
        builder.finish_reasons.codes,
        builder.contents.starts,
    ):
        append(column, [_NONE] * count)
    append(builder.costs, [math.nan] * count)
    append(builder.contents.lengths, [0] * count)
    numbers = range(first, first + count)
    builder.error_code_of.update(zip(numbers, _code_list(builder.error_codes, codes), strict=True))
    data = list(map(_utf8, messages))
    builder.message_of.update(
        zip(
            numbers,
            zip(_add_texts(builder.text_blob, data), map(len, data), strict=True),
            strict=True,
        )
    )
    keys = _code_list(builder.group_keys, list(map(group_key, codes, messages)))
    builder.failure_of.update(zip(numbers, keys, strict=True))
    return True


def _no_job_fields(builder: IndexBuilder, count: int) -> None:
    """A batch's result lines name no batch and no round."""
    nones = array("i", [_NONE]) * count
    builder.batch_ids.codes += nones
    builder.rounds += nones


_OUTCOME_CODES = {"ok": OK, "failed": FAILED, "missing": MISSING}
_rounds = attrgetter("round")
_batch_ids = attrgetter("batch_id")
_outcomes = attrgetter("outcome")


def _get(values: Iterable[Any], name: str, default: Any = None) -> list[Any]:
    """``getattr(value, name, default)`` of each value (in C); a None value gives
    ``default``, as a field that parse_other_line finds missing."""
    return list(map(getattr, values, repeat(name), repeat(default)))


def _take_merged(builder: IndexBuilder, source: int, block: Block) -> bool:
    """take_results of a block of a job's merged lines (resultline.MergedLine), in the
    order of its input: its rows' fields are taken apart in C, as an ordinary block's;
    what a failed row says (its code and message), and the first line of an answer that
    is not a chat message, row by row, from a failure's ordinary shapes or else from
    parse_other_line."""
    count = len(block)
    try:
        rows = _decode_merged_lines(block.view())
    except (msgspec.DecodeError, RecursionError):
        return False
    if len(rows) != count:
        return False
    responses = list(map(_responses, rows))
    statuses = _get(responses, "status_code")
    rounds = list(map(_rounds, rows))
    for numbers in (statuses, rounds):  # None, or what the index's i32 columns hold
        known = [number for number in numbers if number is not None]
        if known and (min(known) < 0 or max(known) >= _INT32):
            return False  # read line by line, _add_result says why (Unindexable)
    first = len(builder.src_line)
    _arrived(builder, source, block, rows)
    codes = bytes(map(_OUTCOME_CODES.__getitem__, map(_outcomes, rows)))
    builder.result_outcomes += codes
    append(builder.status, [_NONE if number is None else number for number in statuses])
    append(builder.rounds, [_NONE if number is None else number for number in rounds])
    _codes(builder.batch_ids, list(map(_batch_ids, rows)))
    bodies = _get(responses, "body")
    _codes(builder.result_models, _get(bodies, "model"), falsy_is_none=True)
    usages = _get(bodies, "usage")
    append(builder.tokens_in, _get(usages, "prompt_tokens", _NONE))
    append(builder.tokens_out, _get(usages, "completion_tokens", _NONE))
    append(builder.costs, _get(usages, "cost", math.nan))
    choices = _get(_get(bodies, "choices"), "first")
    _codes(builder.finish_reasons, _get(choices, "finish_reason"))
    # an ok row's chat answer: its first line; the other rows' "" is replaced below
    data = list(map(first_line_utf8, _get(_get(choices, "message"), "content", "")))
    starts = list(_add_texts(builder.text_blob, data))
    lengths = list(map(len, data))
    # the rows that are not ok (OK is 0), or have no chat answer
    odd = compress(range(count), map(operator.or_, codes, map(operator.not_, choices)))
    for at in odd:
        outcome = codes[at]
        if outcome == MISSING:
            starts[at] = _NONE  # nothing else: parse_other_line stops at the outcome
            continue
        if outcome == FAILED and _failure_of_merged(builder, rows[at], first + at):
            starts[at] = _NONE
            continue
        parsed = parse_other_line(block.line(at))
        text = parsed.content_first_line if outcome == OK else None
        starts[at], lengths[at] = builder.text_blob.add(text) if text is not None else (_NONE, 0)
        if outcome == FAILED:
            _note_failure(builder, first + at, parsed.error_code, parsed.error_message)
    append(builder.contents.starts, starts)
    append(builder.contents.lengths, lengths)
    return True


def _failure_of_merged(builder: IndexBuilder, row: MergedLine, number: int) -> bool:
    """Note the code and message of a failed merged row of an ordinary shape (as
    failure_of reads an error file's line); False when it is of another."""
    response, error = row.response, row.error
    if response is None:
        if error is None:
            return False
        _note_failure(builder, number, error.code, error.message)
        return True
    status, body = response.status_code, response.body
    if error is not None or status is None or 200 <= status < 300 or body is None:
        return False
    if body.error is None or body.model is not None or body.usage or body.choices:
        return False
    _note_failure(builder, number, body.error.code, body.error.message)
    return True


def _note_failure(builder: IndexBuilder, number: int, code: Any, message: Any) -> None:
    """The code, message and error group of failed result ``number`` (as _add_result
    notes them)."""
    builder.error_code_of[number] = builder.error_codes.code(code)
    builder.message_of[number] = builder.text_blob.add(message)
    builder.failure_of[number] = builder.group_keys.code(group_key(code, message))


__all__ = ["Block", "append", "consume", "read_blocks", "take_inputs", "take_results"]
