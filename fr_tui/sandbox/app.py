"""The sandbox's HTTP API: FastRouter's batch routes plus the OpenAI-compatible extras.

Routes (all under ``/v1`` need ``Authorization: Bearer <key>``; see faults.py for keys that
fail on purpose):

    POST /v1/files                  multipart (file, purpose=batch), streamed to disk
    GET  /v1/files/{id}             file object
    GET  /v1/files/{id}/content     bytes, streamed; ``Range: bytes=N-`` gives a 206
    POST /v1/batches                {input_file_id, endpoint, completion_window, metadata}
    GET  /v1/batches                {object: list, data, first_id, last_id, has_more}
    GET  /v1/batches/{id}
    POST /v1/batches/{id}/cancel
    GET  /v1/models                 the model catalog (public, no key), see catalog.py
    GET  /_sandbox                  server facts (tick, state dir)
    GET|POST /_sandbox/faults       HTTP-layer fault injection (see faults.py)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fr_tui.sandbox.answers import error_body
from fr_tui.sandbox.catalog import models_answer
from fr_tui.sandbox.faults import (
    BATCH_FAULTS,
    FaultConfigError,
    FaultInjector,
    HttpFaults,
)
from fr_tui.sandbox.state import (
    DEFAULT_TICK,
    SUPPORTED_ENDPOINTS,
    InvalidState,
    NotFound,
    SandboxStore,
)

DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def fail(status: int, message: str, code: str | None = None) -> JSONResponse:
    body = error_body(status, message)
    if code is not None:
        body["error"]["code"] = code
    return JSONResponse(body, status_code=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _check_auth(request: Request, creating: bool) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "Missing API key: send Authorization: Bearer <key>.", "missing_api_key")
    if key.startswith("sk-bad"):
        raise ApiError(401, "Invalid API key.", "invalid_api_key")
    if creating and key.startswith("sk-broke"):
        raise ApiError(
            402, "Insufficient credits: add credits to continue.", "insufficient_credits"
        )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _file_api(record: dict[str, Any], base: str) -> dict[str, Any]:
    file_id = record["id"]
    return {
        "id": file_id,
        "file_id": file_id,
        "object": "file",
        "filename": record["filename"],
        "bytes": record["bytes"],
        "num_rows": record["num_rows"],
        "purpose": record["purpose"],
        "created_at": record["created_at"],
        "status": "processed",
        "url": f"{base}/v1/files/{file_id}/content",
    }


class FileRangeResponse(Response):
    """A file body sent in chunks from an offset, so memory does not grow with file size."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.status_code = 206 if start else 200
        self.background = None
        headers = {
            "content-type": "application/x-ndjson",
            "content-length": str(size - start),
            "accept-ranges": "bytes",
        }
        if start:
            headers["content-range"] = f"bytes {start}-{size - 1}/{size}"
        self.init_headers(headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        remaining = self.size - self.start
        with open(self.path, "rb") as handle:
            handle.seek(self.start)
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class SandboxApp:
    """Owns the store, the fault injector and the Starlette routes."""

    def __init__(
        self,
        state_dir: Path,
        tick: float | None = None,
        faults: dict[str, Any] | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_enqueued_tokens: int | None = None,
    ) -> None:
        self.store = SandboxStore(
            Path(state_dir),
            tick=DEFAULT_TICK if tick is None else tick,
            max_enqueued_tokens=max_enqueued_tokens,
        )
        self.max_upload_bytes = max_upload_bytes
        routes = [
            Route("/v1/files", self.upload_file, methods=["POST"]),
            Route("/v1/files/{file_id}", self.retrieve_file, methods=["GET"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/batches", self.create_batch, methods=["POST"]),
            Route("/v1/batches", self.list_batches, methods=["GET"]),
            Route("/v1/batches/{batch_id}", self.retrieve_batch, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self.cancel_batch, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/_sandbox", self.info, methods=["GET"]),
            Route("/_sandbox/faults", self.get_faults, methods=["GET"]),
            Route("/_sandbox/faults", self.set_faults_route, methods=["POST"]),
        ]
        self.starlette = Starlette(
            routes=routes,
            exception_handlers={
                ApiError: self._api_error,
                404: self._not_found,
                405: self._not_allowed,
            },
        )
        self.injector = FaultInjector(self.starlette, HttpFaults.parse(faults))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.injector(scope, receive, send)

    def set_faults(self, faults: dict[str, Any] | None) -> None:
        self.injector.set(HttpFaults.parse(faults or {}))

    # -- error handlers ------------------------------------------------------------------

    async def _api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return fail(exc.status, exc.message, exc.code)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return fail(404, f"No route for {request.method} {request.url.path}.", "not_found")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return fail(405, f"Method {request.method} not allowed here.", "method_not_allowed")

    # -- files ---------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        _check_auth(request, creating=True)
        content_type, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise ApiError(400, "Expected a multipart/form-data upload.", "invalid_request")
        file_id, tmp = self.store.upload_path()
        try:
            form = await self._stream_form(request, boundary, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if form["size"] is None:
            tmp.unlink(missing_ok=True)
            raise ApiError(
                400, "The multipart field 'file' is required.", "missing_required_parameter"
            )
        purpose = form["fields"].get("purpose", "batch") or "batch"
        if purpose != "batch":
            tmp.unlink(missing_ok=True)
            raise ApiError(400, f"Unsupported purpose {purpose!r}: use 'batch'.", "invalid_purpose")
        record = self.store.add_upload(
            file_id, tmp, form["filename"] or "upload.jsonl", form["size"], form["rows"], purpose
        )
        return JSONResponse(_file_api(record, _base_url(request)))

    def _too_large_message(self) -> str:
        return f"Payload Too Large: file exceeds the {self.max_upload_bytes} byte limit."

    async def _stream_form(self, request: Request, boundary: bytes, tmp: Path) -> dict[str, Any]:
        """Parse the multipart body as it arrives, writing the file part straight to `tmp`."""
        state: dict[str, Any] = {
            "fields": {},
            "filename": None,
            "size": None,
            "rows": 0,
            "last": b"\n",
            "too_large": False,
        }
        part: dict[str, Any] = {}
        header_field = bytearray()
        header_value = bytearray()
        handle = open(tmp, "wb")  # noqa: SIM115 - closed in finally, spans callbacks
        limit = self.max_upload_bytes

        def on_part_begin() -> None:
            part.clear()
            part.update(headers={}, name=None, is_file=False, value=bytearray())

        def on_header_field(data: bytes, start: int, end: int) -> None:
            header_field.extend(data[start:end])

        def on_header_value(data: bytes, start: int, end: int) -> None:
            header_value.extend(data[start:end])

        def on_header_end() -> None:
            part["headers"][bytes(header_field).lower()] = bytes(header_value)
            header_field.clear()
            header_value.clear()

        def on_headers_finished() -> None:
            _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
            name = options.get(b"name", b"").decode("utf-8", "replace")
            part["name"] = name
            if name == "file":
                part["is_file"] = True
                raw_name = options.get(b"filename", b"upload.jsonl")
                state["filename"] = os.path.basename(raw_name.decode("utf-8", "replace"))
                state["size"] = 0

        def on_part_data(data: bytes, start: int, end: int) -> None:
            chunk = data[start:end]
            if not part["is_file"]:
                if len(part["value"]) < 4096:
                    part["value"].extend(chunk)
                return
            if not chunk:
                return
            state["size"] += len(chunk)
            if state["size"] > limit:
                # Keep reading (and discarding) so the client gets to read the 413
                # instead of a broken pipe while it is still sending.
                state["too_large"] = True
                return
            handle.write(chunk)
            state["rows"] += chunk.count(b"\n")
            state["last"] = chunk[-1:]

        def on_part_end() -> None:
            if part["name"] and not part["is_file"]:
                state["fields"][part["name"]] = part["value"].decode("utf-8", "replace").strip()

        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": on_part_begin,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(400, f"Malformed multipart upload: {exc}", "invalid_request") from exc
        finally:
            handle.close()
        if state["too_large"]:
            raise ApiError(413, self._too_large_message(), "file_too_large")
        if state["size"] and state["last"] != b"\n":
            state["rows"] += 1  # a last line without a trailing newline
        return state

    async def retrieve_file(self, request: Request) -> Response:
        _check_auth(request, creating=False)
        record = self._file_or_404(request.path_params["file_id"])
        return JSONResponse(_file_api(record, _base_url(request)))

    def _file_or_404(self, file_id: str) -> dict[str, Any]:
        try:
            return self.store.get_file(file_id)
        except NotFound:
            raise ApiError(404, f"No such file: {file_id}", "file_not_found") from None

    async def file_content(self, request: Request) -> Response:
        _check_auth(request, creating=False)
        file_id = request.path_params["file_id"]
        self._file_or_404(file_id)
        path = self.store.file_path(file_id)
        size = path.stat().st_size
        start = 0
        header = request.headers.get("range")
        if header:
            match = _RANGE.match(header.strip())
            if match is None:
                raise ApiError(416, "Only 'Range: bytes=N-' is supported.", "invalid_range")
            start = int(match.group(1))
            if start >= size and not (start == 0 and size == 0):
                response = fail(
                    416, f"Range start {start} is past the end ({size}).", "invalid_range"
                )
                response.headers["content-range"] = f"bytes */{size}"
                return response
        return FileRangeResponse(path, start, size)

    # -- batches -------------------------------------------------------------------------

    async def create_batch(self, request: Request) -> Response:
        _check_auth(request, creating=True)
        try:
            payload = msgspec.json.decode(await request.body())
        except (msgspec.DecodeError, RecursionError):
            raise ApiError(400, "The request body is not valid JSON.", "invalid_json") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "The request body must be a JSON object.", "invalid_request")
        input_file_id = payload.get("input_file_id")
        endpoint = payload.get("endpoint")
        window = payload.get("completion_window")
        metadata = payload.get("metadata")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise ApiError(400, "input_file_id is required.", "missing_required_parameter")
        if endpoint not in SUPPORTED_ENDPOINTS:
            raise ApiError(
                400,
                f"Unsupported endpoint {endpoint!r}: use one of {', '.join(SUPPORTED_ENDPOINTS)}.",
                "invalid_endpoint",
            )
        if window != "24h":
            raise ApiError(400, "completion_window must be '24h'.", "invalid_completion_window")
        if metadata is not None:
            self._check_metadata(metadata)
        fault = metadata.get("sandbox_fault") if isinstance(metadata, dict) else None
        if fault is not None and fault not in BATCH_FAULTS:
            raise ApiError(
                400,
                f"Unknown sandbox_fault {fault!r}: use one of {', '.join(sorted(BATCH_FAULTS))}.",
                "invalid_metadata",
            )
        record = self._file_or_404(input_file_id)
        if record["purpose"] != "batch":
            raise ApiError(400, f"File {input_file_id} is not a batch input file.", "invalid_file")
        batch = await run_in_threadpool(
            self.store.create_batch, input_file_id, endpoint, metadata, fault
        )
        return JSONResponse(batch)

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object.", "invalid_metadata")
        if len(metadata) > 16:
            raise ApiError(400, "metadata holds at most 16 pairs.", "invalid_metadata")
        for key, value in metadata.items():
            if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
                raise ApiError(
                    400,
                    "metadata keys are strings up to 64 characters, values up to 512.",
                    "invalid_metadata",
                )

    async def retrieve_batch(self, request: Request) -> Response:
        _check_auth(request, creating=False)
        batch_id = request.path_params["batch_id"]
        try:
            batch = await run_in_threadpool(self.store.get_batch, batch_id)
        except NotFound:
            raise ApiError(404, f"No such batch: {batch_id}", "batch_not_found") from None
        return JSONResponse(batch)

    async def list_batches(self, request: Request) -> Response:
        _check_auth(request, creating=False)
        raw_limit = request.query_params.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise ApiError(400, "limit must be an integer from 1 to 100.", "invalid_limit")
        after = request.query_params.get("after") or None
        data, has_more = await run_in_threadpool(self.store.list_batches, int(raw_limit), after)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }
        )

    async def cancel_batch(self, request: Request) -> Response:
        _check_auth(request, creating=False)
        batch_id = request.path_params["batch_id"]
        try:
            batch = await run_in_threadpool(self.store.cancel_batch, batch_id)
        except NotFound:
            raise ApiError(404, f"No such batch: {batch_id}", "batch_not_found") from None
        except InvalidState as exc:
            raise ApiError(400, str(exc), "invalid_batch_status") from None
        return JSONResponse(batch)

    # -- models --------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        return JSONResponse(models_answer())  # public, like FastRouter's

    # -- admin ---------------------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "sandbox": True,
                "tick": self.store.tick,
                "state_dir": str(self.store.state_dir),
                "max_upload_bytes": self.max_upload_bytes,
                "max_enqueued_tokens": self.store.max_enqueued_tokens,
            }
        )

    async def get_faults(self, request: Request) -> Response:
        faults = self.injector.faults
        return JSONResponse(
            {
                "faults": faults.describe() if faults else None,
                "held_creates": self.injector.held_creates,
            }
        )

    async def set_faults_route(self, request: Request) -> Response:
        body = await request.body()
        try:
            data = msgspec.json.decode(body) if body.strip() else {}
            self.set_faults(data)
        except (msgspec.DecodeError, RecursionError, FaultConfigError) as exc:
            raise ApiError(400, f"Bad fault settings: {exc}", "invalid_faults") from None
        faults = self.injector.faults
        return JSONResponse({"faults": faults.describe() if faults else None})
