"""Deterministic generators of big batch files for benchmarks and tests.

Shared by every benchmark in ``bench/`` (validator, preview, results viewer). The files
are valid FastRouter batch input (or output) files, built from a seeded word list so the
same call always writes the same bytes.

    python bench/gen_data.py            # writes bench/data/chat_50k.jsonl and small_500k.jsonl
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import msgspec

DATA_DIR = Path(__file__).resolve().parent / "data"

_WORDS = [
    "batch",
    "request",
    "model",
    "token",
    "answer",
    "question",
    "summary",
    "translate",
    "explain",
    "review",
    "code",
    "customer",
    "order",
    "invoice",
    "shipping",
    "refund",
    "product",
    "weather",
    "city",
    "river",
    "mountain",
    "number",
    "list",
    "table",
    "report",
    "draft",
    "email",
    "letter",
    "poem",
    "story",
    "recipe",
    "error",
    "retry",
    "queue",
    "window",
    "result",
    "output",
    "input",
    "line",
    "file",
    "server",
    "client",
    "latency",
    "budget",
    "memory",
    "parser",
    "stream",
]

# Alternating providers and models so stats and provider checks see a realistic mix.
_CHAT_MODELS = (
    ("openai", "openai/gpt-4.1-nano"),
    ("anthropic", "anthropic/claude-4.5-sonnet"),
    ("openai", "openai/gpt-4.1-mini"),
)


def _text(rng: random.Random, n_chars: int) -> str:
    """About n_chars of space-separated words (never empty)."""
    words: list[str] = []
    size = 0
    while size < max(n_chars, 1):
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def chat_row(index: int, content: str) -> dict[str, object]:
    provider, model = _CHAT_MODELS[index % len(_CHAT_MODELS)]
    return {
        "custom_id": f"request-{index + 1}",
        "provider": provider,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": content},
            ],
            "max_tokens": 1000,
        },
    }


def gen_chat_file(path: str | Path, rows: int, target_bytes: int, seed: int = 7) -> Path:
    """Write ``rows`` valid chat rows totalling about ``target_bytes`` (LF endings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    empty_row_bytes = len(msgspec.json.encode(chat_row(rows, ""))) + 1
    content_chars = max(1, target_bytes // max(rows, 1) - empty_row_bytes)
    # A handful of distinct contents reused round-robin: generation stays fast while
    # every line still differs (custom_id, model) and has a realistic length.
    contents = [_text(rng, content_chars) for _ in range(16)]
    with path.open("wb") as out:
        buf: list[bytes] = []
        for i in range(rows):
            buf.append(msgspec.json.encode(chat_row(i, contents[i % len(contents)])) + b"\n")
            if len(buf) >= 1000:
                out.write(b"".join(buf))
                buf.clear()
        out.write(b"".join(buf))
    return path


def gen_small_file(path: str | Path, rows: int, seed: int = 11) -> Path:
    """Write ``rows`` short valid chat rows (about 200 bytes each): per-line overhead test."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    contents = [_text(rng, 20) for _ in range(64)]
    with path.open("wb") as out:
        buf: list[bytes] = []
        for i in range(rows):
            buf.append(msgspec.json.encode(chat_row(i, contents[i % len(contents)])) + b"\n")
            if len(buf) >= 5000:
                out.write(b"".join(buf))
                buf.clear()
        out.write(b"".join(buf))
    return path


def gen_results_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    fail_every: int = 10,
    missing_every: int = 0,
    seed: int = 3,
) -> Path:
    """Write a FastRouter-shaped output file answering each row of ``input_path``.

    Every ``fail_every``-th row gets an HTTP 400 inside the response (error null, as the
    OpenAI error file does); every ``missing_every``-th row (if > 0) gets no line at all.
    Lines are shuffled, because real output order is not input order.
    """
    rng = random.Random(seed)
    lines: list[bytes] = []
    with Path(input_path).open("rb") as src:
        for index, raw in enumerate(src):
            if not raw.strip():
                continue
            row = msgspec.json.decode(raw)
            if missing_every and index % missing_every == missing_every - 1:
                continue
            custom_id = row["custom_id"]
            model = row["body"].get("model", "openai/gpt-4.1-nano")
            if fail_every and index % fail_every == fail_every - 1:
                response = {
                    "status_code": 400,
                    "body": {
                        "error": {
                            "message": "max_tokens is too large for this model.",
                            "type": "invalid_request_error",
                            "code": "invalid_value",
                        }
                    },
                }
            else:
                answer = _text(rng, 120)
                response = {
                    "status_code": 200,
                    "body": {
                        "id": f"chatcmpl-{index}",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": 40,
                            "completion_tokens": len(answer) // 4,
                            "total_tokens": 40 + len(answer) // 4,
                        },
                    },
                }
            line = {"custom_id": custom_id, "error": None, "response": response}
            lines.append(msgspec.json.encode(line) + b"\n")
    rng.shuffle(lines)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_bytes(b"".join(lines))
    return output_path


BIG_CHAT = DATA_DIR / "chat_50k.jsonl"
SMALL_LINES = DATA_DIR / "small_500k.jsonl"
PLAN_INPUT = DATA_DIR / "plan_1m.jsonl"


def ensure_plan_file() -> Path:
    """The planner's benchmark input: 1,000,000 short chat rows, about 500 MB."""
    if not PLAN_INPUT.exists():
        tmp = PLAN_INPUT.with_suffix(".tmp")
        gen_chat_file(tmp, 1_000_000, 500_000_000)
        tmp.replace(PLAN_INPUT)
    return PLAN_INPUT


def ensure_bench_files() -> tuple[Path, Path]:
    """Create the two standard benchmark files if they are not there yet."""
    if not BIG_CHAT.exists():
        gen_chat_file(BIG_CHAT, 50_000, 200_000_000)
    if not SMALL_LINES.exists():
        gen_small_file(SMALL_LINES, 500_000)
    return BIG_CHAT, SMALL_LINES


if __name__ == "__main__":
    for made in ensure_bench_files():
        print(f"{made}  {made.stat().st_size / 1e6:.1f} MB", file=sys.stdout)
