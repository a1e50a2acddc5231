"""The operations the CLI and the TUI share: submit, poll, fetch results.

Each takes an open BatchClient and the HistoryStore, so the two front ends behave the
same and the reliability rules live in one place: every create goes through a durable
intent (core.intents), a lost create is reconciled with the server (core.reconcile), a
second submit of the same content is refused unless asked for, and a result file is only
used once it is checked complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fr_tui.core.api import BatchClient, Progress
from fr_tui.core.costlog import estimate_rows
from fr_tui.core.downloads import jsonl_tail_complete
from fr_tui.core.errors import ApiError, OutcomeUnknownError
from fr_tui.core.intents import (
    ABANDONED,
    CREATING,
    IN_FLIGHT,
    REFUSED,
    SUBMIT_KEY,
    UNKNOWN,
    UPLOADED,
    Intent,
    IntentLog,
    new_token,
)
from fr_tui.core.models import Batch
from fr_tui.core.paths import ERROR_NAME, OUTPUT_NAME
from fr_tui.core.reconcile import ReconcileOutcome, reconcile
from fr_tui.core.store import BatchRecord, HistoryStore, HistoryWriteError, StoreError
from fr_tui.core.userfiles import FileSignature, check_regular, open_regular

if TYPE_CHECKING:
    from fr_tui.core.estimate import Estimate

log = logging.getLogger("fr_tui.workflow")

# Where a batch's downloads go inside its results folder (paths.results_for).

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"

# OpenAI's (and FastRouter's) metadata limits.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
# Statuses after which the same content may be submitted again without asking.
RESUBMITTABLE = frozenset({"failed", "expired", "cancelled"})


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    return signed_sha256(path, chunk)[0]


def signed_sha256(path: Path, chunk: int = 1 << 20) -> tuple[str, FileSignature]:
    """The content's sha256, and the file's signature taken before it was read: while the
    file keeps that signature, its content is known without reading it again (a change
    during the read leaves another signature, so nothing can vouch for a stale hash)."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        signature = FileSignature.of_stat(os.fstat(handle.fileno()))
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest(), signature


def sniff_endpoint(path: Path) -> str | None:
    """The `url` of the first request line: what `create` needs as its endpoint."""
    import msgspec

    with open_regular(path) as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                data = msgspec.json.decode(raw.lstrip(b"\xef\xbb\xbf"))
            except (msgspec.DecodeError, RecursionError):
                return None
            url = data.get("url") if isinstance(data, dict) else None
            return url if isinstance(url, str) else None
    return None


@dataclass
class SubmitPhase:
    """Where a submit is, for progress displays."""

    phase: str  # "hashing" | "checking" | "uploading" | "creating" | "done"
    done: int = 0
    total: int | None = None


@dataclass(frozen=True)
class JobSlot:
    """Which part and round of a job a batch is (kept on its intent)."""

    job_id: str
    part: int
    round: int


class MetadataError(ValueError):
    """User metadata that the server would refuse: said before anything is uploaded."""


def check_metadata(metadata: dict[str, str], reserved: int) -> None:
    """OpenAI allows 16 pairs, keys up to 64 characters, values up to 512; fr-tui uses
    `reserved` of the pairs itself (its submit token, a retry's parent id)."""
    room = MAX_METADATA_PAIRS - reserved
    if SUBMIT_KEY in metadata:
        raise MetadataError(f"metadata key {SUBMIT_KEY!r} is fr-tui's own; use another key")
    if len(metadata) > room:
        raise MetadataError(
            f"metadata has {len(metadata)} pairs; at most {room} fit (the server keeps "
            f"{MAX_METADATA_PAIRS} and fr-tui uses {reserved} to find the batch again)"
        )
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise MetadataError(
                f"metadata key {key[:20]!r}… is {len(key)} characters; at most "
                f"{MAX_METADATA_KEY} fit"
                if key
                else "metadata keys must not be empty"
            )
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
            raise MetadataError(
                f"metadata value of {key!r} is {len(str(value))} characters; at most "
                f"{MAX_METADATA_VALUE} fit"
            )


@dataclass
class Duplicate:
    """An earlier submit of the same content: a batch in history, or a create whose
    outcome is unknown (or that another process is making right now)."""

    batch: BatchRecord | None = None
    intent: Intent | None = None

    def describe(self) -> str:
        if self.batch is not None:
            b = self.batch
            named = f" ({b.name})" if b.name else ""
            return f"batch {b.id}{named}, {b.status.replace('_', ' ')}"
        assert self.intent is not None
        i = self.intent
        if i.state in IN_FLIGHT:
            return f"a submit of the same file that is running now ({i.label})"
        file = f", input file {i.input_file_id}" if i.input_file_id else ""
        return f"an interrupted submit whose outcome is unknown ({i.label}{file})"


class DuplicateSubmitError(Exception):
    """The same content was submitted before and may still run: nothing was uploaded."""

    def __init__(self, path: Path, duplicates: list[Duplicate], sha256: str) -> None:
        self.path = path
        self.duplicates = duplicates
        self.sha256 = sha256
        first = duplicates[0].describe()
        more = f" (and {len(duplicates) - 1} more)" if len(duplicates) > 1 else ""
        super().__init__(
            f"{path.name} was already submitted: {first}{more}. Submitting it again makes a "
            "second batch, paid for twice"
        )


class UnrecordedBatchError(Exception):
    """The batch was created but history could not record it: its id is in `batch`."""

    def __init__(self, batch: Batch, cause: StoreError) -> None:
        self.batch = batch
        super().__init__(
            f"batch {batch.id} was created, but the history could not record it ({cause}). "
            f"Write this id down: {batch.id}"
        )


class FileChangedError(Exception):
    """The file is not what was checked (its size or modification time moved since the
    signature given to submit_file was taken): nothing was uploaded."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path.name} changed since it was checked; nothing was uploaded. "
            "Validate it again, then submit"
        )
        self.path = path


def find_duplicates(
    store: HistoryStore,
    intents: IntentLog,
    origin: str,
    sha256: str,
    path: Path,
    *,
    conn: sqlite3.Connection | None = None,
) -> list[Duplicate]:
    """Earlier submits of this content to this server that may still run (read on
    `conn`: inside the transaction that writes the new intent)."""
    found: list[Duplicate] = []
    resolved = str(path.resolve())
    for intent in intents.in_states(IN_FLIGHT | {UNKNOWN}, origin, conn=conn):
        same = intent.input_sha256 == sha256 or (
            intent.input_sha256 is None and intent.input_path == resolved
        )
        if same:
            found.append(Duplicate(intent=intent))
    for record in store.with_content(origin, sha256, conn=conn):
        if record.status not in RESUBMITTABLE:
            found.append(Duplicate(batch=record))
    return found


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
    allow_duplicate: bool = False,
    sha256: str | None = None,
    job: JobSlot | None = None,
    reconcile_first: bool = True,
    on_reconciled: Callable[[ReconcileOutcome], None] | None = None,
    intents: IntentLog | None = None,
    estimate: Estimate | None = None,
    expect: FileSignature | None = None,
) -> BatchRecord:
    """Create one batch from `path`, never losing its id and never making it twice.

    In order: check the metadata fits; hash; refuse a file that is no longer what was
    checked (`expect`, core/prepare.py's signature: FileChangedError); reconcile this
    server's interrupted submits (`on_reconciled` hears each outcome); in one transaction,
    refuse a duplicate (DuplicateSubmitError, unless `allow_duplicate`) and write the
    intent with its `estimate`, which also proves the history is writable
    (HistoryWriteError before anything is uploaded); upload; `uploaded`; `creating`,
    committed before the request is sent; create; the batch record, its estimate and
    `done` in one transaction. If that last write fails, UnrecordedBatchError carries the
    batch.
    """
    path = Path(path)
    size = check_regular(path)
    endpoint = endpoint or sniff_endpoint(path) or CHAT
    user_metadata = dict(metadata or {})
    if parent_batch_id:
        user_metadata.setdefault("parent_batch_id", parent_batch_id)
    check_metadata(user_metadata, reserved=1)  # the token
    intents = intents or IntentLog(store)
    token = new_token()
    batch_metadata = {**user_metadata, SUBMIT_KEY: token}

    def report(phase: str, done: int = 0, total: int | None = None) -> None:
        if on_phase:
            on_phase(SubmitPhase(phase, done, total))

    report("hashing", 0, size)
    # A thread: hashing 200 MB on the event loop would freeze the TUI for a moment.
    sha = sha256 if sha256 else await asyncio.to_thread(file_sha256, path)
    if expect is not None and FileSignature.of(path) != expect:
        raise FileChangedError(path)
    report("checking")
    if reconcile_first:
        for outcome in await reconcile(client, store, intents=intents):
            if on_reconciled:
                on_reconciled(outcome)

    def no_duplicate(conn: sqlite3.Connection) -> None:
        if allow_duplicate:
            return
        duplicates = find_duplicates(store, intents, client.origin, sha, path, conn=conn)
        if duplicates:
            raise DuplicateSubmitError(path, duplicates, sha)

    intent = Intent(
        token=token,
        origin=client.origin,
        profile=profile,
        input_path=str(path.resolve()),
        input_sha256=sha,
        input_bytes=size,
        rows=rows,
        endpoint=endpoint,
        metadata=batch_metadata,
        name=name,
        parent_batch_id=parent_batch_id,
        job_id=job.job_id if job else None,
        job_part=job.part if job else None,
        job_round=job.round if job else None,
        estimate=estimate_rows(estimate) if estimate is not None else None,
    )
    lock = intents.lock_for(token)
    try:
        lock.acquire()
        intents.add(intent, check=no_duplicate)
    except DuplicateSubmitError:
        lock.release(remove=True)
        raise
    except (StoreError, OSError) as exc:
        lock.release(remove=True)
        raise HistoryWriteError(
            f"{exc}. Nothing was uploaded: fr-tui records every submit before it starts"
        ) from None
    finished = False
    try:
        try:
            upload_progress: Progress = lambda done, total: report("uploading", done, total)  # noqa: E731
            uploaded = await client.upload_file(path, progress=upload_progress)
        except BaseException as exc:
            _settle(intents, token, ABANDONED, f"the upload did not finish ({_why(exc)})")
            finished = True
            raise
        intent.input_file_id = uploaded.id
        if intent.rows is None:
            intent.rows = uploaded.num_rows
        try:
            intents.set_state(token, UPLOADED, input_file_id=uploaded.id, rows=intent.rows)
            # Committed before the request leaves: from here on a batch may exist.
            intents.set_state(token, CREATING)
        except StoreError as exc:
            raise HistoryWriteError(f"{exc}. The file was uploaded; no batch was created") from None
        report("creating")
        try:
            batch = await client.create_batch(
                uploaded.id, endpoint, completion_window, batch_metadata
            )
        except BaseException as exc:
            # A clear refusal made nothing; anything else (a lost answer, the app stopping
            # mid-call) may have made the batch: 'unknown', reconciled by listing.
            refused = isinstance(exc, ApiError) and not isinstance(exc, OutcomeUnknownError)
            message = (
                exc.message
                if isinstance(exc, ApiError)
                else f"fr-tui stopped ({type(exc).__name__}) while the create call for "
                f"{uploaded.id} was in flight; the batch may exist."
            )
            _settle(intents, token, REFUSED if refused else UNKNOWN, message)
            finished = refused
            raise
        try:
            record = intents.complete(intent, batch, base_url=client.base_url)
        except StoreError as exc:
            log.error(
                "batch %s was created for %s but could not be recorded: %s", batch.id, path, exc
            )
            raise UnrecordedBatchError(batch, exc) from None
        finished = True
    finally:
        lock.release(remove=finished)
    report("done")
    return record


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else type(exc).__name__


def _settle(intents: IntentLog, token: str, state: str, message: str) -> None:
    """Record how a submit ended; if even that fails, the intent stays where it was and
    the next reconcile finishes it (its lock is free once this process lets go)."""
    try:
        intents.set_state(token, state, message=message)
    except StoreError as exc:
        log.error("could not record intent %s as %s: %s", token, state, exc)


async def poll_batch(
    client: BatchClient, store: HistoryStore, batch_id: str, *, origin: str | None = None
) -> tuple[Batch, str | None]:
    """Fetch one batch and store it (under `origin`, by default the client's: a record
    from before origins were kept has ""); returns (batch, previous status)."""
    batch = await client.get_batch(batch_id)
    # In a thread: sqlite releases the GIL while it writes, so a round of polls (up to
    # the poller's concurrency at once) overlaps its history writes with its requests.
    old, _ = await asyncio.to_thread(
        store.update_from_api, batch, origin=client.origin if origin is None else origin
    )
    return batch, old


# ----------------------------------------------------------------- results files

_DOWNLOAD_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}


def _download_lock(dest: Path) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), str(dest.resolve()))
    return _DOWNLOAD_LOCKS.setdefault(key, asyncio.Lock())


def checked_complete(path: Path, verified_bytes: int | None) -> bool:
    """Offline check of a downloaded result file: the size fr-tui verified when it
    downloaded it, or (a download by an older fr-tui) a whole last line."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if verified_bytes is not None and size == verified_bytes:
        return True
    try:
        return jsonl_tail_complete(path)
    except OSError:
        return False


async def fetch_results(
    client: BatchClient,
    store: HistoryStore,
    record: BatchRecord,
    dest_dir: Path,
    progress: Progress | None = None,
    on_note: Callable[[str], None] | None = None,
) -> tuple[Path | None, Path | None]:
    """Download the output and error files (skipping complete ones already here) and
    record their local paths and checked sizes.

    A file already here counts as complete only if this fr-tui checked it (its size is
    recorded) or, for one downloaded before checks existed, if its last line is whole
    and its size is the server's: otherwise it is downloaded again (`on_note` says so)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = []
    sizes: list[int | None] = []
    for file_id, filename, verified in (
        (record.output_file_id, OUTPUT_NAME, record.output_verified_bytes),
        (record.error_file_id, ERROR_NAME, record.error_verified_bytes),
    ):
        if not file_id:
            paths.append(None)
            sizes.append(None)
            continue
        dest = dest_dir / filename
        # The poller's auto-download, `o` and the results screen may all ask at once:
        # one downloads, the others wait and then find the file there.
        async with _download_lock(dest):
            if dest.exists() and not await _complete_here(client, file_id, dest, verified):
                note = (
                    f"{dest} was incomplete (an interrupted or unchecked download): "
                    "downloading it again"
                )
                log.warning(note)
                if on_note:
                    on_note(note)
                await client.download_file(file_id, dest, progress, jsonl=True)
            elif not dest.exists():
                await client.download_file(file_id, dest, progress, jsonl=True)
        paths.append(dest)
        sizes.append(dest.stat().st_size)
    output_path, error_path = paths
    store.set_result_paths(
        record.origin,
        record.id,
        str(output_path) if output_path else None,
        str(error_path) if error_path else None,
        output_verified_bytes=sizes[0],
        error_verified_bytes=sizes[1],
    )
    return output_path, error_path


async def _complete_here(
    client: BatchClient, file_id: str, dest: Path, verified: int | None
) -> bool:
    size = dest.stat().st_size
    if verified is not None and size == verified:
        return True
    if not jsonl_tail_complete(dest):
        return False
    declared = await client.declared_size(file_id)
    return declared is None or declared == size


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
