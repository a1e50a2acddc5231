"""The planner's writer (core/plan.py): a thread that copies the parts' byte ranges from
the input into the part files as far as the planner has placed its lines, inside the
kernel where it can (copy_file_range: the bytes never come up into Python), and another
that fsyncs each part while the next is written."""

from __future__ import annotations

import errno
import os
import queue
import threading
from pathlib import Path
from typing import Any


class InputShrank(Exception):
    """The input ended before the bytes the planner placed: it got shorter meanwhile."""


# The writer copies the input as the planner places it, this much at a time: big enough
# that the thread takes the GIL back rarely, small enough that the last part's copy does
# not lag far behind the planner at the end.
_CHUNK = 4 << 20
# copy_file_range refuses these (another file system on old kernels, a file system that
# cannot, not Linux): the bytes are then copied through a buffer.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


class _Syncer(threading.Thread):
    """fsyncs and closes the part files it is given: the disk writes one part while the
    writer goes on with the next."""

    def __init__(self) -> None:
        super().__init__(name="plan-fsync", daemon=True)
        self.files: queue.Queue[int | None] = queue.Queue()
        self.error: BaseException | None = None

    def run(self) -> None:
        while (fd := self.files.get()) is not None:
            try:
                if self.error is None:
                    os.fsync(fd)
            except BaseException as exc:  # reported by the planner thread
                self.error = exc
            finally:
                os.close(fd)


class PartWriter(threading.Thread):
    """Copies the parts' bytes from the input into the part files, a chunk at a time, as
    far as the planner has placed its lines. The planner appends [file, start, end]
    ranges (and extends the last one) and says how far it got."""

    def __init__(self, source: Path, folder: Path, size: int) -> None:
        super().__init__(name="plan-writer", daemon=True)
        self.source = source
        self.folder = folder
        self.size = size
        self.ranges: list[list[Any]] = []  # [part file, start, end] in input order
        self.planned = 0  # bytes of the input placed so far
        self.finished = False  # every line placed
        self.stopped = False  # give up (an error or a cancel)
        self.wanted = 0  # the planner wakes the thread up once planned reaches this
        self.changed = threading.Condition()
        self.error: BaseException | None = None
        self.syncer = _Syncer()
        self.kernel_copy = hasattr(os, "copy_file_range")
        self._file: str | None = None
        self._fd = -1

    # -- the planner's side

    def advance(self, planned: int) -> None:
        self.planned = planned
        if planned >= self.wanted:
            with self.changed:
                self.changed.notify()

    def finish(self, *, stop: bool = False) -> None:
        with self.changed:
            self.finished = True
            self.stopped = self.stopped or stop
            self.changed.notify()

    # -- the thread

    def run(self) -> None:
        self.syncer.start()
        try:
            self._copy()
        except BaseException as exc:  # reported by the planner thread
            self.error = exc
        finally:
            if self._fd >= 0:  # given up midway (the plan is not made)
                os.close(self._fd)
            self.syncer.files.put(None)
            self.syncer.join()
            self.error = self.error or self.syncer.error

    def _wait_for(self, offset: int) -> bool:
        """Wait until the planner placed the input up to ``offset`` (or finished);
        False when it gave up."""
        with self.changed:
            self.wanted = offset
            while not (self.planned >= offset or self.finished or self.stopped):
                self.changed.wait()
        return not self.stopped

    def _copy(self) -> None:
        position = 0
        cursor = 0  # the first range not wholly written
        with open(self.source, "rb", buffering=0) as handle:
            while position < self.size:
                end = min(position + _CHUNK, self.size)
                if not self._wait_for(end):
                    return
                cursor = self._write_ranges(handle.fileno(), position, end, cursor)
                position = end
        if not self._wait_for(self.size + 1):  # the end: every range is known now
            return
        for name, _start, stop in self.ranges[cursor:]:
            if stop > self.size:  # a last line without its newline gets one
                self._open_part(name)
                _write_all(self._fd, b"\n")
        if self._file is not None:
            self._close_part()

    def _write_ranges(self, source: int, position: int, end: int, cursor: int) -> int:
        """Write the parts' bytes among the input's bytes position..end; return the new
        cursor."""
        ranges = self.ranges
        while cursor < len(ranges):
            name, start, stop = ranges[cursor]
            if start >= end:
                break
            low, high = max(start, position), min(stop, end)
            if high > low:
                self._open_part(name)
                self._copy_bytes(source, low, high - low)
            # a range is done when the chunk passed its end, unless it may still grow
            if stop > end or (cursor + 1 == len(ranges) and not self.finished):
                break
            cursor += 1
        return cursor

    def _copy_bytes(self, source: int, offset: int, count: int) -> None:
        """Append ``count`` bytes of the input from ``offset`` to the open part."""
        while count and self.kernel_copy:
            try:
                copied = os.copy_file_range(source, self._fd, count, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                self.kernel_copy = False
                break
            if copied == 0:
                raise InputShrank("the input file got shorter while it was planned")
            offset += copied
            count -= copied
        while count:
            data = os.pread(source, min(count, _CHUNK), offset)
            if not data:
                raise InputShrank("the input file got shorter while it was planned")
            _write_all(self._fd, data)
            offset += len(data)
            count -= len(data)

    def _open_part(self, name: str) -> None:
        if name != self._file:
            if self._file is not None:
                self._close_part()
            self._file = name
            self._fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def _close_part(self) -> None:
        self.syncer.files.put(self._fd)
        self._fd = -1
        self._file = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
