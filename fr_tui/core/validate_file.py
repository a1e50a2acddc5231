"""The findings about a whole file, made once every line has been read: custom_ids used
twice (found by their hashes, confirmed by reading only the lines concerned again), an
empty file, too many rows or bytes for one batch, CRLF endings, a missing final newline.
Mixed into ``Validator`` (core/validate.py), which owns the state declared here."""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from fr_tui.core.validate_report import ProblemLog

BOM = b"\xef\xbb\xbf"


class FileChecks(ProblemLog):
    last_byte: bytes  # (before `bytes` below, which is a count here)
    id_hashes: array[int]
    ids_rising: bool
    reread: Callable[[set[int]], dict[int, bytes]] | None
    bytes: int
    line_over_bytes: int
    crlf_lines: int
    first_crlf_line: int
    blank_line_numbers: list[int]

    if TYPE_CHECKING:

        @property
        def rows(self) -> int: ...

        @property
        def lines(self) -> int: ...

    def _duplicates(self) -> None:
        """Report each custom_id used again, at its later lines, naming the first one."""
        hashes = self.id_hashes
        if self.ids_rising:
            return
        distinct = set(hashes)
        distinct.discard(0)
        if len(distinct) == len(hashes) - hashes.count(0):
            return
        first_line: dict[int, int] = {}
        repeats: list[tuple[int, int]] = []  # (line, first line with that hash)
        for line_no, id_hash in enumerate(hashes, 1):
            if id_hash:
                first = first_line.setdefault(id_hash, line_no)
                if first != line_no:
                    repeats.append((line_no, first))
        wanted = {line for pair in repeats for line in pair}
        raw = self.reread(wanted) if self.reread is not None else {}
        ids = {line: _custom_id(raw[line]) for line in wanted if line in raw}
        for line_no, first in repeats:
            custom_id = ids.get(line_no)
            if line_no in raw and (custom_id is None or custom_id != ids.get(first)):
                continue  # two ids with one hash: not a duplicate
            shown = f'"{custom_id}"' if custom_id is not None else "of this line"
            self._flag(
                line_no,
                "duplicate_custom_id",
                f"custom_id {shown} is already used on line {first}.",
                other_line=first,
            )

    def _file_problems(self) -> None:
        # File-level findings are few and each sums up many lines: always kept.
        rows, lines = self.rows, self.lines
        if rows == 0:
            message = "The file has no requests." if lines else "The file is empty."
            self._flag(1, "empty_file", message, keep=True)
        if rows > self.max_rows:
            self._flag(
                self._line_of_row(self.max_rows + 1),
                "too_many_rows",
                f"The file has {rows:,} requests; a batch takes at most "
                f"{self.max_rows:,}. This is the first line over the limit.",
                keep=True,
            )
        if self.line_over_bytes:
            self._flag(
                self.line_over_bytes,
                "file_too_large",
                f"The file is {self.bytes:,} bytes; a batch file may be at most "
                f"{self.max_bytes:,} bytes. The limit is crossed on this line.",
                keep=True,
            )
        if self.crlf_lines:
            plural = "s end" if self.crlf_lines > 1 else " ends"
            self._flag(
                self.first_crlf_line,
                "crlf_line_endings",
                f"{self.crlf_lines:,} line{plural} with CRLF (Windows line endings), "
                "the first one here.",
                keep=True,
            )
        if self.last_byte != b"\n" and lines:
            message = "The last line does not end with a newline."
            self._flag(lines, "missing_final_newline", message, keep=True)

    def _line_of_row(self, row: int) -> int:
        """The line of the row-th request (1-based), skipping blank lines."""
        line = row
        for blank in self.blank_line_numbers:
            if blank <= line:
                line += 1
            else:
                break
        return line


def _custom_id(raw: bytes) -> str | None:
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    value = obj.get("custom_id") if type(obj) is dict else None
    return value if type(value) is str else None


def reread_lines(path: str | os.PathLike[str]) -> Callable[[set[int]], dict[int, bytes]]:
    """A ``reread`` for ``Validator``: the wanted lines of the file at ``path``."""

    def reread(wanted: set[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        last = max(wanted, default=0)
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                if line_no in wanted:
                    found[line_no] = raw.rstrip(b"\r\n")
                if line_no >= last:
                    break
        return found

    return reread
