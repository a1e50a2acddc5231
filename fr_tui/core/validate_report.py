"""What the validator reports: its limits, problems and report, the problem codes, and
the human-readable form of a report (`fr-tui validate`). The validator (validate.py and
validate_rows.py) builds on this module; nothing here imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fr_tui.core.tokens import PromptTokens
from fr_tui.core.units import human_bytes

# A report keeps (and lists) at most this many problems; the totals count them all.
MAX_KEPT_PROBLEMS = 1000

# Every problem code. Codes listed here are warnings; all others are errors.
WARNING_CODES = frozenset(
    {
        "blank_line",
        "crlf_line_endings",
        "missing_final_newline",
        "unknown_provider",
        "provider_model_mismatch",
        "model_without_prefix",
        "unknown_key",
        "unknown_role",
        "empty_input",
        # pre-submit checks against the model catalog (core/precheck.py): warnings, since
        # a catalog can lag the service
        "unknown_model",
        "inactive_model",
        "context_overflow",
        "max_tokens_over_limit",
    }
)
# What to do about a problem, shown once per code ({max_rows}/{max_bytes} are the limits).
HINTS = {
    "empty_file": "A batch needs at least one request line.",
    "too_many_rows": "Run it as a job (fr-tui run FILE, or s in the TUI: parts, retry "
    "rounds, one merged result), or split it: fr-tui split FILE --max-rows {max_rows}",
    "file_too_large": "Run it as a job (fr-tui run FILE, or s in the TUI: parts, retry "
    "rounds, one merged result), or split it: fr-tui split FILE --max-bytes {max_bytes}",
    "line_too_long": "Check that the file really has one request per line.",
    "bom": "Save the file as UTF-8 without BOM.",
    "invalid_utf8": "Batch files must be UTF-8 text; re-export the file as UTF-8.",
    "invalid_json": "Each line must hold exactly one complete JSON object.",
    "blank_line": "Remove blank lines: some batch servers count them as invalid requests.",
    "crlf_line_endings": "JSON parsers accept them, but LF endings are safer.",
    "missing_final_newline": "Add a newline at the end so files can be joined safely.",
    "duplicate_custom_id": "Every request needs its own custom_id; results are matched by it.",
    "unknown_provider": "FastRouter documents batch support for openai and anthropic.",
    "provider_model_mismatch": "Set provider to the part of the model name before the slash.",
    "missing_provider": 'Each request names its provider beside custom_id: "openai" for '
    'model "openai/gpt-4.1-nano", "anthropic" for an anthropic/… model.',
    "unknown_key": "Request parameters belong inside body.",
    "model_without_prefix": 'FastRouter models are named "provider/model", '
    'e.g. "openai/gpt-4.1-nano".',
    "stream_not_supported": 'Remove "stream" from the body.',
    "unknown_role": "Roles are system, developer, user, assistant and tool.",
    "unknown_model": "A catalog can lag the service: if the name is right, submit with --force.",
    "inactive_model": "The catalog marks it inactive: requests to it will likely fail.",
    "context_overflow": "Shorten the prompt or lower max_tokens; the model would refuse the row.",
    "max_tokens_over_limit": "Lower max_tokens to the model's maximum completion tokens.",
}


_SHOWN_PER_CODE = 20


@dataclass(frozen=True)
class Limits:
    max_rows: int = 50_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass
class Problem:
    line: int
    code: str
    message: str
    severity: str  # "error" | "warning"
    column: int | None = None
    other_line: int | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "code": self.code, "message": self.message}
        if self.column is not None:
            out["column"] = self.column
        if self.other_line is not None:
            out["other_line"] = self.other_line
        if self.hint is not None:
            out["hint"] = self.hint
        return out


class ProblemLog:
    """Problems as a validator finds them: counted by code and severity, the first
    MAX_KEPT_PROBLEMS kept and streamed to ``on_problem``. The base of the checks mixed
    into ``Validator`` (core/validate.py), which sets the state declared here."""

    max_rows: int
    max_bytes: int
    on_problem: Callable[[Problem], None] | None
    kept: list[Problem]
    counts: dict[str, int]
    errors_total: int
    warnings_total: int

    def _flag(
        self,
        line: int,
        code: str,
        message: str,
        column: int | None = None,
        other_line: int | None = None,
        keep: bool = False,
    ) -> None:
        """Record a problem; ``keep`` bypasses the cap (file-level summaries)."""
        severity = "warning" if code in WARNING_CODES else "error"
        hint = HINTS.get(code)
        if hint is not None:
            hint = hint.format(max_rows=self.max_rows, max_bytes=self.max_bytes)
        self.add_problem(Problem(line, code, message, severity, column, other_line, hint), keep)

    def add_problem(self, problem: Problem, keep: bool = False) -> None:
        """Count a problem; keep it (and stream it) while under MAX_KEPT_PROBLEMS."""
        self.counts[problem.code] = self.counts.get(problem.code, 0) + 1
        if problem.severity == "error":
            self.errors_total += 1
        else:
            self.warnings_total += 1
        if keep or len(self.kept) < MAX_KEPT_PROBLEMS:
            self.kept.append(problem)
            if self.on_problem is not None:
                self.on_problem(problem)


@dataclass
class Report:
    rows: int
    bytes: int
    endpoint: str | None
    errors: list[Problem]
    warnings: list[Problem]
    errors_total: int
    warnings_total: int
    stats: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    # problems per code, all of them (errors and warnings keep only the first ones)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.complete and self.errors_total == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "complete": self.complete,
            "rows": self.rows,
            "bytes": self.bytes,
            "endpoint": self.endpoint,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
            "errors_total": self.errors_total,
            "warnings_total": self.warnings_total,
            "stats": self.stats,
            "problem_counts": self.counts,
        }


def format_report(report: Report, path: str, *, prompt: PromptTokens | None = None) -> str:
    """Human-readable report: a summary, then problems grouped by code, each with its line.
    `prompt`: the file's prompt tokens corrected by past batches (else the rule's count)."""
    size = report.bytes
    human = human_bytes(size)
    verdict = (
        "valid"
        if report.valid
        else "INVALID"
        if report.complete
        else "not fully checked (cancelled)"
    )
    lines = [
        f"{path}: {verdict}",
        f"  {report.rows:,} request{'s' if report.rows != 1 else ''}, {human}, "
        f"endpoint {report.endpoint or 'unknown'}",
        f"  {report.errors_total:,} error{'s' if report.errors_total != 1 else ''}, "
        f"{report.warnings_total:,} warning{'s' if report.warnings_total != 1 else ''}",
    ]
    stats = report.stats
    if stats.get("models"):
        models = ", ".join(f"{name} ({count:,})" for name, count in stats["models"].items())
        lines.append(f"  models: {models}")
    if prompt is None:
        count = stats.get("est_input_tokens") or 0
        prompt = PromptTokens(count)
    if prompt.tokens:
        how = prompt.note or " (estimated at about 4 characters a token)"
        lines.append(
            f"  about {prompt.tokens:,} input tokens{how}, "
            f"max_tokens total {stats.get('max_tokens_sum', 0):,}"
        )
    for title, problems, total in (
        ("Errors", report.errors, report.errors_total),
        ("Warnings", report.warnings, report.warnings_total),
    ):
        if not problems:
            continue
        lines.append("")
        lines.append(f"{title}:")
        groups: dict[str, list[Problem]] = {}
        for problem in problems:
            groups.setdefault(problem.code, []).append(problem)
        for code, group in groups.items():
            lines.append(f"  {code} ({report.counts.get(code, len(group)):,}):")
            for problem in group[:_SHOWN_PER_CODE]:
                where = f"line {problem.line}"
                if problem.column is not None:
                    where += f", column {problem.column}"
                lines.append(f"    {where}: {problem.message}")
            more = report.counts.get(code, len(group)) - min(len(group), _SHOWN_PER_CODE)
            if more > 0:
                lines.append(f"    ... and {more:,} more")
            hint = next((p.hint for p in group if p.hint), None)
            if hint:
                lines.append(f"    hint: {hint}")
        severity = "error" if title == "Errors" else "warning"
        for code, count in report.counts.items():
            if code not in groups and (code in WARNING_CODES) == (severity == "warning"):
                lines.append(f"  {code} ({count:,}): found after the first problems, not listed")
        if total > len(problems):
            lines.append(
                f"  ({total - len(problems):,} more not listed: only the first {MAX_KEPT_PROBLEMS} problems are kept)"
            )
    return "\n".join(lines)
