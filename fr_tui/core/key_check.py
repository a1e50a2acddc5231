"""Does an API key work against a server? Asked by the welcome screen and settings before
a key is saved."""

from __future__ import annotations

from fr_tui.core.api import BatchClient
from fr_tui.core.errors import ApiError, AuthError, NotFoundError

# Looking up a batch that cannot exist: 404 proves the key works without creating anything.
PROBE_BATCH_ID = "batch_fr-tui-key-check"


async def check_key(base_url: str, key: str) -> tuple[bool, str]:
    """(works, message) for a key against a server."""
    async with BatchClient(base_url, key, read_timeout=15.0, retry_budget=10.0) as client:
        try:
            await client.get_batch(PROBE_BATCH_ID)
        except NotFoundError as exc:
            # A batch API answers an unknown id with a JSON error; any web server answers
            # 404 to a wrong base URL, so only a 404 that reads like the API proves the key.
            if exc.server_text is not None:
                return True, "The key works."
            return False, "This base URL does not look like a batch API (404). Check it."
        except AuthError:
            return False, "The server refused this key (401). Check it and try again."
        except ApiError as exc:
            return False, exc.message
    return True, "The key works."
