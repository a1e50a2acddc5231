"""Deterministic answers for sandbox batch rows.

An answer's content is a pure function of the row's body (its model and its messages or
input), never of the batch or the custom_id: the same file run twice with the same model
gets the same answers, and run with two models gets answers that differ in a known way
(compare, issue 13; screenshots and tests rely on it). Only the ids of a reply depend on
the batch and the row, as a real server's do.

How the models differ:

* chat: arithmetic ("what is 13 + 25?") is answered the same by every model; any other
  question is answered `Sandbox answer from <model>: you asked "..." (N words).`, so two
  models' answers differ in exactly that word. A reply longer than the row's
  `max_tokens` is cut there with `finish_reason: "length"`.
* structured output (`response_format` `json_object` or `json_schema`): a JSON object;
  with a schema, one value per property by its type, else `answer`, `words`, `model` and
  `confidence`. Strings and counts are the same for every model, `model` and the
  numbers (a `confidence`) differ, booleans may, and Anthropic models add `notes`.
* embeddings: each model's vector is 0.8 of one shared by all models plus 0.2 of its
  own, so two models' vectors are close (cosine well above 0.5) but not equal.
"""

from __future__ import annotations

import hashlib
import json
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


def model_name(model: Any) -> str:
    """How a sandbox answer names its model: the id's last part (gpt-4.1-nano)."""
    if not isinstance(model, str) or not model.strip():
        return "sandbox"
    return model.strip().rsplit("/", 1)[-1]


def _compose_reply(question: str, model: Any) -> str:
    """A short reply that visibly depends on the question, and on the model except for
    arithmetic (which every model gets right the same way)."""
    question = " ".join(question.split())
    match = _ARITHMETIC.search(question)
    if match:
        a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
        value = a + b if op == "+" else a - b if op == "-" else a * b
        return f"Sandbox answer: {a} {op} {b} = {value}."
    name = model_name(model)
    if not question:
        return f"Sandbox answer from {name}: (no user message)"
    return f"Sandbox answer from {name}: {_gist(question)}."


def _gist(question: str) -> str:
    words = question.split(" ")
    gist = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return f'you asked "{gist}" ({len(words)} words)'


def _share(*parts: str) -> float:
    """A number in [0, 1) that only these parts decide, to two decimals."""
    return int(digest(*parts)[:8], 16) % 100 / 100


def _schema_properties(response_format: dict[str, Any]) -> dict[str, Any] | None:
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) and properties else None


def _json_value(name: str, spec: Any, question: str, model: Any) -> Any:
    kind = spec.get("type") if isinstance(spec, dict) else None
    words = question.split()
    if name == "model":
        return model_name(model)
    if kind == "integer":
        return len(words)
    if kind == "number":
        return _share(str(model), question, name)
    if kind == "boolean":
        return _share(str(model), question, name) >= 0.5
    if kind == "array":
        return words[:3]
    if kind == "object":
        return {}
    return _gist(question) if question else "(no user message)"


def structured_reply(question: str, model: Any, response_format: dict[str, Any]) -> str:
    """The JSON text a model answers when the request asks for JSON (see the module's
    docstring for which fields differ between models)."""
    question = " ".join(question.split())
    properties = _schema_properties(response_format)
    if properties is not None:
        reply = {
            name: _json_value(name, spec, question, model) for name, spec in properties.items()
        }
    else:
        reply = {
            "answer": _gist(question) if question else "(no user message)",
            "words": len(question.split()),
            "model": model_name(model),
            "confidence": _share(str(model), question, "confidence"),
        }
        if str(model).startswith("anthropic/"):
            reply["notes"] = "Answered with care."
    return json.dumps(reply, ensure_ascii=False)


def _wants_json(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        return response_format
    return None


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def chat_completion(
    batch_id: str, custom_id: str, body: dict[str, Any], created: int
) -> dict[str, Any]:
    """An OpenAI chat.completion object for one row."""
    messages = body.get("messages")
    question = _last_user_text(messages)
    model = body.get("model")
    response_format = _wants_json(body)
    if response_format is not None:
        content = structured_reply(question, model, response_format)
    else:
        content = _compose_reply(question, model)
    finish_reason = "stop"
    completion_tokens = count_tokens(content)
    limit = _max_tokens(body)
    if limit is not None and completion_tokens > limit:
        # cut where the model would have stopped: about four characters a token
        content = content[: limit * 4]
        completion_tokens = limit
        finish_reason = "length"
    key = digest(batch_id, custom_id, question)  # ids differ per batch, content does not
    prompt_tokens = prompt_tokens_for(model, estimate_prompt_tokens(body, "/v1/chat/completions"))
    return {
        "id": f"chatcmpl-{key[6:30]}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
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
    return [v / 0xFFFFFFFF * 2 - 1 for v in values[:EMBEDDING_DIMENSIONS]]


def embedding_vector(model: Any, text: str) -> list[float]:
    """One input's vector: 0.8 of the text's own plus 0.2 of the model's take on it."""
    shared = _vector(text)
    own = _vector(f"{model}\0{text}")
    return [round(0.8 * s + 0.2 * o, 6) for s, o in zip(shared, own, strict=True)]


def embedding(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings list for one row: one 8-float vector per input."""
    raw_input = body.get("input")
    inputs: list[str]
    if isinstance(raw_input, list):
        inputs = [x if isinstance(x, str) else str(x) for x in raw_input]
    else:
        inputs = [raw_input if isinstance(raw_input, str) else str(raw_input)]
    tokens = estimate_prompt_tokens(body, "/v1/embeddings")
    model = body.get("model")
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding_vector(model, text)}
            for i, text in enumerate(inputs)
        ],
        "model": model,
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
