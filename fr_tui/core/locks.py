"""Liveness by lock, not by guessing from pids: the process that drives a piece of work
(a submit's intent now, a job later) holds an exclusive `flock` on a lock file of its own
for as long as it works on it. The kernel drops the lock when the process ends, however
it ends (SIGKILL included), so another process that *can* take the lock knows the owner
is gone.

Lock files live in `<config dir>/locks/` and are removed by whoever finishes the work.
A lock file can be unlinked while another process waits to lock it; so a reconciler that
gets a lock must re-read the state of the work before acting on it (the owner records
the outcome before it lets go).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from types import TracebackType

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def lock_path(locks_dir: Path, kind: str, name: str) -> Path:
    """`<locks_dir>/<kind>-<name>.lock`, with `name` made safe for a file name."""
    return Path(locks_dir) / f"{kind}-{_SAFE.sub('_', name)}.lock"


class WorkLock:
    """An exclusive flock on one lock file. `acquire(wait=False)` returns whether it got it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: bool = True) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self, *, remove: bool = False) -> None:
        """Let go; `remove` also deletes the lock file (the work is finished)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> WorkLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
