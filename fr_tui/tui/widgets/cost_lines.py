"""Cost lines (issue 12): the estimate in the submit modal, red when a budget of the
profile would be exceeded, and the spend line of the Batches screen. Their figures are
computed in thread workers (tui/costs.py); the UI thread only paints text."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.message import Message
from textual.widgets import Static

from fr_tui.tui.costs import costs


class EstimateLine(Static):
    """What a file will cost. Once `checked`, `over_budget` says why a submit needs a
    second yes (None: within every budget)."""

    DEFAULT_CSS = """
    EstimateLine { height: auto; }
    EstimateLine.-over { color: $error; text-style: bold; }
    """

    class Checked(Message):
        """The budget check is done."""

    def __init__(self, estimate: Any, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.estimate = estimate
        self.checked = estimate is None
        self.over_budget: str | None = None

    def on_mount(self) -> None:
        if self.estimate is None:
            self.update("Estimate: not available")
            return
        self.update(f"Estimate: {self.estimate.summary_text()}")
        self._check_budget()

    @work(thread=True, exclusive=True, group="budget", exit_on_error=False)
    def _check_budget(self) -> None:
        problem = costs(self.app).budget_problem(self.estimate)
        self.app.call_from_thread(self._checked, problem)

    def _checked(self, problem: str | None) -> None:
        self.checked = True
        self.over_budget = problem
        if problem:
            self.add_class("-over")
            self.update(f"Estimate: {self.estimate.summary_text()}\nOver budget: {problem}")
        self.post_message(self.Checked())


class SpendLine(Static):
    """Today's and this week's spend of the active profile, refreshed when asked."""

    DEFAULT_CSS = """
    SpendLine { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)

    def on_mount(self) -> None:
        self.refresh_spend()

    @work(thread=True, exclusive=True, group="spend", exit_on_error=False)
    def refresh_spend(self) -> None:
        text = costs(self.app).spend_text()
        if text is not None:
            self.app.call_from_thread(self.update, text)
