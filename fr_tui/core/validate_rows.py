"""The full checks of one request row: the slow path of the batch-file validator.

``Validator`` (validate.py) parses each line and checks an entirely ordinary row in its
fast path; every other row comes here, where each thing wrong with it is explained. The
row's statistics and token estimate are the validator's (``Validator._slow_row``). These
methods live in a mixin so that the call from the hot loop stays one plain method call.
"""

from __future__ import annotations

import re
from array import array
from typing import TYPE_CHECKING, Any

import msgspec

from fr_tui.core.validate_file import BOM
from fr_tui.core.validate_report import ProblemLog

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"
SUPPORTED_URLS = (CHAT_URL, EMBEDDINGS_URL)

# Batch provider slugs. FastRouter documents "openai" and "anthropic" for batches; its
# models also use "google/" (Gemini batch support is announced), and the others are the
# prefixes FastRouter's model catalogue uses. Anything else is only a warning, because
# the documented list is known to be incomplete.
# "sandbox" is fr-tui's own embedded server (its fault models are "sandbox/...").
KNOWN_PROVIDERS: frozenset[str] = frozenset(
    {
        "openai",
        "anthropic",
        "google",
        "x-ai",
        "mistralai",
        "meta-llama",
        "deepseek",
        "qwen",
        "sandbox",
    }
)

KNOWN_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOP_LEVEL_KEYS = frozenset({"custom_id", "provider", "method", "url", "body"})

# msgspec's parse errors, in words a person who is not a parser writer understands.
_JSON_REASONS = {
    "Input data was truncated": 'the line ends before the JSON is complete (a missing } ] or ")',
    "trailing characters": "there is more text after the JSON object (two requests on one line?)",
    "object keys must be strings": "keys must be in double quotes",
    "trailing comma in object": "a comma before } or ] is not allowed in JSON",
    "trailing comma in array": "a comma before } or ] is not allowed in JSON",
    "Number out of range": "a number is too large",
}
_CONTROL_CHARACTER = "a string is not closed, or holds a raw tab or control character"
# msgspec says "truncated" for a \ud800 escape without its pair
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
_SURROGATE = "a \\u escape is half of a surrogate pair, which is no character"
# "JSON is malformed: invalid character (byte 7)" -> the reason and the byte offset
_JSON_ERROR = re.compile(r"(?:JSON is malformed: )?(.*?)(?: \(byte (\d+)\))?")


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


def explain_parse_error(
    raw: bytes, text: str, exc: msgspec.DecodeError | RecursionError
) -> tuple[str, int]:
    """Why the line ``raw`` (``text`` decoded) is not JSON, in plain words, and the
    1-based column (in characters) where a person should look."""
    end = len(text.rstrip("\r\n"))
    column = end  # past the end means "at the end of the line"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply", column + 1
    message = str(exc).split(" - at `")[0]  # a ValidationError names a path
    found = _JSON_ERROR.fullmatch(message)
    reason = found.group(1) if found else message
    if reason == "Input data was truncated" and _LONE_SURROGATE.search(raw):
        reason = _SURROGATE
    if found and found.group(2) is not None:
        at = int(found.group(2))  # a byte offset: the column counts characters
        column = min(len(raw[:at].decode("utf-8", "replace")), end)
        if reason == "invalid character" and raw[at : at + 1] < b" ":
            reason = _CONTROL_CHARACTER
    return _JSON_REASONS.get(reason, reason), column + 1


class RowChecks(ProblemLog):
    """The full checks of one request row, mixed into ``Validator``, which owns the state
    declared here and records problems through ``_flag``."""

    id_hashes: array[int]
    blank_line_numbers: list[int]
    endpoint: str | None
    endpoint_line: int
    providers: dict[str, int]
    slow_models: dict[str, int]
    model_prefix: dict[str, str]
    model_stats: dict[str, list[Any]]

    if TYPE_CHECKING:

        def _note_id(self, custom_id: str) -> None: ...

    def _unparsable(
        self, line_no: int, raw: bytes, exc: msgspec.DecodeError | RecursionError
    ) -> Any:
        """Report why a line did not parse; return the object if it parses after a BOM.
        Returns None (and records the line) for a blank line or an unparsable request."""
        if not raw.strip():
            self.id_hashes.append(0)
            self.blank_line_numbers.append(line_no)
            self._flag(line_no, "blank_line", "This line is blank; it is not a request.")
            return None
        if line_no == 1 and raw.startswith(BOM):
            self._flag(
                1,
                "bom",
                "The file starts with a UTF-8 byte order mark (BOM), which the server "
                "cannot parse as JSON.",
                column=1,
            )
            raw = raw[len(BOM) :]
            if not raw.strip():
                self.id_hashes.append(0)
                self.blank_line_numbers.append(line_no)
                return None
            try:
                return msgspec.json.decode(raw)
            except (msgspec.DecodeError, RecursionError) as inner:
                exc = inner
        self.id_hashes.append(0)
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
            return None
        reason, column = explain_parse_error(raw, text, exc)
        self._flag(
            line_no, "invalid_json", f"This line is not valid JSON: {reason}.", column=column
        )
        return None

    def _missing_or_invalid(
        self, line_no: int, container: dict[str, Any], key: str, label: str, expected: str
    ) -> None:
        """Report a required field that is absent (missing_KEY) or wrong (invalid_KEY)."""
        if key not in container:
            self._flag(line_no, f"missing_{key}", f"{label} is missing; it must be {expected}.")
        else:
            value = container[key]
            shown = (
                msgspec.json.encode(value).decode()[:60] if type(value) is str else _describe(value)
            )
            message = f"{label} must be {expected}, not {shown}."
            self._flag(line_no, f"invalid_{key}", message)

    def _check_row(
        self, line_no: int, obj: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None, int | None]:
        """Check a row; return its body (if an object), model and max_tokens (if usable).

        Appends the row's custom_id hash to ``id_hashes`` (0 when it has none): duplicates
        are found from those hashes when the file ends (validate.py)."""
        # custom_id: a non-empty string (unique: checked at the end).
        custom_id = obj.get("custom_id")
        if type(custom_id) is str and custom_id:
            self.id_hashes.append(hash(custom_id) or 1)
            self._note_id(custom_id)
        else:
            self.id_hashes.append(0)
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
        max_tokens: int | None = None
        if type(body) is dict:
            # A line whose url differs from the file's already has its error; checking
            # its body against either endpoint would only add noise, so skip the shape.
            shape = None if url in SUPPORTED_URLS and url != self.endpoint else self.endpoint
            model, max_tokens = self._check_body(line_no, body, shape)
        else:
            body = None
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
                    # the fast path takes this model's rows with this provider from now on
                    self.model_stats[model][0] = provider
                elif prefix and prefix != provider:
                    self._flag(
                        line_no,
                        "provider_model_mismatch",
                        f'provider is "{provider}" but the model "{model}" belongs to "{prefix}".',
                    )
        elif "provider" not in obj:
            # say where it goes, and which one the model names ("provider" inside body is
            # the usual slip: the request's provider sits beside custom_id)
            slip = type(body) is dict and "provider" in body
            where = " at the top level of the request (it is inside body)" if slip else ""
            prefix = model.partition("/")[0] if model is not None and "/" in model else ""
            which = f'; add "provider": "{prefix}" beside custom_id' if prefix else ""
            self._flag(line_no, "missing_provider", f"provider is missing{where}{which}.")
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
        return body, model, max_tokens

    def _check_body(
        self, line_no: int, body: dict[str, Any], url: str | None
    ) -> tuple[str | None, int | None]:
        """Check body; return the model name when it is a usable string, and max_tokens
        when it is a usable number."""
        model = body.get("model")
        result: str | None = None
        if type(model) is str and model:
            result = model
            self.slow_models[model] = self.slow_models.get(model, 0) + 1
            if model not in self.model_stats:
                self.model_stats[model] = [None, 0, 0, -1, -1]
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
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens <= 0):
            self._flag(
                line_no,
                "invalid_max_tokens",
                f"max_tokens must be a positive whole number, not {msgspec.json.encode(max_tokens).decode()}.",
            )
            max_tokens = None

        if url == CHAT_URL:
            self._check_messages(line_no, body)
        elif url == EMBEDDINGS_URL:
            self._check_input(line_no, body)
        return result, max_tokens

    def _check_messages(self, line_no: int, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if type(messages) is not list or not messages:
            expected = "a non-empty list of messages"
            self._missing_or_invalid(line_no, body, "messages", "body.messages", expected)
            return
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
            if type(content) is str or type(content) is list:
                pass
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

    def _check_input(self, line_no: int, body: dict[str, Any]) -> None:
        value = body.get("input")
        if type(value) is str:
            if not value:
                self._flag(line_no, "empty_input", "body.input is an empty string.")
            return
        if type(value) is list and value:
            for item in value:
                if type(item) is not str and type(item) is not int and type(item) is not list:
                    self._flag(
                        line_no,
                        "invalid_input",
                        f"body.input items must be strings or token lists, not {_describe(item)}.",
                    )
                    return
            return
        expected = "a string or a non-empty list"
        self._missing_or_invalid(line_no, body, "input", "body.input", expected)
