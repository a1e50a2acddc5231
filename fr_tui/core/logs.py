"""A rotating log file under the data dir, for bug reports. The API key is redacted
from every record, whatever logged it."""

from __future__ import annotations

import logging
import logging.handlers
import re

from fr_tui.core.paths import get_paths

# Bearer tokens and anything shaped like a key (sk-..., sk-v1-...).
_SECRET = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{6,}")


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[REDACTED]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A log that cannot be written (a full disk, a vanished folder) is skipped silently:
    logging's default would print a traceback on stderr, which the user never asked for."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(*, debug: bool = False) -> None:
    root = logging.getLogger("fr_tui")
    if getattr(root, "_fr_tui_configured", False):
        return
    root.setLevel(logging.DEBUG)
    log_dir = get_paths().log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = _QuietFileHandler(
        log_dir / "fr-tui.log", maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    root.addHandler(handler)
    if debug:
        stream = logging.StreamHandler()
        stream.addFilter(RedactingFilter())
        stream.setLevel(logging.DEBUG)
        root.addHandler(stream)
    root._fr_tui_configured = True  # type: ignore[attr-defined]
