"""Run the sandbox app under uvicorn: in a background thread (`SandboxServer`) or in the
foreground (`serve_forever`, for ``fr-tui sandbox``)."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from fr_tui.sandbox import SANDBOX_API_KEY
from fr_tui.sandbox.app import DEFAULT_MAX_UPLOAD_BYTES, SandboxApp
from fr_tui.sandbox.faults import DroppedConnection

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0


class _HideDeliberateDrops(logging.Filter):
    """uvicorn logs a traceback when a response is cut short; ours are cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            if isinstance(exc, BaseExceptionGroup) and any(
                isinstance(e, DroppedConnection) for e in exc.exceptions
            ):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_drop_filter = _HideDeliberateDrops()


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _drop_filter not in logger.filters:
        logger.addFilter(_drop_filter)


def _default_state_dir() -> Path:
    from fr_tui.core.paths import get_paths

    return get_paths().sandbox_dir


class SandboxServer:
    """The sandbox on a background thread.

    >>> with SandboxServer(tick=0.01) as server:
    ...     base = server.base_url   # "http://127.0.0.1:PORT", without /v1
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        host: str = LOOPBACK,
        port: int = 0,
        tick: float | None = None,
        faults: dict[str, Any] | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        access_log: bool = False,
        max_enqueued_tokens: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else _default_state_dir()
        self.host = host
        self.port = port
        self.app = SandboxApp(
            self.state_dir,
            tick=tick,
            faults=faults,
            max_upload_bytes=max_upload_bytes,
            max_enqueued_tokens=max_enqueued_tokens,
        )
        self._access_log = access_log
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the sandbox server is not running")
        return self._base_url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        """Start listening; returns the base URL (e.g. "http://127.0.0.1:54321")."""
        if self.running:
            return self.base_url
        _install_log_filter()
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=self._access_log,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="fr-tui-sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"the sandbox server could not listen on {self.host}:{self.port}"
                )
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the sandbox server did not start in time")
            time.sleep(0.005)
        sockets = [s for srv in server.servers for s in srv.sockets]
        port = sockets[0].getsockname()[1] if sockets else self.port
        self.port = port
        self._server = server
        self._thread = thread
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._base_url = f"http://{host}:{port}"
        return self._base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        self._server = None
        self._thread = None
        self._base_url = None

    def set_faults(self, faults: dict[str, Any] | None) -> None:
        """Replace the HTTP-layer faults (see fr_tui.sandbox.faults); {} or None clears."""
        self.app.set_faults(faults)

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    host: str = LOOPBACK,
    port: int = 8787,
    state_dir: Path | str | None = None,
    tick: float | None = None,
    faults: dict[str, Any] | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    access_log: bool = False,
    max_enqueued_tokens: int | None = None,
) -> None:
    """Run the sandbox in the foreground until Ctrl+C / SIGTERM (``fr-tui sandbox``).
    The socket is bound first, so the banner says the port it got (`--port 0`: any free
    one) and a port in use is an OSError, not a server that starts and dies."""
    directory = Path(state_dir) if state_dir is not None else _default_state_dir()
    app = SandboxApp(
        directory,
        tick=tick,
        faults=faults,
        max_upload_bytes=max_upload_bytes,
        max_enqueued_tokens=max_enqueued_tokens,
    )
    _install_log_filter()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    shown = f"[{host}]" if ":" in host else host
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {shown}:{port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    print(
        f"fr-tui sandbox: http://{shown}:{port} (API base http://{shown}:{port}/v1; any key, "
        f"e.g. {SANDBOX_API_KEY}); state in {directory}."
        + (
            f" Enqueued-token limit: {max_enqueued_tokens:,}."
            if max_enqueued_tokens is not None
            else ""
        )
        + " Ctrl+C stops it.",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=access_log, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
