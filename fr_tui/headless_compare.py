"""`fr-tui compare A B`: two runs side by side, joined by custom_id (issue 13). No
Textual here.

A and B are batch ids from history (on the chosen server first, else the one record with
that id). Results already downloaded are compared offline; a batch whose results are
missing, or that was still running when last seen, is fetched from its own server.
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fr_tui.cli_errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from fr_tui.cli_support import err, load_profile, print_json
from fr_tui.core.paths import Paths, get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.units import money, plural
from fr_tui.headless_session import find_record, open_session, open_store, run, target_for

if TYPE_CHECKING:
    from fr_tui.core.compare import CompareSummary, Comparison
    from fr_tui.core.result_sets import ResultSetSource
    from fr_tui.headless_session import Target


def resolve_source(
    args: argparse.Namespace, store: HistoryStore, paths: Paths, target: Target, ident: str
) -> ResultSetSource:
    """The result set an argument names: a job or a batch in history."""
    from fr_tui.core.jobs_results import job_result_set
    from fr_tui.core.result_sets import BatchResultSet

    job = job_result_set(store, ident)
    if job is not None:
        return job

    record = find_record(args, store, ident, target)
    if record is None:
        raise CliError(
            f"no batch or job {ident} in history (fr-tui list and fr-tui jobs show them)",
            EXIT_USAGE,
        )
    return BatchResultSet(record, store, paths)


async def _ensure(args: argparse.Namespace, source: ResultSetSource) -> None:
    """Get a side's files: offline when they are here, else from its own server."""
    if not source.needs_network():
        await source.ensure(None)
        return
    async with open_session(args, batch_id=source.ref.id) as session:
        await source.ensure(session.client)


def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _signed_money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + money(value) if value else "$0.00"


def summary_lines(summary: CompareSummary, a_name: str, b_name: str) -> list[str]:
    """The comparison for people: the join, the agreement, each side and B − A."""
    agreement = summary.agreement
    lines = [
        f"A  {a_name}",
        f"B  {b_name}",
        f"rows: {summary.both:,} in both, {summary.only_a:,} only in A, "
        f"{summary.only_b:,} only in B",
        f"answers: {summary.same:,} same, {summary.different:,} different, "
        f"{summary.one_ok:,} ok on one side only (A not ok {summary.a_not_ok:,}, "
        f"B not ok {summary.b_not_ok:,}), {summary.neither_ok:,} ok on neither",
        "agreement: "
        + (
            f"{agreement:.1%} ({summary.same:,} of {plural(summary.both_ok, 'row')} "
            "ok on both sides)"
            if agreement is not None
            else "- (no row is ok on both sides)"
        ),
    ]
    a, b, delta = summary.a, summary.b, summary.deltas()
    table: list[tuple[str, str, str, str]] = [("", "A", "B", "B - A")]
    for label, name in (
        ("ok", "ok"),
        ("failed", "failed"),
        ("missing", "missing"),
        ("input tokens", "input_tokens"),
        ("output tokens", "output_tokens"),
        ("length cut-offs", "length_cutoffs"),
    ):
        table.append(
            (label, f"{getattr(a, name):,}", f"{getattr(b, name):,}", _signed(delta[name]))
        )
    table.append(("cost", money(a.cost), money(b.cost), _signed_money(delta["cost"])))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "   ".join(cells).rstrip())
    kinds = summary.failure_kinds()
    if kinds:
        lines.append("failures (rows in A / B):")
        for key, in_a, in_b in kinds[:8]:
            lines.append(f"  {in_a:>6,} / {in_b:<6,} {key}")
        if len(kinds) > 8:
            lines.append(f"  … {len(kinds) - 8} more kinds (--json lists them all)")
    return lines


def _document(comparison: Comparison, sources: list[ResultSetSource]) -> dict[str, Any]:
    summary = comparison.summary()
    a, b = sources
    return {
        "a": a.ref.id,
        "b": b.ref.id,
        "a_kind": a.ref.kind,
        "b_kind": b.ref.kind,
        "a_label": a.label,
        "b_label": b.label,
        **summary.to_json(),
        "similarity": comparison.similarity_stats(),
    }


def cmd_compare(args: argparse.Namespace) -> int:
    from fr_tui.core.compare import compare
    from fr_tui.core.result_sets import ResultSetUnavailable, describe_ref

    config, profile = load_profile(args)
    paths = get_paths().ensure()
    store = open_store(paths, read_only=None)
    target = target_for(args, config, profile)
    sources = [resolve_source(args, store, paths, target, ident) for ident in (args.a, args.b)]
    if sources[0].ref == sources[1].ref:
        raise CliError("A and B are the same batch: compare two different runs", EXIT_USAGE)
    try:
        for source in sources:
            run(lambda source=source: _ensure(args, source))  # type: ignore[misc]
        joined = [source.open() for source in sources]
        for source in sources:
            for note in source.notes:
                err(f"warning: {note}")
        comparison = compare(
            joined[0], joined[1], a_label=sources[0].label, b_label=sources[1].label
        )
        document = _document(comparison, sources)
        if args.output:
            from fr_tui.core.compare_export import export_comparison

            fmt: Literal["csv", "jsonl"] = args.format or (
                "csv" if Path(args.output).suffix == ".csv" else "jsonl"
            )
            document["export_path"] = str(args.output)
            document["exported"] = export_comparison(comparison, args.output, fmt)
    except ResultSetUnavailable as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    finally:
        for source in sources:
            source.close()
    if args.json:
        print_json(document)
        return EXIT_OK
    names = [describe_ref(s.ref, s.label) for s in sources]
    for line in summary_lines(comparison.summary(), *names):
        print(line)
    similarity = document["similarity"]
    if similarity is not None:
        print(
            f"embeddings: cosine similarity mean {similarity['mean']:.4f}, lowest "
            f"{similarity['min']:.4f} over {plural(similarity['rows'], 'row')}"
        )
    if args.output:
        print(f"  {plural(document['exported'], 'row')} written to {document['export_path']}")
    return EXIT_OK


__all__ = ["cmd_compare", "resolve_source", "summary_lines"]
