"""The join of two result sets by custom_id, for compare.py, on compact arrays.

No dict of ids is kept: each side's ids are hashed into a sorted array of (hash, row)
and the two arrays are merged; ids whose hashes match are then checked equal, so a hash
collision never pairs two rows. Two runs of the same input file, the usual case, have
the same id column in the same order: that is checked first (at memory speed on a
stored index), and the join is then the identity, with no per-row work. Duplicate
custom_ids pair in order (the first with the first); a row with no readable custom_id
pairs with nothing.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

_MASK64 = (1 << 64) - 1
_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1


def _id_hash(custom_id: str) -> int:
    """The join's hash of an id (a module function so a test can force collisions)."""
    return hash(custom_id)


# -- the join -----------------------------------------------------------------------


def _raw_id_column(ids: Any) -> tuple[memoryview, memoryview, memoryview] | None:
    """The memory behind a stored index's custom_id column (offsets, none flags, blob,
    as bytes), so two columns compare at memory speed; None for a column in a list."""
    parts = []
    for name in ("_offsets", "_nones", "_blob"):
        part = getattr(ids, name, None)
        if not isinstance(part, memoryview):
            return None
        parts.append(part.cast("B"))
    return parts[0], parts[1], parts[2]


def _no_nones(flags: memoryview) -> bool:
    return flags.tobytes().count(0) == len(flags)


def same_id_column(a_ids: Sequence[str | None], b_ids: Sequence[str | None]) -> bool:
    """Whether both sides have the same custom_ids in the same order, none missing (two
    runs of one input file): then row i of A is row i of B."""
    if len(a_ids) != len(b_ids):
        return False
    if isinstance(a_ids, list) and isinstance(b_ids, list):
        return None not in a_ids and a_ids == b_ids
    raw_a, raw_b = _raw_id_column(a_ids), _raw_id_column(b_ids)
    if raw_a is not None and raw_b is not None:
        return _no_nones(raw_a[1]) and raw_a == raw_b
    return all(x is not None and x == y for x, y in zip(a_ids, b_ids, strict=True))


class _Ids:
    """One side's ids as the join reads them: sliced from a single decoding of a stored
    index's blob when it is ASCII (no str object per row kept, 3x faster than reading
    the column row by row), else from the column itself."""

    def __init__(self, column: Sequence[str | None]) -> None:
        self.column = column
        self.text: str | None = None
        self.offsets: memoryview | None = None
        raw = _raw_id_column(column)
        if raw is not None and _no_nones(raw[1]):
            text = str(raw[2], "utf-8", "surrogatepass")
            if len(text) == len(raw[2]):  # ASCII: byte offsets are character offsets
                self.text, self.offsets = text, raw[0].cast("q")

    def __getitem__(self, row: int) -> str | None:
        if self.text is None or self.offsets is None:
            return self.column[row]
        return self.text[self.offsets[row] : self.offsets[row + 1]]

    def sorted(self) -> tuple[array[int], array[int]]:
        """(hashes, rows) of the rows with an id, sorted by hash then row."""
        if len(self.column) > _ROW_MASK:
            raise ValueError("too many rows to compare")
        if self.text is not None and self.offsets is not None:
            text, offsets = self.text, self.offsets
            packed = [
                ((_id_hash(text[start:end]) & _MASK64) << _ROW_BITS) | row
                for row, (start, end) in enumerate(zip(offsets[:-1], offsets[1:], strict=True))
            ]
        else:
            packed = [
                ((_id_hash(cid) & _MASK64) << _ROW_BITS) | row
                for row, cid in enumerate(self.column)
                if cid is not None
            ]
        packed.sort()
        hashes = array("Q", map((_ROW_BITS).__rrshift__, packed))
        rows = array("q", map((_ROW_MASK).__and__, packed))
        return hashes, rows


def _pair_run(
    a_rows: Sequence[int],
    b_rows: Sequence[int],
    a_ids: _Ids,
    b_ids: _Ids,
    b_of_a: array[int],
    matched_b: bytearray,
) -> None:
    """Rows whose ids share a hash: pair equal ids, the k-th in A with the k-th in B."""
    waiting: dict[str | None, list[int]] = {}
    for rb in b_rows:
        waiting.setdefault(b_ids[rb], []).append(rb)
    for ra in a_rows:
        candidates = waiting.get(a_ids[ra])
        if candidates:
            rb = candidates.pop(0)
            b_of_a[ra] = rb
            matched_b[rb] = 1


def join_ids(
    a_ids: Sequence[str | None], b_ids: Sequence[str | None]
) -> tuple[array[int] | None, array[int]]:
    """(for each row of A its row in B or -1, or None when row i of A is row i of B;
    the rows of B that no row of A has, in order)."""
    if same_id_column(a_ids, b_ids):
        return None, array("q")
    a_reader, b_reader = _Ids(a_ids), _Ids(b_ids)
    ha, ra = a_reader.sorted()
    hb, rb = b_reader.sorted()
    b_of_a = array("q", [-1]) * len(a_ids)
    matched_b = bytearray(len(b_ids))
    i = j = 0
    la, lb = len(ha), len(hb)
    while i < la and j < lb:
        x, y = ha[i], hb[j]
        if x < y:
            i += 1
        elif x > y:
            j += 1
        else:
            i2, j2 = i + 1, j + 1
            while i2 < la and ha[i2] == x:
                i2 += 1
            while j2 < lb and hb[j2] == x:
                j2 += 1
            if i2 - i == 1 and j2 - j == 1:
                row_a, row_b = ra[i], rb[j]
                if a_reader[row_a] == b_reader[row_b]:
                    b_of_a[row_a] = row_b
                    matched_b[row_b] = 1
            else:
                _pair_run(ra[i:i2], rb[j:j2], a_reader, b_reader, b_of_a, matched_b)
            i, j = i2, j2
    del ha, ra, hb, rb
    only_b = array("q")
    find = matched_b.find
    at = find(0)
    while at >= 0:
        only_b.append(at)
        at = find(0, at + 1)
    return b_of_a, only_b


__all__ = ["join_ids", "same_id_column"]
