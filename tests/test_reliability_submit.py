"""Issue 9, cases 2-4: a submit never loses the batch id when history cannot take it,
never repeats an earlier submit unasked, and two servers' equal ids stay two records."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import httpx
from fault_helpers import (
    KEY,
    SAMPLES,
    TinyBatchServer,
    no_traceback,
    permissions_apply,
    run,
    spawn,
    wait_until,
)


def server_batch_ids(sandbox: Any) -> list[str]:
    answer = httpx.get(f"{sandbox.base_url}/v1/batches", headers={"Authorization": f"Bearer {KEY}"})
    return [b["id"] for b in answer.json()["data"]]


def copy_sample(tmp_path: Path, name: str = "chat.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes((SAMPLES / name).read_bytes())
    return path


# ----------------------------------------------------------------- case 2


def test_a_full_disk_after_the_create_still_gives_the_batch_id(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    """The disk fills (every write to a file fails) between the create and its record."""
    path = copy_sample(tmp_path)
    sandbox.set_faults({"create_delay": 60})
    proc = spawn("--base-url", sandbox.base_url, "submit", str(path), "--json", home=fr_home)
    try:
        wait_until(lambda: sandbox.app.injector.held_creates == 1, what="the held answer")
        # No file of this process may grow from now on: a full disk, for it alone.
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        sandbox.set_faults({})
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    made = server_batch_ids(sandbox)
    assert len(made) == 1
    assert proc.returncode == 2, err
    assert json.loads(out)["batch_id"] == made[0]  # on stdout, for scripts
    assert made[0] in err and "record" in err.lower()
    assert "Traceback" not in err and "Logging error" not in err
    # Once there is room again, the next command records it, once.
    listed = run("--base-url", sandbox.base_url, "list", "--json", home=fr_home)
    assert [b["id"] for b in json.loads(listed.stdout)["batches"]] == made


def test_history_that_cannot_be_written_stops_the_submit_before_the_upload(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    wrap = permissions_apply()
    path = copy_sample(tmp_path)
    first = run("--base-url", sandbox.base_url, "list", home=fr_home)
    assert first.returncode == 0, first.stderr
    (fr_home / "config" / "history.db").chmod(0o444)  # there, readable, not writable
    done = run("--base-url", sandbox.base_url, "submit", str(path), home=fr_home, wrap=wrap)
    assert done.returncode == 2, done.stderr
    assert "history" in done.stderr and "Nothing was uploaded" in done.stderr
    no_traceback(done)
    assert sandbox.app.store.files == {}  # nothing reached the server
    assert server_batch_ids(sandbox) == []


# ----------------------------------------------------------------- case 3


def test_a_second_submit_of_the_same_content_is_refused_unless_forced(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = copy_sample(tmp_path)
    first = run("--base-url", sandbox.base_url, "submit", str(path), "--json", home=fr_home)
    assert first.returncode == 0, first.stderr
    batch_id = json.loads(first.stdout)["batch_id"]
    renamed = tmp_path / "same-content.jsonl"  # another name, the same bytes
    renamed.write_bytes(path.read_bytes())
    again = run("--base-url", sandbox.base_url, "submit", str(renamed), home=fr_home)
    assert again.returncode == 1 and batch_id in again.stderr and "--force" in again.stderr
    no_traceback(again)
    assert server_batch_ids(sandbox) == [batch_id]
    forced = run("--base-url", sandbox.base_url, "submit", str(renamed), "--force", home=fr_home)
    assert forced.returncode == 0, forced.stderr
    assert len(server_batch_ids(sandbox)) == 2


def test_an_outcome_unknown_submit_blocks_a_second_one(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = copy_sample(tmp_path)
    sandbox.set_faults({"non_json": True, "methods": ["POST"], "path_prefix": "/v1/batches"})
    lost = run("--base-url", sandbox.base_url, "submit", str(path), home=fr_home)
    assert lost.returncode == 3 and "outcome unknown" in lost.stderr
    sandbox.set_faults({})
    # The fault answered for the server: no batch was made, but fr-tui cannot know that
    # (its answer was unreadable), and a server's list may lag: the create stays unknown.
    assert server_batch_ids(sandbox) == []
    again = run("--base-url", sandbox.base_url, "submit", str(path), home=fr_home)
    assert again.returncode == 1, again.stderr
    assert "an interrupted submit whose outcome is unknown (chat.jsonl" in again.stderr
    assert "--force" in again.stderr
    assert server_batch_ids(sandbox) == []


def test_two_submits_of_one_file_started_together_make_one_batch(
    sandbox: Any, tmp_path: Path, fr_home: Path, monkeypatch: Any
) -> None:
    """Two terminals (or a job and a terminal) submit the same file at the same moment:
    each with its own history connection and client, as two processes are. Both have
    checked for an earlier submit before either writes its intent; one must still be
    refused, since the check and the intent are one transaction."""
    import asyncio
    import threading
    from contextlib import contextmanager

    from fr_tui.core import workflow
    from fr_tui.core.api import BatchClient
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore

    path = copy_sample(tmp_path)
    entered: set[int] = set()  # threads past their duplicate check
    knocking: set[int] = set()  # threads that asked for a write transaction
    real_find, real_transaction = workflow.find_duplicates, HistoryStore.transaction

    def find_duplicates(*args: Any, **kwargs: Any) -> Any:
        found = real_find(*args, **kwargs)
        me = threading.get_ident()
        entered.add(me)
        # Wait for the other submit to have checked too, or to be waiting for the write
        # lock this check holds (then it can only check after this one's intent).
        wait_until(lambda: len(entered) == 2 or knocking - {me}, what="the other submit")
        return found

    @contextmanager
    def transaction(self: HistoryStore, **kwargs: Any) -> Any:
        knocking.add(threading.get_ident())
        with real_transaction(self, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(workflow, "find_duplicates", find_duplicates)
    monkeypatch.setattr(HistoryStore, "transaction", transaction)
    outcomes: list[Any] = []

    def submit() -> None:
        async def go() -> Any:
            store = HistoryStore(get_paths().ensure().history_db)
            async with BatchClient(sandbox.base_url, KEY) as client:
                return await workflow.submit_file(
                    client, store, path, profile="default", reconcile_first=False
                )

        try:
            outcomes.append(asyncio.run(go()))
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(server_batch_ids(sandbox)) == 1, outcomes
    refused = [o for o in outcomes if isinstance(o, workflow.DuplicateSubmitError)]
    # Refused as running now (the other's intent) or, when the other finished its whole
    # submit while this one waited for the write lock, as already submitted.
    assert len(refused) == 1, outcomes
    assert "running now" in str(refused[0]) or "already submitted" in str(refused[0])


def test_a_failed_batch_can_be_submitted_again_without_force(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = copy_sample(tmp_path)
    failed = run(
        *("--base-url", sandbox.base_url, "submit", str(path), "--wait"),
        *("--metadata", "sandbox_fault=fail_validation", "--poll-interval", "0.05"),
        home=fr_home,
    )
    assert failed.returncode == 1  # the batch failed
    again = run("--base-url", sandbox.base_url, "submit", str(path), home=fr_home)
    assert again.returncode == 0, again.stderr


def test_metadata_that_cannot_fit_is_refused_before_the_upload(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = copy_sample(tmp_path)
    pairs = [f"--metadata=k{i}=v" for i in range(16)]  # 16 + fr-tui's own token > 16
    done = run("--base-url", sandbox.base_url, "submit", str(path), *pairs, home=fr_home)
    assert done.returncode == 2 and "at most 15" in done.stderr
    long_value = run(
        "--base-url", sandbox.base_url, "submit", str(path), "--metadata", "k=" + "x" * 513,
        home=fr_home,
    )  # fmt: skip
    assert long_value.returncode == 2 and "512" in long_value.stderr
    assert sandbox.app.store.files == {}


# ----------------------------------------------------------------- case 4


def test_two_servers_with_the_same_batch_id_make_two_records(tmp_path: Path, fr_home: Path) -> None:
    a_file = copy_sample(tmp_path)
    b_file = copy_sample(tmp_path, "embeddings.jsonl")
    with TinyBatchServer("batch_same") as a, TinyBatchServer("batch_same") as b:
        for server, path in ((a, a_file), (b, b_file)):
            done = run("--base-url", server.base_url, "submit", str(path), home=fr_home)
            assert done.returncode == 0, done.stderr
        listed = json.loads(run("list", "--json", home=fr_home).stdout)["batches"]
        assert sorted((r["id"], r["origin"]) for r in listed) == sorted(
            [("batch_same", a.base_url), ("batch_same", b.base_url)]
        )
        assert {r["input_path"] for r in listed} == {str(a_file), str(b_file)}
        # An id alone is ambiguous; the server says which.
        either = run("status", "batch_same", home=fr_home)
        assert either.returncode == 2 and a.base_url in either.stderr
        status = run("--base-url", b.base_url, "status", "batch_same", "--json", home=fr_home)
        assert status.returncode == 0, status.stderr
