"""The batch-file validator: every rule reported at the right line, LF and CRLF alike."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fr_tui.core.validate import (
    CHAT_URL,
    EMBEDDINGS_URL,
    MAX_KEPT_PROBLEMS,
    Limits,
    Problem,
    Report,
    Validator,
    format_report,
    validate_bytes,
    validate_path,
)

SAMPLES = Path(__file__).resolve().parent.parent / "fr_tui" / "samples"


def chat(custom_id: str = "r1", **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "custom_id": custom_id,
        "provider": "openai",
        "method": "POST",
        "url": CHAT_URL,
        "body": {
            "model": "openai/gpt-4.1-nano",
            "messages": [{"role": "user", "content": "Hello there"}],
            "max_tokens": 100,
        },
    }
    row.update(changes)
    return row


def emb(custom_id: str = "e1", **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "custom_id": custom_id,
        "provider": "openai",
        "method": "POST",
        "url": EMBEDDINGS_URL,
        "body": {"model": "openai/text-embedding-3-small", "input": "some text"},
    }
    row.update(changes)
    return row


def with_body(custom_id: str, **body_changes: Any) -> dict[str, Any]:
    row = chat(custom_id)
    row["body"].update(body_changes)
    for key, value in body_changes.items():
        if value is _DROP:
            del row["body"][key]
    return row


_DROP = object()


def encode(rows: list[Any], ending: bytes = b"\n") -> bytes:
    """Rows (dicts, or raw bytes/str lines) joined with ``ending``, final newline included."""
    lines = []
    for row in rows:
        if isinstance(row, bytes):
            lines.append(row)
        elif isinstance(row, str):
            lines.append(row.encode())
        else:
            lines.append(msgspec.json.encode(row))
    return b"".join(line + ending for line in lines)


def codes(report: Report) -> list[tuple[int, str]]:
    return sorted((p.line, p.code) for p in report.errors + report.warnings)


ENDINGS = pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])


def only(report: Report, ending: bytes) -> list[tuple[int, str]]:
    """The problems, minus the one CRLF summary warning a CRLF file always gets."""
    found = codes(report)
    if ending == b"\r\n":
        assert (1, "crlf_line_endings") in found
        found.remove((1, "crlf_line_endings"))
    return found


# -- valid files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat.jsonl", "embeddings.jsonl"])
def test_shipped_samples_are_valid_with_no_warnings(name: str) -> None:
    report = validate_path(SAMPLES / name)
    assert report.valid, format_report(report, name)
    assert report.warnings_total == 0
    assert report.rows == (12 if name == "chat.jsonl" else 8)


def test_valid_chat_file_stats() -> None:
    rows = [chat(f"r{i}") for i in range(3)] + [
        chat(
            "a1",
            provider="anthropic",
            body={**chat()["body"], "model": "anthropic/claude-4.5-sonnet"},
        )
    ]
    report = validate_bytes(encode(rows))
    assert report.valid and report.rows == 4 and report.endpoint == CHAT_URL
    stats = report.stats
    assert stats["providers"] == {"openai": 3, "anthropic": 1}
    assert stats["models"] == {"openai/gpt-4.1-nano": 3, "anthropic/claude-4.5-sonnet": 1}
    assert stats["max_tokens_sum"] == 400
    # per row: ceil(11 characters / 4) + 3 for the message + 3 for the request
    assert stats["est_input_tokens"] == 4 * (3 + 3 + 3)
    assert stats["per_model"]["anthropic/claude-4.5-sonnet"] == {
        "rows": 1,
        "input_tokens": 9,
        "max_tokens_sum": 100,
        "rows_without_max_tokens": 0,
    }
    assert stats["bytes"] == report.bytes == len(encode(rows))


def test_valid_embeddings_file() -> None:
    rows = [
        emb("e1"),
        emb("e2", body={"model": "openai/text-embedding-3-small", "input": ["a", "b"]}),
    ]
    report = validate_bytes(encode(rows))
    assert report.valid and report.endpoint == EMBEDDINGS_URL


def test_report_json_shape() -> None:
    report = validate_bytes(encode([chat("a"), chat("a")]))
    doc = report.to_json()
    assert doc["valid"] is False and doc["rows"] == 2
    assert doc["errors"] == [
        {
            "line": 2,
            "code": "duplicate_custom_id",
            "message": 'custom_id "a" is already used on line 1.',
            "other_line": 1,
            "hint": "Every request needs its own custom_id; results are matched by it.",
        }
    ]
    assert doc["errors_total"] == 1 and doc["warnings"] == [] and doc["warnings_total"] == 0
    assert set(doc["stats"]) >= {
        "rows",
        "bytes",
        "endpoint",
        "providers",
        "models",
        "est_input_tokens",
    }
    msgspec.json.encode(doc)  # serialisable as is


# -- file-level rules -----------------------------------------------------------------


def test_empty_file_is_an_error_on_line_1() -> None:
    assert codes(validate_bytes(b"")) == [(1, "empty_file")]
    report = validate_bytes(b"\n  \n")
    assert (1, "empty_file") in codes(report) and report.rows == 0


@ENDINGS
def test_blank_lines_are_warnings_at_their_line(ending: bytes) -> None:
    data = encode([chat("a"), b"", chat("b"), b"   \t"], ending)
    report = validate_bytes(data)
    assert only(report, ending) == [(2, "blank_line"), (4, "blank_line")]
    assert report.valid and report.rows == 2


def test_crlf_is_one_warning_with_a_count() -> None:
    rows = [chat(f"r{i}") for i in range(5)]
    data = encode(rows[:2]) + encode(rows[2:], b"\r\n")
    report = validate_bytes(data)
    assert report.valid
    assert codes(report) == [(3, "crlf_line_endings")]
    assert report.warnings[0].message.startswith("3 lines end with CRLF")


def test_missing_final_newline_is_a_warning_on_the_last_line() -> None:
    data = encode([chat("a"), chat("b")])[:-1]
    report = validate_bytes(data)
    assert report.valid and codes(report) == [(2, "missing_final_newline")]
    assert codes(validate_path_of(data)) == [(2, "missing_final_newline")]


def test_bom_is_an_error_on_line_1_and_the_row_is_still_checked() -> None:
    data = b"\xef\xbb\xbf" + encode([chat("a"), chat("a")])
    report = validate_bytes(data)
    assert codes(report) == [(1, "bom"), (2, "duplicate_custom_id")]
    assert report.endpoint == CHAT_URL


@ENDINGS
def test_invalid_utf8_is_reported_at_its_line_with_a_byte_column(ending: bytes) -> None:
    bad = msgspec.json.encode(chat("b")).replace(b"Hello", b"Hel\xfflo")
    report = validate_bytes(encode([chat("a"), bad, chat("c")], ending))
    assert only(report, ending) == [(2, "invalid_utf8")]
    assert report.errors[0].column == bad.index(b"\xff") + 1


def test_too_many_rows_points_at_the_first_row_over_the_limit() -> None:
    report = validate_bytes(encode([chat(f"r{i}") for i in range(5)]), Limits(max_rows=3))
    assert codes(report) == [(4, "too_many_rows")]
    assert "5 requests" in report.errors[0].message
    # what to do: run it as a job (one command) or split it
    assert "fr-tui run FILE" in format_report(report, "f.jsonl")


def test_file_too_large_points_at_the_line_that_crosses_the_limit() -> None:
    data = encode([chat(f"r{i}") for i in range(4)])
    line_size = len(data) // 4
    report = validate_bytes(data, Limits(max_bytes=2 * line_size + 1))
    assert codes(report) == [(3, "file_too_large")]


# -- line rules -----------------------------------------------------------------------

LINE_CASES: list[tuple[str, Any, str]] = [
    ("truncated json", b'{"custom_id": "x", "body": {', "invalid_json"),
    ("single quotes", b"{'custom_id': 'x'}", "invalid_json"),
    ("NaN", b'{"custom_id": "x", "n": NaN}', "invalid_json"),
    ("Infinity", b'{"custom_id": "x", "n": Infinity}', "invalid_json"),
    (
        "two objects",
        msgspec.json.encode(chat("x")) + msgspec.json.encode(chat("y")),
        "invalid_json",
    ),
    ("array", b"[1, 2]", "not_an_object"),
    ("null", b"null", "not_an_object"),
    ("string", b'"hello"', "not_an_object"),
    ("no custom_id", {k: v for k, v in chat("x").items() if k != "custom_id"}, "missing_custom_id"),
    ("empty custom_id", chat(""), "invalid_custom_id"),
    ("numeric custom_id", chat(7), "invalid_custom_id"),
    ("no provider", {k: v for k, v in chat("x").items() if k != "provider"}, "missing_provider"),
    ("empty provider", chat("x", provider=""), "invalid_provider"),
    ("GET", chat("x", method="GET"), "invalid_method"),
    ("lowercase post", chat("x", method="post"), "invalid_method"),
    ("no method", {k: v for k, v in chat("x").items() if k != "method"}, "missing_method"),
    ("no url", {k: v for k, v in chat("x").items() if k != "url"}, "missing_url"),
    ("other url", chat("x", url="/v1/responses"), "invalid_url"),
    ("url mismatch", chat("x", url=EMBEDDINGS_URL), "url_mismatch"),
    ("no body", {k: v for k, v in chat("x").items() if k != "body"}, "missing_body"),
    ("body a list", chat("x", body=[]), "invalid_body"),
    ("no model", with_body("x", model=_DROP), "missing_model"),
    ("model a number", with_body("x", model=4), "invalid_model"),
    ("stream true", with_body("x", stream=True), "stream_not_supported"),
    ("no messages", with_body("x", messages=_DROP), "missing_messages"),
    ("empty messages", with_body("x", messages=[]), "invalid_messages"),
    ("message not object", with_body("x", messages=["hi"]), "invalid_message"),
    ("message without role", with_body("x", messages=[{"content": "hi"}]), "invalid_message"),
    ("message without content", with_body("x", messages=[{"role": "user"}]), "invalid_message"),
    ("max_tokens zero", with_body("x", max_tokens=0), "invalid_max_tokens"),
    ("max_tokens string", with_body("x", max_tokens="100"), "invalid_max_tokens"),
]

WARNING_CASES: list[tuple[str, Any, str]] = [
    (
        "unknown provider",
        {**with_body("x", model="acme/m-1"), "provider": "acme"},
        "unknown_provider",
    ),
    ("provider mismatch", chat("x", provider="anthropic"), "provider_model_mismatch"),
    ("bare model", with_body("x", model="gpt-4.1-nano"), "model_without_prefix"),
    ("unknown key", chat("x", metadata={"a": 1}), "unknown_key"),
    ("odd role", with_body("x", messages=[{"role": "robot", "content": "hi"}]), "unknown_role"),
]


@ENDINGS
@pytest.mark.parametrize(("name", "bad", "code"), LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_each_error_is_reported_at_its_line(name: str, bad: Any, code: str, ending: bytes) -> None:
    data = encode([chat("first"), chat("second"), bad, chat("last")], ending)
    report = validate_bytes(data)
    assert only(report, ending) == [(3, code)], format_report(report, name)
    assert not report.valid
    assert report.rows == 4  # a broken line is still a request line
    assert validate_path_of(data).to_json()["errors"] == report.to_json()["errors"]


@ENDINGS
@pytest.mark.parametrize(("name", "bad", "code"), WARNING_CASES, ids=[c[0] for c in WARNING_CASES])
def test_each_warning_is_reported_at_its_line(
    name: str, bad: Any, code: str, ending: bytes
) -> None:
    report = validate_bytes(encode([chat("first"), bad, chat("last")], ending))
    assert only(report, ending) == [(2, code)], format_report(report, name)
    assert report.valid  # warnings alone do not make a file invalid


def test_invalid_json_has_a_column_pointing_at_the_mistake() -> None:
    report = validate_bytes(b'{"custom_id": "x",, "y": 1}\n')
    (problem,) = report.errors
    assert problem.code == "invalid_json" and problem.column == 19


@pytest.mark.parametrize(
    ("value", "code"),
    [(b'"\xff"', "invalid_utf8"), (b"1e400", "invalid_json"), (b'"\\ud800"', "invalid_json")],
    ids=["bad UTF-8", "number too large", "half a surrogate pair"],
)
def test_a_fault_in_a_key_the_fast_path_does_not_read_is_still_found(
    value: bytes, code: str
) -> None:
    # Line 1 opens the fast path for its model; line 2 is the same row but for one more
    # key in a message. msgspec skips the value of a key its types do not name without
    # checking it, so the fast path's types forbid every other key.
    fine = msgspec.json.encode(chat("a"))
    faulty = msgspec.json.encode(chat("b")).replace(
        b'"content"', b'"name":' + value + b',"content"'
    )
    report = validate_bytes(fine + b"\n" + faulty + b"\n")
    assert codes(report) == [(2, code)]
    named = msgspec.json.encode(chat("c")).replace(b'"content"', b'"name":"x","content"')
    assert validate_bytes(fine + b"\n" + named + b"\n").valid  # a message may have a name


def test_parse_errors_are_explained_in_plain_words() -> None:
    report = validate_bytes(b'{"custom_id": "\\ud800"}\n{"n": 1e400}\n{"a": 1,}\n')
    reasons = [p.message for p in report.errors]
    assert "half of a surrogate pair" in reasons[0]
    assert "too large" in reasons[1]
    assert "a comma before } or ]" in reasons[2] and report.errors[2].column == 9


def test_duplicate_custom_id_names_the_earlier_line() -> None:
    report = validate_bytes(encode([chat("a"), chat("b"), chat("a"), chat("a")]))
    dups = [(p.line, p.other_line) for p in report.errors if p.code == "duplicate_custom_id"]
    assert dups == [(3, 1), (4, 1)]


def test_url_is_set_by_the_first_line_and_mismatch_names_it() -> None:
    report = validate_bytes(encode([emb("a"), emb("b"), chat("c")]))
    (problem,) = report.errors
    assert (problem.line, problem.code, problem.other_line) == (3, "url_mismatch", 1)
    assert report.endpoint == EMBEDDINGS_URL


def test_embeddings_input_rules() -> None:
    rows = [
        emb("a"),
        emb("b", body={"model": "openai/text-embedding-3-small"}),
        emb("c", body={"model": "openai/text-embedding-3-small", "input": []}),
    ]
    assert codes(validate_bytes(encode(rows))) == [(2, "missing_input"), (3, "invalid_input")]


def test_assistant_tool_call_without_content_is_fine() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "1"},
    ]
    assert validate_bytes(encode([with_body("a", messages=messages)])).valid


def test_multimodal_content_parts_count_their_text() -> None:
    parts = [{"type": "text", "text": "abcdefgh"}, {"type": "image_url", "image_url": {"url": "x"}}]
    report = validate_bytes(encode([with_body("a", messages=[{"role": "user", "content": parts}])]))
    assert report.valid and report.stats["est_input_tokens"] == 2 + 3 + 3


def test_deeply_nested_line_is_reported_not_a_crash() -> None:
    report = validate_bytes(b"[" * 100_000 + b"\n" + encode([chat("a")]))
    assert codes(report) == [(1, "invalid_json")]
    assert "nested too deeply" in report.errors[0].message


def test_megabyte_line_is_handled() -> None:
    big = with_body("a", messages=[{"role": "user", "content": "x" * 3_000_000}])
    report = validate_bytes(encode([big, chat("b")]))
    assert report.valid and report.stats["est_input_tokens"] == 3_000_000 // 4 + 6 + 3 + 6


def test_only_the_first_1000_problems_are_kept_but_all_are_counted() -> None:
    data = encode([b"not json"] * 1500)
    seen: list[Problem] = []
    validator = Validator(on_problem=seen.append)
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        validator.feed(number, line)
    report = validator.finish()
    assert report.errors_total == 1500
    assert len(report.errors) == MAX_KEPT_PROBLEMS == len(seen)
    assert "500 more not listed" in format_report(report, "f.jsonl")


# -- streaming API ----------------------------------------------------------------------


def validate_path_of(data: bytes) -> Report:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.jsonl"
        path.write_bytes(data)
        return validate_path(path)


def test_validate_path_streams_problems_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    rows = [
        with_body(f"r{i}", messages=[{"role": "user", "content": "y" * 3000}]) for i in range(3000)
    ]
    rows[1234] = chat("r0")
    path.write_bytes(encode(rows))
    problems: list[Problem] = []
    progress: list[tuple[int, int, int]] = []
    report = validate_path(
        path, on_problem=problems.append, on_progress=lambda *a: progress.append(a)
    )
    assert [(p.line, p.code) for p in problems] == [(1235, "duplicate_custom_id")]
    assert report.errors_total == 1 and report.rows == 3000
    assert len(progress) >= 3
    assert progress[-1] == (path.stat().st_size, path.stat().st_size, 3000)
    assert all(a[0] <= b[0] for a, b in zip(progress, progress[1:], strict=False))


def test_validate_path_can_be_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(
        encode(
            [
                with_body(f"r{i}", messages=[{"role": "user", "content": "z" * 5000}])
                for i in range(3000)
            ]
        )
    )
    cancel = threading.Event()

    def on_progress(done: int, total: int, rows: int) -> None:
        cancel.set()

    report = validate_path(path, on_progress=on_progress, cancel=cancel)
    assert report.complete is False and report.valid is False
    assert 0 < report.rows < 3000
    assert "cancelled" in format_report(report, "big.jsonl")


def test_validate_path_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        validate_path(tmp_path / "nope.jsonl")


def test_broken_sample_names_every_problem_with_its_line() -> None:
    report = validate_path(SAMPLES / "broken.jsonl")
    assert not report.valid
    assert codes(report) == [
        (2, "invalid_json"),
        (3, "duplicate_custom_id"),
        (4, "missing_model"),
        (5, "stream_not_supported"),
        (6, "invalid_method"),
        (7, "url_mismatch"),
        (8, "unknown_key"),
        (9, "model_without_prefix"),
    ]
    text = format_report(report, "broken.jsonl")
    assert "INVALID" in text
    for line in range(2, 10):
        assert f"line {line}" in text
    assert 'custom_id "ok-1" is already used on line 1.' in text


def test_validate_never_imports_textual() -> None:
    code = "import sys, fr_tui.core.validate, fr_tui.core.split; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- through the CLI (as a user runs it) --------------------------------------------------


def fr_tui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fr_tui", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_validate_exit_codes_and_words() -> None:
    good = fr_tui("validate", str(SAMPLES / "chat.jsonl"))
    assert good.returncode == 0 and "valid" in good.stdout and "12 requests" in good.stdout
    bad = fr_tui("validate", str(SAMPLES / "broken.jsonl"))
    assert bad.returncode == 1
    assert 'line 3: custom_id "ok-1" is already used on line 1.' in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    missing = fr_tui("validate", "/no/such/file.jsonl")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_cli_validate_json(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(encode([chat("a"), b"{oops", chat("a")], b"\r\n"))
    out = fr_tui("validate", str(path), "--json")
    assert out.returncode == 1
    doc = msgspec.json.decode(out.stdout)
    assert doc["valid"] is False and doc["rows"] == 3
    assert [(e["line"], e["code"]) for e in doc["errors"]] == [
        (2, "invalid_json"),
        (3, "duplicate_custom_id"),
    ]
    assert [(w["line"], w["code"]) for w in doc["warnings"]] == [(1, "crlf_line_endings")]


def test_cli_split_then_every_part_validates(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(encode([chat(f"r{i}") for i in range(7)]))
    out = fr_tui("split", str(path), "--max-rows", "3", "--max-bytes", "100000")
    assert out.returncode == 0, out.stderr
    parts = sorted(tmp_path.glob("b.part*.jsonl"))
    assert [p.name for p in parts] == ["b.part1.jsonl", "b.part2.jsonl", "b.part3.jsonl"]
    assert all(fr_tui("validate", str(p)).returncode == 0 for p in parts)


def test_overlong_line_is_reported_and_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fr_tui.core.validate_scan as validate_scan

    monkeypatch.setattr(validate_scan, "MAX_LINE_BYTES", 4096)
    huge = with_body("big", messages=[{"role": "user", "content": "q" * 50_000}])
    data = encode([chat("a"), huge, chat("b")])
    path = tmp_path / "b.jsonl"
    path.write_bytes(data)
    report = validate_path(path)
    assert codes(report) == [(2, "line_too_long")]
    assert report.rows == 3 and report.bytes == len(data)
    assert codes(validate_bytes(data)) == [(2, "line_too_long")]
    path.write_bytes(data + msgspec.json.encode(huge))  # overlong and unterminated
    expected = [(2, "line_too_long"), (4, "line_too_long"), (4, "missing_final_newline")]
    assert codes(validate_path(path)) == expected


def test_a_duplicate_id_on_a_row_without_a_body_is_still_found() -> None:
    # ids that rise let the validator skip its duplicate search: a row the fast path
    # cannot take (here: no body) must still count in that rise
    rows = [chat("a"), {**chat("a"), "body": None}, chat("b"), chat("c")]
    report = validate_bytes(encode(rows))
    dups = [(p.line, p.other_line) for p in report.errors if p.code == "duplicate_custom_id"]
    assert dups == [(2, 1)]


def test_a_missing_provider_says_where_it_goes_and_which_the_model_names() -> None:
    # the tour put "provider" inside body and read "provider is missing" with no clue
    inside = chat("a")
    inside["body"]["provider"] = inside.pop("provider")
    plain = chat("b")
    del plain["provider"]
    report = validate_bytes(encode([inside, plain]))
    assert [(p.line, p.code, p.message) for p in report.errors] == [
        (
            1,
            "missing_provider",
            "provider is missing at the top level of the request (it is inside body); "
            'add "provider": "openai" beside custom_id.',
        ),
        (2, "missing_provider", 'provider is missing; add "provider": "openai" beside custom_id.'),
    ]
