"""The sandbox server over real loopback HTTP: lifecycle, answers, and every fault it offers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fr_tui.sandbox import SANDBOX_API_KEY
from fr_tui.sandbox.server import SandboxServer

TERMINAL = {"completed", "failed", "expired", "cancelled"}
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def chat_rows(n: int, model: Callable[[int], str] | None = None) -> bytes:
    lines = []
    for i in range(n):
        name = model(i) if model else "openai/gpt-4.1-nano"
        row = {
            "custom_id": f"req-{i}",
            "provider": name.split("/")[0],
            "method": "POST",
            "url": CHAT,
            "body": {"model": name, "messages": [{"role": "user", "content": f"What is {i} + 2?"}]},
        }
        lines.append(msgspec.json.encode(row))
    return b"\n".join(lines) + b"\n"


def embedding_rows(n: int) -> bytes:
    lines = [
        msgspec.json.encode(
            {
                "custom_id": f"emb-{i}",
                "provider": "openai",
                "method": "POST",
                "url": EMBEDDINGS,
                "body": {"model": "openai/text-embedding-3-small", "input": f"text number {i}"},
            }
        )
        for i in range(n)
    ]
    return b"\n".join(lines) + b"\n"


class Api:
    """A thin httpx client for the sandbox, so tests read like a user's session."""

    def __init__(self, base_url: str, key: str = SANDBOX_API_KEY) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def upload(self, content: bytes, name: str = "input.jsonl") -> dict[str, Any]:
        response = self.http.post(
            "/v1/files", files={"file": (name, content)}, data={"purpose": "batch"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def create(
        self, file_id: str, endpoint: str = CHAT, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "input_file_id": file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
        }
        if metadata is not None:
            payload["metadata"] = metadata
        response = self.http.post("/v1/batches", json=payload)
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, content: bytes, endpoint: str = CHAT, **kw: Any) -> dict[str, Any]:
        return self.create(self.upload(content)["id"], endpoint, **kw)

    def get(self, batch_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, batch_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get(batch_id)
            if batch["status"] in TERMINAL:
                return batch
            assert time.monotonic() < deadline, f"batch stuck in {batch['status']}"
            time.sleep(0.01)

    def lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        response = self.http.get(f"/v1/files/{file_id}/content")
        assert response.status_code == 200, response.text
        return [msgspec.json.decode(line) for line in response.content.splitlines() if line.strip()]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., SandboxServer]]:
    servers: list[SandboxServer] = []

    def make(**kw: Any) -> SandboxServer:
        kw.setdefault("state_dir", tmp_path / "state")
        kw.setdefault("tick", 0.01)
        server = SandboxServer(**kw)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., SandboxServer]) -> SandboxServer:
    return make_server()


@pytest.fixture
def api(server: SandboxServer) -> Api:
    return Api(server.base_url)


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "status"}
    assert error["status"] == status and error["message"]
    return error


# -- round trips -------------------------------------------------------------------------


def test_upload_answers_fastrouter_shape(api: Api) -> None:
    content = chat_rows(12)
    info = api.upload(content, name="twelve.jsonl")
    assert info["id"] == info["file_id"] and info["id"].startswith("file-")
    assert info["object"] == "file" and info["purpose"] == "batch"
    assert info["filename"] == "twelve.jsonl"
    assert info["bytes"] == len(content) and info["num_rows"] == 12
    assert info["url"].endswith(f"/v1/files/{info['id']}/content")
    again = api.http.get(f"/v1/files/{info['id']}").json()
    assert again["bytes"] == len(content)
    assert api.http.get(f"/v1/files/{info['id']}/content").content == content


def test_chat_batch_completes_with_every_row_answered(api: Api) -> None:
    created = api.submit(chat_rows(12), metadata={"project": "demo"})
    assert created["id"] == created["batch_id"] and created["id"].startswith("fr_batch-")
    assert created["status"] == "validating" and created["completion_window"] == "24h"
    assert created["in_progress_at"] is None and created["completed_at"] is None

    batch = api.wait(created["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 12, "completed": 12, "failed": 0}
    assert batch["metadata"] == {"project": "demo"}
    assert batch["errors"] is None and batch["error_file_id"] is None
    assert batch["output_file_id"] == f"batch-output-{batch['id']}.jsonl"
    assert batch["in_progress_at"] and batch["finalizing_at"] and batch["completed_at"]
    assert batch["failed_at"] is None and batch["cancelled_at"] is None

    lines = api.lines(batch["output_file_id"])
    assert sorted(line["custom_id"] for line in lines) == sorted(f"req-{i}" for i in range(12))
    by_id = {line["custom_id"]: line for line in lines}
    answer = by_id["req-5"]
    assert answer["id"].startswith("batch_req_") and answer["error"] is None
    assert answer["response"]["status_code"] == 200
    body = answer["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == "openai/gpt-4.1-nano"
    assert body["choices"][0]["message"]["content"].endswith("5 + 2 = 7.")
    assert body["choices"][0]["message"]["content"].startswith("Sandbox answer: ")

    usage = batch["usage"]
    assert usage["input_tokens"] == sum(
        line["response"]["body"]["usage"]["prompt_tokens"] for line in lines
    )
    assert usage["output_tokens"] == sum(
        line["response"]["body"]["usage"]["completion_tokens"] for line in lines
    )
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["cost"] > 0


def test_request_counts_grow_while_in_progress(make_server: Callable[..., SandboxServer]) -> None:
    api = Api(make_server(tick=0.04).base_url)
    batch_id = api.submit(chat_rows(40))["id"]
    seen: list[tuple[str, int]] = []
    while True:
        batch = api.get(batch_id)
        seen.append((batch["status"], batch["request_counts"]["completed"]))
        if batch["status"] == "completed":
            break
        time.sleep(0.01)
    statuses = [status for status, _ in seen]
    assert statuses.index("validating") < statuses.index("in_progress")
    assert statuses.index("in_progress") < statuses.index("finalizing")
    counts = [count for _, count in seen]
    assert counts == sorted(counts)
    assert any(0 < count < 40 for status, count in seen if status == "in_progress")


def test_embeddings_are_deterministic_vectors(api: Api) -> None:
    first = api.wait(api.submit(embedding_rows(5), endpoint=EMBEDDINGS)["id"])
    second = api.wait(api.submit(embedding_rows(5), endpoint=EMBEDDINGS)["id"])
    assert first["status"] == second["status"] == "completed"
    vectors = []
    for batch in (first, second):
        lines = api.lines(batch["output_file_id"])
        assert {line["custom_id"] for line in lines} == {f"emb-{i}" for i in range(5)}
        body = {line["custom_id"]: line for line in lines}["emb-2"]["response"]["body"]
        assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
        vector = body["data"][0]["embedding"]
        assert len(vector) == 8 and all(-1 <= v <= 1 for v in vector)
        vectors.append(vector)
    assert vectors[0] == vectors[1]
    assert first["usage"]["output_tokens"] == 0 and first["usage"]["input_tokens"] > 0


def test_output_order_is_shuffled(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(30))["id"])
    order = [line["custom_id"] for line in api.lines(batch["output_file_id"])]
    assert sorted(order) == sorted(f"req-{i}" for i in range(30))
    assert order != [f"req-{i}" for i in range(30)]


# -- batch-level failures ----------------------------------------------------------------


def test_invalid_file_fails_validation_with_line_numbers(api: Api) -> None:
    good = chat_rows(3).splitlines()
    content = b"\n".join([good[0], b"{not json", good[1], good[1]]) + b"\n"
    batch = api.wait(api.submit(content)["id"])
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert batch["output_file_id"] is None and batch["error_file_id"] is None
    problems = {(e["line"], e["code"]) for e in batch["errors"]["data"]}
    assert (2, "invalid_json") in problems
    assert (4, "duplicate_custom_id") in problems
    assert batch["errors"]["object"] == "list"


def test_endpoint_must_match_file_url(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(3), endpoint=EMBEDDINGS)["id"])
    assert batch["status"] == "failed"
    assert batch["errors"]["data"][0]["code"] == "url_mismatch"
    assert batch["errors"]["data"][0]["line"] == 1


def test_fault_fail_validation(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(3), metadata={"sandbox_fault": "fail_validation"})["id"])
    assert batch["status"] == "failed"
    assert [(e["line"], e["code"]) for e in batch["errors"]["data"]] == [(1, "sandbox_fault")]


def test_fault_expire_answers_first_half(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(10), metadata={"sandbox_fault": "expire"})["id"])
    assert batch["status"] == "expired" and batch["expired_at"] is not None
    assert batch["request_counts"] == {"total": 10, "completed": 5, "failed": 5}
    answered = {line["custom_id"] for line in api.lines(batch["output_file_id"])}
    assert answered == {f"req-{i}" for i in range(5)}
    expired = api.lines(batch["error_file_id"])
    assert {line["custom_id"] for line in expired} == {f"req-{i}" for i in range(5, 10)}
    for line in expired:
        assert line["response"] is None and line["error"]["code"] == "batch_expired"


def test_fault_hang_validating_stays_until_cancelled(api: Api) -> None:
    batch_id = api.submit(chat_rows(3), metadata={"sandbox_fault": "hang_validating"})["id"]
    time.sleep(0.1)
    assert api.get(batch_id)["status"] == "validating"
    assert api.http.post(f"/v1/batches/{batch_id}/cancel").json()["status"] == "cancelling"
    batch = api.wait(batch_id)
    assert batch["status"] == "cancelled"
    assert batch["output_file_id"] is None and batch["error_file_id"] is None


def test_unknown_batch_fault_is_rejected(api: Api) -> None:
    file_id = api.upload(chat_rows(2))["id"]
    response = api.http.post(
        "/v1/batches",
        json={
            "input_file_id": file_id,
            "endpoint": CHAT,
            "completion_window": "24h",
            "metadata": {"sandbox_fault": "explode"},
        },
    )
    assert assert_error_shape(response, 400)["code"] == "invalid_metadata"


# -- per-line faults ---------------------------------------------------------------------


def test_sample_server_fails_gives_ok_failed_and_missing_rows(api: Api, samples: Path) -> None:
    content = (samples / "server_fails.jsonl").read_bytes()
    rows = [msgspec.json.decode(line) for line in content.splitlines()]
    batch = api.wait(api.submit(content)["id"])
    assert batch["status"] == "completed"
    ok = {line["custom_id"] for line in api.lines(batch["output_file_id"])}
    errors = {line["custom_id"]: line for line in api.lines(batch["error_file_id"])}
    expect_fail = {
        r["custom_id"]: r["body"]["model"] for r in rows if "fail-" in r["body"]["model"]
    }
    dropped = {r["custom_id"] for r in rows if r["body"]["model"] == "sandbox/drop"}
    assert len(expect_fail) == 3 and len(dropped) == 1
    assert set(errors) == set(expect_fail)
    for custom_id, model in expect_fail.items():
        status = int(model.rsplit("-", 1)[1])
        line = errors[custom_id]
        assert line["error"] is None and line["response"]["status_code"] == status
        assert line["response"]["body"]["error"]["status"] == status
    assert ok == {r["custom_id"] for r in rows} - set(expect_fail) - dropped
    assert batch["request_counts"] == {"total": 10, "completed": 6, "failed": 3}


def test_all_rows_failing_leaves_no_output_file(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(4, model=lambda i: "sandbox/fail-400"))["id"])
    assert batch["status"] == "completed"
    assert batch["output_file_id"] is None
    assert batch["error_file_id"] == f"batch-errors-{batch['id']}.jsonl"
    assert len(api.lines(batch["error_file_id"])) == 4
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 4}


# -- cancel ------------------------------------------------------------------------------


def test_cancel_keeps_partial_results(make_server: Callable[..., SandboxServer]) -> None:
    api = Api(make_server(tick=0.05).base_url)
    batch_id = api.submit(chat_rows(60))["id"]
    while api.get(batch_id)["request_counts"]["completed"] == 0:
        time.sleep(0.005)
    cancelling = api.http.post(f"/v1/batches/{batch_id}/cancel").json()
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    batch = api.wait(batch_id)
    assert batch["status"] == "cancelled" and batch["cancelled_at"] is not None
    answered = [line["custom_id"] for line in api.lines(batch["output_file_id"])]
    assert 0 < len(answered) < 60
    assert batch["request_counts"]["completed"] == len(answered)
    # Rows are worked on in input order: the answered ones are a prefix of the input.
    assert set(answered) == {f"req-{i}" for i in range(len(answered))}
    assert batch["error_file_id"] is None


def test_slow_cancel_lasts_longer(make_server: Callable[..., SandboxServer]) -> None:
    api = Api(make_server(tick=0.02).base_url)
    batch_id = api.submit(chat_rows(3), metadata={"sandbox_fault": "slow_cancel"})["id"]
    api.http.post(f"/v1/batches/{batch_id}/cancel")
    time.sleep(0.15)
    assert api.get(batch_id)["status"] == "cancelling"
    assert api.wait(batch_id)["status"] == "cancelled"


def test_cancel_finished_batch_is_an_error(api: Api) -> None:
    batch = api.wait(api.submit(chat_rows(2))["id"])
    response = api.http.post(f"/v1/batches/{batch['id']}/cancel")
    assert assert_error_shape(response, 400)["code"] == "invalid_batch_status"


# -- listing -----------------------------------------------------------------------------


def test_list_pages_newest_first(api: Api) -> None:
    file_id = api.upload(chat_rows(2))["id"]
    ids = [api.create(file_id)["id"] for _ in range(3)]
    page = api.http.get("/v1/batches", params={"limit": 2}).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [b["id"] for b in page["data"]] == ids[::-1][:2]
    assert page["first_id"] == ids[2] and page["last_id"] == ids[1]
    rest = api.http.get("/v1/batches", params={"limit": 2, "after": page["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert_error_shape(api.http.get("/v1/batches", params={"limit": 0}), 400)


# -- keys and request errors -------------------------------------------------------------


def test_keys_that_fail_on_purpose(server: SandboxServer) -> None:
    anonymous = httpx.get(f"{server.base_url}/v1/batches")
    assert assert_error_shape(anonymous, 401)["code"] == "missing_api_key"
    bad = Api(server.base_url, key="sk-bad-123")
    assert assert_error_shape(bad.http.get("/v1/batches"), 401)["code"] == "invalid_api_key"

    broke = Api(server.base_url, key="sk-broke-1")
    upload = broke.http.post("/v1/files", files={"file": ("a.jsonl", chat_rows(1))})
    assert assert_error_shape(upload, 402)["code"] == "insufficient_credits"
    file_id = Api(server.base_url).upload(chat_rows(1))["id"]
    create = broke.http.post(
        "/v1/batches",
        json={"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"},
    )
    assert_error_shape(create, 402)
    assert broke.http.get("/v1/batches").status_code == 200  # reading costs nothing


def test_unknown_ids_are_404(api: Api) -> None:
    assert_error_shape(api.http.get("/v1/batches/fr_batch-nope"), 404)
    assert_error_shape(api.http.get("/v1/files/file-nope/content"), 404)
    assert_error_shape(api.http.post("/v1/batches/fr_batch-nope/cancel"), 404)
    create = api.http.post(
        "/v1/batches",
        json={"input_file_id": "file-nope", "endpoint": CHAT, "completion_window": "24h"},
    )
    assert assert_error_shape(create, 404)["code"] == "file_not_found"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"endpoint": "/v1/responses"}, "invalid_endpoint"),
        ({"completion_window": "48h"}, "invalid_completion_window"),
        ({"input_file_id": None}, "missing_required_parameter"),
        ({"metadata": {"k": 5}}, "invalid_metadata"),
    ],
)
def test_bad_create_parameters_are_400(api: Api, change: dict[str, Any], code: str) -> None:
    payload = {
        "input_file_id": api.upload(chat_rows(1))["id"],
        "endpoint": CHAT,
        "completion_window": "24h",
        **change,
    }
    assert assert_error_shape(api.http.post("/v1/batches", json=payload), 400)["code"] == code


def test_upload_over_the_limit_is_413(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(max_upload_bytes=1000)
    api = Api(server.base_url)
    response = api.http.post("/v1/files", files={"file": ("big.jsonl", chat_rows(40))})
    assert assert_error_shape(response, 413)["code"] == "file_too_large"
    assert list((server.state_dir / "files").iterdir()) == []  # nothing half-written kept
    assert api.upload(chat_rows(2))["num_rows"] == 2


def test_big_upload_is_streamed_to_disk(api: Api, server: SandboxServer) -> None:
    content = chat_rows(20_000)  # a few MB, larger than any single read buffer
    info = api.upload(content)
    assert info["bytes"] == len(content) and info["num_rows"] == 20_000
    assert (server.state_dir / "files" / info["id"]).read_bytes() == content


# -- HTTP-layer faults -------------------------------------------------------------------


def test_429_with_retry_after_for_a_count(api: Api, server: SandboxServer) -> None:
    admin = httpx.post(
        f"{server.base_url}/_sandbox/faults",
        json={"status": 429, "retry_after": 1, "count": 2, "methods": ["GET"]},
    )
    assert admin.status_code == 200 and admin.json()["faults"]["count"] == 2
    for _ in range(2):
        response = api.http.get("/v1/batches")
        assert_error_shape(response, 429)
        assert response.headers["retry-after"] == "1"
    assert api.http.get("/v1/batches").status_code == 200
    shown = httpx.get(f"{server.base_url}/_sandbox/faults").json()["faults"]
    assert shown["status"] == 429 and shown["count"] == 0


def test_500_only_on_matching_method_and_path(api: Api, server: SandboxServer) -> None:
    server.set_faults({"status": 500, "methods": ["GET"], "path_prefix": "/v1/batches"})
    batch_id = api.submit(chat_rows(1))["id"]  # POSTs go through
    assert_error_shape(api.http.get(f"/v1/batches/{batch_id}"), 500)
    assert api.http.get(f"/v1/files/{api.upload(chat_rows(1))['id']}").status_code == 200
    assert httpx.post(f"{server.base_url}/_sandbox/faults", json={}).json() == {"faults": None}
    assert api.http.get(f"/v1/batches/{batch_id}").status_code == 200


def test_latency_slows_requests(api: Api, server: SandboxServer) -> None:
    server.set_faults({"latency": 0.3, "count": 1})
    started = time.monotonic()
    assert api.http.get("/v1/batches").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    api.http.get("/v1/batches")
    assert time.monotonic() - started < 0.3


def test_non_json_body(api: Api, server: SandboxServer) -> None:
    server.set_faults({"non_json": True, "count": 1})
    response = api.http.get("/v1/batches")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_rate_uses_a_seeded_rng(api: Api, server: SandboxServer) -> None:
    def statuses() -> list[int]:
        server.set_faults({"status": 503, "rate": 0.5, "seed": 7})
        return [api.http.get("/v1/batches").status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert 503 in first and 200 in first


def test_bad_fault_settings_are_rejected(server: SandboxServer) -> None:
    response = httpx.post(f"{server.base_url}/_sandbox/faults", json={"stauts": 500})
    assert_error_shape(response, 400)


def test_dropped_download_resumes_with_range(api: Api, server: SandboxServer) -> None:
    batch = api.wait(api.submit(chat_rows(30))["id"])
    url = f"/v1/files/{batch['output_file_id']}/content"
    full = api.http.get(url).content
    server.set_faults({"drop_download_after": 1000, "count": 1})
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), api.http.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received.extend(chunk)
    assert len(received) == 1000
    resumed = api.http.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert resumed.status_code == 206
    assert resumed.headers["content-range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
    assert int(resumed.headers["content-length"]) == len(full) - 1000
    assert bytes(received) + resumed.content == full


def test_range_past_the_end_is_416(api: Api) -> None:
    file_id = api.upload(chat_rows(2))["id"]
    size = len(chat_rows(2))
    response = api.http.get(f"/v1/files/{file_id}/content", headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


# -- persistence -------------------------------------------------------------------------


def test_state_survives_a_restart(
    make_server: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    first = make_server(state_dir=tmp_path / "persist", tick=0.02)
    api = Api(first.base_url)
    done = api.wait(api.submit(chat_rows(5))["id"])
    running = api.submit(chat_rows(5))["id"]
    content = api.http.get(f"/v1/files/{done['output_file_id']}/content").content
    first.stop()

    second = make_server(state_dir=tmp_path / "persist", tick=0.02)
    api = Api(second.base_url)
    again = api.get(done["id"])
    assert again["status"] == "completed" and again["usage"] == done["usage"]
    assert api.http.get(f"/v1/files/{done['output_file_id']}/content").content == content
    assert api.wait(running)["status"] == "completed"
    listed = {b["id"] for b in api.http.get("/v1/batches").json()["data"]}
    assert {done["id"], running} <= listed


def test_two_sandboxes_on_one_state_dir_see_each_others_batches(
    make_server: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    # The TUI's sandbox and a `fr-tui --sandbox submit` in another terminal share a dir.
    tui = Api(make_server(state_dir=tmp_path / "shared").base_url)
    cli = Api(make_server(state_dir=tmp_path / "shared").base_url)
    from_tui = tui.submit(chat_rows(3))["id"]
    from_cli = cli.submit(chat_rows(4))["id"]
    assert tui.wait(from_cli)["request_counts"]["total"] == 4
    assert cli.wait(from_tui)["request_counts"]["total"] == 3
    for api in (tui, cli):
        listed = {b["id"] for b in api.http.get("/v1/batches").json()["data"]}
        assert {from_tui, from_cli} <= listed


def test_default_state_dir_is_under_fr_tui_home(fr_home: Path) -> None:
    with SandboxServer(tick=0.01) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        Api(server.base_url).upload(chat_rows(1))
    assert (fr_home / "data" / "sandbox" / "state.json").exists()
