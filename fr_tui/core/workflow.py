"""The operations the CLI and the TUI share: submit, poll, fetch results.

Each takes an open BatchClient and the HistoryStore, so the two front ends behave the
same and the reliability rules (record the id at once, never lose a lost create) live
in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fr_tui.core.api import BatchClient, Progress
from fr_tui.core.config import Profile
from fr_tui.core.errors import ApiError, OutcomeUnknownError
from fr_tui.core.models import Batch
from fr_tui.core.store import BatchRecord, HistoryStore

log = logging.getLogger("fr_tui.workflow")

# Where a batch's downloads go inside its results folder (paths.results_for).
OUTPUT_NAME = "output.jsonl"
ERROR_NAME = "errors.jsonl"

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def client_for(profile: Profile, base_url: str, *, read_timeout: float = 30.0) -> BatchClient:
    """base_url: the profile's, or the sandbox's actual address when the profile is the sandbox."""
    return BatchClient(base_url, profile.resolve_key() or "", read_timeout=read_timeout)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sniff_endpoint(path: Path) -> str | None:
    """The `url` of the first request line: what `create` needs as its endpoint."""
    import orjson

    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                data = orjson.loads(raw.lstrip(b"\xef\xbb\xbf"))
            except orjson.JSONDecodeError:
                return None
            url = data.get("url") if isinstance(data, dict) else None
            return url if isinstance(url, str) else None
    return None


@dataclass
class SubmitPhase:
    """Where a submit is, for progress displays."""

    phase: str  # "hashing" | "uploading" | "creating" | "done"
    done: int = 0
    total: int | None = None


async def submit_file(
    client: BatchClient,
    store: HistoryStore,
    path: str | Path,
    *,
    profile: str,
    endpoint: str | None = None,
    metadata: dict[str, str] | None = None,
    name: str | None = None,
    parent_batch_id: str | None = None,
    rows: int | None = None,
    completion_window: str = "24h",
    on_phase: Callable[[SubmitPhase], None] | None = None,
) -> BatchRecord:
    """Upload, create, and record the batch the moment its id returns.

    A lost create answer is recorded as an 'outcome unknown' entry before the
    OutcomeUnknownError is re-raised, so the user can reconcile it later.
    """
    path = Path(path)
    size = path.stat().st_size
    endpoint = endpoint or sniff_endpoint(path) or CHAT
    metadata = dict(metadata or {})
    if parent_batch_id:
        metadata.setdefault("parent_batch_id", parent_batch_id)

    def report(phase: str, done: int = 0, total: int | None = None) -> None:
        if on_phase:
            on_phase(SubmitPhase(phase, done, total))

    report("hashing", 0, size)
    # A thread: hashing 200 MB on the event loop would freeze the TUI for a moment.
    sha = await asyncio.to_thread(file_sha256, path)
    upload_progress: Progress = lambda done, total: report("uploading", done, total)  # noqa: E731
    uploaded = await client.upload_file(path, progress=upload_progress)
    report("creating")
    try:
        batch = await client.create_batch(
            uploaded.id, endpoint, completion_window, metadata or None
        )
    except BaseException as exc:
        # Anything but a clear refusal may have created the batch: a lost answer, or the
        # app quitting (a dropped SSH session, ctrl+c) while the call was in flight.
        # Keep a record to reconcile, so the user is never led to submit it twice.
        if isinstance(exc, ApiError) and not isinstance(exc, OutcomeUnknownError):
            raise  # the server answered no (4xx, 429 after retries) or was unreachable
        message = (
            exc.message
            if isinstance(exc, OutcomeUnknownError)
            else f"fr-tui stopped ({type(exc).__name__}) while the create call for "
            f"{uploaded.id} was in flight; the batch may exist."
        )
        store.record_unknown_create(
            input_file_id=uploaded.id,
            profile=profile,
            base_url=client.base_url,
            input_path=str(path.resolve()),
            endpoint=endpoint,
            metadata=metadata or None,
            message=message,
        )
        raise
    record = store.record_created(
        batch,
        profile=profile,
        base_url=client.base_url,
        input_path=str(path.resolve()),
        input_sha256=sha,
        input_rows=rows if rows is not None else uploaded.num_rows,
        input_bytes=size,
        name=name,
        parent_batch_id=parent_batch_id,
    )
    report("done")
    return record


async def poll_batch(
    client: BatchClient, store: HistoryStore, batch_id: str
) -> tuple[Batch, str | None]:
    """Fetch one batch and store it; returns (batch, previous status)."""
    batch = await client.get_batch(batch_id)
    old, _ = store.update_from_api(batch)
    return batch, old


async def find_unknown_create(
    client: BatchClient, input_file_id: str, since: float | None = None, max_pages: int = 20
) -> Batch | None:
    """Look a lost create up by its input file id through the (optional) list call,
    newest first, page after page until batches older than `since` (when the create was
    sent, less a margin for clocks), or `max_pages` pages of 100."""
    after: str | None = None
    for _ in range(max_pages):
        page = await client.list_batches(limit=100, after=after)
        for batch in page:
            if batch.input_file_id == input_file_id:
                return batch
        if not page:
            return None
        oldest = page[-1].created_at
        if since is not None and oldest is not None and oldest < since - 3600:
            return None
        after = page[-1].id
    return None


_DOWNLOAD_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}


def _download_lock(dest: Path) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), str(dest.resolve()))
    return _DOWNLOAD_LOCKS.setdefault(key, asyncio.Lock())


async def fetch_results(
    client: BatchClient,
    store: HistoryStore,
    record: BatchRecord,
    dest_dir: Path,
    progress: Progress | None = None,
) -> tuple[Path | None, Path | None]:
    """Download the output and error files (skipping complete ones already here) and
    record their local paths."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = []
    for file_id, filename in (
        (record.output_file_id, OUTPUT_NAME),
        (record.error_file_id, ERROR_NAME),
    ):
        if not file_id:
            paths.append(None)
            continue
        dest = dest_dir / filename
        # The poller's auto-download, `o` and the results screen may all ask at once:
        # one downloads, the others wait and then find the file there.
        async with _download_lock(dest):
            if not dest.exists():
                await client.download_file(file_id, dest, progress)
        paths.append(dest)
    output_path, error_path = paths
    store.set_result_paths(
        record.id,
        str(output_path) if output_path else None,
        str(error_path) if error_path else None,
    )
    return output_path, error_path


def run_notify_command(command: str | None, batch_id: str, status: str, detail: str) -> None:
    """The user's optional hook (config `notify_command`): run detached, never awaited,
    given the batch id and status as arguments and in the environment."""
    if not command:
        return
    import shlex
    import subprocess

    env: dict[str, Any] = {
        **os.environ,
        "FR_TUI_BATCH_ID": batch_id,
        "FR_TUI_BATCH_STATUS": status,
        "FR_TUI_BATCH_DETAIL": detail,
    }
    try:
        argv = [*shlex.split(command), batch_id, status]
        subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:  # not found, or a quote left open in the config
        log.warning("notify_command failed: %s", exc)
