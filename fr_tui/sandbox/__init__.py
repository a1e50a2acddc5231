"""An embedded FastRouter-compatible batch API server for offline use and tests.

`SandboxServer` lives in fr_tui.sandbox.server (imported lazily: it pulls in uvicorn).
Fault injection is documented in fr_tui.sandbox.faults.
"""

from __future__ import annotations

# Any non-empty key works against the sandbox; this is the one the app uses by default.
SANDBOX_API_KEY = "sk-sandbox-local"

__all__ = ["SANDBOX_API_KEY"]
