"""A file's prompt tokens are one number wherever fr-tui shows them: the validator's
estimate per model (core/tokens.py), corrected by past batches once there are some, and
saying so."""

from __future__ import annotations

import re
from pathlib import Path

from test_cost_cli import api, run, run_json, submit_and_read  # noqa: F401 - api: a fixture


def shown_counts(text: str) -> set[str]:
    return set(re.findall(r"about ([\d,]+) input tokens", text))


def test_validate_and_estimate_show_the_same_corrected_count(
    api: dict[str, str],  # noqa: F811
    samples: Path,
) -> None:
    path = samples / "chat.jsonl"
    fresh = run_json("estimate", str(path), env=api)
    assert shown_counts(run("validate", str(path), env=api).stdout) == {
        f"{fresh['input_tokens']:,}"
    }
    # a finished batch teaches a correction (the sandbox counts Anthropic prompts with a
    # tokenizer that finds more tokens than the estimate)
    submit_and_read(path, api)
    learnt = run_json("estimate", str(path), env=api)
    assert learnt["input_tokens"] != fresh["input_tokens"]
    expected = f"{learnt['input_tokens']:,}"
    for command in ("validate", "estimate"):
        text = run(command, str(path), env=api).stdout
        assert shown_counts(text) == {expected}, text
        assert f"about {expected} input tokens (corrected by past batches)" in text
