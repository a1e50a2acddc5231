"""The shape of an entirely ordinary request row, as msgspec types, for the validator's
fast path (validate.py).

Decoding a line into these types checks in C what the fast path used to check in Python,
key by key: exactly the five top-level keys and the body's keys, ``method`` "POST", the
file's url, a known role and a string content in every message, a positive whole
``max_tokens``. A line that does not fit (a ``msgspec.ValidationError``) is not wrong for
that: it goes to the full checks (validate_rows.py), which explain what, if anything, is.

Every type forbids unknown keys, messages too (whose other keys, ``name``..., the full
checks allow): msgspec skips the value of an unknown key without decoding it, so invalid
UTF-8 or an out-of-range number there would pass unseen. So a decoded row holds all
that its line holds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from fr_tui.core.validate_rows import CHAT_URL, EMBEDDINGS_URL, KNOWN_ROLES

# A row without max_tokens counts this (see validate.py's packed per-model counters).
NO_MAX_TOKENS = 1 << 64

_Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
assert set(_Role.__args__) == KNOWN_ROLES  # type: ignore[attr-defined]


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: _Role
    content: str


class ChatBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    model: str
    messages: list[ChatMessage]
    # A number no line can hold stands for "none", so msgspec.to_builtins, which gives a
    # row observer the body as a dict, leaves out exactly the max_tokens the line lacks.
    max_tokens: Annotated[int, msgspec.Meta(gt=0, le=(1 << 63) - 1)] = NO_MAX_TOKENS


class ChatRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    custom_id: str
    provider: str
    method: Literal["POST"]
    url: Literal["/v1/chat/completions"]
    body: ChatBody


class EmbeddingBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: str
    input: Annotated[str, msgspec.Meta(min_length=1)]


class EmbeddingRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    custom_id: str
    provider: str
    method: Literal["POST"]
    url: Literal["/v1/embeddings"]
    body: EmbeddingBody


# endpoint -> decoder of its ordinary rows
ROW_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    CHAT_URL: msgspec.json.Decoder(ChatRow),
    EMBEDDINGS_URL: msgspec.json.Decoder(EmbeddingRow),
}

__all__ = ["NO_MAX_TOKENS", "ROW_DECODERS", "ChatRow", "EmbeddingRow"]
