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
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from fr_tui import __version__
from fr_tui.core.config import DEFAULT_BASE_URL, normalise_base_url, origin_for
from fr_tui.core.downloads import (
    ShortDownload,
    WrongDownload,
    check_download,
    content_range,
)
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
from fr_tui.core.userfiles import check_regular, open_regular

log = logging.getLogger("fr_tui.api")

__all__ = [
    "DEFAULT_BASE_URL",
    "BatchClient",
    "BatchPage",
    "Progress",
    "normalise_base_url",
]

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
        return msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError):
        snippet = response.text[:60].replace("\n", " ")
        raise BadResponseError(
            f"The server's answer at {path} is not JSON ({response.status_code}: {snippet!r}). "
            "Is the base URL right?"
        ) from None


T = TypeVar("T")

MAX_REDIRECTS = 3


class BatchPage(list[Batch]):
    """One page of `GET /v1/batches`: the batches, and whether more pages follow."""

    has_more: bool = False

    @property
    def last_id(self) -> str | None:
        return self[-1].id if self else None


def _error_of(response: httpx.Response, path: str) -> ApiError:
    """The typed error of a 4xx/5xx answer (its body read), with the server's message."""
    try:
        body: Any = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError):
        body = None
    return error_for_status(response.status_code, body, path, _retry_after(response))


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
        origin: str | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        # The server identity history keys batch ids by (see config.origin_for).
        self.origin = origin or origin_for(self.base_url)
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
            # GETs follow redirects; a POST never does blindly (see _request).
            follow_redirects=False,
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
        redirects = 0
        target = path
        all_headers = {**self._auth(), **(headers or {})}
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        while True:
            error: ApiError
            # A streamed body is passed as a factory so a retry sends it afresh.
            body = (
                msgspec.json.encode(json)
                if json is not None
                else (content() if callable(content) else content)
            )
            try:
                response = await self._http.request(
                    method,
                    target,
                    content=body,
                    headers=all_headers,
                    params=params,
                    follow_redirects=method == "GET",
                )
            except httpx.TooManyRedirects:
                raise BadResponseError(
                    f"Too many redirects at {path}: check the base URL."
                ) from None
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
                if 300 <= response.status_code < 400 and method != "GET":
                    target = self._redirect_target(method, path, response)
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise BadResponseError(f"Too many redirects at {path}: check the base URL.")
                    continue  # 307/308 to the same server: send the same body again
                if response.status_code < 400:
                    return response
                error = _error_of(response, path)
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

    def _redirect_target(self, method: str, path: str, response: httpx.Response) -> str:
        """Where a 307/308 answer to a POST sends it again, or a clear refusal: a 301/302/
        303 would turn the POST into a GET (an upload silently lost), and another host
        would be sent the API key."""
        status = response.status_code
        location = response.headers.get("location")
        if status not in (307, 308) or not location:
            raise BadResponseError(
                f"The server answered {method} {path} with a redirect ({status}"
                f"{' to ' + location if location else ''}), which would drop the request "
                "body: fr-tui did not follow it. Check the base URL (https? a trailing path?)."
            )
        url = response.request.url.join(location)
        base = httpx.URL(self.base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise BadResponseError(
                f"The server redirected {method} {path} to another server ({url.host}); "
                "fr-tui does not send the request (or the key) there. Check the base URL."
            )
        log.info("following a %s redirect of %s %s to %s", status, method, path, url.path)
        return str(url)

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
        """Upload with a streamed multipart body: memory does not grow with the file. Only
        a regular file is read (a FIFO, a device or a folder raises an OSError at once)."""
        path = Path(path)
        size = check_regular(path)
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
            with open_regular(path) as handle:
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

    async def declared_size(self, file_id: str) -> int | None:
        """The file object's `bytes`, when the server gives it (GET /v1/files/{id} is not
        documented by FastRouter: a refusal or an answer without it gives None)."""
        try:
            # Asked once, without retries: a server that does not offer it must not hold
            # up the download for a retry budget.
            data = await self._json("GET", f"/v1/files/{file_id}", retry="none")
            return _shaped(FileObject.parse, data, "file").bytes
        except ApiError as exc:
            log.info("no declared size for %s: %s", file_id, exc.kind)
            return None

    async def download_file(
        self,
        file_id: str,
        dest: str | Path,
        progress: Progress | None = None,
        *,
        jsonl: bool = False,
    ) -> Path:
        """Stream a file's content to `dest`: into `dest.part` first, resumed with a Range
        request after a dropped connection where the server allows it, checked, then
        renamed into place. A failed download never leaves `dest` looking complete.

        Checks: a 206 must start at the byte asked for (else start over from 0); the size
        must match what the server declared (Content-Length, Content-Range, the file
        object's `bytes`); with `jsonl` (result files) the last line must be whole JSON
        ending in a newline. A short file is resumed, a wrong one downloaded again."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        path = f"/v1/files/{file_id}/content"
        declared = await self.declared_size(file_id)
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        last_error: ApiError | None = None
        while attempt < self.max_attempts and time.monotonic() < deadline:
            have = part.stat().st_size if part.exists() else 0
            if declared is not None and have > declared:
                part.unlink()  # more than the whole file: not a prefix of it
                have = 0
            if have and have == declared:  # all there already (a check failed before)
                check_download(file_id, part, have, None, declared, jsonl)
                os.replace(part, dest)
                return dest
            # The plain bytes: the sizes checked below and the offsets of a Range resume
            # are those of the file itself, not of a compressed stream (httpx asks for
            # gzip by default, and the raw body is written as it comes).
            headers = {
                **self._auth(),
                "Accept": "application/octet-stream",
                "Accept-Encoding": "identity",
            }
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                async with self._http.stream(
                    "GET", path, headers=headers, follow_redirects=True
                ) as response:
                    if response.status_code == 416 and have:
                        part.unlink()  # our partial file is stale; start over
                        attempt += 1
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        error = _error_of(response, path)
                        if not isinstance(error, RateLimitedError | ServerError):
                            raise error
                        last_error = error
                        attempt += 1
                        await asyncio.sleep(self._backoff(attempt - 1, error.retry_after))
                        continue
                    resumed = response.status_code == 206 and have > 0
                    span = content_range(response.headers.get("content-range"))
                    if resumed and (span is None or span[0] != have):
                        # A 206 from another byte than the one asked for: appending it
                        # would duplicate or skip rows. Start over from byte 0.
                        log.warning(
                            "download of %s: asked from byte %d, got %s; starting over",
                            file_id,
                            have,
                            response.headers.get("content-range") or "no Content-Range",
                        )
                        part.unlink()
                        attempt += 1
                        continue
                    if not resumed:
                        have = 0
                    length = response.headers.get("content-length")
                    expected = have + int(length) if length and length.isdigit() else None
                    if span is not None and span[1] is not None:
                        expected = span[1]
                    if expected is None:
                        expected = declared
                    with part.open("ab" if resumed else "wb") as out:
                        done = have
                        async for chunk in response.aiter_raw(DOWNLOAD_CHUNK):
                            out.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, expected)
                        out.flush()
                        os.fsync(out.fileno())
                check_download(file_id, part, done, expected, declared, jsonl)
                os.replace(part, dest)
                return dest
            except WrongDownload as exc:
                last_error = DownloadError(str(exc))
                part.unlink(missing_ok=True)
                attempt += 1
            except ShortDownload as exc:
                # The server ended the body early but cleanly: resume at once (it answered;
                # there is nothing to wait out).
                last_error = DownloadError(str(exc))
                attempt += 1
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last_error = DownloadError(
                    f"The download of {file_id} was interrupted ({type(exc).__name__})."
                )
                attempt += 1
                await asyncio.sleep(self._backoff(attempt - 1, None))
        kept = part.stat().st_size if part.exists() else 0
        reason = str(last_error) if last_error else f"The download of {file_id} did not finish."
        if kept:
            raise DownloadError(
                f"{reason} Partial data kept: {kept:,} bytes in {part}; run the same "
                "command again to resume."
            )
        raise DownloadError(f"{reason} Nothing was kept; run the same command again.")

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

    async def list_batches(self, limit: int = 100, after: str | None = None) -> BatchPage:
        """One page, newest first (undocumented on FastRouter: 404/405 raise
        NotSupportedError). `has_more` comes from the server; a server that does not say
        is taken to have more while it fills whole pages."""
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
        page = BatchPage()
        for item in items:
            try:
                page.append(Batch.parse(item))
            except ValueError:
                log.warning("skipped a malformed batch in the list answer")
        more = data.get("has_more") if isinstance(data, dict) else None
        page.has_more = bool(more) if isinstance(more, bool) else len(items) >= limit
        return page

    async def all_batches(self, max_pages: int = 1000) -> AsyncGenerator[Batch, None]:
        """Every batch the server lists, page after page (`after` = the last id) until
        `has_more` is false. Raises BadResponseError past `max_pages`, so a server that
        never says it is done cannot keep a caller for ever."""
        after: str | None = None
        for _ in range(max_pages):
            page = await self.list_batches(limit=100, after=after)
            for batch in page:
                yield batch
            if not page.has_more or page.last_id is None or page.last_id == after:
                return
            after = page.last_id
        raise BadResponseError(f"The batch list did not end after {max_pages} pages.")

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
