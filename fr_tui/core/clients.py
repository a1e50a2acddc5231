"""A client for each server a history record belongs to, so every batch is polled (and
cancelled, and downloaded) with its own profile's key, whichever profile is active.

Built on first use, one per (origin, profile). The embedded sandbox is reached through a
callback that starts it on demand (core does not import the sandbox).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fr_tui.core.api import BatchClient
from fr_tui.core.config import (
    SANDBOX_API_KEY,
    SANDBOX_ORIGIN,
    Config,
    KeyError_,
    profile_for_origin,
)


class NoClientError(Exception):
    """No profile (or no key) reaches the server a batch belongs to; says which."""


class ClientPool:
    def __init__(
        self,
        config: Config,
        sandbox_url: Callable[[], str],
        **client_options: Any,
    ) -> None:
        self.config = config
        self.sandbox_url = sandbox_url
        self.client_options = client_options
        self._clients: dict[tuple[str, str], BatchClient] = {}

    def get(self, origin: str, profile_name: str | None) -> BatchClient:
        """The client for `origin`; NoClientError says why there is none."""
        profile = profile_for_origin(self.config, origin, profile_name)
        if profile is None:
            raise NoClientError(
                f"no profile points at {origin or 'this batch’s server'}: add one in settings "
                "to follow this batch"
            )
        base_url = self.sandbox_url() if origin == SANDBOX_ORIGIN else origin
        key = (base_url, profile.name)
        client = self._clients.get(key)
        if client is not None:
            return client
        if origin == SANDBOX_ORIGIN:
            api_key: str | None = SANDBOX_API_KEY
        else:
            try:
                api_key = profile.resolve_key()
            except KeyError_ as exc:
                raise NoClientError(str(exc)) from None
            if not api_key:
                raise NoClientError(f"profile {profile.name!r} has no API key")
        client = BatchClient(base_url, api_key or "", origin=origin, **self.client_options)
        self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
