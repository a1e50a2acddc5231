"""What every headless command that talks to a server shares: the chosen profile, the
server a batch belongs to, the history, and an API client (or an embedded sandbox) for
the length of one command. No Textual here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fr_tui.cli_errors import CliError
from fr_tui.cli_support import err
from fr_tui.cli_support import load_profile as config_and_profile
from fr_tui.core.config import (
    BASE_URL_ENV,
    SANDBOX_API_KEY,
    SANDBOX_ORIGIN,
    Config,
    KeyError_,
    Profile,
    base_url_problem,
    normalise_base_url,
    origin_for,
    profile_for_origin,
)
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.records import BatchRecord
from fr_tui.core.store import HistoryStore

if TYPE_CHECKING:  # the client pulls in httpx: only the commands that talk to the API load it
    from fr_tui.core.api import BatchClient
    from fr_tui.core.reconcile import ReconcileOutcome

T = TypeVar("T")


@dataclass
class Session:
    client: BatchClient
    store: HistoryStore
    paths: Paths
    config: Config
    profile: Profile  # the profile that talks to the client's server (its key, its costs)

    @property
    def origin(self) -> str:
        return self.client.origin


@dataclass
class Target:
    """Which server a command talks to, and with which profile's key."""

    profile: Profile
    sandbox: bool
    base_url: str  # "" for the sandbox (its address is known once it runs)

    @property
    def origin(self) -> str:
        return origin_for(self.base_url, sandbox=self.sandbox)


def target_for(args: argparse.Namespace, config: Config, profile: Profile) -> Target:
    """The server of the command: the embedded sandbox (with the sandbox profile's
    settings), else --base-url, FASTROUTER_BASE_URL or the profile's base URL."""
    if args.sandbox or (profile.is_sandbox and not args.base_url):
        return Target(config.profile(SANDBOX_ORIGIN), True, "")
    base_url = args.base_url or os.environ.get(BASE_URL_ENV) or profile.base_url
    return Target(profile, False, normalise_base_url(base_url))


def explicit_target(args: argparse.Namespace) -> bool:
    return bool(args.profile or args.base_url or args.sandbox or os.environ.get(BASE_URL_ENV))


def target_of(record: BatchRecord, config: Config, fallback: Target) -> Target:
    """The server a history record belongs to, with the key of its own profile (or of a
    profile on the same server; else the chosen profile's)."""
    if record.origin == SANDBOX_ORIGIN:
        return Target(config.profile(SANDBOX_ORIGIN), True, "")
    profile = profile_for_origin(config, record.origin, record.profile)
    return Target(profile or fallback.profile, False, record.origin)


def open_store(paths: Paths, *, read_only: bool | None = False) -> HistoryStore:
    store = HistoryStore(paths.history_db, read_only=read_only)
    if store.notice:
        err(store.notice)
    return store


def find_record(
    args: argparse.Namespace, store: HistoryStore, batch_id: str, target: Target
) -> BatchRecord | None:
    """BATCH_ID in history: in the session's origin first, else the one record with that
    id whatever its server (several: the user must say which)."""
    record = store.get(target.origin, batch_id)
    if record is not None:
        return record
    matches = store.find(batch_id)
    if len(matches) > 1:
        origins = ", ".join(m.origin or "unknown" for m in matches)
        raise CliError(
            f"{batch_id} is in history for several servers ({origins}): choose one with "
            "--profile, --base-url or --sandbox"
        )
    if matches and not explicit_target(args):
        return matches[0]
    return None


class NoClient(CliError):
    """No client can be made for a target; `reason` says why in a few words."""

    def __init__(self, reason: str, advice: str = "") -> None:
        super().__init__(reason + advice)
        self.reason = reason


def client_key(target: Target) -> str:
    """The API key a client for `target` sends, once its base URL is known to be usable;
    NoClient says why there can be no client (checked before anything is recorded)."""
    if target.sandbox:
        return SANDBOX_API_KEY
    profile = target.profile
    problem = base_url_problem(target.base_url)
    if problem:
        raise NoClient(f"{problem} (profile {profile.name!r}, or --base-url)")
    try:
        key = profile.resolve_key()
    except KeyError_ as exc:
        raise NoClient(str(exc)) from None
    if not key:
        why = (profile.key_missing() or "its key command gave none").removeprefix("no API key: ")
        raise NoClient(
            f"no API key for profile {profile.name!r} ({why})",
            ": configure one in the TUI (fr-tui), or try the sandbox (--sandbox)",
        )
    return key


@asynccontextmanager
async def open_session(
    args: argparse.Namespace,
    *,
    batch_id: str | None = None,
    target_of_job: Callable[[Config, Target], Target] | None = None,
) -> AsyncIterator[Session]:
    """An API client for the chosen profile (starting an embedded sandbox when asked).
    With `batch_id`: for the server that batch belongs to in history, if it is there;
    with `target_of_job`: for the server it picks (a job's own)."""
    config, profile = config_and_profile(args)
    paths = get_paths().ensure()
    store = open_store(paths)
    target = target_for(args, config, profile)
    if target_of_job is not None:
        target = target_of_job(config, target)
    if batch_id is not None:
        record = find_record(args, store, batch_id, target)
        if record is not None and record.origin not in ("", target.origin):
            target = target_of(record, config, target)
    key = client_key(target)
    server = None
    base_url = target.base_url
    if target.sandbox:
        from fr_tui.sandbox.server import SandboxServer

        server = SandboxServer(state_dir=paths.sandbox_dir)
        base_url = server.start()
    from fr_tui.core.api import BatchClient

    client = BatchClient(base_url, key, origin=target.origin)
    try:
        yield Session(client, store, paths, config, target.profile)
    finally:
        await client.aclose()
        if server is not None:
            server.stop()


def say_reconciled(outcome: ReconcileOutcome) -> None:
    line = outcome.line()
    if line:
        err(line)


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    import asyncio  # here, not at the top: validate and split never need it

    return asyncio.run(coro_fn())
