"""Where a results index's build keeps what it gathers (results_build.py): strings and
spilled numbers in temporary files beside the index, columns of category codes, string
columns as (start, length) in a blob; and how each piece is written into the index."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from fr_tui.core.results_blocks import _BUFFER
from fr_tui.core.results_index import _NONE


class Blob:
    """Strings appended to a temporary file; each gets (start, length) in the blob."""

    def __init__(self, folder: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".index-blob.", suffix=".tmp", dir=folder)
        self.path = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb", buffering=_BUFFER)
        self.size = 0

    def add(self, text: str) -> tuple[int, int]:
        data = text.encode("utf-8", "surrogatepass")
        start = self.size
        self.file.write(data)
        self.size += len(data)
        return start, len(data)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[[int, int], str]]:
        """A function that reads the text at (start, length) back from the blob."""
        self.file.flush()
        with open(self.path, "rb") as blob:

            def read(start: int, length: int) -> str:
                blob.seek(start)
                return blob.read(length).decode("utf-8", "surrogatepass")

            yield read

    def add_bytes(self, data: Any) -> None:
        self.file.write(data)
        self.size += len(memoryview(data).cast("B"))

    def close(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Categories:
    """A column of codes into a list of distinct values (one per row or result)."""

    def __init__(self, rows: int = 0) -> None:
        self.codes = array("i", [_NONE]) * rows
        self.values: dict[str, int] = {}
        # each value's code with None's: a block's codes are looked up in one C loop
        self.lookup: dict[str | None, int] = {None: _NONE}

    def code(self, value: str | None) -> int:
        if value is None:
            return _NONE
        code = self.values.get(value)
        if code is None:
            code = self.values[value] = self.lookup[value] = len(self.values)
        return code


class Texts:
    """A string column: (start, length) in the blob of each value, -1 for none."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.starts = array("q")
        self.lengths = array("i")

    def append(self, text: str | None) -> None:
        start, length = self.blob.add(text) if text is not None else (_NONE, 0)
        self.starts.append(start)
        self.lengths.append(length)


HELD = 1 << 16  # line ends or id offsets held in memory before they go to their file


def pass_on(values: array[int], blob: Blob, at_least: int = HELD) -> None:
    """Move ``values`` to the end of ``blob`` once there are ``at_least`` of them."""
    if len(values) >= at_least:
        blob.add_bytes(values)
        del values[:]


def write_piece(handle: IO[bytes], item: Any, crc: int) -> int:
    if isinstance(item, Blob):
        with open(item.path, "rb") as blob:
            while chunk := blob.read(_BUFFER):
                handle.write(chunk)
                crc = zlib.crc32(chunk, crc)
        size = item.size
    else:
        data = memoryview(item).cast("B")  # arrays and bytes are written without a copy
        handle.write(data)
        crc = zlib.crc32(data, crc)
        size = len(data)
    padding = bytes(-size % 8)
    handle.write(padding)
    return zlib.crc32(padding, crc)
