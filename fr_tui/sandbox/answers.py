"""Deterministic answers for sandbox batch rows.

Every answer is a pure function of the batch id, the row's custom_id and its body, so a
re-run of the same batch gives byte-identical results (screenshots and tests rely on it).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fr_tui.core.tokens import estimate_prompt_tokens

# Prices come from the sandbox's model table (catalog.py), the one /v1/models lists.
from fr_tui.sandbox.catalog import BATCH_DISCOUNT, model_for, prompt_tokens_for

EMBEDDING_DIMENSIONS = 8

_ARITHMETIC = re.compile(r"(-?\d{1,12})\s*([+\-*x×])\s*(-?\d{1,12})")
_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_credits", "insufficient_credits"),
    403: ("moderation_error", "content_blocked"),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout_error", "request_timeout"),
    413: ("invalid_request_error", "context_length_exceeded"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}


def digest(*parts: str) -> str:
    """Hex sha256 of the parts, separated so ("ab","c") and ("a","bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def count_tokens(text: str) -> int:
    """A rough, stable token estimate of an answer (about four characters per token).
    Prompts are counted by core/tokens.py, the validator's and the planner's rule."""
    return max(1, math.ceil(len(text) / 4))


def _text_of(content: Any) -> str:
    """The text of a chat message content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return " ".join(texts)
    return ""


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _compose_reply(question: str, tag: str) -> str:
    """A short reply that visibly depends on the question (handy when browsing results)."""
    question = " ".join(question.split())
    match = _ARITHMETIC.search(question)
    if match:
        a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
        value = a + b if op == "+" else a - b if op == "-" else a * b
        return f"Sandbox answer #{tag}: {a} {op} {b} = {value}."
    if not question:
        return f"Sandbox answer #{tag}: (no user message)"
    words = question.split(" ")
    gist = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return f'Sandbox answer #{tag}: you asked "{gist}" ({len(words)} words).'


def chat_completion(
    batch_id: str, custom_id: str, body: dict[str, Any], created: int
) -> dict[str, Any]:
    """An OpenAI chat.completion object for one row."""
    messages = body.get("messages")
    question = _last_user_text(messages)
    key = digest(batch_id, custom_id, question)
    content = _compose_reply(question, key[:6])
    prompt_tokens = prompt_tokens_for(
        body.get("model"), estimate_prompt_tokens(body, "/v1/chat/completions")
    )
    completion_tokens = count_tokens(content)
    return {
        "id": f"chatcmpl-{key[6:30]}",
        "object": "chat.completion",
        "created": created,
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _vector(text: str) -> list[float]:
    raw = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    values = struct.unpack(">8I", raw)
    return [round(v / 0xFFFFFFFF * 2 - 1, 6) for v in values[:EMBEDDING_DIMENSIONS]]


def embedding(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings list for one row: one 8-float vector per input."""
    raw_input = body.get("input")
    inputs: list[str]
    if isinstance(raw_input, list):
        inputs = [x if isinstance(x, str) else str(x) for x in raw_input]
    else:
        inputs = [raw_input if isinstance(raw_input, str) else str(raw_input)]
    tokens = estimate_prompt_tokens(body, "/v1/embeddings")
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(text)}
            for i, text in enumerate(inputs)
        ],
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def answer(
    endpoint: str, batch_id: str, custom_id: str, body: dict[str, Any], created: int
) -> dict[str, Any]:
    reply = (
        embedding(body)
        if endpoint == "/v1/embeddings"
        else chat_completion(batch_id, custom_id, body, created)
    )
    # Each row's usage carries its cost, as FastRouter's answers do.
    reply["usage"]["cost"] = float(row_cost(body.get("model"), reply["usage"]))
    return reply


def row_cost(model: Any, usage: dict[str, Any]) -> Decimal:
    """Batch price of one answered row, from its usage and the model's list price,
    rounded to 1e-10 USD."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    priced = model_for(model)
    price = prompt * priced.input_price + completion * priced.output_price
    return (price * (1 - BATCH_DISCOUNT)).quantize(Decimal("1e-10"), ROUND_HALF_UP)


def error_body(status: int, message: str) -> dict[str, Any]:
    """FastRouter's error shape: {"error": {"message", "type", "code", "status"}}."""
    kind, code = _ERROR_TYPES.get(status, ("server_error", "internal_error"))
    if status >= 500 and status not in _ERROR_TYPES:
        kind, code = "server_error", "internal_error"
    return {"error": {"message": message, "type": kind, "code": code, "status": status}}
