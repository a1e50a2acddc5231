"""The prompt-token estimator, the validator's per-row estimates and its row observer."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from fr_tui.core.tokens import estimate_prompt_tokens
from fr_tui.core.validate import CHAT_URL, EMBEDDINGS_URL, Problem, validate_bytes
from fr_tui.sandbox.answers import answer


def row(custom_id: str, body: dict[str, Any], url: str = CHAT_URL) -> bytes:
    provider = body.get("model", "openai/x").partition("/")[0]
    line = {"custom_id": custom_id, "provider": provider, "method": "POST", "url": url}
    return msgspec.json.encode({**line, "body": body}) + b"\n"


def chat_body(*texts: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text} for text in texts]
    return {"model": "openai/gpt-4.1-nano", "messages": messages, **extra}


class Recorder:
    """A small observer: records what it sees, flags rows over a token limit."""

    def __init__(self, limit: int = 10**9) -> None:
        self.rows: list[tuple[int, str, int]] = []
        self.bodies: list[dict[str, Any]] = []
        self.limit = limit
        self.finished = 0

    def row(self, line: int, body: dict[str, Any], prompt_tokens: int) -> list[Problem] | None:
        self.rows.append((line, body.get("model", ""), prompt_tokens))
        self.bodies.append(body)
        if prompt_tokens > self.limit:
            return [Problem(line, "too_big", f"{prompt_tokens} tokens", "warning")]
        return None

    def finish(self) -> list[Problem]:
        self.finished += 1
        return [Problem(1, "summary", f"{len(self.rows)} rows seen", "error")]


def test_the_estimate_counts_what_the_request_sends() -> None:
    plain = chat_body("abcdefgh", "abc")  # 11 characters: 3 tokens, 2 messages, 1 reply
    assert estimate_prompt_tokens(plain) == 3 + 2 * 3 + 3
    parts = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]
    with_parts = {"model": "m", "messages": [{"role": "user", "content": parts}]}
    assert estimate_prompt_tokens(with_parts) == 1 + 3 + 3
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    with_tools = {**plain, "tools": [tool]}
    assert estimate_prompt_tokens(with_tools) == estimate_prompt_tokens(plain) + -(
        -len(msgspec.json.encode([tool])) // 4
    )
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"a": {}}}}
    structured = {**plain, "response_format": {"type": "json_schema", "json_schema": schema}}
    assert estimate_prompt_tokens(structured) > estimate_prompt_tokens(plain)
    assert estimate_prompt_tokens({"input": "abcde"}, EMBEDDINGS_URL) == 2
    assert estimate_prompt_tokens({"input": ["ab", "abcde"]}, EMBEDDINGS_URL) == 1 + 2
    assert estimate_prompt_tokens({"input": [1, 2, 3]}, EMBEDDINGS_URL) == 3
    assert estimate_prompt_tokens({"input": [[1, 2], [3]]}, EMBEDDINGS_URL) == 3


texts = st.text(max_size=40)
bodies = st.one_of(
    st.lists(texts, min_size=1, max_size=4).map(lambda t: chat_body(*t)),
    st.lists(texts, min_size=1, max_size=3).map(lambda t: chat_body(*t, max_tokens=50)),
    st.lists(texts, min_size=1, max_size=2).map(lambda t: chat_body(*t, temperature=0.5)),
    texts.map(lambda t: chat_body(t, tools=[{"type": "function", "function": {"name": t}}])),
    st.just({"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": None}]}),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(bodies, min_size=1, max_size=12))
def test_every_row_is_observed_with_the_reference_estimate(rows: list[dict[str, Any]]) -> None:
    # ordinary rows take the validator's fast path, the others its full checks: the
    # observer must see the same estimate either way, and the stats must add up.
    data = b"".join(row(f"r{i}", body) for i, body in enumerate(rows))
    recorder = Recorder()
    report = validate_bytes(data, observer=recorder)
    expected = [(i + 1, body["model"], estimate_prompt_tokens(body)) for i, body in enumerate(rows)]
    assert recorder.rows == expected
    # the body as the line holds it, whichever path took the row (the fast path makes it
    # from its typed decoding)
    assert recorder.bodies == rows
    assert report.stats["est_input_tokens"] == sum(t for *_, t in expected)
    per_model = report.stats["per_model"]["openai/gpt-4.1-nano"]
    assert per_model["rows"] == len(rows)
    with_max = [b for b in rows if "max_tokens" in b]
    assert per_model["max_tokens_sum"] == 50 * len(with_max)
    assert per_model["rows_without_max_tokens"] == len(rows) - len(with_max)
    assert recorder.finished == 1


def test_observer_problems_count_like_the_validators_own() -> None:
    data = row("a", chat_body("x" * 400)) + row("b", chat_body("y")) + b"not json\n"
    recorder = Recorder(limit=50)
    streamed: list[Problem] = []
    from fr_tui.core.validate import Validator

    validator = Validator(on_problem=streamed.append, observer=recorder)
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        validator.feed(number, line)
    report = validator.finish()
    assert [(p.line, p.code) for p in report.warnings] == [(1, "too_big")]
    assert sorted((p.line, p.code) for p in report.errors) == [
        (1, "summary"),
        (3, "invalid_json"),
    ]
    assert report.errors_total == 2 and report.warnings_total == 1 and not report.valid
    assert {p.code for p in streamed} == {"too_big", "summary", "invalid_json"}
    assert [line for line, *_ in recorder.rows] == [1, 2]  # not the unparsable line 3


def test_the_sandbox_counts_prompt_tokens_with_the_same_estimator() -> None:
    chat = chat_body("What is 2 + 2?", "and 3 + 3?", max_tokens=20)
    reply = answer(CHAT_URL, "batch_1", "r1", chat, 0)
    assert reply["usage"]["prompt_tokens"] == estimate_prompt_tokens(chat)
    report = validate_bytes(row("r1", chat))
    assert report.stats["est_input_tokens"] == reply["usage"]["prompt_tokens"]
    embed = {"model": "openai/text-embedding-3-small", "input": ["one", "two words"]}
    reply = answer(EMBEDDINGS_URL, "batch_1", "e1", embed, 0)
    assert reply["usage"]["prompt_tokens"] == estimate_prompt_tokens(embed, EMBEDDINGS_URL)
