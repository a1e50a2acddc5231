"""How two answers differ: a word diff of two texts, a field diff of two JSON documents,
and the cosine similarity of two embeddings. Used by compare.py for the one row a user
looks at (and by an export, row by row): nothing here runs over a whole result set.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

# Words are what whitespace separates (as `git diff --word-diff` has them): two answers
# that differ only in spacing are the same answer (resultline.text_hash agrees).
_WORD = re.compile(r"\S+")
# difflib is quadratic in the worst case: past this many words a side, the rest of both
# answers is compared as one block (equal or one change).
MAX_DIFF_WORDS = 5000

Span = tuple[int, int]  # start and end offsets of characters in the text


@dataclass(frozen=True)
class WordChange:
    tag: Literal["replace", "delete", "insert"]
    a_text: str  # the words of A that went ("" for an insert)
    b_text: str  # the words of B that came ("" for a delete)


@dataclass
class WordDiff:
    """Where A and B differ, word by word: the spans of each text to highlight, and the
    changes in order."""

    a_spans: list[Span] = field(default_factory=list)
    b_spans: list[Span] = field(default_factory=list)
    changes: list[WordChange] = field(default_factory=list)
    a_words: int = 0
    b_words: int = 0
    equal_words: int = 0
    truncated: bool = False  # past MAX_DIFF_WORDS the rest was compared as one block

    @property
    def same(self) -> bool:
        return not self.changes

    @property
    def ratio(self) -> float:
        """The share of words the two answers have in common (1.0: the same words)."""
        total = self.a_words + self.b_words
        return 2 * self.equal_words / total if total else 1.0


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def word_diff(a: str, b: str, *, max_words: int = MAX_DIFF_WORDS) -> WordDiff:
    """The word-level difference between two texts (whitespace does not count)."""
    a_all, b_all = _words(a), _words(b)
    a_head, b_head = a_all[:max_words], b_all[:max_words]
    diff = WordDiff(a_words=len(a_all), b_words=len(b_all))
    matcher = difflib.SequenceMatcher(
        None, [w for w, _, _ in a_head], [w for w, _, _ in b_head], autojunk=False
    )

    def span(words: Sequence[tuple[str, int, int]], i: int, j: int) -> Span | None:
        return (words[i][1], words[j - 1][2]) if j > i else None

    def add(tag: str, i1: int, i2: int, j1: int, j2: int, a_w: Any, b_w: Any) -> None:
        a_span, b_span = span(a_w, i1, i2), span(b_w, j1, j2)
        if a_span:
            diff.a_spans.append(a_span)
        if b_span:
            diff.b_spans.append(b_span)
        diff.changes.append(
            WordChange(
                tag,  # type: ignore[arg-type]
                " ".join(w for w, _, _ in a_w[i1:i2]),
                " ".join(w for w, _, _ in b_w[j1:j2]),
            )
        )

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            diff.equal_words += i2 - i1
        else:
            add(tag, i1, i2, j1, j2, a_head, b_head)
    if len(a_all) > max_words or len(b_all) > max_words:
        diff.truncated = True
        a_rest, b_rest = a_all[len(a_head) :], b_all[len(b_head) :]
        if [w for w, _, _ in a_rest] == [w for w, _, _ in b_rest]:
            diff.equal_words += len(a_rest)
        else:
            tag = "replace" if a_rest and b_rest else "delete" if a_rest else "insert"
            add(tag, 0, len(a_rest), 0, len(b_rest), a_rest, b_rest)
    return diff


# -- JSON answers (structured outputs) --------------------------------------------


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Any = _NotJson()


def parse_json_answer(text: str | None) -> Any:
    """The JSON object or array an answer is, or NOT_JSON (the same test as the answer
    hash's: text that starts with { or [ and parses)."""
    if not text:
        return NOT_JSON
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return NOT_JSON
    try:
        return msgspec.json.decode(stripped)
    except (msgspec.DecodeError, RecursionError):
        return NOT_JSON


@dataclass(frozen=True)
class FieldChange:
    path: str  # "answer", "items[2].name", "" for the document itself
    kind: Literal["changed", "added", "removed"]
    a: Any = None  # the value in A (None when added)
    b: Any = None  # the value in B (None when removed)

    @property
    def where(self) -> str:
        return self.path or "(the whole document)"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def _key_path(parent: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{msgspec.json.encode(key).decode()}]"


def _same_value(a: Any, b: Any) -> bool:
    # JSON's own equality: 1 and 1.0 and true are three different values here (the
    # answer hash's canonical JSON tells them apart too)
    return type(a) is type(b) and a == b


def json_diff(a: Any, b: Any, path: str = "") -> list[FieldChange]:
    """The fields that differ between two JSON values: objects key by key (in A's key
    order, then B's new keys), arrays index by index, anything else by value."""
    if isinstance(a, dict) and isinstance(b, dict):
        changes: list[FieldChange] = []
        for key, value in a.items():
            where = _key_path(path, key)
            if key not in b:
                changes.append(FieldChange(where, "removed", a=value))
            else:
                changes.extend(json_diff(value, b[key], where))
        for key, value in b.items():
            if key not in a:
                changes.append(FieldChange(_key_path(path, key), "added", b=value))
        return changes
    if isinstance(a, list) and isinstance(b, list):
        changes = []
        for i in range(max(len(a), len(b))):
            where = f"{path}[{i}]"
            if i >= len(b):
                changes.append(FieldChange(where, "removed", a=a[i]))
            elif i >= len(a):
                changes.append(FieldChange(where, "added", b=b[i]))
            else:
                changes.extend(json_diff(a[i], b[i], where))
        return changes
    if _same_value(a, b):
        return []
    return [FieldChange(path, "changed", a=a, b=b)]


def short_json(value: Any, limit: int = 40) -> str:
    """A JSON value on one line, cut to `limit` characters."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_field_change(change: FieldChange, limit: int = 40) -> str:
    """One line: `changed confidence: 0.71 → 0.42`, `added notes: "…"`."""
    if change.kind == "changed":
        values = f"{short_json(change.a, limit)} → {short_json(change.b, limit)}"
    elif change.kind == "added":
        values = short_json(change.b, limit)
    else:
        values = short_json(change.a, limit)
    return f"{change.kind} {change.where}: {values}"


# -- embeddings ---------------------------------------------------------------------


def embedding_vectors(body: Any) -> list[list[float]] | None:
    """The vectors of an embeddings response body (a list of floats each, or base64 of
    little-endian float32 as `encoding_format: "base64"` sends them); None if it has none."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        return None
    vectors: list[list[float]] = []
    for item in data:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in vector
        ):
            vectors.append([float(v) for v in vector])
        elif isinstance(vector, str):
            try:
                raw = base64.b64decode(vector, validate=True)
            except (binascii.Error, ValueError):
                return None
            if len(raw) % 4:
                return None
            vectors.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
        else:
            return None
    return vectors


def cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The cosine similarity of two vectors; None when their lengths differ or one is 0."""
    if len(a) != len(b) or not a:
        return None
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if not norm or not math.isfinite(norm):
        return None
    return max(-1.0, min(1.0, dot / norm))


def embeddings_similarity(a_body: Any, b_body: Any) -> float | None:
    """The cosine similarity of two embeddings answers (the mean over their inputs when
    a request embedded several); None when either has no vectors or they do not pair."""
    a, b = embedding_vectors(a_body), embedding_vectors(b_body)
    if a is None or b is None or len(a) != len(b):
        return None
    values = [cosine(x, y) for x, y in zip(a, b, strict=True)]
    if any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None) / len(values)


__all__ = [
    "MAX_DIFF_WORDS",
    "NOT_JSON",
    "FieldChange",
    "WordChange",
    "WordDiff",
    "cosine",
    "describe_field_change",
    "embedding_vectors",
    "embeddings_similarity",
    "json_diff",
    "parse_json_answer",
    "short_json",
    "word_diff",
]
