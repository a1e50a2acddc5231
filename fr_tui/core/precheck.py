"""Pre-submit checks against the model catalog, and the per-model tallies an estimate
is made of, in one row observer (core/validate.py's RowObserver) that runs with
validation.

Checks (warnings, since a catalog can lag the service):

* a model the catalog does not know, or marks inactive: one warning per model at its
  first line, with the number of rows it affects and the closest known names;
* a row whose estimated prompt tokens plus `max_tokens` exceed the model's context
  length, or whose `max_tokens` exceeds the model's maximum completion tokens: a warning
  at that line.

Without a catalog there are no checks; the tallies are still kept (for `estimate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fr_tui.core.catalog import Catalog, ModelInfo
from fr_tui.core.units import plural
from fr_tui.core.validate import Problem


@dataclass
class ModelTally:
    """What one model's rows of a file ask for."""

    model: str
    first_line: int
    info: ModelInfo | None
    rows: int = 0
    prompt_tokens: int = 0
    # An upper bound of the output tokens: max_tokens, else the model's maximum
    # completion tokens, else what its context leaves after the prompt.
    output_bound: int = 0
    unbounded_rows: int = 0  # rows with none of those
    max_tokens_rows: int = 0  # rows that set max_tokens
    embedding_rows: int = 0  # rows with no output tokens


def _max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_tokens")
    if value is None:
        value = body.get("max_completion_tokens")
    return value if type(value) is int and value > 0 else None


class PreSubmitChecks:
    """The row observer. `tallies` holds one ModelTally per model, in first-seen order."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self.tallies: dict[str, ModelTally] = {}

    def row(self, line: int, body: dict[str, Any], prompt_tokens: int) -> list[Problem] | None:
        model = body.get("model")
        if type(model) is not str or not model:
            return None
        tally = self.tallies.get(model)
        if tally is None:
            info = self.catalog.get(model) if self.catalog is not None else None
            tally = self.tallies[model] = ModelTally(model, line, info)
        tally.rows += 1
        tally.prompt_tokens += prompt_tokens
        max_tokens = _max_tokens(body)
        info = tally.info
        if "messages" not in body and "input" in body:
            tally.embedding_rows += 1
            max_tokens = None
            bound: int | None = 0
        elif max_tokens is not None:
            tally.max_tokens_rows += 1
            bound = max_tokens
        elif info is not None and info.max_completion_tokens is not None:
            bound = info.max_completion_tokens
        elif info is not None and info.context_length is not None:
            bound = max(0, info.context_length - prompt_tokens)
        else:
            bound = None
        if bound is None:
            tally.unbounded_rows += 1
        else:
            tally.output_bound += bound
        if info is None:
            return None
        problems: list[Problem] | None = None
        limit = info.max_completion_tokens
        if max_tokens is not None and limit is not None and max_tokens > limit:
            problems = [
                Problem(
                    line,
                    "max_tokens_over_limit",
                    f"max_tokens is {max_tokens:,} but {model} writes at most {limit:,} "
                    "tokens per answer.",
                    "warning",
                )
            ]
        context = info.context_length
        if context is not None and prompt_tokens + (max_tokens or 0) > context:
            asked = f"about {prompt_tokens:,} prompt tokens"
            if max_tokens:
                asked += f" + max_tokens {max_tokens:,}"
            overflow = Problem(
                line,
                "context_overflow",
                f"{asked} is more than the {context:,}-token context of {model}.",
                "warning",
            )
            problems = [*(problems or []), overflow]
        return problems

    # -- a summing observer (core/validate.py's SummingObserver): the validator shows
    # this observer only the rows that may warrant a warning and sums up the others,
    # which keeps the checks' cost per row close to nothing.

    def bounds(self, model: str) -> tuple[int | None, int | None] | None:
        """A row of ``model`` with max_tokens up to the first and prompt tokens plus
        max_tokens up to the second warrants no warning (None: no bound)."""
        tally = self.tallies.get(model)
        if tally is None:
            return None
        info = tally.info
        if info is None:
            return None, None
        if info.max_completion_tokens is None and info.context_length is not None:
            return None  # a row without max_tokens is bounded by what its prompt leaves
        return info.max_completion_tokens, info.context_length

    def summed(
        self,
        model: str,
        rows: int,
        prompt_tokens: int,
        max_tokens_rows: int,
        max_tokens: int,
        embeddings: bool,
    ) -> None:
        """Count the rows the validator did not show (what ``row`` would have counted)."""
        tally = self.tallies[model]
        tally.rows += rows
        tally.prompt_tokens += prompt_tokens
        if embeddings:
            tally.embedding_rows += rows
            return
        tally.max_tokens_rows += max_tokens_rows
        tally.output_bound += max_tokens
        without = rows - max_tokens_rows
        info = tally.info
        if info is not None and info.max_completion_tokens is not None:
            tally.output_bound += without * info.max_completion_tokens
        else:  # bounds() summed these only when there is neither limit
            tally.unbounded_rows += without

    def finish(self) -> list[Problem]:
        if self.catalog is None:
            return []
        problems = []
        for tally in self.tallies.values():
            info = tally.info
            if info is not None and info.active:
                continue
            rows = plural(tally.rows, "row") + ("" if tally.rows == 1 else ", the first here")
            if info is None:
                code = "unknown_model"
                message = f'model "{tally.model}" is not in the model catalog ({rows}).'
            else:
                code = "inactive_model"
                message = f'model "{tally.model}" is inactive in the model catalog ({rows}).'

            close = self.catalog.suggestions(tally.model)
            if close:
                message += " Did you mean " + " or ".join(close) + "?"
            problems.append(Problem(tally.first_line, code, message, "warning"))
        return problems
