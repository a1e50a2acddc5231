"""Shared by the fault suite (tests/test_reliability*.py): run fr-tui as a user would, read
its history as it goes, run it as an unprivileged user, and a tiny batch server for faults
the sandbox has no business producing (one id for every batch, redirects, files that
cannot be resumed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "fr_tui" / "samples"
KEY = "sk-v1-fault-suite-key"


def command(*args: str, wrap: list[str] | None = None) -> list[str]:
    return [*(wrap or []), sys.executable, "-m", "fr_tui", *args]


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTROUTER_", "XDG_"))}
    env.update(FR_TUI_HOME=str(home), FASTROUTER_API_KEY=KEY, PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def run(
    *args: str, home: Path, timeout: float = 60, wrap: list[str] | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """fr-tui ARGS as a user runs it; `wrap`: a command prefix (see permissions_apply)."""
    return subprocess.run(
        command(*args, wrap=wrap),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(home, **extra),
        stdin=subprocess.DEVNULL,
    )


def _default_signals() -> None:
    # A runner started under nohup (or by a service manager) ignores SIGHUP, and a child
    # inherits that: the process under test gets the dispositions a user's shell gives.
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def spawn(*args: str, home: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(home, **extra),
        stdin=subprocess.DEVNULL,
        preexec_fn=_default_signals,
    )


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll a condition on observable state until it holds (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


def history_rows(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows of the history the processes under test write, read without disturbing them
    (no table yet, or no file: nothing)."""
    db = home / "config" / "history.db"
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []


def intent_states(home: Path) -> list[str]:
    return [r["state"] for r in history_rows(home, "SELECT state FROM intents")]


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def permissions_apply() -> list[str]:
    """A command prefix under which file modes are obeyed: as root, the process keeps its
    uid but loses the capabilities that ignore them (root ignores a read-only mode)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


# ----------------------------------------------------------------- a tiny batch server


class TinyBatchServer:
    """Just enough of the batch API, on a thread: every batch it makes is called
    `batch_id` (two such servers hand out the same id), and `routes` can override any
    answer: {(method, path): handler(request) -> (status, headers, body bytes)}."""

    def __init__(self, batch_id: str = "batch_same") -> None:
        self.batch_id = batch_id
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, body bytes)
        self.routes: dict[tuple[str, str], Callable[[Any], tuple[int, dict[str, str], bytes]]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and "Connection" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if headers.get("Connection") == "close":
                    self.close_connection = True

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                server.requests.append((method, path, len(self.body)))
                route = server.routes.get((method, path))
                if route is not None:
                    self._answer(*route(self))
                    return
                self._answer(*server.default(method, path, self.body))

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def default(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        ok = {"Content-Type": "application/json"}
        if method == "POST" and path == "/v1/files":
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = body
            return 200, ok, _json({"id": file_id, "object": "file", "bytes": len(body)})
        if method == "POST" and path == "/v1/batches":
            payload = json.loads(body)
            batch = {
                "id": self.batch_id,
                "object": "batch",
                "status": "validating",
                "endpoint": payload["endpoint"],
                "input_file_id": payload["input_file_id"],
                "metadata": payload.get("metadata"),
                "created_at": int(time.time()),
            }
            self.batches[self.batch_id] = batch
            return 200, ok, _json(batch)
        if method == "GET" and path == "/v1/batches":
            data = list(self.batches.values())
            return 200, ok, _json({"object": "list", "data": data, "has_more": False})
        if method == "GET" and path.startswith("/v1/batches/"):
            batch = self.batches.get(path.rsplit("/", 1)[1])
            if batch is not None:
                return 200, ok, _json(batch)
        return 404, ok, _json({"error": {"message": f"no route {method} {path}"}})

    def __enter__(self) -> TinyBatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
