"""A result set: the joined results of one run, wherever they come from (a batch in
history, a job's merged result file), opened the same way for compare and its CLI.

`ResultSetRef` is the small value a screen keeps for a marked item: (kind, id, origin).
A `ResultSetSource` turns one into a `JoinedResults`: `ensure(client)` gets the files
(downloading a batch's results when they are missing and a client is given), `open()`
joins them (in a thread: it reads files), `close()` releases what it opened.

Also here, shared with the Results screen's loader (tui/results_loading.py): which of a
batch's result files are on disk, whether they must be downloaded, a stand-in input when
the input file is gone, and the results of retry batches merged over their parent's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from fr_tui.core.errors import ApiError
from fr_tui.core.paths import ERROR_NAME, OUTPUT_NAME, Paths
from fr_tui.core.records import BatchRecord
from fr_tui.core.results import JoinedResults, join_results, merge_child
from fr_tui.core.results_join import ProgressFn
from fr_tui.core.store import HistoryStore

if TYPE_CHECKING:  # the client pulls in httpx: only a download needs it
    from fr_tui.core.api import BatchClient

MAX_RETRY_DEPTH = 8

ResultSetKind = Literal["batch", "job"]
StatusFn = Callable[[str], None]


@dataclass(frozen=True)
class ResultSetRef:
    """What a user marked to compare: a batch or a job, by id, on a server (origin)."""

    kind: ResultSetKind
    id: str
    origin: str = ""


class ResultSetUnavailable(Exception):
    """The results cannot be had now (still running, not downloaded and no connection, no
    result files): the message is one line for the user."""


# -- a batch's files on disk --------------------------------------------------------


def local_result_files(record: BatchRecord, dest: Path) -> tuple[Path | None, Path | None]:
    """The output and error files of `record` already on disk (None where absent)."""
    found: list[Path | None] = []
    for recorded, file_id, name in (
        (record.output_path, record.output_file_id, OUTPUT_NAME),
        (record.error_path, record.error_file_id, ERROR_NAME),
    ):
        candidates = [Path(recorded)] if recorded else []
        if file_id or not recorded:
            candidates.append(dest / name)
        found.append(next((p for p in candidates if p.is_file()), None))
    return found[0], found[1]


def needs_download(record: BatchRecord, output: Path | None, error: Path | None) -> bool:
    """A result file is missing, or here but not checked complete by this fr-tui (one
    downloaded by an older fr-tui is checked, and downloaded again if incomplete)."""
    for file_id, path, verified in (
        (record.output_file_id, output, record.output_verified_bytes),
        (record.error_file_id, error, record.error_verified_bytes),
    ):
        if not file_id:
            continue
        if path is None or verified is None or path.stat().st_size != verified:
            return True
    return False


def ids_only_input(folder: Path, output: Path | None, error: Path | None) -> Path:
    """When the input file is gone: a stand-in input of bare custom_ids, one per result
    line, so the results still show (no row can be missing from it)."""
    folder.mkdir(parents=True, exist_ok=True)
    stand_in = folder / "inputs-from-results.jsonl"
    with stand_in.open("wb") as out:
        for path in (output, error):
            if path is None:
                continue
            with path.open("rb") as source:
                for raw in source:
                    try:
                        cid = msgspec.json.decode(raw).get("custom_id")
                    except (msgspec.DecodeError, RecursionError, AttributeError):
                        continue
                    if isinstance(cid, str | int):
                        out.write(msgspec.json.encode({"custom_id": str(cid)}) + b"\n")
    return stand_in


def checked_files(record: BatchRecord, output: Path | None, error: Path | None) -> bool:
    """Every result file the batch has is here and checked complete (as its own results
    are before they are shown)."""
    from fr_tui.core.workflow import checked_complete

    for file_id, path, verified in (
        (record.output_file_id, output, record.output_verified_bytes),
        (record.error_file_id, error, record.error_verified_bytes),
    ):
        if file_id and (path is None or not checked_complete(path, verified)):
            return False
    return True


def merge_retries(
    store: HistoryStore,
    paths: Paths,
    joined: JoinedResults,
    record: BatchRecord,
    opened: list[JoinedResults],
    merged_ids: list[str],
    depth: int = 0,
    *,
    notes: list[str] | None = None,
) -> JoinedResults:
    """`joined` with the downloaded results of `record`'s retry batches (and theirs, up
    to MAX_RETRY_DEPTH) merged over its failures, as the Results screen shows them.
    Every join opened is appended to `opened` (for closing), every merged id to
    `merged_ids`. A retry whose files or input are not here is left out; one whose
    files are incomplete (an interrupted download) too, said in `notes`."""
    if depth >= MAX_RETRY_DEPTH:
        return joined
    for child in store.children(record.origin, record.id):
        output, error = local_result_files(child, child.results_folder(paths))
        if output is None and error is None:
            continue
        if not checked_files(child, output, error):
            if notes is not None:
                notes.append(
                    f"The results of the retry {child.label} ({child.id}) are incomplete (an "
                    "interrupted download): not merged. Open it to download them again."
                )
            continue
        if not child.input_path or not Path(child.input_path).is_file():
            continue
        try:
            child_joined = join_results(child.input_path, output, error)
        except OSError:
            continue
        opened.append(child_joined)
        child_joined = merge_retries(
            store, paths, child_joined, child, opened, merged_ids, depth + 1, notes=notes
        )
        joined = merge_child(joined, child_joined)
        merged_ids.append(child.id)
    return joined


def input_warning(record: BatchRecord) -> tuple[bool, str | None]:
    """(the input file is gone, what to tell the user about the input file, if anything)."""
    input_path = Path(record.input_path) if record.input_path else None
    if input_path is None or not input_path.is_file():
        return True, (
            f"the input file is gone ({record.input_path or 'unknown'}): the results are "
            "shown alone, and rows that never came back cannot be known"
        )
    # A cheap check, not a hash (that would cost the first paint on a big file): rows are
    # joined by custom_id either way, but an edited file may not match.
    if record.input_bytes is not None and input_path.stat().st_size != record.input_bytes:
        return False, (
            f"{input_path.name} changed since it was submitted: rows are joined by "
            "custom_id, so edited or new rows may not match their results"
        )
    return False, None


# -- sources ---------------------------------------------------------------------


class ResultSetSource(ABC):
    """One side of a comparison. `label` names it for people; `notes` collects what the
    user should be told (an input file that changed, a file downloaded again)."""

    ref: ResultSetRef
    label: str

    def __init__(self) -> None:
        self.notes: list[str] = []
        self._opened: list[JoinedResults] = []

    def needs_network(self) -> bool:
        """Whether `ensure` has to talk to the server (else it works offline)."""
        return False

    async def ensure(
        self, client: BatchClient | None = None, status: StatusFn | None = None
    ) -> None:
        """Make the files ready to open (download what is missing when `client` is given).
        Raises ResultSetUnavailable with a one-line reason."""
        return None

    @abstractmethod
    def open(self, on_progress: ProgressFn | None = None) -> JoinedResults:
        """The joined results (reads files: run it in a thread). Raises OSError when a
        file cannot be read."""

    def _keep(self, joined: JoinedResults) -> JoinedResults:
        self._opened.append(joined)
        return joined

    def close(self) -> None:
        for joined in self._opened:
            joined.close()
        self._opened.clear()


class BatchResultSet(ResultSetSource):
    """A batch from history: its own results, with those of its retry batches merged
    over its failures (the picture its Results screen shows)."""

    def __init__(self, record: BatchRecord, store: HistoryStore, paths: Paths) -> None:
        super().__init__()
        self.record = record
        self.store = store
        self.paths = paths
        self.ref = ResultSetRef("batch", record.id, record.origin)
        self.label = record.label
        self.merged_retries: list[str] = []
        self._files: tuple[Path | None, Path | None] | None = None

    @property
    def _dest(self) -> Path:
        return self.record.results_folder(self.paths)

    def needs_network(self) -> bool:
        record = self.record
        return not record.terminal or needs_download(
            record, *local_result_files(record, self._dest)
        )

    async def ensure(
        self, client: BatchClient | None = None, status: StatusFn | None = None
    ) -> None:
        record = self.record
        name = f"{record.label} ({record.id})" if record.label != record.id else record.id
        if not record.terminal and client is not None:
            from fr_tui.core.workflow import poll_batch

            await poll_batch(client, self.store, record.id, origin=record.origin)
            record = self.record = self.store.get(record.origin, record.id) or record
        if not record.terminal:
            raise ResultSetUnavailable(
                f"{name} is still {record.status.replace('_', ' ')}: compare it once it has ended"
            )
        output, error = local_result_files(record, self._dest)
        if needs_download(record, output, error) and client is not None:
            from fr_tui.core.workflow import fetch_results

            def progress(done: int, total: int | None) -> None:
                if status is not None:
                    share = f"{100 * done // total}%" if total else f"{done:,} bytes"
                    status(f"Downloading the results of {record.label}… {share}")

            if status is not None:
                status(f"Downloading the results of {record.label}…")
            try:
                await fetch_results(
                    client, self.store, record, self._dest, progress, on_note=self.notes.append
                )
            except ApiError as exc:
                # no server: files that look whole are still results (the Results
                # screen shows them too); nothing here at all is the network's fault
                output, error = self._checked(output, error)
                if output is None and error is None:
                    raise
                self.notes.append(f"could not check the results of {name}: {exc.message}")
            else:
                record = self.record = self.store.get(record.origin, record.id) or record
                output, error = local_result_files(record, self._dest)
        elif needs_download(record, output, error):
            output, error = self._checked(output, error)
            if output is None and error is None:
                raise ResultSetUnavailable(
                    f"the results of {name} are not downloaded, and there is no connection "
                    "to its server to fetch them"
                )
        if output is None and error is None:
            why = f"it is {record.status}"
            if record.status == "failed":
                first = record.errors[0] if record.errors else {}
                why = f"it failed: {first.get('message') or first.get('code') or 'no reason given'}"
            raise ResultSetUnavailable(f"{name} has no results to compare ({why})")
        self._files = (output, error)

    def _checked(self, output: Path | None, error: Path | None) -> tuple[Path | None, Path | None]:
        """Offline: only files that look whole are used (the rest is said)."""
        from fr_tui.core.workflow import checked_complete

        kept: list[Path | None] = []
        for path, verified in (
            (output, self.record.output_verified_bytes),
            (error, self.record.error_verified_bytes),
        ):
            if path is not None and not checked_complete(path, verified):
                self.notes.append(
                    f"{path} is incomplete (an interrupted download) and is left out until "
                    "it can be downloaded again"
                )
                path = None
            kept.append(path)
        return kept[0], kept[1]

    def open(self, on_progress: ProgressFn | None = None) -> JoinedResults:
        if self._files is None:
            raise ResultSetUnavailable(f"the results of {self.record.id} are not ready")
        output, error = self._files
        record = self.record
        missing, warning = input_warning(record)
        if warning:
            self.notes.append(f"{record.label}: {warning}")
        input_path: str | Path | None = record.input_path
        if missing:
            input_path = ids_only_input(self._dest, output, error)
        assert input_path is not None
        joined = self._keep(join_results(input_path, output, error, on_progress=on_progress))
        return merge_retries(
            self.store, self.paths, joined, record, self._opened, self.merged_retries
        )


class JobResultSet(ResultSetSource):
    """A job's merged result file (one line per input row: custom_id, outcome, batch_id,
    round, response, error) joined with the job's input file."""

    def __init__(
        self, job_id: str, merged_path: Path, input_path: Path, *, label: str | None = None,
        origin: str = "",
    ) -> None:  # fmt: skip
        super().__init__()
        self.ref = ResultSetRef("job", job_id, origin)
        self.label = label or job_id
        self.merged_path = Path(merged_path)
        self.input_path = Path(input_path)

    async def ensure(
        self, client: BatchClient | None = None, status: StatusFn | None = None
    ) -> None:
        if not self.merged_path.is_file():
            raise ResultSetUnavailable(
                f"job {self.label} has no merged result file yet ({self.merged_path})"
            )
        if not self.input_path.is_file():
            raise ResultSetUnavailable(
                f"the input file of job {self.label} is gone ({self.input_path})"
            )

    def open(self, on_progress: ProgressFn | None = None) -> JoinedResults:
        return self._keep(
            join_results(self.input_path, self.merged_path, None, on_progress=on_progress)
        )


def describe_ref(ref: ResultSetRef, label: str | None = None) -> str:
    """`batch nightly eval (fr_batch-…)` for messages."""
    name = label if label and label != ref.id else None
    return f"{ref.kind} {name} ({ref.id})" if name else f"{ref.kind} {ref.id}"


__all__ = [
    "BatchResultSet",
    "JobResultSet",
    "ResultSetRef",
    "ResultSetSource",
    "ResultSetUnavailable",
    "describe_ref",
    "ids_only_input",
    "input_warning",
    "local_result_files",
    "merge_retries",
    "needs_download",
]
