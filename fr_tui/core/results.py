"""Batch results: every input row joined to its answer, stored once, reopened at once.

`join_results` joins an input file with its output and error files (results_join.py,
in memory) and stores the join beside the result files as an index (results_index.py,
`index.frx` in the folder of the output or error file). The next call with the same
files, unchanged, maps that index instead: rows show without reading or parsing any of
the files again. A changed file, an index of another version or a damaged one means the
join is built again. Export, the retry file and the `--json` summary live in
`export.py`; merging a retry's results over its parent's is `merge_child`.
"""

from __future__ import annotations

from pathlib import Path

from fr_tui.core.resultline import ParsedResult, answer_hash, answer_text, first_line
from fr_tui.core.resultline import parse_result_line as parse_result_line
from fr_tui.core.results_index import INDEX_NAME, open_index, source_signatures
from fr_tui.core.results_join import (
    FAILED,
    MISSING,
    MISSING_KEY,
    OK,
    OUTCOMES,
    UNREADABLE_KEY,
    JoinedResults,
    Outcome,
    ProgressFn,
    ResultIssue,
    ResultRow,
    group_key,
    join_in_memory,
    merge_child,
    merge_children,
)


def index_path_for(output_path: str | Path | None, error_path: str | Path | None) -> Path | None:
    """Where the index of a join lives: beside its result files (None without any)."""
    beside = output_path if output_path is not None else error_path
    return Path(beside).parent / INDEX_NAME if beside is not None else None


def join_results(
    input_path: str | Path,
    output_path: str | Path | None,
    error_path: str | Path | None,
    *,
    on_progress: ProgressFn | None = None,
    index: bool = True,
) -> JoinedResults:
    """Join an input file with its output and error files (either may be None: an
    all-failed batch has no output file). Result lines are matched on custom_id; the
    output file is read first and the first line for an id wins; a line of a job's merged
    result file carries its own `outcome`, which wins. Raises OSError only if a given
    file cannot be read; bad content is counted, never fatal. With `index` (the default)
    the join is stored beside the result files and reopened from there next time."""
    sources = [Path(p) if p is not None else None for p in (input_path, output_path, error_path)]
    where = index_path_for(output_path, error_path) if index else None
    signatures = source_signatures(sources) if where is not None else []
    if where is not None:
        stored = open_index(where, sources, signatures)
        if stored is not None:
            if on_progress is not None:
                on_progress(1, 1)
            return stored
        # imported here: reopening a stored index (the common case) does not need it
        from fr_tui.core.results_build import Unindexable, build_index

        try:
            build_index(sources, where, signatures, on_progress)
            stored = open_index(where, sources, signatures, just_built=True)
            if stored is not None:
                return stored
        except (OSError, Unindexable):
            pass  # a read-only folder, or values the index cannot hold: join in memory
    return join_in_memory(input_path, output_path, error_path, on_progress=on_progress)


__all__ = [
    "FAILED",
    "INDEX_NAME",
    "MISSING",
    "MISSING_KEY",
    "OK",
    "OUTCOMES",
    "UNREADABLE_KEY",
    "JoinedResults",
    "Outcome",
    "ParsedResult",
    "ResultIssue",
    "ResultRow",
    "answer_hash",
    "answer_text",
    "first_line",
    "group_key",
    "index_path_for",
    "join_in_memory",
    "join_results",
    "merge_child",
    "merge_children",
    "parse_result_line",
]
