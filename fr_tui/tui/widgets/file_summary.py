"""The Files screen's summary of the file in the preview: size, rows, endpoint, providers,
models, tokens, and the verdict as a badge (theme colours, or reverse video under
NO_COLOR), or the validation's progress while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from fr_tui.core.jsonl import LineIndex
from fr_tui.core.tokens import PromptTokens
from fr_tui.core.units import human_bytes, plural
from fr_tui.tui.widgets.jsonl_view import ERROR_MARK
from fr_tui.tui.widgets.verdict import badge_style

if TYPE_CHECKING:
    from fr_tui.core.estimate import Estimate
    from fr_tui.core.validate import Report


def _top(counts: dict[str, int], n: int = 2) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(name for name, _ in items[:n])
    return text + (f" +{len(items) - n}" if len(items) > n else "")


def prompt_tokens(report: Report, estimate: Estimate | None) -> PromptTokens:
    """The file's prompt tokens as every screen shows them: the estimate's (corrected by
    past batches) when there is one, else the validator's count (core/tokens.py)."""
    if estimate is not None:
        return estimate.prompt_tokens
    tokens = report.stats.get("est_input_tokens") or 0
    return PromptTokens(tokens)


def file_summary(
    app: Any,
    path: Path,
    index: LineIndex,
    report: Report | None,
    progress: tuple[int, int, int, int] | None,
    estimate: Estimate | None = None,
) -> Text:
    """`progress`: (bytes done, bytes total, rows, problems so far) while validating."""
    text = Text(no_wrap=False)
    text.append(path.name, style="bold")
    text.append(f" · {human_bytes(index.size)}")
    if report is not None:
        text.append(f" · {plural(report.rows, 'row')}")
        if report.endpoint:
            text.append(f" · {report.endpoint}")
        stats = report.stats
        if stats.get("providers"):
            text.append(f" · {_top(stats['providers'])}")
        if stats.get("models"):
            text.append(f" · {_top(stats['models'])}")
        tokens = prompt_tokens(report, estimate)
        if tokens.tokens:
            text.append(f" · {tokens.short_text}")
        text.append("\n")
        # a file whose rows are all fine but too many for one batch is not "invalid":
        # it is a job (s runs it as one)
        a_job = not report.valid and report.complete and _only_over_limits(report)
        if not report.complete:
            text.append("validation stopped", style="bold")
        elif report.valid:
            text.append(" ✔ valid ", style=badge_style(app, "success"))
        elif a_job:
            text.append(" ⚠ over one batch's limits ", style=badge_style(app, "warning"))
        else:
            text.append(f" {ERROR_MARK} invalid ", style=badge_style(app, "error"))
        if a_job:
            text.append(f" · {plural(report.warnings_total, 'warning')}")
        else:
            text.append(
                f" · {plural(report.errors_total, 'error')} · "
                f"{plural(report.warnings_total, 'warning')}"
            )
        if estimate is not None:
            text.append(f" · est. {estimate.cost_text()}")
        if report.valid:
            text.append(" · s submits")
        elif a_job:
            text.append(" · s runs it as a job")
    elif progress is not None:
        done, total, rows, found = progress
        pct = 100 * done / total if total else 0
        text.append(f" · {len(index):,} lines indexed\n")
        text.append(f"validating… {pct:.0f}% · {plural(rows, 'row')}", style="bold")
        if found:
            text.append(f" · {plural(found, 'problem')} so far")
    else:
        lines = f"{len(index):,}" if index.complete else f"{len(index):,}+"
        text.append(f" · {lines} lines\n")
        text.append("not validated yet: enter validates", style="dim")
    return text


def _only_over_limits(report: Report) -> bool:
    from fr_tui.core.split import only_over_limits  # the planner: not at start-up

    return only_over_limits(report)
