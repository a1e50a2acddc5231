"""A line-offset index of a JSONL file, for random access to any line of a huge file.

The toolong approach: the file is never read into Python objects. A scan over a read-only
mmap records where each line ends (8 bytes per line in an `array('q')`), and a line is read
on demand with `os.pread`, which does not move a shared file pointer, so a worker thread
can keep scanning while the UI thread reads lines that are already indexed.

A line is everything up to a b"\\n"; a trailing b"\\r" is dropped (CRLF files), and a final
line without a newline still counts. An empty file has no lines.
"""

from __future__ import annotations

import mmap
import os
import re
import threading
import time
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import msgspec

from fr_tui.core.userfiles import FileSignature, open_regular

ProgressCallback = Callable[[int, int], None]

# Progress is reported (and cancellation checked) at most this often while scanning.
_PROGRESS_BYTES = 8 << 20
_PROGRESS_SECONDS = 0.1
# Lines bigger than this are read on demand but never kept in the cache, so one 100 MB
# line cannot push everything else out or pin that much memory.
_CACHE_LINE_LIMIT = 256 << 10
_CACHE_BYTES = 32 << 20
_CACHE_ENTRIES = 10_000
# Sequential reads (iter_lines, find backwards) go in blocks of this size.
_BLOCK = 4 << 20


class LineIndex:
    """Offsets of every line of one file, built by `scan_head()` and/or `build()`.

    `build()` may run in a worker thread while another thread calls `len()`, `line()` and
    friends: the offsets array only ever grows, an entry is appended only once the line
    it describes is complete, and appends are atomic under the GIL. The file's size is
    taken when it is opened; bytes appended later are not indexed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open_regular(self.path, buffering=0)  # closed in close()
        self._fd = self._file.fileno()
        opened = os.fstat(self._fd)
        self._size = opened.st_size
        self.signature = FileSignature.of_stat(opened)  # the file as it was opened
        # _ends[i] is the offset of line i's b"\n" (or the file size for an unterminated
        # final line); line i starts one byte after _ends[i - 1].
        self._ends: array[int] = array("q")
        self._scanned = 0  # bytes up to here have been looked at
        self._complete = self._size == 0
        self._scan_lock = threading.Lock()  # one scanner at a time
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._map: mmap.mmap | None = None
        self._closed = False

    def changed_on_disk(self) -> bool:
        """Whether the path now holds other bytes than the index shows (edited, replaced,
        or gone): the index is then of the file as it was."""
        try:
            return FileSignature.of(self.path) != self.signature
        except OSError:
            return True

    @classmethod
    def from_ends(cls, path: str | Path, ends: array[int]) -> LineIndex:
        """An index whose line ends are already known (stored by results_index.py): no
        scan. The caller vouches that they describe the file as it is now."""
        index = cls(path)
        index._ends = ends
        index._scanned = index._size
        index._complete = True
        return index

    @property
    def ends(self) -> array[int]:
        """The offset of each line's b"\\n" (or the size, for an unterminated last line)."""
        return self._ends

    # -- scanning ---------------------------------------------------------------

    def _mapped(self) -> mmap.mmap | None:
        if self._map is None and self._size > 0:
            self._map = mmap.mmap(self._fd, self._size, access=mmap.ACCESS_READ)
        return self._map

    def build(
        self,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        first_chunk_lines: int = 200,
    ) -> None:
        """Index the rest of the file. `on_progress(bytes_scanned, total)` is called once
        the first `first_chunk_lines` lines are indexed (so a view can paint them), then
        every few MB, and at the end. Returns early, incomplete, if `cancel` is set."""
        with self._scan_lock:
            self._scan(None, on_progress, cancel, first_chunk_lines)

    def scan_head(self, n: int = 200) -> None:
        """Index just far enough to know the first `n` lines: enough for a first paint."""
        with self._scan_lock:
            self._scan(n, None, None, 0)

    def _scan(
        self,
        max_lines: int | None,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
        first_chunk_lines: int,
    ) -> None:
        size = self._size
        if self._complete or (max_lines is not None and len(self._ends) >= max_lines):
            if on_progress is not None and max_lines is None:
                on_progress(self._scanned, size)
            return
        mm = self._mapped()
        assert mm is not None  # size > 0 when not complete
        ends = self._ends
        append = ends.append
        find = mm.find
        pos = self._scanned
        next_report = pos + _PROGRESS_BYTES
        last_report_time = time.monotonic()
        first_chunk_pending = on_progress is not None and len(ends) < first_chunk_lines
        while True:
            try:
                nl = find(b"\n", pos)
            except ValueError:  # close() was called from another thread: stop quietly
                return
            if nl < 0:
                break
            append(nl)
            pos = nl + 1
            self._scanned = pos
            if max_lines is not None and len(ends) >= max_lines:
                return
            if first_chunk_pending and len(ends) >= first_chunk_lines:
                first_chunk_pending = False
                assert on_progress is not None
                on_progress(pos, size)
            if pos >= next_report:
                next_report = pos + _PROGRESS_BYTES
                if cancel is not None and cancel.is_set():
                    return
                now = time.monotonic()
                if on_progress is not None and now - last_report_time >= _PROGRESS_SECONDS:
                    last_report_time = now
                    on_progress(pos, size)
        if pos < size:  # an unterminated final line
            append(size)
        self._scanned = size
        self._complete = True
        if on_progress is not None:
            on_progress(size, size)

    # -- access -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def size(self) -> int:
        return self._size

    def _bounds(self, i: int) -> tuple[int, int]:
        """(start, end) of line i, end excluding its newline (a CR is still in)."""
        n = len(self._ends)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"line {i} is not indexed (have {n})")
        return (self._ends[i - 1] + 1 if i > 0 else 0), self._ends[i]

    def span(self, i: int) -> tuple[int, int]:
        """(start, end) byte offsets of line i, end excluding its newline (and CR)."""
        start, end = self._bounds(i)
        if end > start and self._byte_at(end - 1) == b"\r":
            end -= 1
        return start, end

    def _byte_at(self, offset: int) -> bytes:
        mm = self._mapped()
        return mm[offset : offset + 1] if mm is not None else b""

    def _read(self, offset: int, length: int) -> bytes:
        chunks: list[bytes] = []
        while length > 0:
            chunk = os.pread(self._fd, length, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_line(self, i: int) -> bytes:
        """Line i by pread alone, its CR dropped from what was read: the mapping is not
        touched, so reading every line of a big file (an export, a job's merge) does not
        pull the whole file into this process's resident memory."""
        start, end = self._bounds(i)
        data = self._read(start, end - start)
        return data[:-1] if data.endswith(b"\r") else data

    def line(self, i: int) -> bytes:
        """Line i (0-based, negative counts from the end) without its line ending."""
        if i < 0:
            i += len(self._ends)
        with self._cache_lock:
            cached = self._cache.get(i)
            if cached is not None:
                self._cache.move_to_end(i)
                return cached
        data = self._read_line(i)
        if len(data) <= _CACHE_LINE_LIMIT:
            with self._cache_lock:
                self._cache[i] = data
                self._cache_bytes += len(data)
                while self._cache_bytes > _CACHE_BYTES or len(self._cache) > _CACHE_ENTRIES:
                    _, dropped = self._cache.popitem(last=False)
                    self._cache_bytes -= len(dropped)
        return data

    def read_line(self, i: int) -> bytes:
        """Line i read straight from the file, bypassing the cache (for one-pass readers
        such as an export, which would only push the lines a view needs out of it)."""
        return self._read_line(i)

    def lines(self, start: int, stop: int) -> list[bytes]:
        """Lines start..stop-1, clipped to what is indexed."""
        stop = min(stop, len(self._ends))
        return [self.line(i) for i in range(max(start, 0), stop)]

    def iter_lines(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(index, line) for every indexed line from `start`, read in large blocks: the fast
        way to stream a whole file, bypassing the cache."""
        ends = self._ends
        n = len(ends)
        i = max(start, 0)
        while i < n:
            block_start = ends[i - 1] + 1 if i > 0 else 0
            if ends[i] - block_start >= _BLOCK:  # a huge line: read it on its own
                yield i, self.line(i)
                i += 1
                continue
            # take whole lines up to about _BLOCK bytes
            last = bisect_left(ends, block_start + _BLOCK, i, n) - 1
            last = max(last, i)
            block = self._read(block_start, ends[last] + 1 - block_start)
            pos = 0
            for j in range(i, last + 1):
                end = ends[j] - block_start
                raw = block[pos:end]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                yield j, raw
                pos = end + 1
            i = last + 1

    def line_of_offset(self, offset: int) -> int:
        """The index of the line holding byte `offset`."""
        return bisect_left(self._ends, offset)

    def find(
        self,
        needle: str,
        start: int,
        *,
        backwards: bool = False,
        ignore_case: bool = True,
    ) -> int | None:
        """The first line at or after `start` (at or before it when `backwards`) holding
        `needle`, among the lines indexed so far; None when there is none (no wrapping).
        Case folding is ASCII-only, the search runs over the raw UTF-8 bytes."""
        n = len(self._ends)
        if not needle or n == 0 or "\n" in needle:
            return None
        if backwards:
            start = min(start, n - 1)
            if start < 0:
                return None
        elif start >= n:
            return None
        start = max(start, 0)
        mm = self._mapped()
        if mm is None:
            return None
        pattern = re.compile(re.escape(needle.encode()), re.IGNORECASE if ignore_case else 0)
        if not backwards:
            begin = self._ends[start - 1] + 1 if start > 0 else 0
            match = pattern.search(mm, begin, self._ends[n - 1])
            return self.line_of_offset(match.start()) if match else None
        overlap = len(needle.encode()) - 1
        end = self._ends[start]
        while end > 0:
            window_start = max(0, end - _BLOCK)
            last = None
            for last in pattern.finditer(mm, window_start, end):  # noqa: B007
                pass
            if last is not None:
                return self.line_of_offset(last.start())
            if window_start == 0:
                break
            end = window_start + overlap
        return None

    # -- lifetime ---------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a search still holds a view; the GC will close it
                pass
            self._map = None
        self._file.close()

    def __enter__(self) -> LineIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def custom_id_of(raw: bytes) -> str | None:
    """The `custom_id` of one JSONL line, or None when the line is not a JSON object with
    a string (or integer) custom_id."""
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("custom_id")
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
