"""The sandbox plays scale: rows that fail once and then succeed (retry rounds), and a
provider's limit on enqueued tokens.

- ``sandbox/flaky-<percent>`` (a row's ``body.model``): that share of rows, chosen by
  their custom_id (the same ones every time), fail with a 500 the first time the sandbox
  runs them and succeed when they come again in a later batch. "The first time" is kept
  in the sandbox's state (per model and custom_id), so it holds across batches and
  restarts; the answers of the later batch are ordinary ones.
- ``max_enqueued_tokens`` (``fr-tui sandbox --max-enqueued-tokens N``, or
  ``SandboxServer(max_enqueued_tokens=N)``): a batch fails validation with
  ``token_limit_exceeded`` when its prompt tokens plus those of the batches in progress
  (accepted at their validation and not yet ended) would go over N. Tokens are counted
  as the sandbox counts ``usage.prompt_tokens`` (core/tokens.py's estimate times the
  model's tokenizer ratio, 1 for the OpenAI-style models), so a planner's estimate is
  exact for them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from fr_tui.core.tokens import estimate_prompt_tokens
from fr_tui.sandbox.catalog import prompt_tokens_for

TOKEN_LIMIT_CODE = "token_limit_exceeded"
FLAKY_STATUS = 500
_FLAKY_MODEL = re.compile(r"^sandbox/flaky-(\d{1,3})$")
_ENDS = ("completed", "failed", "expired", "cancelled")


def flaky_share(model: Any) -> int | None:
    """The percent of rows a `sandbox/flaky-<percent>` model fails once, else None."""
    if not isinstance(model, str):
        return None
    match = _FLAKY_MODEL.match(model)
    if match is None or int(match.group(1)) > 100:
        return None
    return int(match.group(1))


def flaky_chosen(custom_id: str, share: int) -> bool:
    """Whether this row is one of the `share` percent that fail once (by its id alone)."""
    digest = hashlib.sha256(b"flaky\0" + custom_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < share


def flaky_key(model: str, custom_id: str) -> str:
    return f"{model}\0{custom_id}"


def row_tokens(body: dict[str, Any], endpoint: str) -> int:
    """A row's prompt tokens as the sandbox bills them (usage.prompt_tokens)."""
    return prompt_tokens_for(body.get("model"), estimate_prompt_tokens(body, endpoint))


def _ends_at(record: dict[str, Any], span: float, cancel_ticks: int) -> float:
    """When a batch in progress stops holding its tokens (its timeline is fixed once it
    starts, so this needs no advancing)."""
    times = record["t"]
    for status in _ENDS:
        if status in times:
            return float(times[status])
    tick = record["tick"]
    if "cancelling" in times:
        return float(times["cancelling"]) + cancel_ticks * tick
    if record["fault"] == "expire":
        return float(times["in_progress"]) + span / 2
    return float(times["in_progress"]) + span + tick


def enqueued_tokens(
    batches: Iterable[dict[str, Any]],
    when: float,
    spans: dict[str, float],
    cancel_ticks: dict[str, int],
) -> int:
    """Prompt tokens of the batches in progress at `when` (each accepted batch keeps its
    `tokens`; `spans`/`cancel_ticks` give each one's in_progress length and cancel time)."""
    total = 0
    for record in batches:
        tokens = record.get("tokens")
        start = record["t"].get("in_progress")
        if not tokens or start is None or start > when:
            continue
        rid = record["id"]
        if when < _ends_at(record, spans[rid], cancel_ticks[rid]):
            total += int(tokens)
    return total


def token_limit_problem(limit: int, enqueued: int, tokens: int, model: Any) -> dict[str, Any]:
    return {
        "code": TOKEN_LIMIT_CODE,
        "line": None,
        "message": (
            f"Enqueued token limit reached for {model or 'this model'}: this batch has "
            f"{tokens:,} prompt tokens and {enqueued:,} are enqueued already. Limit: "
            f"{limit:,} enqueued tokens. Try again once some in_progress batches have "
            "completed."
        ),
        "param": None,
    }
