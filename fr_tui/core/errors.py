"""Typed API errors, each with a one-line message that says what to do.

Messages never contain the API key: they are built from the status, the server's
error text and the URL path only, never from request headers.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base class: anything that went wrong talking to the batch API."""

    kind = "api"
    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.server_text: str | None = None

    def __str__(self) -> str:
        return self.message


class AuthError(ApiError):
    kind = "auth"


class PaymentError(ApiError):
    kind = "payment"


class NotFoundError(ApiError):
    kind = "not_found"


class TooLargeError(ApiError):
    kind = "too_large"


class RateLimitedError(ApiError):
    kind = "rate_limited"


class ServerError(ApiError):
    kind = "server"


class BadRequestError(ApiError):
    kind = "bad_request"


class NetworkError(ApiError):
    kind = "network"


class ApiTimeoutError(ApiError):
    kind = "timeout"


class BadResponseError(ApiError):
    kind = "bad_response"


class NotSupportedError(ApiError):
    """The server does not offer this (undocumented) operation: 404/405 on list or cancel."""

    kind = "not_supported"


class DownloadError(ApiError):
    kind = "download"


class OutcomeUnknownError(ApiError):
    """A create call was sent but its answer was lost: the batch may or may not exist."""

    kind = "outcome_unknown"

    def __init__(self, message: str, *, input_file_id: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.input_file_id = input_file_id


def server_error_text(body: Any) -> tuple[str | None, str | None]:
    """(message, code) from a FastRouter `{"error":{message,type,code,status}}` or an
    OpenAI `{"error":{message,type,param,code}}` body, or a bare `{"message":...}`."""
    if not isinstance(body, dict):
        return None, None
    err = body.get("error", body)
    if isinstance(err, str):
        return err, None
    if not isinstance(err, dict):
        return None, None
    message = err.get("message") or err.get("detail")
    code = err.get("code") or err.get("type")
    return (str(message) if message else None), (str(code) if code else None)


def error_for_status(
    status: int, body: Any, path: str, retry_after: float | None = None
) -> ApiError:
    error = _error_for_status(status, body, path, retry_after)
    # What the server itself said (None when its body was no JSON error): a real batch
    # API explains its 404s, a web server at a wrong base URL does not.
    error.server_text = server_error_text(body)[0]
    return error


def _error_for_status(
    status: int, body: Any, path: str, retry_after: float | None = None
) -> ApiError:
    text, code = server_error_text(body)
    # The server's sentence goes inside ours: its own full stop would make "..".
    said = f": {text.rstrip().rstrip('.')}" if text else ""
    if status in (401, 403):
        if status == 403 and code and "moderation" in code:
            return AuthError(f"Request blocked by moderation (403){said}", status=status, code=code)
        return AuthError(
            f"The API key was refused ({status}){said}. Check the key in settings "
            "or FASTROUTER_API_KEY.",
            status=status,
            code=code,
        )
    if status == 402:
        return PaymentError(
            f"Insufficient credits (402){said}. Add credits in the FastRouter dashboard.",
            status=status,
            code=code,
        )
    if status == 404:
        return NotFoundError(
            f"Not found (404) at {path}{said}. Check the id and the base URL.",
            status=status,
            code=code,
        )
    if status == 413:
        return TooLargeError(
            f"The file is too large for the server (413){said}. Split it with `fr-tui split`.",
            status=status,
            code=code,
        )
    if status == 429:
        wait = f" (retry after {retry_after:g}s)" if retry_after else ""
        return RateLimitedError(
            f"Rate limited (429){wait}{said}. Wait and try again.",
            status=status,
            code=code,
            retry_after=retry_after,
        )
    if status >= 500:
        return ServerError(
            f"The server failed ({status}){said}. Try again later.", status=status, code=code
        )
    return BadRequestError(
        f"The server refused the request ({status}){said}", status=status, code=code
    )
