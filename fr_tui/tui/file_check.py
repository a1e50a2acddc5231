"""One check of one file for the Files screen, run in a worker thread: validation with
the pre-submit checks and the estimate riding along (core/prepare.py, the step every
submit goes through), its problems streamed to a list the screen's timer drains, and
the estimate made again later from the same tallies (a batch that finished since
changes what is expected)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fr_tui.core.prepare import CostBasis
    from fr_tui.core.validate import Limits, Problem, Report

log = logging.getLogger("fr_tui.tui.files")


@dataclass
class FileCheck:
    """Written by the worker, read by the UI timer."""

    path: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    problems: list[Problem] = field(default_factory=list)
    progress: tuple[int, int, int] = (0, 0, 0)  # bytes done, bytes total, rows
    report: Report | None = None
    estimate: Any = None  # core.estimate.Estimate, made with the validation
    checks: Any = None  # core.precheck.PreSubmitChecks: its tallies make the estimate again
    signature: Any = None  # core.userfiles.FileSignature: the file as it was checked
    error: str | None = None
    finished: bool = False
    handled: bool = False
    started: float = field(default_factory=time.monotonic)

    def run(self, basis: CostBasis, limits: Limits) -> None:
        """Validate (in a thread); never raises: what went wrong is in `error`."""
        from fr_tui.core.prepare import prepare_submit

        def progress(done: int, total: int, rows: int) -> None:
            self.progress = (done, total, rows)

        try:
            prepared = prepare_submit(
                self.path,
                basis,
                limits=limits,
                on_problem=self.problems.append,
                on_progress=progress,
                cancel=self.cancel,
            )
            self.report, self.signature = prepared.report, prepared.signature
            if self.report.complete:
                self.estimate, self.checks = prepared.estimate, prepared.checks
        except OSError as exc:
            self.error = f"Cannot read {self.path.name}: {exc.strerror or exc}"
        except Exception as exc:  # a validator bug must not take the app down
            self.error = f"Validation failed: {exc}"
        self.finished = True

    def reestimate(self, basis: CostBasis) -> None:
        """The estimate again from the validation's tallies (no second read of the file),
        against the history as it is now. The last estimate stands if this fails."""
        from fr_tui.core.prepare import estimate_of

        try:
            self.estimate = estimate_of(self.checks, self.report, basis)
        except Exception as exc:  # noqa: BLE001 - a cost figure never breaks a screen
            log.warning("estimate of %s: %s", self.path, exc)
