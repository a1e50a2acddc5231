"""AppPlumbing: what FrTuiApp (tui/app.py) does under every screen so that nothing a
screen or a worker does reaches the user as a crash or as noise: a failed worker is one
clear line, notifications are plain text, a dimmed key says why it does nothing, the
crash report leaves locals out, app-wide messages reach every screen, and the app exits
with the right code when its terminal goes away.
"""

from __future__ import annotations

import asyncio
import copy
import signal
import sys
from collections.abc import Mapping
from typing import Any

from textual.actions import ActionParseResult
from textual.app import App
from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, WorkerState

from fr_tui.cli_errors import EXIT_HANGUP, exit_for_signal

# How often the app checks that its terminal is still there (dolphie #101: a closed
# PuTTY left the process spinning). SIGHUP normally arrives first; this is the backstop.
TTY_CHECK_SECONDS = 3.0


class AppPlumbing(App[int]):
    def _fatal_error(self) -> None:
        # Textual's crash report shows every frame's local variables, and a request's
        # headers (with the API key) may be among them: the key is never printed, so
        # the report here leaves locals out.
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None)
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options))
        )
        self._close_messages_no_wait()

    def notify(self, message: str, *, title: str = "", markup: bool = True, **kwargs: Any) -> None:
        # Messages here carry server errors, file names and file content: text such as
        # "[/v1/batches]" must show as it is, not be read as (broken) Textual markup.
        super().notify(message, title=title, markup=False, **kwargs)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A key that is dimmed because it does not apply now says why when pressed
        (Textual would drop it silently); the screen's why_not has the words."""
        target, name, params = self._parse_action(
            action, self if default_namespace is None else default_namespace, namespaces
        )
        why_not = getattr(target, "why_not", None)
        dimmed = callable(why_not) and target.check_action(name, params) is None
        if dimmed and (reason := why_not(name)):
            self.notify(reason, timeout=4)
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for every worker that fails (they all run with exit_on_error=False):
        the user gets one clear line and the app keeps running; the log has the detail."""
        error = event.worker.error
        if event.state != WorkerState.ERROR or error is None:
            return
        import logging

        logging.getLogger("fr_tui.tui").error("worker %s failed", event.worker.name, exc_info=error)
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        self.notify(str(message), title="Something went wrong", severity="error", timeout=10)

    def broadcast(self, message: Message) -> None:
        """Give an app-wide message to every installed screen of every mode."""
        for stack in self._screen_stacks.values():
            for screen in stack:
                if screen.is_attached:
                    screen.post_message(copy.copy(message))

    # ------------------------------------------------------------------ the terminal

    def exit_with_the_terminal(self) -> None:
        """Exit on SIGHUP or SIGTERM (129, 143), and when stdin stops being a terminal."""
        self._install_signal_handlers()
        self.set_interval(TTY_CHECK_SECONDS, self._check_terminal, name="tty-check")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._exit_on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass

    def _exit_on_signal(self, sig: int) -> None:
        code = exit_for_signal(sig)  # SIGHUP 129, SIGTERM 143
        self.exit(code, return_code=code)

    def _check_terminal(self) -> None:
        stream = sys.__stdin__
        try:
            alive = stream is not None and stream.isatty()
        except (ValueError, OSError):
            alive = False
        if not alive:
            self.exit(EXIT_HANGUP, return_code=EXIT_HANGUP)
