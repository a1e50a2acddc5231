"""The stored results index: a join of an input file with its output and error files,
written once beside the result files and reopened by mapping it (no file is re-read or
re-parsed to show rows again).

File layout (``index.frx``, little-endian)::

    b"FRX\\0"  u32 version  u64 header length  header (JSON)  padding to 8 bytes  data

The header holds the signature of each file the join was built from (path, size,
mtime_ns, a hash of its first and last 64 KiB), the row count, the totals, the result
issues and the error groups, each column's type and place in the data section, and a
CRC-32 of the whole data section. Columns:

* numbers, one per row: ``outcome`` and ``src`` (u8: which result file, 255 none),
  ``input_line`` and ``slot`` (i32: the number of the row's result, -1 none); one per
  result, in the order results arrived (a row's is found through its slot; a result no
  row took is in none): ``src_line``, ``status``, ``round`` (i32); ``tokens_in``,
  ``tokens_out`` (i64); ``cost`` (f64, NaN for none: the number as the
  server's JSON gave it, so ``Decimal(repr(cost))`` is the decimal it sent); -1 stands
  for "none" in the others;
* categories (i32 codes into a list in the header): ``model``, ``provider``,
  ``finish_reason``, ``error_code``, ``batch_id``;
* strings, UTF-8: ``custom_id`` (i64 offsets, n + 1 of them, into ``custom_id.blob`` and
  a u8 "is none" column), ``content`` (the answer's first line, cut to 300 characters)
  and ``error_message`` (i64 start, -1 for none, and i32 length in ``text.blob``);
* the line ends of each source file (so its lines are read without a scan), and the
  rows of each outcome and of each error group (i64 row numbers, in order).

results_build.py writes it.

The answer hashes (``answer_hashes``, for compare) are not part of the index: hashing
every answer would double the cost of the first build, and only a comparison needs them.
They are computed on first use, from the ok rows' result lines, and kept beside the index
(``index.frx.answers``: a header naming the index it belongs to, then an i64 per row).

An index whose sources' signatures differ from the files now, whose version is not
``INDEX_VERSION``, or which is damaged in any way (short, bad header, CRC mismatch) is
never trusted: the join is built again and the index rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import mmap
import operator
import os
import struct
import zlib
from array import array
from collections.abc import Iterator, Sequence
from itertools import compress, repeat
from pathlib import Path
from typing import Any, Literal

import msgspec

from fr_tui.core.export import atomic_write
from fr_tui.core.jsonl import LineIndex
from fr_tui.core.resultline import answer_hash_of_line
from fr_tui.core.results_join import (
    JoinedResults,
    ResultIssue,
    _Source,
)

INDEX_NAME = "index.frx"
INDEX_VERSION = 4  # 4: a job's missing rows say no batch returned them (3: kept by result)
_MAGIC = b"FRX\0"
_PREFIX = struct.Struct("<4sIQ")
_ANSWERS_MAGIC = b"FRA\0"
# magic, INDEX_VERSION, rows, CRC-32 of the index's header (which holds its data's CRC)
_ANSWERS_PREFIX = struct.Struct("<4sIQI")
_NONE = -1


# -- column views over the mapped file ----------------------------------------------


class _Column(Sequence[Any]):
    """A read-only column of the index; ``col[i]``, slices (as lists), iteration."""

    def __init__(self, size: int) -> None:
        self._size = size

    def __len__(self) -> int:
        return self._size

    def _at(self, i: int) -> Any:
        raise NotImplementedError

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(self._size))]
        if i < 0:
            i += self._size
        if not 0 <= i < self._size:
            raise IndexError(i)
        return self._at(i)

    def __iter__(self) -> Iterator[Any]:
        return (self._at(j) for j in range(self._size))


def _gather(values: memoryview, slot: memoryview, none: Any) -> memoryview:
    """values[slot[i]] for each row i (``none`` where slot[i] is -1), in C loops."""
    source = array(values.format)
    source.frombytes(values.cast("B"))
    source.append(none)  # what slot -1 reads
    return memoryview(array(values.format, map(source.__getitem__, slot)))


class _Numbers(_Column):
    def __init__(self, values: memoryview) -> None:
        super().__init__(len(values))
        self._values = values

    def _at(self, i: int) -> int | None:
        value: int = self._values[i]
        return None if value == _NONE else value

    def by_row(self, slot: memoryview) -> _Numbers:
        return _Numbers(_gather(self._values, slot, _NONE))


class _Floats(_Column):
    def __init__(self, values: memoryview) -> None:
        super().__init__(len(values))
        self._values = values

    def _at(self, i: int) -> float | None:
        value: float = self._values[i]
        return None if value != value else value  # NaN: none

    def by_row(self, slot: memoryview) -> _Floats:
        return _Floats(_gather(self._values, slot, math.nan))


class _Categories(_Column):
    def __init__(self, codes: memoryview, values: list[str]) -> None:
        super().__init__(len(codes))
        self._codes = codes
        self._values = values

    def _at(self, i: int) -> str | None:
        code: int = self._codes[i]
        return None if code == _NONE else self._values[code]

    def by_row(self, slot: memoryview) -> _Categories:
        return _Categories(_gather(self._codes, slot, _NONE), self._values)


class _Strings(_Column):
    """custom_id: offsets[i]..offsets[i + 1] in the blob, unless nones[i]."""

    def __init__(self, offsets: memoryview, nones: memoryview, blob: memoryview) -> None:
        super().__init__(len(nones))
        self._offsets = offsets
        self._nones = nones
        self._blob = blob

    def _at(self, i: int) -> str | None:
        if self._nones[i]:
            return None
        return str(self._blob[self._offsets[i] : self._offsets[i + 1]], "utf-8", "surrogatepass")


class _Texts(_Column):
    """content, error_message: starts[i] (-1 for none) and lengths[i] in the blob."""

    def __init__(self, starts: memoryview, lengths: memoryview, blob: memoryview) -> None:
        super().__init__(len(starts))
        self._starts = starts
        self._lengths = lengths
        self._blob = blob

    def _at(self, i: int) -> str | None:
        start: int = self._starts[i]
        if start == _NONE:
            return None
        return str(self._blob[start : start + self._lengths[i]], "utf-8", "surrogatepass")

    def by_row(self, slot: memoryview) -> _Texts:
        starts, lengths = _gather(self._starts, slot, _NONE), _gather(self._lengths, slot, 0)
        return _Texts(starts, lengths, self._blob)


class _ByResult(_Column):
    """A column of the results, kept in the order they arrived, seen by row: row i's
    result is the slot[i]-th (-1: the row has none). A row is looked up through slot;
    the whole column, the first time it is iterated (or its codes or values are asked
    for: compare reads them), is put in row order once, in C loops."""

    _rows: Any = None  # the column in row order, once made

    def __init__(self, results: Any, slot: memoryview) -> None:
        super().__init__(len(slot))
        self._results = results
        self._slot = slot

    def _at(self, i: int) -> Any:
        at: int = self._slot[i]
        return None if at < 0 else self._results._at(at)

    def _in_row_order(self) -> Any:
        if self._rows is None:
            self._rows = self._results.by_row(self._slot)
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._in_row_order())

    def __getattr__(self, name: str) -> Any:  # _codes, _values...: those of the row order
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._in_row_order(), name)


class _Models(_Column):
    """The input row's model, else the one its result names (as results_join does)."""

    def __init__(self, given: _Column, answered: _Column) -> None:
        super().__init__(len(given))
        self._given = given
        self._answered = answered

    def _at(self, i: int) -> str | None:
        model: str | None = self._given._at(i)
        if not model:
            answered: str | None = self._answered._at(i)
            if answered is not None:
                return answered
        return model


# -- writing ------------------------------------------------------------------------


_SAMPLE = 64 * 1024


def _signature(path: Path) -> dict[str, Any]:
    """What a source file was when the index was built: its size and mtime, and a hash of
    its first and last 64 KiB (a file rewritten within one tick of the filesystem's clock
    keeps its mtime; a rewrite of the same size is then still told apart)."""
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        sample = hashlib.blake2b(handle.read(_SAMPLE), digest_size=16)
        if stat.st_size > _SAMPLE:
            handle.seek(max(_SAMPLE, stat.st_size - _SAMPLE))
            sample.update(handle.read(_SAMPLE))
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample": sample.hexdigest(),
    }


def source_signatures(sources: list[Path | None]) -> list[dict[str, Any] | None]:
    """The signatures of a join's input, output and error files (None for an absent one),
    taken before the join is built: the index records what it was built from."""
    return [
        {"kind": kind, **_signature(p)} if p is not None else None
        for kind, p in zip(("input", "output", "error"), sources, strict=True)
    ]


# -- reading ------------------------------------------------------------------------


class IndexedResults(JoinedResults):
    """A JoinedResults whose columns are views of a mapped index file."""

    _totals: dict[str, Any]
    _outcome_rows: dict[str, memoryview]
    _map: mmap.mmap | None = None
    _index_path: Path
    _header_crc: int
    _slot: memoryview  # per row: where its result is in the per-result columns
    _result_lines: memoryview  # per result: its line in its result file
    _answers: Sequence[int] | None = None

    @property
    def answer_hashes(self) -> Sequence[int]:
        """The 8-byte hash of each ok answer (resultline.answer_hash), 0 for none: read
        from beside the index, or computed now and kept there."""
        if self._answers is None:
            self._answers = _load_answers(self) or _compute_answers(self)
        return self._answers

    @answer_hashes.setter
    def answer_hashes(self, value: Sequence[int]) -> None:
        self._answers = value

    @property
    def tokens_in(self) -> int:
        return int(self._totals["tokens_in"])

    @property
    def tokens_out(self) -> int:
        return int(self._totals["tokens_out"])

    @property
    def cost(self) -> float | None:
        cost = self._totals["cost"]
        return float(cost) if cost is not None else None

    def filter(self, kind: str) -> list[int]:
        rows = self._outcome_rows.get(kind)
        if rows is not None:
            return rows.tolist()
        return super().filter(kind)

    def release_pages(self) -> None:
        """Hand the index's mapped pages back after a pass over whole columns (they stay
        in the page cache): without it, a find over two 1,000,000-row sides keeps every
        page it read in this process's RSS."""
        if self._map is not None:
            _release_pages(self._map)

    def close(self) -> None:
        super().close()
        # the column views keep the map alive until they are gone; dropping our
        # reference is enough (mmap.close would fail while views exist)
        self._map = None


def _read_header(mm: mmap.mmap) -> tuple[dict[str, Any], int, int]:
    """The header, where the data starts, and the CRC-32 of the header's bytes."""
    if len(mm) < _PREFIX.size:
        raise ValueError("short")
    magic, version, length = _PREFIX.unpack_from(mm, 0)
    if magic != _MAGIC or version != INDEX_VERSION or _PREFIX.size + length > len(mm):
        raise ValueError("not an index of this version")
    raw = mm[_PREFIX.size : _PREFIX.size + length]
    header = msgspec.json.decode(raw)
    start = _PREFIX.size + length
    return header, start + (-start % 8), zlib.crc32(raw)


def open_index(
    path: Path,
    sources: list[Path | None],
    signatures: list[dict[str, Any] | None],
    *,
    just_built: bool = False,
) -> IndexedResults | None:
    """The stored join at ``path`` if it is sound and was built from ``sources`` as they
    are now (``signatures``); None otherwise (missing, stale, another version, damaged).
    An index ``just_built`` by this process is not read through for its CRC."""
    try:
        with open(path, "rb") as handle:
            mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        header, data_start, header_crc = _read_header(mm)
        if header["sources"] != signatures:
            return None
        data = memoryview(mm)[data_start:]
        if not just_built and _crc32(mm, data_start) != int(header["crc32"], 16):
            return None
        files = [p for p in sources if p is not None]
        joined = _build(path, header, header_crc, data, mm, files)
        _release_pages(mm)
        # Rows on screen are read here and there: no read-ahead around each (it pulled
        # megabytes into RSS for 60 rows of a 1,000,000-row comparison).
        with contextlib.suppress(AttributeError, OSError, ValueError):
            mm.madvise(mmap.MADV_RANDOM)
        return joined
    except (ValueError, KeyError, TypeError, IndexError, OSError):
        return None


_CRC_CHUNK = 16 << 20


def _crc32(mm: mmap.mmap, start: int) -> int:
    """The CRC of the index from ``start``, a chunk at a time, each chunk's pages handed
    back once read: the check of a 1,000,000-row index (150 MB) would otherwise hold all
    of it in RSS at once, and a comparison opens two (issue 13's 300 MB)."""
    crc = 0
    view = memoryview(mm)
    try:
        for at in range(start, len(mm), _CRC_CHUNK):
            crc = zlib.crc32(view[at : at + _CRC_CHUNK], crc)
            _release_pages(mm, at, min(_CRC_CHUNK, len(mm) - at))
    finally:
        view.release()
    return crc


def _release_pages(mm: mmap.mmap, start: int = 0, length: int = 0) -> None:
    """The CRC pass read every page of the index: hand them back (they stay in the page
    cache), so an open index holds only the pages that rows on screen touch. Two
    1,000,000-row sides of a comparison otherwise hold 300 MB of RSS (issue 13)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is not None:
        try:
            if length:
                page = mmap.PAGESIZE
                aligned = start - start % page  # madvise wants a page-aligned start
                mm.madvise(advice, aligned, length + start - aligned)
            else:
                mm.madvise(advice)
        except (OSError, ValueError):
            pass


def _build(
    path: Path,
    header: dict[str, Any],
    header_crc: int,
    data: memoryview,
    mm: mmap.mmap,
    files: list[Path],
) -> IndexedResults:
    layout: dict[str, list[Any]] = header["columns"]
    rows: int = header["rows"]

    def column(name: str) -> memoryview:
        code, offset, length = layout[name]
        if offset + length > len(data):
            raise ValueError(f"column {name} is cut short")
        view = data[offset : offset + length]
        return view if code == "B" else view.cast(code)

    ends = []
    for number in range(len(files)):
        line_ends = array("q")
        line_ends.frombytes(column(f"ends.{number}").cast("B"))  # one copy, memory speed
        ends.append(line_ends)
    input_index = LineIndex.from_ends(files[0], ends[0])
    joined = IndexedResults(input_index)
    joined._map = mm
    joined._totals = header["totals"]
    kinds: list[Literal["output", "error"]] = header["source_kinds"]
    joined._sources = [
        _Source(kind, LineIndex.from_ends(file, end))
        for kind, file, end in zip(kinds, files[1:], ends[1:], strict=True)
    ]
    joined.outcomes = bytearray(column("outcome"))
    joined._src = bytearray(column("src"))
    if len(joined.outcomes) != rows:
        raise ValueError("row count")
    joined._input_line = column("input_line")  # type: ignore[assignment]
    slot = column("slot")
    results = header["results"]
    if len(slot) != rows:
        raise ValueError("slot count")

    def by_result(values: _Column) -> Any:
        if len(values) != results:
            raise ValueError("result count")
        return _ByResult(values, slot)

    categories = header["categories"]

    def coded(name: str) -> _Categories:
        return _Categories(column(name), categories[name])

    texts = column("text.blob")
    joined._src_line = by_result(_Numbers(column("src_line")))
    joined.tokens_in_col = by_result(_Numbers(column("tokens_in")))
    joined.tokens_out_col = by_result(_Numbers(column("tokens_out")))
    joined.costs = by_result(_Floats(column("cost")))
    joined.status_codes = by_result(_Numbers(column("status")))
    joined.finish_reasons = by_result(coded("finish_reason"))
    joined.contents = by_result(_Texts(column("content.starts"), column("content.lengths"), texts))
    joined.rounds = by_result(_Numbers(column("round")))
    joined.error_codes = by_result(coded("error_code"))
    joined.batch_ids = by_result(coded("batch_id"))
    messages = _Texts(column("error_message.starts"), column("error_message.lengths"), texts)
    joined.error_messages = by_result(messages)
    given = coded("model")
    if len(given) != rows:
        raise ValueError("model count")
    joined.models = _Models(given, by_result(coded("result_model")))  # type: ignore[assignment]
    joined.providers = coded("provider")  # type: ignore[assignment]
    ids = _Strings(column("custom_id.offsets"), column("custom_id.none"), column("custom_id.blob"))
    if len(ids) != rows or len(joined.providers) != rows:
        raise ValueError("string columns")
    joined.custom_ids = ids  # type: ignore[assignment]
    joined._slot = slot
    joined._result_lines = column("src_line")
    joined._index_path = path
    joined._header_crc = header_crc
    joined._answers = None  # computed on first use (see answer_hashes)
    joined._id_map = None  # built on first use
    joined._outcome_rows = {
        "ok": column("rows.ok"),
        "failed": column("rows.failed"),
        "missing": column("rows.missing"),
    }
    groups: dict[str, Any] = {}
    info: dict[str, tuple[str, str]] = {}
    for number, (key, code, message) in enumerate(header["groups"]):
        groups[key] = column(f"group.{number}")
        info[key] = (code, message)
    joined._groups = groups
    joined._group_info = info
    issues = header["issues"]
    for name in ("duplicates", "unknown_ids", "bad_lines"):
        setattr(
            joined,
            name,
            [
                ResultIssue(i["file"], Path(i["path"]), i["line"], i["custom_id"], i["reason"])
                for i in issues[name]
            ],
        )
    return joined


# -- answer hashes, on first use ------------------------------------------------------


def _answers_path(joined: IndexedResults) -> Path:
    return joined._index_path.with_name(joined._index_path.name + ".answers")


def _load_answers(joined: IndexedResults) -> Sequence[int] | None:
    """The hashes kept beside the index, if they are whole and belong to it."""
    rows = len(joined.outcomes)
    try:
        data = _answers_path(joined).read_bytes()
    except OSError:
        return None
    expected = (_ANSWERS_MAGIC, INDEX_VERSION, rows, joined._header_crc)
    if len(data) != _ANSWERS_PREFIX.size + 8 * rows:
        return None
    if _ANSWERS_PREFIX.unpack_from(data, 0) != expected:
        return None
    hashes = array("q")
    hashes.frombytes(data[_ANSWERS_PREFIX.size :])
    return hashes


def _compute_answers(joined: IndexedResults) -> Sequence[int]:
    """Hash the answer of every ok row, and keep the hashes beside the index (when that
    cannot be written, they are only kept in memory). Each result file is read once, in
    its own order (the rows' results are scattered over it)."""
    rows = len(joined.outcomes)
    hashes = array("q", bytes(8 * rows))
    ok = joined._outcome_rows["ok"].tolist()
    lines = list(map(joined._result_lines.__getitem__, map(joined._slot.__getitem__, ok)))
    sources = bytes(map(joined._src.__getitem__, ok))
    for number, source in enumerate(joined._sources):
        here = list(map(operator.eq, sources, repeat(number)))
        row_of_line = dict(zip(compress(lines, here), compress(ok, here), strict=True))
        if not row_of_line:
            continue
        last = max(row_of_line)
        for line, raw in source.index.iter_lines(min(row_of_line)):
            row = row_of_line.get(line)
            if row is not None:
                hashes[row] = answer_hash_of_line(raw)
            if line >= last:
                break
    head = _ANSWERS_PREFIX.pack(_ANSWERS_MAGIC, INDEX_VERSION, rows, joined._header_crc)
    with contextlib.suppress(OSError), atomic_write(_answers_path(joined)) as handle:
        handle.write(head)
        handle.write(memoryview(hashes).cast("B"))
    return hashes


__all__ = ["INDEX_NAME", "INDEX_VERSION", "IndexedResults", "open_index", "source_signatures"]
