"""Submit from the Files screen: the file is checked first (again, when it changed on
disk since), its estimate brought up to date, then the submit dialog opens; a batch it
makes is shown in Batches. A part of FilesScreen (screens/files.py), whose state it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

if TYPE_CHECKING:
    from fr_tui.core.jsonl import LineIndex
    from fr_tui.core.validate import Report
    from fr_tui.tui.file_check import FileCheck


class SubmitFromFiles:
    # FilesScreen's own
    current_path: Path | None
    index: LineIndex | None
    report: Report | None
    run: FileCheck | None
    _submit_when_valid: bool
    app: Any
    open_path: Any
    start_validation: Any
    notify: Any
    _show_summary: Any

    def action_submit(self) -> None:
        if self.current_path is None:
            self.notify("Highlight a JSONL file to submit first.")
            return
        if self.index is not None and self.index.changed_on_disk():
            self.open_path(self.current_path)  # edited since it was checked: check it again
        elif self.report is not None and self.report.complete and self.run is not None:
            if self.run.checks is not None:
                self._reestimate(self.run, then_submit=True)
            else:
                self._open_submit()
            return
        self._submit_when_valid = True
        if self.run is None or self.run.finished:
            self.start_validation()
        self.notify("Validating the file before submitting…", timeout=2)

    @work(thread=True, exclusive=True, group="files-estimate", exit_on_error=False)
    def _reestimate(self, run: FileCheck, then_submit: bool = False) -> None:
        """A batch that finished since the file was checked changes its estimate."""
        from fr_tui.tui.costs import costs

        run.reestimate(costs(self.app).basis())

        def show() -> None:
            if run is not self.run:
                return
            self._show_summary()
            if then_submit:
                self._open_submit()

        try:
            self.app.call_from_thread(show)
        except RuntimeError:
            pass  # the app is closing

    def _open_submit(self) -> None:
        from fr_tui.tui.modals.submit import SubmitModal

        assert self.current_path is not None and self.report is not None
        run = self.run
        estimate = run.estimate if run is not None else None
        signature = run.signature if run is not None else None
        self.app.push_screen(
            SubmitModal(self.current_path, self.report, estimate=estimate, signature=signature),
            self._submitted,
        )

    def _submitted(self, record: Any) -> None:
        from fr_tui.tui.modals.submit import CHECK_AGAIN

        if record == CHECK_AGAIN:
            self.action_submit()  # read and checked again, then offered again
            return
        if record is None:
            return
        app: Any = self.app
        self.notify(f"Batch {record.id} created ({record.status}).", title="Submitted")
        try:
            app.poller.watch(record.origin, record.id)
        except Exception:
            pass
        from fr_tui.tui.messages import BatchesChanged

        app.broadcast(BatchesChanged([record.id]))
        app.open_batches(select=record.id)
