"""Reading a whole file for ``Validator`` (core/validate.py): 256 KiB blocks split into
whole lines, each block handed to ``feed_lines`` at once (the hot loop), with what only
the bytes tell: line offsets for ``on_block``, CRLF endings, where the byte limit is
crossed, a missing final newline, and lines too long to read at all, which are skipped
unread so that a corrupt file (one 5 GB "line") cannot exhaust memory. Progress and
cancelling are checked about every 2 MiB. Mixed into ``Validator``, which owns the state
declared here."""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, BinaryIO

from fr_tui.core.validate_report import ProblemLog

# Lines longer than this are reported and skipped rather than read into memory whole.
# No sane request is this big.
MAX_LINE_BYTES = 64 * 1024 * 1024
BLOCK_BYTES = 256 * 1024  # under malloc's mmap threshold, and in cache
_PROGRESS_EVERY_BYTES = 2 * 1024 * 1024
# One line of the file without its b"\n" (inside BlockScan, ``bytes`` is the byte count).
Line = bytes


class BlockScan(ProblemLog):
    last_byte: bytes  # (before `bytes` below, which is a count here)
    id_hashes: array[int]
    bytes: int
    line_over_bytes: int
    crlf_lines: int
    first_crlf_line: int
    too_long_lines: int

    if TYPE_CHECKING:

        @property
        def rows(self) -> int: ...

        def feed_lines(self, lines: Iterable[Line]) -> None: ...

    def scan(
        self,
        handle: BinaryIO,
        *,
        on_block: Callable[[list[Line], int, int], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Validate everything ``handle`` yields, in blocks. ``on_block(lines, first, start)``
        sees each block of whole lines (without b"\\n") after it was checked: ``first`` is
        the 1-based number of its first line, ``start`` the offset of its first byte in
        what ``handle`` yields. ``on_progress(bytes_done, rows)`` is called
        about every 2 MiB. Returns False when ``cancel`` stopped the scan."""
        read = handle.read
        carry = b""  # the start of a line that goes on in the next block
        next_report = _PROGRESS_EVERY_BYTES
        while True:
            block = read(BLOCK_BYTES)
            if not block:
                break
            lines = block.split(b"\n")
            rest = lines.pop()
            if lines:
                size = len(block) - len(rest)
                has_cr = b"\r" in block
                if carry:  # join just the line that straddles the two blocks
                    lines[0] = carry + lines[0]
                    size += len(carry)
                    has_cr = has_cr or carry.endswith(b"\r")
                start = self.bytes
                carry = rest
                first = len(self.id_hashes) + 1
                if has_cr:
                    for number, raw in enumerate(lines, first):
                        if raw.endswith(b"\r"):
                            self._crlf(number)
                if self.bytes + size > self.max_bytes and not self.line_over_bytes:
                    self._find_line_over_bytes(lines, first)
                self.bytes += size
                if size > MAX_LINE_BYTES:
                    self._feed_with_long_lines(lines)
                else:
                    self.feed_lines(lines)
                if on_block is not None:
                    on_block(lines, first, start)
            else:
                carry += rest
            if len(carry) > MAX_LINE_BYTES:
                size, ended = _skip_rest_of_line(handle, len(carry))
                if self.bytes + size > self.max_bytes and not self.line_over_bytes:
                    self.line_over_bytes = len(self.id_hashes) + 1
                self.bytes += size
                self.feed_too_long(size, ended)
                carry = b""
            if self.bytes >= next_report:
                next_report = self.bytes + _PROGRESS_EVERY_BYTES
                if cancel is not None and cancel.is_set():
                    return False
                if on_progress is not None:
                    on_progress(self.bytes, self.rows)
        if carry:  # a last line without a final newline
            self.last_byte = carry[-1:]
            first = len(self.id_hashes) + 1
            if self.bytes + len(carry) > self.max_bytes and not self.line_over_bytes:
                self.line_over_bytes = first
            start = self.bytes
            self.bytes += len(carry)
            self.feed_lines([carry])
            if on_block is not None:
                on_block([carry], first, start)
        return True

    def _feed_with_long_lines(self, lines: list[Line]) -> None:
        """``feed_lines``, but lines over MAX_LINE_BYTES are reported, not parsed."""
        start = 0
        for index, raw in enumerate(lines):
            if len(raw) >= MAX_LINE_BYTES:
                self.feed_lines(lines[start:index])
                self.feed_too_long(len(raw) + 1, True)
                start = index + 1
        self.feed_lines(lines[start:])

    def _find_line_over_bytes(self, lines: list[Line], first: int) -> None:
        done = self.bytes
        for number, raw in enumerate(lines, first):
            done += len(raw) + 1
            if done > self.max_bytes:
                self.line_over_bytes = number
                return

    def _crlf(self, line_no: int) -> None:
        self.crlf_lines += 1
        if not self.first_crlf_line:
            self.first_crlf_line = line_no

    def feed_too_long(self, size: int, ended: bool) -> None:
        """Account for a line longer than MAX_LINE_BYTES that was skipped unread (its
        bytes are counted by the caller)."""
        line_no = len(self.id_hashes) + 1
        self.id_hashes.append(0)
        self.too_long_lines += 1
        self.last_byte = b"\n" if ended else b"x"
        self._flag(
            line_no,
            "line_too_long",
            f"This line is {size:,} bytes long; fr-tui does not read lines over "
            f"{MAX_LINE_BYTES // (1024 * 1024)} MiB, and no single request should be this big.",
        )


def _skip_rest_of_line(handle: BinaryIO, already: int) -> tuple[int, bool]:
    """Read past the rest of an overlong line; return its full size and whether it ended
    (the bytes after its newline are lost to the caller's block: the handle is left just
    after the newline)."""
    size = already
    while True:
        chunk = handle.read(BLOCK_BYTES)
        if not chunk:
            return size, False
        cut = chunk.find(b"\n")
        if cut >= 0:
            handle.seek(cut + 1 - len(chunk), os.SEEK_CUR)
            return size + cut + 1, True
        size += len(chunk)
