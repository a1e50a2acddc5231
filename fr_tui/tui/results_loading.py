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

from fr_tui.core.errors import ApiError
from fr_tui.core.result_sets import (
    ids_only_input,
    input_warning,
    local_result_files,
    merge_retries,
    needs_download,
)
from fr_tui.core.results import JoinedResults, join_results
from fr_tui.core.store import BatchRecord
from fr_tui.tui.costs import costs

__all__ = [
    "LoadedResults",
    "ResultsLoader",
    "file_warnings",
    "local_result_files",
    "needs_download",
]


@dataclass
class LoadedResults:
    """A join and everything it keeps open; `close()` releases the files."""

    joined: JoinedResults
    inputs_missing: bool
    merged_children: list[str] = field(default_factory=list)
    opened: list[JoinedResults] = field(default_factory=list)
    # the batch's own join (before its retries are merged) and the files it is of
    own: JoinedResults | None = None
    sources: tuple[Path | None, Path | None, Path | None] = (None, None, None)
    notes: list[str] = field(default_factory=list)  # to tell the user (from the thread)

    def close(self) -> None:
        for joined in self.opened:
            joined.close()
        self.opened.clear()


def file_warnings(record: BatchRecord) -> tuple[bool, list[tuple[str, str]]]:
    """(input file missing, [(title, message)]) to tell the user before a join."""
    missing, warning = input_warning(record)
    if warning is None:
        return missing, []
    if missing:
        return True, [("Input file not found", f"{warning[0].upper()}{warning[1:]}; retry is off.")]
    return False, [("Input file changed", f"{warning[0].upper()}{warning[1:]}.")]


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
        dest: Path = record.results_folder(app.paths)
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
            input_path = ids_only_input(record.results_folder(self.app.paths), output, error)
        assert input_path is not None
        joined = join_results(input_path, output, error, on_progress=on_progress)
        loaded = LoadedResults(joined, inputs_missing, opened=[joined], own=joined)
        loaded.sources = (Path(input_path), output, error)
        loaded.joined = merge_retries(
            self.app.store,
            self.app.paths,
            joined,
            record,
            loaded.opened,
            loaded.merged_children,
            notes=loaded.notes,
        )
        return loaded

    def cost_text(self, record: BatchRecord, loaded: LoadedResults) -> str | None:
        """Runs in a thread, after the rows are on screen: the batch's own actual cost
        beside its estimate (tui/costs.py; the first time a walk over every row)."""
        if loaded.own is None:
            return None
        return costs(self.app).result_cost_text(record, loaded.own, loaded.sources)
