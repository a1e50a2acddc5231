"""Async client for FastRouter's (OpenAI-compatible) batch API on one httpx.AsyncClient.

Retry policy (product.md, reliability rules): GETs retry on 429, 5xx, timeouts and
network errors with exponential backoff and jitter, honour Retry-After, and stop within
a bounded total time. POSTs retry only when the server certainly did not act (429, or a
connection that was refused before anything was sent). A create whose answer is lost
raises OutcomeUnknownError so the caller can record it and reconcile later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from fr_tui import __version__
from fr_tui.core.config import DEFAULT_BASE_URL, normalise_base_url
from fr_tui.core.errors import (
    ApiError,
    ApiTimeoutError,
    BadRequestError,
    BadResponseError,
    DownloadError,
    NetworkError,
    NotFoundError,
    NotSupportedError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    error_for_status,
)
from fr_tui.core.models import Batch, FileObject

log = logging.getLogger("fr_tui.api")

__all__ = ["DEFAULT_BASE_URL", "BatchClient", "Progress", "normalise_base_url"]

UPLOAD_CHUNK = 256 * 1024
DOWNLOAD_CHUNK = 256 * 1024

Progress = Callable[[int, int | None], None]
"""progress(bytes_done, bytes_total or None)"""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _parse_json(response: httpx.Response, path: str) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        snippet = response.text[:60].replace("\n", " ")
        raise BadResponseError(
            f"The server's answer at {path} is not JSON ({response.status_code}: {snippet!r}). "
            "Is the base URL right?"
        ) from None


T = TypeVar("T")


def _shaped(parse: Callable[[Any], T], data: Any, what: str) -> T:
    """A JSON answer of the wrong shape is a BadResponseError, never a crash."""
    try:
        return parse(data)
    except ValueError as exc:
        raise BadResponseError(f"Unexpected {what} answer: {exc}") from None


class BatchClient:
    """One client per profile; use as `async with BatchClient(...) as client:`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        retry_budget: float = 90.0,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 15.0,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self._api_key = api_key
        self.read_timeout = read_timeout
        self.retry_budget = retry_budget
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"User-Agent": f"fr-tui/{__version__}"},
            follow_redirects=True,
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"BatchClient(base_url={self.base_url!r}, api_key=<{key}>)"

    async def __aenter__(self) -> BatchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    # ----------------------------------------------------------------- transport

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 60.0)
        delay: float = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        retry: str = "idempotent",
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Send with the retry policy. retry: 'idempotent' (GET), 'safe' (POST: only
        429/refused), 'none'. Returns a 2xx response or raises a typed ApiError."""
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        all_headers = {**self._auth(), **(headers or {})}
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        while True:
            error: ApiError
            # A streamed body is passed as a factory so a retry sends it afresh.
            body = (
                orjson.dumps(json)
                if json is not None
                else (content() if callable(content) else content)
            )
            try:
                response = await self._http.request(
                    method, path, content=body, headers=all_headers, params=params
                )
            except (httpx.LocalProtocolError, UnicodeEncodeError):
                # Nothing was sent: a header (the key, most likely) cannot be encoded.
                raise BadRequestError(
                    "The request could not be sent: check the API key and the base URL for "
                    "stray spaces, line breaks or non-ASCII characters."
                ) from None
            except httpx.ConnectError as exc:
                error = NetworkError(
                    f"Cannot connect to {self.base_url} ({type(exc).__name__}). "
                    "Check the network and the base URL."
                )
                retryable = retry in ("idempotent", "safe")
            except httpx.TimeoutException:
                error = ApiTimeoutError(
                    f"The server at {self.base_url} did not answer in time. Try again later."
                )
                retryable = retry == "idempotent"
            except httpx.TransportError as exc:
                error = NetworkError(
                    f"The connection to {self.base_url} failed ({type(exc).__name__}). "
                    "Check the network and try again."
                )
                retryable = retry == "idempotent"
            else:
                if response.status_code < 400:
                    return response
                try:
                    err_body: Any = orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    err_body = None
                error = error_for_status(
                    response.status_code, err_body, path, _retry_after(response)
                )
                if isinstance(error, RateLimitedError):
                    retryable = retry in ("idempotent", "safe")
                else:
                    retryable = retry == "idempotent" and isinstance(error, ServerError)
            attempt += 1
            delay = self._backoff(attempt - 1, error.retry_after)
            if not retryable or attempt >= self.max_attempts:
                raise error
            if time.monotonic() + delay > deadline:
                raise error
            log.info("retrying %s %s in %.2fs after: %s", method, path, delay, error.kind)
            await asyncio.sleep(delay)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        return _parse_json(response, path)

    # ----------------------------------------------------------------- files

    async def upload_file(
        self,
        path: str | Path,
        *,
        progress: Progress | None = None,
        purpose: str = "batch",
        filename: str | None = None,
    ) -> FileObject:
        """Upload with a streamed multipart body: memory does not grow with the file."""
        path = Path(path)
        size = path.stat().st_size
        boundary = f"fr-tui-{secrets.token_hex(12)}"
        name = (filename or path.name).replace('"', "_")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
            f"{purpose}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress:
                        progress(sent, size)
            yield tail

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        # An upload only creates an orphan file if repeated, never a batch: retry on
        # 429/refused only, like every POST.
        data = await self._json("POST", "/v1/files", retry="safe", content=body, headers=headers)
        return _shaped(FileObject.parse, data, "upload")

    async def get_file(self, file_id: str) -> FileObject:
        data = await self._json("GET", f"/v1/files/{file_id}")
        return _shaped(FileObject.parse, data, "file")

    async def download_file(
        self, file_id: str, dest: str | Path, progress: Progress | None = None
    ) -> Path:
        """Stream a file's content to `dest`: into `dest.part` first, resumed with a Range
        request after a dropped connection where the server allows it, length-checked,
        then renamed into place. A failed download never leaves `dest` looking complete."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        path = f"/v1/files/{file_id}/content"
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        last_error: ApiError | None = None
        while attempt < self.max_attempts and time.monotonic() < deadline:
            have = part.stat().st_size if part.exists() else 0
            headers = {**self._auth(), "Accept": "application/octet-stream"}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                async with self._http.stream("GET", path, headers=headers) as response:
                    if response.status_code == 416 and have:
                        part.unlink()  # our partial file is stale; start over
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        try:
                            err_body: Any = orjson.loads(response.content)
                        except orjson.JSONDecodeError:
                            err_body = None
                        error = error_for_status(
                            response.status_code, err_body, path, _retry_after(response)
                        )
                        if not isinstance(error, RateLimitedError | ServerError):
                            raise error
                        last_error = error
                        attempt += 1
                        await asyncio.sleep(self._backoff(attempt - 1, error.retry_after))
                        continue
                    resumed = response.status_code == 206 and have > 0
                    if not resumed:
                        have = 0
                    length = response.headers.get("content-length")
                    expected = have + int(length) if length and length.isdigit() else None
                    with part.open("ab" if resumed else "wb") as out:
                        done = have
                        async for chunk in response.aiter_raw(DOWNLOAD_CHUNK):
                            out.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, expected)
                        out.flush()
                        os.fsync(out.fileno())
                    if expected is not None and done != expected:
                        raise httpx.RemoteProtocolError("short read")
                    os.replace(part, dest)
                    return dest
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last_error = DownloadError(
                    f"The download of {file_id} was interrupted ({type(exc).__name__})."
                )
                attempt += 1
                await asyncio.sleep(self._backoff(attempt - 1, None))
        message = (
            f"{last_error} Partial data kept; run the same command again to resume."
            if last_error
            else f"The download of {file_id} did not finish in time."
        )
        raise DownloadError(message)

    # ----------------------------------------------------------------- batches

    async def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> Batch:
        payload: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            payload["metadata"] = metadata
        try:
            data = await self._json("POST", "/v1/batches", retry="safe", json=payload)
            return _shaped(Batch.parse, data, "create")
        except BadResponseError as exc:
            # A 2xx we cannot read: the server acted, but we do not know the id.
            raise OutcomeUnknownError(
                f"The create call for {input_file_id} was answered with something fr-tui "
                f"cannot read ({exc.message}); the batch may exist. It is recorded as "
                "'outcome unknown'.",
                input_file_id=input_file_id,
            ) from None
        except (ApiTimeoutError, ServerError) as exc:
            raise OutcomeUnknownError(
                f"The create call for {input_file_id} got no clear answer ({exc.kind}); the "
                "batch may exist. It is recorded as 'outcome unknown': look it up before "
                "submitting again.",
                input_file_id=input_file_id,
                status=exc.status,
            ) from None
        except NetworkError as exc:
            if "Cannot connect" in exc.message:
                raise  # refused: the server certainly did not act
            raise OutcomeUnknownError(
                f"The connection dropped during the create call for {input_file_id}; the "
                "batch may exist. It is recorded as 'outcome unknown'.",
                input_file_id=input_file_id,
            ) from None

    async def list_models(self) -> Any:
        """GET /v1/models, the public model catalog, as the server sent it (JSON);
        core/catalog.py reads it."""
        return await self._json("GET", "/v1/models")

    async def get_batch(self, batch_id: str) -> Batch:
        data = await self._json("GET", f"/v1/batches/{batch_id}")
        return _shaped(Batch.parse, data, f"batch ({batch_id})")

    async def list_batches(self, limit: int = 100, after: str | None = None) -> list[Batch]:
        """One page, newest first. Undocumented on FastRouter: 404/405 raise
        NotSupportedError."""
        return (await self.list_batches_page(limit, after))[0]

    async def list_batches_page(
        self, limit: int = 100, after: str | None = None
    ) -> tuple[list[Batch], bool]:
        """(one page, whether there are more after it). A server that does not say
        `has_more` has more when the page is full."""
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        try:
            data = await self._json("GET", "/v1/batches", params=params)
        except NotFoundError:
            raise NotSupportedError("This server does not list batches.", status=404) from None
        except ApiError as exc:
            if exc.status == 405:
                raise NotSupportedError("This server does not list batches.", status=405) from None
            raise
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BadResponseError("Unexpected batch list answer: no 'data' list")
        batches = []
        for item in items:
            try:
                batches.append(Batch.parse(item))
            except ValueError:
                log.warning("skipped a malformed batch in the list answer")
        more = data.get("has_more") if isinstance(data, dict) else None
        has_more = more if isinstance(more, bool) else len(items) >= limit
        return batches, has_more and bool(items)

    async def list_all_batches(self, page_size: int = 100, max_pages: int = 1000) -> list[Batch]:
        """Every batch the server lists, following `has_more`/`after` page after page."""
        found: list[Batch] = []
        after: str | None = None
        for _ in range(max_pages):
            page, more = await self.list_batches_page(page_size, after)
            found.extend(page)
            if not more or not page:
                break
            after = page[-1].id
        return found

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Undocumented on FastRouter: 405 raises NotSupportedError. Cancelling twice is
        harmless, so a 429 is retried like any POST."""
        try:
            data = await self._json("POST", f"/v1/batches/{batch_id}/cancel", retry="safe")
        except ApiError as exc:
            if exc.status == 405:
                raise NotSupportedError(
                    "This server does not cancel batches.", status=405
                ) from None
            raise
        return _shaped(Batch.parse, data, "cancel")
