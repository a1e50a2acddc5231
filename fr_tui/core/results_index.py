"""The stored results index: a join of an input file with its output and error files,
written once beside the result files and reopened by mapping it (no file is re-read or
re-parsed to show rows again).

File layout (``index.frx``, little-endian)::

    b"FRX\\0"  u32 version  u64 header length  header (JSON)  padding to 8 bytes  data

The header holds the signature (path, size, mtime_ns, a hash of its ends) of each file the join was built
from, the row count, the totals, the result issues and the error groups, and for each
column its place in the data section and a CRC-32 of the whole data section. Columns:

* numbers, one per row: ``outcome`` (u8), ``src`` (u8: which result file, 255 none),
  ``input_line``, ``src_line``, ``tokens_in``, ``tokens_out``, ``answer_hash`` (i64),
  ``cost`` (i64 picodollars: exact for any cost with up to 12 decimals), ``status``,
  ``round`` (i32); -1 stands for "none" where a value may be missing;
* categories (i32 codes into a list in the header): ``model``, ``provider``,
  ``finish_reason``, ``error_code``, ``batch_id``;
* strings (i64 offsets into a UTF-8 blob, plus a u8 "is none" column): ``custom_id``,
  ``content`` (the answer's first line, already cut to 300 characters), ``error_message``;
* the line ends of each source file (so its lines are read without a scan), and the
  rows of each outcome and of each error group (i64 row numbers).

An index whose sources' signatures differ from the files now, whose version is not
``INDEX_VERSION``, or which is damaged in any way (short, bad header, CRC mismatch) is
never trusted: the join is built again and the index rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
import tempfile
import zlib
from array import array
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson

from fr_tui.core.jsonl import LineIndex
from fr_tui.core.results_join import (
    FAILED,
    MISSING,
    OK,
    JoinedResults,
    ResultIssue,
    _Source,
)

INDEX_NAME = "index.frx"
INDEX_VERSION = 1
_MAGIC = b"FRX\0"
_PREFIX = struct.Struct("<4sIQ")
_PICO = 10**12
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


class _Numbers(_Column):
    def __init__(self, values: memoryview, scale: int = 1) -> None:
        super().__init__(len(values))
        self._values = values
        self._scale = scale

    def _at(self, i: int) -> float | None:
        value: int = self._values[i]
        if value == _NONE:
            return None
        return value if self._scale == 1 else value / self._scale


class _Categories(_Column):
    def __init__(self, codes: memoryview, values: list[str]) -> None:
        super().__init__(len(codes))
        self._codes = codes
        self._values = values

    def _at(self, i: int) -> str | None:
        code: int = self._codes[i]
        return None if code == _NONE else self._values[code]


class _Strings(_Column):
    def __init__(self, offsets: memoryview, nones: memoryview, blob: memoryview) -> None:
        super().__init__(len(nones))
        self._offsets = offsets
        self._nones = nones
        self._blob = blob

    def _at(self, i: int) -> str | None:
        if self._nones[i]:
            return None
        return bytes(self._blob[self._offsets[i] : self._offsets[i + 1]]).decode(
            "utf-8", "surrogatepass"
        )


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


def _numbers(values: Sequence[int | None], code: str = "q") -> array[int]:
    return array(code, [_NONE if v is None else v for v in values])


def _categories(values: Sequence[str | None]) -> tuple[array[int], list[str]]:
    codes: dict[str, int] = {}
    out = array("i", [_NONE if v is None else codes.setdefault(v, len(codes)) for v in values])
    return out, list(codes)


def _strings(values: Sequence[str | None]) -> tuple[array[int], bytes, bytes]:
    encoded = [b"" if v is None else v.encode("utf-8", "surrogatepass") for v in values]
    offsets = array("q", [0])
    total = 0
    for item in encoded:
        total += len(item)
        offsets.append(total)
    nones = bytes(1 if v is None else 0 for v in values)
    return offsets, nones, b"".join(encoded)


def _issue(issue: ResultIssue) -> dict[str, Any]:
    return {
        "file": issue.file,
        "path": str(issue.path),
        "line": issue.line,
        "custom_id": issue.custom_id,
        "reason": issue.reason,
    }


def _cost_pico(cost: float | None) -> int | None:
    if cost is None:
        return None
    return int((Decimal(repr(cost)) * _PICO).to_integral_value())


def write_index(joined: JoinedResults, path: Path, signatures: list[dict[str, Any] | None]) -> None:
    """Store ``joined`` (built from the files of ``signatures``: input, output, error) at
    ``path``, atomically: a temp file in the same folder, fsynced, renamed into place."""
    columns: dict[str, tuple[str, bytes]] = {}  # name -> (array typecode, bytes)

    def put(name: str, data: array[int] | bytes | bytearray, code: str = "B") -> None:
        columns[name] = (
            data.typecode if isinstance(data, array) else code,
            data.tobytes() if isinstance(data, array) else bytes(data),
        )

    categories: dict[str, list[str]] = {}
    put("outcome", joined.outcomes)
    put("src", joined._src)
    put("input_line", array("q", joined._input_line))
    put("src_line", array("q", joined._src_line))
    put("tokens_in", _numbers(joined.tokens_in_col))
    put("tokens_out", _numbers(joined.tokens_out_col))
    put("answer_hash", array("q", joined.answer_hashes))
    put("cost", _numbers([_cost_pico(c) for c in joined.costs]))
    put("status", _numbers(joined.status_codes, "i"))
    put("round", _numbers(joined.rounds, "i"))
    for name, values in (
        ("model", joined.models),
        ("provider", joined.providers),
        ("finish_reason", joined.finish_reasons),
        ("error_code", joined.error_codes),
        ("batch_id", joined.batch_ids),
    ):
        codes, categories[name] = _categories(values)
        put(name, codes)
    for name, values in (
        ("custom_id", joined.custom_ids),
        ("content", joined.contents),
        ("error_message", joined.error_messages),
    ):
        offsets, nones, blob = _strings(values)
        put(f"{name}.offsets", offsets)
        put(f"{name}.none", nones)
        put(f"{name}.blob", blob)
    files: list[LineIndex] = [joined.input_index] + [s.index for s in joined._sources]
    for number, index in enumerate(files):
        put(f"ends.{number}", index.ends)
    for outcome, name in ((OK, "ok"), (FAILED, "failed"), (MISSING, "missing")):
        put(f"rows.{name}", array("q", joined.filter_outcome(outcome)))
    groups = []
    for number, (key, rows) in enumerate(joined._groups.items()):
        put(f"group.{number}", array("q", rows))
        groups.append([key, *joined._group_info[key]])
    layout: dict[str, list[Any]] = {}
    offset = 0
    for name, (code, data) in columns.items():
        layout[name] = [code, offset, len(data)]
        offset += (len(data) + 7) // 8 * 8
    data_section = b"".join(data + bytes(-len(data) % 8) for _, data in columns.values())
    cost = joined.cost
    header = orjson.dumps(
        {
            "version": INDEX_VERSION,
            "sources": signatures,
            "source_kinds": [s.kind for s in joined._sources],
            "rows": len(joined),
            "columns": layout,
            "categories": categories,
            "groups": groups,
            "totals": {
                "tokens_in": joined.tokens_in,
                "tokens_out": joined.tokens_out,
                "cost": repr(cost) if cost is not None else None,
            },
            "issues": {
                "duplicates": [_issue(i) for i in joined.duplicates],
                "unknown_ids": [_issue(i) for i in joined.unknown_ids],
                "bad_lines": [_issue(i) for i in joined.bad_lines],
            },
            "crc32": zlib.crc32(data_section),
        }
    )
    head = _PREFIX.pack(_MAGIC, INDEX_VERSION, len(header)) + header
    head += bytes(-len(head) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(head)
            handle.write(data_section)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- reading ------------------------------------------------------------------------


class IndexedResults(JoinedResults):
    """A JoinedResults whose columns are views of a mapped index file."""

    _totals: dict[str, Any]
    _outcome_rows: dict[str, memoryview]
    _map: mmap.mmap | None = None

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

    def close(self) -> None:
        super().close()
        # the column views keep the map alive until they are gone; dropping our
        # reference is enough (mmap.close would fail while views exist)
        self._map = None


def _read_header(mm: mmap.mmap) -> tuple[dict[str, Any], int]:
    if len(mm) < _PREFIX.size:
        raise ValueError("short")
    magic, version, length = _PREFIX.unpack_from(mm, 0)
    if magic != _MAGIC or version != INDEX_VERSION or _PREFIX.size + length > len(mm):
        raise ValueError("not an index of this version")
    header = orjson.loads(mm[_PREFIX.size : _PREFIX.size + length])
    start = _PREFIX.size + length
    return header, start + (-start % 8)


def open_index(
    path: Path, sources: list[Path | None], signatures: list[dict[str, Any] | None]
) -> IndexedResults | None:
    """The stored join at ``path`` if it is sound and was built from ``sources`` as they
    are now (``signatures``); None otherwise (missing, stale, another version, damaged)."""
    try:
        with open(path, "rb") as handle:
            mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        header, data_start = _read_header(mm)
        if header["sources"] != signatures:
            return None
        data = memoryview(mm)[data_start:]
        if zlib.crc32(data) != header["crc32"]:
            return None
        return _build(path, header, data, mm, [p for p in sources if p is not None])
    except (ValueError, KeyError, TypeError, IndexError, OSError):
        return None


def _build(
    path: Path, header: dict[str, Any], data: memoryview, mm: mmap.mmap, files: list[Path]
) -> IndexedResults:
    layout: dict[str, list[Any]] = header["columns"]
    rows: int = header["rows"]

    def column(name: str) -> memoryview:
        code, offset, length = layout[name]
        if offset + length > len(data):
            raise ValueError(f"column {name} is cut short")
        view = data[offset : offset + length]
        return view if code == "B" else view.cast(code)

    ends = [array("q", column(f"ends.{n}")) for n in range(len(files))]
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
    joined._src_line = column("src_line")  # type: ignore[assignment]
    joined.tokens_in_col = _Numbers(column("tokens_in"))  # type: ignore[assignment]
    joined.tokens_out_col = _Numbers(column("tokens_out"))  # type: ignore[assignment]
    joined.answer_hashes = column("answer_hash")
    joined.costs = _Numbers(column("cost"), _PICO)  # type: ignore[assignment]
    joined.status_codes = _Numbers(column("status"))  # type: ignore[assignment]
    joined.rounds = _Numbers(column("round"))  # type: ignore[assignment]
    categories = header["categories"]
    joined.models = _Categories(column("model"), categories["model"])  # type: ignore[assignment]
    joined.providers = _Categories(column("provider"), categories["provider"])  # type: ignore[assignment]
    joined.finish_reasons = _Categories(column("finish_reason"), categories["finish_reason"])  # type: ignore[assignment]
    joined.error_codes = _Categories(column("error_code"), categories["error_code"])  # type: ignore[assignment]
    joined.batch_ids = _Categories(column("batch_id"), categories["batch_id"])  # type: ignore[assignment]
    for name, attr in (
        ("custom_id", "custom_ids"),
        ("content", "contents"),
        ("error_message", "error_messages"),
    ):
        strings = _Strings(
            column(f"{name}.offsets"), column(f"{name}.none"), column(f"{name}.blob")
        )
        if len(strings) != rows:
            raise ValueError(f"column {name}")
        setattr(joined, attr, strings)
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


__all__ = [
    "INDEX_NAME",
    "INDEX_VERSION",
    "IndexedResults",
    "open_index",
    "source_signatures",
    "write_index",
]
