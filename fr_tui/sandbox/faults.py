"""Faults the sandbox server produces on purpose, so every failure path of a client is testable.

Per line (in the input JSONL, by the row's ``body.model``):

- ``"sandbox/fail-<status>"`` (e.g. ``sandbox/fail-500``, ``sandbox/fail-400``, ``sandbox/fail-429``;
  any status 400-599): the row fails with that HTTP status. It goes to the error file as
  ``{"id", "custom_id", "response": {"status_code": <status>, "request_id", "body": {"error":
  {"message", "type", "code", "status"}}}, "error": null}`` and counts in ``request_counts.failed``.
- ``"sandbox/drop"``: the row vanishes; it is in neither the output nor the error file (a
  "missing" row) and counts as neither completed nor failed.
- ``"sandbox/flaky-<percent>"`` and the enqueued-token limit: see limits.py (the faults a
  job's retry rounds and token-limit waits are tested with).

Per batch (``POST /v1/batches`` with ``"metadata": {"sandbox_fault": "<name>"}``):

- ``fail_validation``: the batch goes validating -> failed with
  ``errors.data = [{"code": "sandbox_fault", "line": 1, ...}]``.
- ``expire``: the batch expires half-way through ``in_progress``: the first half of the rows
  (``rows // 2``) is answered, the rest is written to the error file as
  ``{"custom_id", "response": null, "error": {"code": "batch_expired", "message"}}``.
- ``hang_validating``: the batch stays ``validating`` for ever (it can still be cancelled).
- ``slow_cancel``: after a cancel the batch stays ``cancelling`` for 20 ticks instead of 1.
- Any other value is rejected with 400, so typos don't go unnoticed.

Cancel in general: ``POST /v1/batches/{id}/cancel`` moves the batch to ``cancelling``, then to
``cancelled`` one tick later. The output holds the rows answered before the cancel; the other
rows are in no file. Cancelling a finished batch is a 400 (code ``invalid_batch_status``).

By API key (``Authorization: Bearer <key>``): no header or an empty key -> 401; a key that
starts with ``sk-bad`` -> 401 ``invalid_api_key``; a key that starts with ``sk-broke`` -> 402
``insufficient_credits`` on the calls that create things (``POST /v1/files``,
``POST /v1/batches``). Any other key is accepted. Uploads bigger than the server's
``max_upload_bytes`` -> 413.

HTTP layer, set with ``POST /_sandbox/faults`` (JSON body), read with ``GET /_sandbox/faults``,
cleared with ``POST /_sandbox/faults {}``, or passed as ``faults=`` to the server:

- ``status`` (int): answer matching requests with this status and a FastRouter error body.
- ``retry_after`` (number): add a ``Retry-After`` header (seconds) to those answers.
- ``latency`` (seconds): wait this long before handling each matching request.
- ``create_delay`` (seconds): on ``POST /v1/batches``, make the batch, then hold the answer
  this long (a create that reached the server but whose answer is late or lost).
- ``range_from`` (int bytes): answer a ``Range`` request on file content with a 206 that
  holds the file from this byte instead of the one asked for (0: the whole file again),
  with a Content-Range that says so (a server that ignores the offset it was asked for).
- ``short_download`` (int bytes): on file content downloads, send no Content-Length and end
  the body cleanly after this many bytes (a truncated file that looks complete).
- ``non_json`` (bool): answer matching requests with a 200 whose body is not JSON.
- ``drop_download_after`` (int bytes): on file content downloads, close the connection after
  this many body bytes (the client sees an incomplete body).
- ``count`` (int or null): affect only the next N matching requests, then stop; null = for ever.
- ``rate`` (0-1, default 1.0): the share of matching requests affected, drawn from a
  seeded RNG (``seed``, default 0) so runs repeat exactly.
- ``methods`` (list, e.g. ``["GET"]``) and ``path_prefix`` (e.g. ``"/v1/batches"``): which
  requests match; by default every ``/v1`` request. ``/_sandbox`` admin routes never match.

Precedence for an affected request: latency first, then status, then non_json, then
the download faults (range_from, short_download, drop_download_after), then create_delay.
A wait (latency, create_delay) ends early when the faults are changed, so a test can hold
a request exactly as long as it needs to and then let it go.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fr_tui.sandbox.answers import error_body

BATCH_FAULTS = frozenset({"fail_validation", "expire", "hang_validating", "slow_cancel"})
SLOW_CANCEL_TICKS = 20

DROP_MODEL = "sandbox/drop"
_FAIL_MODEL = re.compile(r"^sandbox/fail-(\d{3})$")

_HTTP_FAULT_KEYS = {
    "status",
    "rate",
    "count",
    "methods",
    "path_prefix",
    "retry_after",
    "latency",
    "drop_download_after",
    "non_json",
    "seed",
    "create_delay",
    "range_from",
    "short_download",
}


def line_fault(model: Any) -> tuple[str, int] | None:
    """("fail", status) or ("drop", 0) for a sandbox fault model name, else None."""
    if not isinstance(model, str) or not model.startswith("sandbox/"):
        return None
    if model == DROP_MODEL:
        return ("drop", 0)
    match = _FAIL_MODEL.match(model)
    if match and 400 <= int(match.group(1)) <= 599:
        return ("fail", int(match.group(1)))
    return None


class FaultConfigError(ValueError):
    pass


@dataclass
class HttpFaults:
    status: int | None = None
    rate: float = 1.0
    count: int | None = None
    methods: list[str] | None = None
    path_prefix: str = "/v1"
    retry_after: float | None = None
    latency: float = 0.0
    drop_download_after: int | None = None
    non_json: bool = False
    seed: int = 0
    create_delay: float = 0.0
    range_from: int | None = None
    short_download: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def parse(cls, data: Any) -> HttpFaults | None:
        """Validated faults from a JSON object; None for an empty object (no faults)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise FaultConfigError("faults must be a JSON object")
        unknown = set(data) - _HTTP_FAULT_KEYS
        if unknown:
            raise FaultConfigError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        if not data:
            return None
        try:
            faults = cls(
                status=_opt_int(data.get("status"), 100, 599, "status"),
                rate=float(data.get("rate", 1.0)),
                count=_opt_int(data.get("count"), 0, None, "count"),
                methods=_methods(data.get("methods")),
                path_prefix=str(data.get("path_prefix") or "/v1"),
                retry_after=_opt_float(data.get("retry_after")),
                latency=_opt_float(data.get("latency")) or 0.0,
                drop_download_after=_opt_int(
                    data.get("drop_download_after"), 0, None, "drop_download_after"
                ),
                non_json=bool(data.get("non_json", False)),
                seed=int(data.get("seed", 0)),
                create_delay=_opt_float(data.get("create_delay")) or 0.0,
                range_from=_opt_int(data.get("range_from"), 0, None, "range_from"),
                short_download=_opt_int(data.get("short_download"), 0, None, "short_download"),
            )
        except (TypeError, ValueError) as exc:
            raise FaultConfigError(str(exc)) from exc
        if not 0.0 <= faults.rate <= 1.0:
            raise FaultConfigError("rate must be between 0 and 1")
        faults._rng = random.Random(faults.seed)
        return faults

    def describe(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rate": self.rate,
            "count": self.count,
            "methods": self.methods,
            "path_prefix": self.path_prefix,
            "retry_after": self.retry_after,
            "latency": self.latency,
            "drop_download_after": self.drop_download_after,
            "non_json": self.non_json,
            "seed": self.seed,
            "create_delay": self.create_delay,
            "range_from": self.range_from,
            "short_download": self.short_download,
        }

    def matches(self, method: str, path: str) -> bool:
        if path.startswith("/_sandbox"):
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return path.startswith(self.path_prefix)


def _opt_int(value: Any, low: int, high: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise FaultConfigError(f"{name} must be an integer")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise FaultConfigError(f"{name} out of range: {number}")
    return number


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if number < 0:
        raise FaultConfigError("durations must not be negative")
    return number


def _methods(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise FaultConfigError("methods must be a list of strings")
    return [m.upper() for m in value]


class FaultInjector:
    """ASGI middleware applying the current HttpFaults to matching requests."""

    def __init__(self, app: Any, faults: HttpFaults | None = None) -> None:
        self.app = app
        self._faults = faults
        self._lock = threading.Lock()
        # Bumped by every set(): a request being held (latency, create_delay) is let go.
        self._generation = 0
        # Answers to POST /v1/batches being held by create_delay right now (tests wait on it).
        self.held_creates = 0

    @property
    def faults(self) -> HttpFaults | None:
        return self._faults

    def set(self, faults: HttpFaults | None) -> None:
        with self._lock:
            self._faults = faults
            self._generation += 1

    async def _hold(self, seconds: float) -> None:
        """Wait `seconds`, or less if the faults are changed meanwhile."""
        generation = self._generation
        deadline = asyncio.get_running_loop().time() + seconds
        while self._generation == generation:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.01))

    def _claim(self, method: str, path: str) -> HttpFaults | None:
        """The faults to apply to this request, spending one of `count` if limited."""
        with self._lock:
            faults = self._faults
            if faults is None or not faults.matches(method, path):
                return None
            if faults.count is not None and faults.count <= 0:
                return None
            if faults.rate < 1.0 and faults._rng.random() >= faults.rate:
                return None
            if faults.count is not None:
                faults.count -= 1
            return faults

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self._claim(scope["method"], scope["path"])
        if faults is None:
            await self.app(scope, receive, send)
            return
        if faults.latency:
            await self._hold(faults.latency)
        if faults.status is not None:
            body = msgspec.json.encode(
                error_body(faults.status, f"Sandbox fault: simulated HTTP {faults.status}")
            )
            headers = [(b"content-type", b"application/json")]
            if faults.retry_after is not None:
                value = faults.retry_after
                text = str(int(value)) if value == int(value) else str(value)
                headers.append((b"retry-after", text.encode()))
            await _respond(send, faults.status, headers, body)
            return
        if faults.non_json:
            body = b"<html><body><h1>502 Bad Gateway</h1>sandbox: not JSON</body></html>"
            await _respond(send, 200, [(b"content-type", b"text/html; charset=utf-8")], body)
            return
        if scope["path"].endswith("/content"):
            if faults.range_from is not None:
                scope, send = _range_from(scope, send, faults.range_from)
            if faults.short_download is not None:
                send = _short_send(send, faults.short_download)
            if faults.drop_download_after is not None:
                send = _truncating_send(send, faults.drop_download_after)
        if faults.create_delay and scope["method"] == "POST" and scope["path"] == "/v1/batches":
            send = self._delayed_send(send, faults.create_delay)
        await self.app(scope, receive, send)

    def _delayed_send(self, send: Any, seconds: float) -> Any:
        """Hold the answer (the batch already exists by the time it starts)."""

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.held_creates += 1
                try:
                    await self._hold(seconds)
                finally:
                    self.held_creates -= 1
            await send(message)

        return wrapped


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _range_from(scope: Any, send: Any, start: int) -> tuple[Any, Any]:
    """Ask the app for the file from `start` whatever the client's Range said, and answer
    a ranged request with a 206 whose Content-Range tells the truth about it."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
    if not any(k.lower() == b"range" for k, _ in scope["headers"]):
        return scope, send  # only ranged requests are answered wrongly
    if start:
        headers.append((b"range", f"bytes={start}-".encode()))
    scope = {**scope, "headers": headers}

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            length = next(
                (int(v) for k, v in message["headers"] if k.lower() == b"content-length"), 0
            )
            extra = [(b"content-range", f"bytes 0-{length - 1}/{length}".encode())]
            message = {**message, "status": 206, "headers": [*message["headers"], *extra]}
        await send(message)

    return scope, wrapped


def _short_send(send: Any, limit: int) -> Any:
    """No Content-Length, and a body that ends, cleanly, after `limit` bytes."""
    sent = 0
    finished = False

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal sent, finished
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
            await send({**message, "headers": kept})
            return
        if message["type"] != "http.response.body" or finished:
            return
        chunk = message.get("body", b"")[: max(0, limit - sent)]
        sent += len(chunk)
        finished = sent >= limit or not message.get("more_body")
        await send({"type": "http.response.body", "body": chunk, "more_body": not finished})

    return wrapped


class DroppedConnection(Exception):
    """Raised to make uvicorn close the connection in the middle of a response body."""


def _truncating_send(send: Any, limit: int) -> Any:
    sent = 0

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunk = message.get("body", b"")
        room = limit - sent
        if len(chunk) < room or (len(chunk) == room and not message.get("more_body")):
            sent += len(chunk)
            await send(message)
            return
        if room > 0:
            await send({"type": "http.response.body", "body": chunk[:room], "more_body": True})
            sent = limit
        raise DroppedConnection(f"sandbox fault: connection dropped after {limit} bytes")

    return wrapped
