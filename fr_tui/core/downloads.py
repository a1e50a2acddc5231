"""When is a downloaded file whole? The checks BatchClient.download_file makes, and the
one fetch_results makes of files already on disk.

A file is complete only when its size matches everything the server declared
(Content-Length, Content-Range, the file object's `bytes`) and, for result files, it
ends with a whole JSON line: a body cut short without a length says so in no other way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec

from fr_tui.core.errors import DownloadError

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


class ShortDownload(Exception):
    """A download that ended early: resume it."""


class WrongDownload(Exception):
    """A download that is not the file: start again from byte 0."""


def jsonl_tail_complete(path: Path, block: int = 1 << 16) -> bool:
    """Whether a JSONL file ends with a whole line: empty, or a newline-terminated last
    line that is JSON. A download cut short mid-line fails this (result files are written
    whole lines at a time)."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return True
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            return False
        # Read backwards until the start of the last non-blank line is in hand (it may be
        # megabytes long).
        tail = b""
        pos = size
        body = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            tail = handle.read(step) + tail
            body = tail.rstrip()
            if body and b"\n" in body:
                break
    last = body[body.rfind(b"\n") + 1 :]
    if not last.strip():
        return True  # nothing but blank lines
    try:
        msgspec.json.decode(last)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def content_range(value: str | None) -> tuple[int, int | None] | None:
    """(first byte, total size or None) from a Content-Range header."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


def check_download(
    file_id: str,
    part: Path,
    done: int,
    expected: int | None,
    declared: int | None,
    jsonl: bool,
) -> None:
    """Raise unless the `done` bytes in `part` are the whole file: ShortDownload (resume
    it), WrongDownload (start over), or DownloadError (the server's own file is cut)."""
    for size in (expected, declared):
        if size is None:
            continue
        if done < size:
            raise ShortDownload(f"The download of {file_id} stopped at {done:,} of {size:,} bytes.")
        if done > size:
            raise WrongDownload(
                f"The download of {file_id} has {done:,} bytes, more than the {size:,} "
                "the server declared."
            )
    if jsonl and not jsonl_tail_complete(part):
        if declared is not None and done == declared:
            raise DownloadError(
                f"The server's file {file_id} ends in the middle of a line although all "
                f"{declared:,} declared bytes arrived: it is incomplete on the server. "
                f"What came is kept in {part}."
            )
        raise ShortDownload(
            f"The download of {file_id} ends in the middle of a line ({done:,} bytes): "
            "it is incomplete."
        )
