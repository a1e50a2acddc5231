"""One line of a batch's output or error file, classified: succeeded or failed, why, and
the few fields the results table shows (model, tokens, cost, the answer's first line).

The rules (api-notes 2.7, issues 1-3): a request succeeded only when `error` is null and
`response.status_code` is 2xx; an HTTP failure may sit in the error file with
`error: null` and its reason in `response.body.error`. `results.py` joins these parsed
lines to the input rows.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from fr_tui.core.models import usage_cost

_FIRST_LINE_MAX = 300
# Longest error message kept for a line that has no readable one (and for group keys).
_GROUP_MESSAGE_MAX = 160


@dataclass(slots=True)
class ParsedResult:
    """The compact fields of one output/error line. `problem` is set (and the rest is
    empty) when the line cannot be used: not JSON, not an object, no custom_id."""

    custom_id: str | None = None
    ok: bool = False
    status_code: int | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str | None = None
    content_first_line: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cost: float | None = None
    problem: str | None = None
    answer_hash: int = 0  # see answer_hash(); 0 when there is no answer
    # set by the lines of a job's merged result file only
    outcome: str | None = None  # "ok" / "failed" / "missing": wins over the response
    batch_id: str | None = None
    round: int | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices:
        return _dict(choices[0])
    return None


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts (OpenAI) or blocks (Anthropic)
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return "".join(texts) if texts else None
    return None


def answer_text(body: Any) -> str | None:
    """The full answer in a response body: the assistant message, the completion text, an
    embedding summary like "embedding[1536]", or the tool calls made. None if none."""
    body = _dict(body)
    if body is None:
        return None
    choice = _first_choice(body)
    if choice is not None:
        message = _dict(choice.get("message"))
        if message is not None:
            text = _text_of(message.get("content"))
            if text:
                return text
            calls = message.get("tool_calls")
            if isinstance(calls, list) and calls:
                names = []
                for call in calls:
                    function = _dict(call.get("function")) if isinstance(call, dict) else None
                    names.append(_str(function.get("name")) if function else None)
                return "[tool calls] " + ", ".join(n or "?" for n in names)
            return text
        return _str(choice.get("text"))
    data = body.get("data")
    if isinstance(data, list) and data:
        first = _dict(data[0])
        vector = first.get("embedding") if first else None
        if isinstance(vector, list):
            summary = f"embedding[{len(vector)}]"
        elif isinstance(vector, str):
            summary = "embedding[base64]"
        else:
            return None
        return summary if len(data) == 1 else f"{summary} x{len(data)}"
    return _text_of(body.get("content"))  # an Anthropic-shaped message


def answer_hash(body: Any) -> int:
    """An 8-byte hash of the normalised full answer, so two answers compare without being
    read again (compare, issue 13): a chat answer's text with whitespace collapsed, or its
    canonical JSON (sorted keys) when the text is a JSON object or array; an embedding's
    vectors as little-endian doubles. 0 when there is no answer."""
    body = _dict(body)
    if body is None:
        return 0
    data = body.get("data")
    payload: bytes | None = None
    if isinstance(data, list) and data and _first_choice(body) is None:
        vectors = []
        for item in data:
            vector = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(vector, str):
                vectors.append(vector.encode())
            elif isinstance(vector, list):
                try:
                    vectors.append(struct.pack(f"<{len(vector)}d", *vector))
                except (struct.error, TypeError, OverflowError):
                    return 0
        payload = b"\0".join(vectors) if vectors else None
    else:
        text = answer_text(body)
        if text is None:
            return 0
        return text_hash(text)
    if payload is None:
        return 0
    return _digest(payload)


# ASCII whitespace as str.split() knows it, each made a space (for text_hash)
_ASCII_SPACES = bytes.maketrans(b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", b" " * 9)


def text_hash(text: str) -> int:
    """answer_hash of a text answer: its canonical JSON when it is a JSON object or
    array, else the text with every run of whitespace made one space (and none at the
    ends), as ``" ".join(text.split())``."""
    payload: bytes | None = None
    first = text[:1]
    if first.isspace():
        first = text.lstrip()[:1]
    if first == "{" or first == "[":
        try:
            payload = msgspec.json.encode(msgspec.json.decode(text), order="sorted")
        except (msgspec.DecodeError, RecursionError):
            payload = None
    if payload is None:
        if text.isascii():
            # the same result as the split and join below, with a few C-speed passes
            # over the bytes instead of a list of every word (a third of the time)
            payload = text.encode().translate(_ASCII_SPACES)
            while b"  " in payload:
                payload = payload.replace(b"  ", b" ")
            payload = payload.strip(b" ")
        else:
            payload = " ".join(text.split()).encode("utf-8", "surrogatepass")
    return _digest(payload)


class _AnswerMessage(msgspec.Struct, gc=False):
    content: Any = None


class _AnswerChoice(msgspec.Struct, gc=False):
    message: _AnswerMessage | None = None


class _AnswerBody(msgspec.Struct, gc=False):
    choices: list[_AnswerChoice] | None = None


class _AnswerResponse(msgspec.Struct, gc=False):
    body: _AnswerBody | None = None


class _AnswerLine(msgspec.Struct, gc=False):
    response: _AnswerResponse | None = None


_decode_answer_line = msgspec.json.Decoder(_AnswerLine).decode


def answer_hash_of_line(raw: bytes) -> int:
    """The ``answer_hash`` that ``parse_result_line(raw)`` gives a line already known to
    be a sound ok result (the stored results index computes these on first use). A plain
    chat answer is read by decoding just its text; anything else is parsed in full."""
    try:
        choices = _decode_answer_line(raw).response.body.choices  # type: ignore[union-attr]
        content = choices[0].message.content  # type: ignore[index, union-attr]
    except (msgspec.DecodeError, RecursionError, AttributeError, IndexError, TypeError):
        content = None
    if type(content) is str and content:
        return text_hash(content)
    return parse_result_line(raw).answer_hash


def _digest(payload: bytes) -> int:
    digest = hashlib.blake2b(payload, digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1


def first_line(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    cut = text.find("\n")
    line = text if cut < 0 else text[:cut].rstrip()
    return line[:_FIRST_LINE_MAX]


def _error_fields(error: Any) -> tuple[str | None, str | None]:
    if isinstance(error, dict):
        code = _str(error.get("code")) or _str(error.get("type"))
        message = _str(error.get("message"))
        return code, message
    if isinstance(error, str):
        return None, error
    return None, None


# -- the lines read without a full parse ------------------------------------------
#
# msgspec decodes a line into these types in C, reading only the fields fr-tui uses and
# skipping the rest unparsed (ids, logprobs...). Both joins (the in-memory one and the
# stored index) read lines through these, so they agree on every line; a field fr-tui
# does not read cannot make a line unreadable (msgspec does not look into it).


class _OkMessage(msgspec.Struct, gc=False):
    content: Annotated[str, msgspec.Meta(min_length=1)]


class _OkChoice(msgspec.Struct, gc=False):
    message: _OkMessage
    finish_reason: str | None = None


_Count = Annotated[int, msgspec.Meta(ge=0, lt=1 << 62)]


class _OkUsage(msgspec.Struct, gc=False):
    prompt_tokens: _Count
    completion_tokens: _Count
    cost: float  # an int too


class _OkChoices(msgspec.Struct, array_like=True, gc=False):
    """The choices, of which (as parse_other_line does) only the first is read: no list
    per line (a list is a GC-tracked object: a million of them set the cyclic collector
    going over and over while a results index is built)."""

    first: _OkChoice


class _OkBody(msgspec.Struct, gc=False):
    choices: _OkChoices
    usage: _OkUsage
    model: str | None = None


class _OkResponse(msgspec.Struct, gc=False):
    status_code: Annotated[int, msgspec.Meta(ge=200, le=299)]
    body: _OkBody


class OkLine(msgspec.Struct, gc=False):
    """The ordinary successful chat result line: a 2xx response with a text answer,
    token counts and a cost, and no error. A job's merged line (it has an ``outcome``)
    is not one."""

    custom_id: str
    response: _OkResponse
    error: None
    outcome: msgspec.UnsetType = msgspec.UNSET


_decode_ok_line = msgspec.json.Decoder(OkLine).decode


class _ErrorDetail(msgspec.Struct, gc=False):
    code: Annotated[str, msgspec.Meta(min_length=1)]
    message: str = ""  # parse_other_line makes an absent message "" (no status)


class _HttpErrorDetail(msgspec.Struct, gc=False):
    code: Annotated[str, msgspec.Meta(min_length=1)]
    message: str  # absent, parse_other_line would make it "HTTP <status>"


class _HttpFailureBody(msgspec.Struct, gc=False):
    error: _HttpErrorDetail
    # what parse_other_line would read from a body: a failure with any of them is not one
    model: msgspec.UnsetType = msgspec.UNSET
    usage: msgspec.UnsetType = msgspec.UNSET
    cost: msgspec.UnsetType = msgspec.UNSET
    choices: msgspec.UnsetType = msgspec.UNSET


class _HttpFailure(msgspec.Struct, gc=False):
    status_code: int
    body: _HttpFailureBody


class FailedLine(msgspec.Struct, gc=False):
    """The ordinary line of an error file, when it is one of two: no response and an
    error with a code (and a message); or no error and a response whose status is not
    2xx, whose body has only an error with a code and a message. ``parse_other_line``
    gives it: failed, that status (or none), that code and message, nothing else. The
    decoder does not check "one of the two" or the status: see ``failure_of``. A job's
    merged line (it has an ``outcome``) is not one."""

    custom_id: str
    response: _HttpFailure | None = None
    error: _ErrorDetail | None = None
    outcome: msgspec.UnsetType = msgspec.UNSET


_decode_failed_line = msgspec.json.Decoder(FailedLine).decode


class _MergedBody(msgspec.Struct, gc=False):
    """A merged line's response body: an answer's fields, or an HTTP failure's error.
    A field left out reads as null does in parse_other_line; a cost beside the usage
    (which parse_other_line would read) makes the line not a MergedLine."""

    choices: _OkChoices | None = None
    usage: _OkUsage | None = None
    model: str | None = None
    error: _HttpErrorDetail | None = None
    cost: msgspec.UnsetType = msgspec.UNSET


class _MergedResponse(msgspec.Struct, gc=False):
    status_code: int | None = None
    body: _MergedBody | None = None


class MergedLine(msgspec.Struct, gc=False):
    """The line of a job's merged result file (its ``outcome`` decides), when each field
    parse_other_line reads is of the type it keeps as is: then status, model, tokens,
    cost and finish reason are read from it as parse_other_line reads them. What it says
    of a failure (code, message) and an answer's first line are taken from it only for
    the ordinary shapes (results_blocks._take_merged); any other row is parsed in full."""

    custom_id: str
    outcome: Literal["ok", "failed", "missing"]
    batch_id: str | None = None
    round: int | None = None
    response: _MergedResponse | None = None
    error: _ErrorDetail | None = None


def failure_of(line: FailedLine) -> tuple[int | None, str, str] | None:
    """The status, error code and message of a ``FailedLine``; None when it is neither
    of the two ordinary shapes (parse it in full)."""
    response, error = line.response, line.error
    if response is None:
        return None if error is None else (None, error.code, error.message)
    status = response.status_code
    if error is not None or 200 <= status < 300:
        return None
    detail = response.body.error
    return status, detail.code, detail.message


def read_ok_line(raw: bytes) -> OkLine | None:
    """The line as an ``OkLine``, or None when it is anything else (parse it in full)."""
    try:
        return _decode_ok_line(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


class _InputBody(msgspec.Struct, gc=False):
    model: Any = None


class _InputLine(msgspec.Struct, gc=False):
    custom_id: Any = None
    provider: Any = None
    body: _InputBody | None = None


_decode_input_line = msgspec.json.Decoder(_InputLine).decode


def read_input_line(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """The custom_id (a number made text), provider and model of a request line, each
    None when it is absent or not usable (the whole line is not JSON, not an object)."""
    try:
        line = _decode_input_line(raw)
        custom_id, provider, body = line.custom_id, line.provider, line.body
        model = body.model if body is not None else None
    except (msgspec.DecodeError, RecursionError):  # e.g. a body that is not an object
        try:
            obj = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            return None, None, None
        if not isinstance(obj, dict):
            return None, None, None
        custom_id, provider, body = obj.get("custom_id"), obj.get("provider"), obj.get("body")
        model = body.get("model") if isinstance(body, dict) else None
    if type(custom_id) is not str:
        custom_id = str(custom_id) if type(custom_id) is int else None
    return custom_id, _str(provider), _str(model)


def parse_ok_line(line: OkLine) -> ParsedResult:
    """What ``parse_result_line`` says of an ``OkLine``."""
    body = line.response.body
    choice = body.choices.first
    content = choice.message.content
    return ParsedResult(
        custom_id=line.custom_id,
        ok=True,
        status_code=line.response.status_code,
        model=body.model,
        tokens_in=body.usage.prompt_tokens,
        tokens_out=body.usage.completion_tokens,
        finish_reason=choice.finish_reason,
        content_first_line=first_line(content),
        cost=body.usage.cost,
        answer_hash=text_hash(content),
    )


def parse_result_line(raw: bytes) -> ParsedResult:
    """Classify one line of an output or error file. Never raises."""
    ok_line = read_ok_line(raw)
    if ok_line is not None:
        return parse_ok_line(ok_line)
    return parse_other_line(raw)


def parse_other_line(raw: bytes) -> ParsedResult:
    """``parse_result_line`` of a line that ``read_ok_line`` does not take."""
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return ParsedResult(problem="not valid JSON")
    if not isinstance(obj, dict):
        return ParsedResult(problem="not a JSON object")
    custom_id = obj.get("custom_id")
    if isinstance(custom_id, int) and not isinstance(custom_id, bool):
        custom_id = str(custom_id)
    if not isinstance(custom_id, str):
        return ParsedResult(problem="no custom_id")
    result = ParsedResult(custom_id=custom_id)
    outcome = obj.get("outcome")
    if outcome in ("ok", "failed", "missing"):  # a line of a job's merged result file
        result.outcome = outcome
        result.batch_id = _str(obj.get("batch_id"))
        result.round = _int(obj.get("round"))
    response = _dict(obj.get("response"))
    error = obj.get("error")
    body: Any = None
    if response is not None:
        result.status_code = _int(response.get("status_code"))
        body = response.get("body")
        if isinstance(body, str | bytes):  # some servers send the body JSON-encoded
            try:
                body = msgspec.json.decode(body)
            except (msgspec.DecodeError, RecursionError):
                pass
    body_dict = _dict(body)
    if body_dict is not None:
        result.model = _str(body_dict.get("model"))
        usage = _dict(body_dict.get("usage"))
        if usage is not None:
            result.tokens_in = _int(usage.get("prompt_tokens"))
            if result.tokens_in is None:
                result.tokens_in = _int(usage.get("input_tokens"))
            result.tokens_out = _int(usage.get("completion_tokens"))
            if result.tokens_out is None:
                result.tokens_out = _int(usage.get("output_tokens"))
            result.cost = usage_cost(usage)
        if result.cost is None:
            cost = body_dict.get("cost")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                result.cost = float(cost)
        choice = _first_choice(body_dict)
        if choice is not None:
            result.finish_reason = _str(choice.get("finish_reason"))
    status = result.status_code
    if result.outcome == "missing":
        return result
    if (
        (error is None and response is not None and status is not None and 200 <= status < 300)
        if result.outcome is None
        else result.outcome == "ok"
    ):
        result.ok = True
        result.content_first_line = first_line(answer_text(body_dict))
        result.answer_hash = answer_hash(body_dict)
        return result
    code, message = _error_fields(error)
    if code is None and message is None and body_dict is not None:
        code, message = _error_fields(body_dict.get("error"))
    if code is None and message is None:
        if error is not None:
            message = str(error)[:_GROUP_MESSAGE_MAX]
        elif response is None:
            code, message = "no_response", "the line has neither a response nor an error"
        elif status is None:
            code, message = "no_status", "the response has no status_code"
    if code is None:
        code = f"http_{status}" if status is not None and not 200 <= status < 300 else "error"
    if message is None:
        message = f"HTTP {status}" if status is not None else ""
    result.error_code = code
    result.error_message = message
    return result


__all__ = [
    "ParsedResult",
    "answer_hash",
    "answer_hash_of_line",
    "read_input_line",
    "read_ok_line",
    "answer_text",
    "first_line",
    "parse_other_line",
    "parse_result_line",
    "text_hash",
]
