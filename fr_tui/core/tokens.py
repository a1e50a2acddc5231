"""The prompt-token estimate of one batch request: what the request sends, in tokens.

fr-tui has no tokenizer (they are per model, large, and slow per row), so it estimates,
the same way everywhere: the validator (per row, per model, in ``report.stats``), the
planner's enqueued-token limit, the cost estimates, and the sandbox server's
``usage.prompt_tokens`` (so a token limit can be tested exactly against it).

The rule, for a request body:

* Text is counted as one token per started four characters (``ceil(chars / 4)``), the
  usual rule of thumb for English with OpenAI's and Anthropic's tokenizers.
* Chat (``messages``): the text of every message -- a string ``content``, or the
  ``text`` of each content part (images and audio parts are not counted) -- plus the
  ``name`` of a message and the function name and arguments of each tool call, all summed
  into one text; then ``MESSAGE_OVERHEAD`` tokens per message (role and separators) and
  ``REPLY_PRIMING`` tokens per request (the start of the reply), as OpenAI's guide counts.
* Tool and function definitions (``tools``, ``functions``) and the JSON schema of a
  ``response_format`` are sent with the prompt: each counts as ``ceil(len(json) / 4)`` of
  its compact JSON text (names, descriptions and parameter schemas included).
* Embeddings (``input``): a string counts as text; a list of strings counts each string;
  token ids (a list of integers, or a list of such lists) count one token per id.

``estimate_prompt_tokens`` is the reference; the validator's fast path computes the same
number inline for ordinary chat rows (a test holds the two equal).

What fr-tui shows as a file's prompt tokens (the Files screen, the submit modal,
``validate``, ``estimate``) is one number, ``PromptTokens``: this rule's count per model,
times the model's correction where finished batches taught one (core/costlog.py), and
said so when one was applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from fr_tui.core.units import human_count

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
# Body keys whose JSON is sent along with the prompt and counted as text.
_DEFINITION_KEYS = ("tools", "functions")


def text_tokens(chars: int) -> int:
    """Tokens for ``chars`` characters of text: one per started four characters."""
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _json_tokens(value: Any) -> int:
    try:
        return text_tokens(len(msgspec.json.encode(value)))
    except (TypeError, msgspec.EncodeError):
        return 0


def _content_chars(content: Any) -> int:
    if type(content) is str:
        return len(content)
    chars = 0
    if type(content) is list:
        for part in content:
            if type(part) is dict:
                text = part.get("text")
                if type(text) is str:
                    chars += len(text)
            elif type(part) is str:
                chars += len(part)
    return chars


def _message_chars(message: dict[str, Any]) -> int:
    chars = _content_chars(message.get("content"))
    name = message.get("name")
    if type(name) is str:
        chars += len(name)
    calls = message.get("tool_calls")
    if type(calls) is list:
        for call in calls:
            function = call.get("function") if type(call) is dict else None
            if type(function) is dict:
                for key in ("name", "arguments"):
                    value = function.get(key)
                    if type(value) is str:
                        chars += len(value)
    return chars


def chat_tokens(body: dict[str, Any]) -> int:
    """The estimate for a chat completions body (see the module docstring)."""
    tokens = 0
    messages = body.get("messages")
    if type(messages) is list:
        chars = 0
        count = 0
        for message in messages:
            if type(message) is dict:
                chars += _message_chars(message)
                count += 1
        tokens = text_tokens(chars) + MESSAGE_OVERHEAD * count + REPLY_PRIMING
    for key in _DEFINITION_KEYS:
        definitions = body.get(key)
        if definitions:
            tokens += _json_tokens(definitions)
    response_format = body.get("response_format")
    if type(response_format) is dict:
        schema = response_format.get("json_schema")
        if schema:
            tokens += _json_tokens(schema)
    return tokens


def embedding_tokens(body: dict[str, Any]) -> int:
    """The estimate for an embeddings body (see the module docstring)."""
    value = body.get("input")
    if type(value) is str:
        return text_tokens(len(value))
    if type(value) is not list:
        return 0
    tokens = 0
    for item in value:
        if type(item) is str:
            tokens += text_tokens(len(item))
        elif type(item) is int:
            tokens += 1
        elif type(item) is list:
            tokens += len(item)
    return tokens


def estimate_prompt_tokens(body: Any, endpoint: str | None = None) -> int:
    """Estimated prompt tokens of one request body. ``endpoint`` picks the rule; without
    it, a body with ``messages`` is chat and one with ``input`` is embeddings."""
    if type(body) is not dict:
        return 0
    if endpoint is None:
        endpoint = "/v1/embeddings" if "input" in body and "messages" not in body else ""
    if endpoint == "/v1/embeddings":
        return embedding_tokens(body)
    return chat_tokens(body)


def corrected_tokens(tokens: int, correction: Decimal | None) -> int:
    """One model's estimate times its correction (actual over estimated prompt tokens on
    its past batches), when it has one."""
    return int((tokens * correction).to_integral_value()) if correction else tokens


@dataclass(frozen=True)
class PromptTokens:
    """A file's estimated prompt tokens, the one number every screen and command shows."""

    tokens: int  # the rule's count, corrected where a model has a correction
    corrected_models: int = 0  # how many models a correction was applied to

    @classmethod
    def of(
        cls, per_model: Mapping[str, int], corrections: Mapping[str, Decimal | None]
    ) -> PromptTokens:
        """From the rule's count per model and the corrections known for some of them."""
        tokens = corrected = 0
        for model, count in per_model.items():
            factor = corrections.get(model)
            tokens += corrected_tokens(count, factor)
            corrected += bool(factor)
        return cls(tokens, corrected)

    @property
    def note(self) -> str:
        """ " (corrected by past batches)" when a correction was applied, else ""."""
        return " (corrected by past batches)" if self.corrected_models else ""

    @property
    def text(self) -> str:
        """ "~1.2k input tokens", and the note."""
        return f"~{human_count(self.tokens)} input tokens{self.note}"

    @property
    def short_text(self) -> str:
        """ "~1.2k tokens (corrected)": for a summary line that must leave room."""
        return f"~{human_count(self.tokens)} tokens" + (
            " (corrected)" if self.corrected_models else ""
        )


__all__ = [
    "CHARS_PER_TOKEN",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "PromptTokens",
    "corrected_tokens",
    "chat_tokens",
    "embedding_tokens",
    "estimate_prompt_tokens",
    "text_tokens",
]
