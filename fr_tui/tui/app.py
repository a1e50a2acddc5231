"""FrTuiApp: the shell. Config and profile, the one shared API client, the sandbox server
when asked for, the two modes (Files, Batches), global keys, and clean exits.

Screens do the work; the App only holds what every screen shares. What keeps it safe to
run under them (failed workers, notifications, signals, a lost terminal) is AppPlumbing
(tui/app_plumbing.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from fr_tui.core.config import SANDBOX, SANDBOX_API_KEY, Config, KeyError_, Profile, save_config
from fr_tui.core.paths import Paths
from fr_tui.core.units import plural
from fr_tui.tui.app_plumbing import AppPlumbing
from fr_tui.tui.commands import FrCommands

if TYPE_CHECKING:
    from fr_tui.core.api import BatchClient
    from fr_tui.core.clients import ClientPool
    from fr_tui.core.intents import Intent
    from fr_tui.core.records import BatchRecord
    from fr_tui.core.store import HistoryStore
    from fr_tui.sandbox.server import SandboxServer
    from fr_tui.tui.job_driver import JobsDriver
    from fr_tui.tui.poller import BatchPoller


def _files_screen() -> Screen[Any]:
    from fr_tui.tui.screens.files import FilesScreen

    return FilesScreen()


def _batches_screen() -> Screen[Any]:
    from fr_tui.tui.screens.batches import BatchesScreen

    return BatchesScreen()


class FrTuiApp(AppPlumbing):
    """fr-tui. `run_tui()` in run.py builds and runs it; tests build it directly."""

    TITLE = "fr-tui"
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    COMMANDS = App.COMMANDS | {FrCommands}
    MODES: ClassVar[dict[str, Any]] = {"files": _files_screen, "batches": _batches_screen}
    # Start in Files directly: a switch_mode at start costs Textual's screen-switch delay.
    DEFAULT_MODE: ClassVar[str] = "files"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    # The footer shows the shown ones after the screen's keys; 1 and 2 are in the header.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", tooltip="Every key of this screen", id="help"),
        Binding("q", "quit", "Quit", tooltip="Leave fr-tui", id="quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="quit-ctrl-q"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit-ctrl-c"),
        Binding(
            "1",
            "show_mode('files')",
            "Files",
            show=False,
            tooltip="Browse, preview and validate batch input files",
            id="mode-files",
        ),
        Binding(
            "2",
            "show_mode('batches')",
            "Batches",
            show=False,
            tooltip="The list of submitted batches, refreshed by itself",
            id="mode-batches",
        ),
        Binding("escape", "back", "Back", show=False, tooltip="Back, or close", id="back"),
    ]

    # The header widgets watch this, so a profile switch shows everywhere at once.
    profile_name: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        config: Config,
        paths: Paths,
        start_path: Path | None = None,
        sandbox: bool = False,
        profile_name: str | None = None,
        base_url: str | None = None,
        sandbox_tick: float | None = None,
        install_signal_handlers: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.paths = paths
        paths.ensure()
        self._store: HistoryStore | None = None
        self.start_path = start_path
        self.sandbox_tick = sandbox_tick
        self._base_url_override = base_url
        self._install_signals = install_signal_handlers
        self._sandbox_server: SandboxServer | None = None
        self._client: BatchClient | None = None
        self._client_error: str | None = None
        self._clients: ClientPool | None = None
        name = SANDBOX if sandbox else (profile_name or config.active_profile)
        if name not in config.profiles:
            self._client_error = f"No profile named {name!r}; using {config.active_profile!r}."
            name = config.active_profile
        self.profile: Profile = config.profile(name)
        self.set_reactive(FrTuiApp.profile_name, name)
        try:
            self.theme = config.theme
        except Exception:  # an unknown theme name in the config: keep the default
            self.config.warnings.append(f"config: unknown theme {config.theme!r}")
        self._poller: BatchPoller | None = None
        self._jobs_driver: JobsDriver | None = None
        self._asking_to_quit: Screen[Any] | None = None  # the question while it is shown

    # ------------------------------------------------------------------ state

    @property
    def store(self) -> HistoryStore:
        # Opened on first use: the Files screen's first frame does not need the history.
        if self._store is None:
            from fr_tui.core.store import HistoryStore, StoreError

            try:
                # Read-only when it cannot be written: history shows, submits say why not.
                self._store = HistoryStore(self.paths.history_db, read_only=None)
            except StoreError as exc:
                # Keep working on a history for this session only; say so plainly.
                import tempfile

                scratch = Path(tempfile.mkdtemp(prefix="fr-tui-history-")) / "history.db"
                self._store = HistoryStore(scratch)
                self.notify(
                    f"{exc}. Batches of this session are kept in {scratch} instead.",
                    title="History unavailable",
                    severity="error",
                    timeout=20,
                )
            if self._store.notice:
                self.notify(self._store.notice, severity="warning", timeout=10)
        return self._store

    @property
    def poller(self) -> BatchPoller:
        # Built on first use: its imports (httpx...) are not needed for the first frame.
        if self._poller is None:
            from fr_tui.tui.poller import BatchPoller

            self._poller = BatchPoller(self)
        return self._poller

    @property
    def jobs_driver(self) -> JobsDriver:
        """Drives the unfinished jobs while the app is open (tui/job_driver.py)."""
        if self._jobs_driver is None:
            from fr_tui.tui.job_driver import JobsDriver

            self._jobs_driver = JobsDriver(self)
        return self._jobs_driver

    @property
    def is_sandbox(self) -> bool:
        return self.profile.is_sandbox

    @property
    def base_url(self) -> str:
        if self.is_sandbox:
            server = self._ensure_sandbox()
            return server.base_url
        return self._base_url_override or self.profile.base_url

    @property
    def client(self) -> BatchClient | None:
        """The shared client for the active profile; None while there is no key."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> BatchClient | None:
        from fr_tui.core.api import BatchClient
        from fr_tui.core.config import origin_for

        if self.is_sandbox:
            return BatchClient(self.base_url, SANDBOX_API_KEY, origin=origin_for("", sandbox=True))
        try:
            key = self.profile.resolve_key()
        except KeyError_ as exc:
            self._client_error = str(exc)
            return None
        if not key:
            return None
        return BatchClient(self.base_url, key)

    def client_for(self, record: BatchRecord | Intent) -> BatchClient:
        """The client for the server `record` (or a submit's intent) belongs to, with its
        own profile's key (the active client for the active server). Raises
        NoClientError."""
        from fr_tui.core.clients import ClientPool, NoClientError

        active = self.client
        if active is not None and record.origin in ("", active.origin):
            return active
        if self._clients is None:
            self._clients = ClientPool(self.config, lambda: self._ensure_sandbox().base_url)
        if record.origin == "" and active is None:
            raise NoClientError(f"Profile {self.profile.name!r} has no API key.")
        return self._clients.get(record.origin, record.profile)

    def _has_key(self) -> bool:
        """Whether the profile gives a key, without building the client (httpx and its
        TLS set-up are not needed for the first frame)."""
        if self.is_sandbox or self._client is not None:
            return True
        try:
            return bool(self.profile.resolve_key())
        except KeyError_ as exc:
            self._client_error = str(exc)
            return False

    def _ensure_sandbox(self) -> SandboxServer:
        if self._sandbox_server is None or not self._sandbox_server.running:
            from fr_tui.sandbox.server import SandboxServer

            server = SandboxServer(port=0, tick=self.sandbox_tick)
            server.start()
            self._sandbox_server = server
        return self._sandbox_server

    @property
    def sandbox_server(self) -> SandboxServer | None:
        return self._sandbox_server

    @property
    def needs_welcome(self) -> bool:
        """First run: no key anywhere (the profile names no key source, none in the
        environment), not on the sandbox. A config file that only holds a theme or
        another setting changed in the TUI is still a first run."""
        if self.is_sandbox or self._base_url_override or os.environ.get("FASTROUTER_API_KEY"):
            return False
        profile = self.profile
        return not (profile.api_key or profile.api_key_env or profile.api_key_command)

    def set_profile(self, name: str, *, save: bool = True) -> None:
        """Make `name` the active profile: new client, restarted poller, headers updated."""
        old_client = self._client
        self._client = None
        self._client_error = None
        self._base_url_override = None
        self.profile = self.config.profile(name)
        self.config.active_profile = name
        if save:
            self.save_config()
        if old_client is not None:
            self.run_worker(old_client.aclose(), group="client-close")
        if self._clients is not None:  # built with the old keys: build afresh when needed
            self.run_worker(self._clients.aclose(), group="client-close")
            self._clients = None
        if self.is_sandbox:
            self._ensure_sandbox()
        self.profile_name = name
        self.poller.stop()
        self.poller.start()
        self.reconcile_submits()  # interrupted submits to this profile's server
        missing = self.profile.key_missing()
        if missing:  # it switches anyway: the key may be set next, in Settings
            self.notify(
                f"Profile {name} has {missing}. Set one in Settings (ctrl+p, Settings).",
                title="Profile",
                severity="warning",
            )
        else:
            self.notify(f"Profile: {name}" + (" (sandbox)" if self.is_sandbox else ""))

    def save_config(self) -> None:
        try:
            save_config(self.config, self.paths)
        except OSError as exc:
            self.notify(f"Could not save the config: {exc}", severity="error")

    def watch_profile_name(self, name: str) -> None:
        self.sub_title = f"{name} · SANDBOX" if self.is_sandbox else name

    def watch_theme(self, theme: str) -> None:
        # Saved at once, also when there is no config file yet: a choice made in the TUI
        # is never lost at the next start.
        if theme != self.config.theme:
            self.config.theme = theme
            self.save_config()

    # ------------------------------------------------------------------ lifetime

    def on_load(self) -> None:
        if self.is_sandbox:
            self._ensure_sandbox()
        self.sub_title = f"{self.profile.name} · SANDBOX" if self.is_sandbox else self.profile.name

    def on_mount(self) -> None:
        if self._install_signals:
            self.exit_with_the_terminal()
        for warning in self.config.warnings:
            self.notify(warning, severity="warning", timeout=8)
        if self.needs_welcome:
            from fr_tui.tui.screens.welcome import WelcomeScreen

            self.push_screen(WelcomeScreen())
        else:
            if self._client_error:
                self.notify(self._client_error, severity="error", timeout=8)
            elif not self._has_key():
                self.notify(
                    f"Profile {self.profile.name!r} has no API key: press ctrl+p and open "
                    "settings, or set FASTROUTER_API_KEY.",
                    severity="warning",
                    timeout=8,
                )
            self._poll_after_first_frame = True

    def on_ready(self) -> None:
        # After the first frame: polling needs the network stack (httpx), the first paint
        # does not, so its import waits until the screen is up.
        if getattr(self, "_poll_after_first_frame", False):
            self.set_timer(0.2, lambda: self.poller.start())
            self.set_timer(0.2, lambda: self.jobs_driver.start())
            self.set_timer(0.2, self.reconcile_submits)

    reconciled_at: float | None = None  # when the start-up reconcile finished

    def reconcile_submits(self) -> None:
        """Settle submits an earlier run left unfinished (core.reconcile), in a worker."""
        self.run_worker(self._reconcile, group="reconcile", exclusive=True, exit_on_error=False)

    async def _reconcile(self) -> None:
        """Each server with unfinished submits, through the client of its own profile
        (whichever profile is active); the active server first."""
        from fr_tui.core.clients import NoClientError
        from fr_tui.core.intents import IN_FLIGHT, UNKNOWN, IntentLog
        from fr_tui.core.reconcile import ReconcileOutcome, reconcile
        from fr_tui.tui.messages import BatchesChanged

        outcomes: list[ReconcileOutcome] = []
        try:
            pending = IntentLog(self.store).in_states(IN_FLIGHT | {UNKNOWN})
            active = getattr(self.client, "origin", None)
            pending.sort(key=lambda intent: intent.origin != active)
            done: set[str] = set()
            for intent in pending:
                if intent.origin in done:
                    continue
                done.add(intent.origin)
                try:
                    client = self.client_for(intent)
                except NoClientError:
                    continue  # no profile (or key) for that server: it waits
                outcomes += await reconcile(client, self.store)
        finally:
            self.reconciled_at = time.time()
        for outcome in outcomes:
            line = outcome.line()
            if line:
                self.notify(line[0].upper() + line[1:], title="Interrupted submit", timeout=15)
        if outcomes:
            self.broadcast(BatchesChanged([o.batch.id for o in outcomes if o.batch]))

    async def on_unmount(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        if self._jobs_driver is not None:
            self._jobs_driver.stop()
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:
                pass
        if self._clients is not None:
            try:
                await self._clients.aclose()
            except Exception:
                pass
        self.stop_sandbox()

    def stop_sandbox(self) -> None:
        if self._sandbox_server is not None:
            self._sandbox_server.stop()
            self._sandbox_server = None

    # ------------------------------------------------------------------ navigation

    async def action_show_mode(self, mode: str) -> None:
        """`1`/`2`: the mode's own screen (Files, the Batches list), whatever was pushed
        on it before: details and results of a batch are screens on top of the list."""
        if self.current_mode != mode:
            await self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    def open_batches(self, select: str | None = None) -> None:
        """Show the Batches list, with `select` highlighted once its screen has it."""
        self.pending_batch_select = select
        self.run_worker(self._open_batches(select), group="navigation", exit_on_error=False)

    async def _open_batches(self, select: str | None) -> None:
        await self.action_show_mode("batches")
        if select:
            self._select_batch(select)

    def _select_batch(self, batch_id: str) -> None:
        for screen in self._screen_stacks.get("batches", []):
            selector = getattr(screen, "select_batch", None)
            if callable(selector) and screen.is_mounted:
                selector(batch_id)
                self.pending_batch_select = None
                return

    pending_batch_select: str | None = None

    def open_results(self, batch_id: str, origin: str | None = None) -> None:
        """Results of a batch, on top of the Batches list (or of its details)."""
        self.run_worker(self._push_on_batches(batch_id, origin, "results"), group="navigation")

    def open_details(self, batch_id: str, origin: str | None = None) -> None:
        """A batch's details, on top of the Batches list."""
        self.run_worker(self._push_on_batches(batch_id, origin, "details"), group="navigation")

    async def _push_on_batches(self, batch_id: str, origin: str | None, what: str) -> None:
        from fr_tui.tui.screens.batch_details import BatchDetailsScreen
        from fr_tui.tui.screens.results import ResultsScreen

        if self.current_mode != "batches":
            await self.action_show_mode("batches")
        screen = (
            ResultsScreen(batch_id, origin=origin)
            if what == "results"
            else BatchDetailsScreen(batch_id, origin=origin)
        )
        await self.push_screen(screen)

    def open_file(self, path: Path, line: int | None = None) -> None:
        """Switch to Files and preview (and validate) `path`, at `line` (1-based) if given."""

        async def show() -> None:
            await self.action_show_mode("files")
            self._open_file_now(Path(path), line)

        self.run_worker(show(), group="navigation", exit_on_error=False)

    def _open_file_now(self, path: Path, line: int | None) -> None:
        for screen in self._screen_stacks.get("files", []):
            opener = getattr(screen, "open_path", None)
            if callable(opener):
                opener(path, line=line, validate=True)
                return

    # ------------------------------------------------------------------ actions

    def action_help(self) -> None:
        from fr_tui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    async def action_quit(self) -> None:
        """Quit; while this process drives jobs, ask first (they stop moving until some
        fr-tui drives them again). A second quit key while asking quits."""
        from fr_tui.core.jobs_store import JobStore
        from fr_tui.core.jobs_view import resume_command
        from fr_tui.tui.modals.confirm import ConfirmModal

        held = list(self._jobs_driver.held) if self._jobs_driver is not None else []
        running = len(held)
        if not running or self.screen is self._asking_to_quit:
            self.exit()
            return
        # the exact commands: a plain `fr-tui run FILE` on another server starts a new job
        jobs = JobStore(self.store)
        commands = sorted(
            {f"`{resume_command(self.config, job)}`" for i in held if (job := jobs.get(i))}
        )
        they = "it pauses" if running == 1 else "they pause"
        body = (
            f"{plural(running, 'job')} {'is' if running == 1 else 'are'} running; {they} "
            f"until fr-tui is opened again or {', '.join(commands)} "
            f"resume{'s' if len(commands) == 1 else ''} {'it' if running == 1 else 'them'}. "
            "Quit?"
        )
        modal = ConfirmModal(
            "Jobs are running" if running > 1 else "A job is running", body, "Quit"
        )
        self._asking_to_quit = modal

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(modal, answered)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's Quit and Keys would stand next to fr-tui's own Quit and Help.
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    def action_open_settings(self) -> None:
        from fr_tui.tui.screens.settings import SettingsScreen

        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen())

    def action_use_sandbox(self) -> None:
        self.set_profile(SANDBOX)
