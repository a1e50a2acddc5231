"""Getting a batch's joined results on screen: the local result files (downloading the
missing ones), the join with the input file, and the results of its retry batches merged
over the parent's failures.

Shared by the Results screen and the retry preview (which the Batches list and Batch
details open too), so both always show the same picture. Plain Python: the callers run
`join` in a thread and pass callbacks that repaint their own status line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.core.errors import ApiError
from fr_tui.core.results import JoinedResults, join_results, merge_child
from fr_tui.core.store import BatchRecord
from fr_tui.core.workflow import ERROR_NAME, OUTPUT_NAME
from fr_tui.tui.costs import costs

_MAX_RETRY_DEPTH = 8


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


@dataclass
class LoadedResults:
    """A join and everything it keeps open; `close()` releases the files."""

    joined: JoinedResults
    inputs_missing: bool
    merged_children: list[str] = field(default_factory=list)
    opened: list[JoinedResults] = field(default_factory=list)
    cost_text: str | None = None  # the batch's own actual cost beside its estimate

    def close(self) -> None:
        for joined in self.opened:
            joined.close()
        self.opened.clear()


def file_warnings(record: BatchRecord) -> tuple[bool, list[tuple[str, str]]]:
    """(input file missing, [(title, message)]) to tell the user before a join."""
    input_path = Path(record.input_path) if record.input_path else None
    if input_path is None or not input_path.is_file():
        return True, [
            (
                "Input file not found",
                f"The input file is gone ({record.input_path or 'unknown'}): showing the "
                "results alone; rows that never came back cannot be known and retry is off.",
            )
        ]
    # A cheap check, not a hash (that would cost the first paint on a big file): rows are
    # joined by custom_id either way, but an edited file may not match.
    if record.input_bytes is not None and input_path.stat().st_size != record.input_bytes:
        return False, [
            (
                "Input file changed",
                f"{input_path.name} changed since it was submitted: rows are joined by "
                "custom_id, so edited or new rows may not match their results.",
            )
        ]
    return False, []


class ResultsLoader:
    """Loads the joined results of one batch for an app (its store, paths and client)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def ensure_files(
        self, record: BatchRecord, status: Callable[[str], None]
    ) -> tuple[Path | None, Path | None, str | None]:
        """(output, error, why a download failed): local files, downloading missing or
        unchecked ones when there is a client for the batch's own server. Without one,
        only files that look whole are used."""
        app = self.app
        dest: Path = app.paths.results_for(record.id)
        output, error = local_result_files(record, dest)
        if not needs_download(record, output, error):
            return output, error, None
        client = self.client_for(record)
        if client is None:
            return (*self._checked(record, output, error), None)
        from fr_tui.core.workflow import fetch_results

        def progress(done: int, total: int | None) -> None:
            share = f" {100 * done // total}%" if total else f" {done:,} bytes"
            status(f"Downloading results…{share}")

        def note(text: str) -> None:
            app.notify(text, title="Downloading again", severity="warning", timeout=8)

        status("Downloading results…")
        failure = None
        try:
            await fetch_results(client, app.store, record, dest, progress, on_note=note)
        except ApiError as exc:
            failure = exc.message
        except OSError as exc:
            failure = str(exc)
        record = app.store.get(record.origin, record.id) or record
        return (*self._checked(record, *local_result_files(record, dest)), failure)

    def client_for(self, record: BatchRecord) -> Any:
        """The client for the batch's own server, or None (no profile or key for it)."""
        from fr_tui.core.clients import NoClientError

        pick = getattr(self.app, "client_for", None)
        if not callable(pick):  # a bare host app (the benchmark): its one client
            return getattr(self.app, "client", None)
        try:
            return pick(record)
        except NoClientError:
            return None

    def _checked(
        self, record: BatchRecord, output: Path | None, error: Path | None
    ) -> tuple[Path | None, Path | None]:
        """An incomplete file (cut short before fr-tui checked downloads) is never shown
        as the results: it is left out, and said."""
        from fr_tui.core.workflow import checked_complete

        kept: list[Path | None] = []
        for path, verified in (
            (output, record.output_verified_bytes),
            (error, record.error_verified_bytes),
        ):
            if path is not None and not checked_complete(path, verified):
                self.app.notify(
                    f"{path} is incomplete (an interrupted download); it is downloaded again "
                    "once the server can be reached.",
                    title="Incomplete results",
                    severity="warning",
                    timeout=10,
                )
                path = None
            kept.append(path)
        return kept[0], kept[1]

    def join(
        self,
        record: BatchRecord,
        output: Path | None,
        error: Path | None,
        inputs_missing: bool,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> LoadedResults:
        """Runs in a thread: the join, then every downloaded retry merged over it."""
        input_path: str | Path | None = record.input_path
        if inputs_missing:
            input_path = ids_only_input(self.app.paths.results_for(record.id), output, error)
        assert input_path is not None
        joined = join_results(input_path, output, error, on_progress=on_progress)
        loaded = LoadedResults(joined, inputs_missing, opened=[joined])
        loaded.cost_text = costs(self.app).result_cost_text(record, joined)
        loaded.joined = self._merge_children(loaded, joined, record.origin, record.id, 0)
        return loaded

    def _merge_children(
        self, loaded: LoadedResults, joined: JoinedResults, origin: str, batch_id: str, depth: int
    ) -> JoinedResults:
        app = self.app
        if depth >= _MAX_RETRY_DEPTH:
            return joined
        for child in app.store.children(origin, batch_id):
            output, error = local_result_files(child, app.paths.results_for(child.id))
            if output is None and error is None:
                continue
            if not child.input_path or not Path(child.input_path).is_file():
                continue
            try:
                child_joined = join_results(child.input_path, output, error)
            except OSError:
                continue
            loaded.opened.append(child_joined)
            child_joined = self._merge_children(loaded, child_joined, origin, child.id, depth + 1)
            joined = merge_child(joined, child_joined)
            loaded.merged_children.append(child.id)
        return joined
