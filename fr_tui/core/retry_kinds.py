"""The kinds of failure a job tells apart, and which of them it retries by default
(`fr-tui run --retry-kinds`). Plain data: the CLI's parser reads the names."""

from __future__ import annotations

# Kinds of failure, as `--retry-kinds` names them (the default ones are retried).
RETRY_KINDS: dict[str, str] = {
    "server_error": "HTTP 5xx answers (500, 502, 503...)",
    "rate_limit": "429 and rate-limit errors",
    "batch_expired": "rows the batch did not reach before it expired",
    "missing": "rows with no line in either result file",
    "timeout": "408 and request timeouts",
    "invalid_request": "400 invalid requests",
    "context_length_exceeded": "prompts over the model's context",
    "content_blocked": "403 moderation refusals",
    "auth": "401 and 402 answers (key, credits)",
    "not_found": "404 (an unknown model)",
    "batch_failed": "a batch that failed as a whole",
    "other": "any other failure",
}
DEFAULT_RETRY_KINDS: tuple[str, ...] = (
    "server_error",
    "rate_limit",
    "batch_expired",
    "missing",
    "timeout",
)
# Rows over the enqueued-token limit on their own: never retried (they cannot run).
TOKEN_LIMIT = "token_limit_exceeded"

_CODE_KINDS = {
    "batch_expired": "batch_expired",
    "rate_limit_exceeded": "rate_limit",
    "rate_limit": "rate_limit",
    "request_timeout": "timeout",
    "timeout": "timeout",
    "server_error": "server_error",
    "internal_error": "server_error",
    "bad_gateway": "server_error",
    "service_unavailable": "server_error",
    "context_length_exceeded": "context_length_exceeded",
    "invalid_request": "invalid_request",
    "invalid_request_error": "invalid_request",
    "content_blocked": "content_blocked",
    "invalid_api_key": "auth",
    "insufficient_credits": "auth",
    "model_not_found": "not_found",
    TOKEN_LIMIT: TOKEN_LIMIT,
    "batch_failed": "batch_failed",
}


def failure_kind(status: int | None, code: str | None) -> str:
    """The kind of one failed row, from its HTTP status and error code."""
    if code in _CODE_KINDS:
        return _CODE_KINDS[code]
    if status is None:
        return "other"
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    if status in (401, 402):
        return "auth"
    if status == 403:
        return "content_blocked"
    if status == 404:
        return "not_found"
    if status == 413:
        return "context_length_exceeded"
    if status == 400:
        return "invalid_request"
    return "other"


def parse_retry_kinds(text: str) -> tuple[str, ...]:
    """`--retry-kinds a,b`: names from RETRY_KINDS; "default" stands for the defaults.
    Raises ValueError naming what is unknown."""
    kinds: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name == "default":
            kinds.extend(k for k in DEFAULT_RETRY_KINDS if k not in kinds)
            continue
        if name not in RETRY_KINDS:
            raise ValueError(
                f"unknown retry kind {name!r}; the kinds are: {', '.join(RETRY_KINDS)}"
            )
        if name not in kinds:
            kinds.append(name)
    return tuple(kinds)
