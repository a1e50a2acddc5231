"""The submit modal: summary, detected endpoint, completion window, optional name and
metadata; refuses an invalid file (offering to run it as a job when it is only over the
limits of one batch: parts, retry rounds, one merged result, see core/jobs.py); uploads
with a cancellable progress bar, then creates the batch. The history record is written
by core.workflow.submit_file the moment the id returns; the modal dismisses with it.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, ProgressBar, Static

from fr_tui.core.errors import ApiError, OutcomeUnknownError
from fr_tui.core.split import only_over_limits
from fr_tui.core.store import BatchRecord, StoreError
from fr_tui.core.units import human_bytes, plural
from fr_tui.core.validate import Report
from fr_tui.core.workflow import (
    DuplicateSubmitError,
    FileChangedError,
    MetadataError,
    SubmitPhase,
    UnrecordedBatchError,
    check_metadata,
    submit_file,
)
from fr_tui.tui.costs import costs
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.widgets.cost_lines import EstimateLine
from fr_tui.tui.widgets.file_summary import prompt_tokens

COMPLETION_WINDOW = "24h"
# What the dialog answers when the file changed since it was checked: Files reads and
# checks it again, then offers the submit again (a stale check is never uploaded).
CHECK_AGAIN = "check-again"
_META_ITEM = re.compile(r"^([^=\s]+)=(.*)$")


def parse_metadata(text: str) -> dict[str, str]:
    """'a=1 b=two, c=3' -> {'a': '1', 'b': 'two', 'c': '3'}; raises ValueError on junk."""
    out: dict[str, str] = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        match = _META_ITEM.match(item)
        if match is None:
            raise ValueError(f"metadata {item!r} is not key=value")
        out[match.group(1)] = match.group(2)
    return out


class SubmitModal(ModalScreen[BatchRecord | str | None]):
    DEFAULT_CSS = """
    SubmitModal { align: center middle; }
    SubmitModal > #submit-box {
        width: 90%; max-width: 84; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    SubmitModal #submit-title { text-style: bold; }
    SubmitModal .field-label { color: $text-muted; height: 1; }
    SubmitModal #submit-refusal { color: $error; margin: 1 0; }
    SubmitModal #submit-refusal.-job { color: $warning; }
    SubmitModal #submit-error { color: $error; height: auto; display: none; }
    SubmitModal #submit-progress-row { height: auto; display: none; }
    SubmitModal.-busy #submit-progress-row { display: block; }
    SubmitModal ProgressBar { width: 1fr; }
    SubmitModal #submit-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="submit-close"),
        # priority: the name field would otherwise take ctrl+x as "cut"
        Binding(
            "ctrl+x", "cancel_upload", "Cancel upload", id="submit-cancel-upload", priority=True
        ),
        Binding("j", "run_job", "Run as a job", id="submit-run-job"),
    ]

    def __init__(
        self, path: Path, report: Report, estimate: Any = None, signature: Any = None
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.report = report
        self.estimate = estimate  # core.estimate.Estimate, or None
        # core.userfiles.FileSignature of the file the report is about: a file edited
        # since is refused rather than uploaded unchecked
        self.signature = signature
        self._over_budget_ok = False  # the user said yes to going over a budget
        self._submit_when_checked = False
        # idle | hashing | uploading | creating | done | failed | cancelled | stale
        self.phase = "idle"
        self.record: BatchRecord | None = None
        self._started = 0.0
        self._last_paint = 0.0

    # ------------------------------------------------------------------ layout

    def refusal(self) -> str | None:
        report = self.report
        app: Any = self.app
        if not report.complete:
            return "Validation did not finish; validate the file again."
        if report.errors_total and self.over_limits() and app.client is not None:
            # the message's first sentence: "The file has 60,000 requests; a batch takes…"
            why = f" ({report.errors[0].message.split('. ')[0]})" if report.errors else ""
            return f"This file is over one batch's limits{why}: it can run as a job of batches."
        if report.errors_total:
            first = report.errors[0] if report.errors else None
            reason = plural(report.errors_total, "error")
            if first is not None:
                reason += f"; first at line {first.line}: {first.message}"
            return f"✖ This file cannot be submitted: {reason}"
        if app.client is None:
            return (
                f"✖ Profile {app.profile.name!r} has no API key. Open settings (ctrl+p) "
                "or use the sandbox."
            )
        return None

    def over_limits(self) -> bool:
        """Only over the limits (no invalid row): its parts (a job) can go."""
        return only_over_limits(self.report)

    def compose(self) -> ComposeResult:
        report = self.report
        app: Any = self.app
        refusal = self.refusal()
        stats = report.stats
        by_count = sorted(stats.get("models", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        models = ", ".join(f"{name} ({count:,})" for name, count in by_count) or "-"
        tokens = prompt_tokens(report, self.estimate)
        endpoint = f"{report.endpoint} (detected)" if report.endpoint else "none (no request line)"
        with Vertical(id="submit-box"):
            yield Static(f"Submit {self.path.name}", markup=False, id="submit-title")
            yield Static(
                f"{plural(report.rows, 'row')} · {human_bytes(report.bytes)} · "
                f"{tokens.text} · "
                f"{plural(report.warnings_total, 'warning')}\n"
                f"{'Model' if len(by_count) == 1 else 'Models'}: {models}\n"
                f"Endpoint: {endpoint} · completion window: {COMPLETION_WINDOW} · "
                f"profile: {app.profile.name}",
                markup=False,
                id="submit-summary",
            )
            if refusal is not None:
                yield Static(
                    refusal,
                    markup=False,
                    id="submit-refusal",
                    classes="-job" if self.over_limits() else "",
                )
                job = self.over_limits() and app.client is not None
                if job:
                    yield Static(self._job_offer(), markup=False, id="submit-job-offer")
                    yield EstimateLine(self.estimate, id="submit-estimate")
                    yield Static("", markup=False, id="submit-error")
                with Horizontal(id="submit-buttons"):
                    if job:
                        yield Button(
                            "Run as a job (j)", id="submit-job", variant="primary", compact=True
                        )
                    yield Button("Close", id="submit-close-button", compact=True)
                return
            yield EstimateLine(self.estimate, id="submit-estimate")
            yield Static("Name (optional)", classes="field-label")
            # Without a name a batch is called by its file's name (BatchRecord.label).
            yield Input(compact=True, placeholder=self.path.name, id="submit-name")
            yield Static("Metadata (optional): key=value key2=value2", classes="field-label")
            yield Input(compact=True, placeholder="project=demo", id="submit-metadata")
            with Vertical(id="submit-progress-row"):
                yield ProgressBar(total=max(report.bytes, 1), show_eta=False, id="submit-progress")
                yield Static("", markup=False, id="submit-phase")
            yield Static("", markup=False, id="submit-error")
            with Horizontal(id="submit-buttons"):
                yield Button("Submit ⏎", id="submit-go", variant="primary", compact=True)
                yield Button("Cancel", id="submit-cancel", compact=True)

    def _job_settings(self) -> Any:
        from fr_tui.core.jobs_store import JobSettings

        profile: Any = self.app.profile
        return JobSettings(profile.max_rows, profile.max_bytes, profile.max_enqueued_tokens)

    def _job_offer(self) -> str:
        """What running it as a job does, said before anything is made."""
        settings = self._job_settings()
        parts, exact = settings.parts_for(self.report.rows, self.report.bytes)
        return (
            f"Run it as a job: {'' if exact else 'at least '}{plural(parts, 'part')} of at "
            f"most {settings.max_rows:,} rows, up to {plural(settings.rounds, 'round')} "
            "(failed rows go again), one merged result. Each part is a batch you pay for."
        )

    def on_mount(self) -> None:
        # The name field first: typing names the batch, and enter there submits too. A
        # job is never the default: enter closes, j or its button runs it.
        for selector in ("#submit-name", "#submit-go", "#submit-close-button"):
            found = self.query(selector)
            if found:
                found.first().focus()
                break

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#submit-go")
    @on(Input.Submitted)
    def _confirm(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        self.start_submit()

    def start_submit(self) -> None:
        if self.phase == "stale":
            self.dismiss(CHECK_AGAIN)
            return
        if self.phase in ("hashing", "checking", "uploading", "creating"):
            return
        if not self._within_budget():
            return
        try:
            metadata = parse_metadata(self.query_one("#submit-metadata", Input).value)
            check_metadata(metadata, reserved=1)  # what submit_file checks, said at once
        except ValueError as exc:  # MetadataError too
            self._show_error(str(exc))
            return
        name = self.query_one("#submit-name", Input).value.strip() or None
        self._show_error("")
        self.add_class("-busy")
        self.query_one("#submit-go", Button).disabled = True
        self.query_one("#submit-cancel", Button).label = "Cancel upload"
        self._started = time.monotonic()
        self._set_phase(SubmitPhase("hashing", 0, self.report.bytes))
        self._submit(metadata, name)

    def _within_budget(self) -> bool:
        """False while the budget check runs (it submits when done) or the user has not
        yet said yes to going over a budget (asked here)."""
        line = self.query_one("#submit-estimate", EstimateLine)
        if not line.checked:
            self._submit_when_checked = True
            return False
        if line.over_budget is None or self._over_budget_ok:
            return True
        from fr_tui.tui.modals.confirm import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                self._over_budget_ok = True
                self.start_submit()

        self.app.push_screen(
            ConfirmModal(
                "Over budget",
                f"{line.over_budget}.\n\nSubmit anyway?",
                "Submit anyway",
            ),
            answered,
        )
        return False

    @on(EstimateLine.Checked)
    def _budget_checked(self) -> None:
        if self._submit_when_checked:
            self._submit_when_checked = False
            self.start_submit()

    @work(exclusive=True, group="submit", exit_on_error=False)
    async def _submit(
        self,
        metadata: dict[str, str],
        name: str | None,
        allow_duplicate: bool = False,
        sha256: str | None = None,
    ) -> None:
        app: Any = self.app
        client = app.client
        try:
            record = await submit_file(
                client,
                app.store,
                self.path,
                profile=app.profile.name,
                endpoint=self.report.endpoint,
                metadata=metadata or None,
                name=name,
                rows=self.report.rows,
                completion_window=COMPLETION_WINDOW,
                on_phase=self._set_phase,
                allow_duplicate=allow_duplicate,
                sha256=sha256,
                estimate=self.estimate,  # kept with the batch from before the upload
                expect=self.signature,
            )
        except asyncio.CancelledError:
            self._cancelled()
            raise
        except DuplicateSubmitError as exc:
            self._ask_duplicate(exc, metadata, name)
        except FileChangedError:
            self._file_changed("nothing was uploaded")
        except (MetadataError, StoreError, UnrecordedBatchError) as exc:
            self._failed(str(exc))
        except OutcomeUnknownError as exc:
            self._failed(
                f"{exc.message} Check Batches before retrying, or the batch may run twice."
            )
        except ApiError as exc:
            self._failed(exc.message)
        except OSError as exc:
            self._failed(f"Cannot read {self.path.name}: {exc.strerror or exc}")
        else:
            self.record = record
            self.phase = "done"
            self.dismiss(record)

    def _ask_duplicate(
        self, exc: DuplicateSubmitError, metadata: dict[str, str], name: str | None
    ) -> None:
        """The same content was submitted before: nothing is uploaded unless the user says
        so (a second batch is paid for twice)."""

        def answered(again: bool | None) -> None:
            if again:
                self._submit(metadata, name, True, exc.sha256)
            else:
                self._failed("Not submitted: " + str(exc) + ".")

        body = f"{exc}.\n\nSubmit it again anyway?"
        self.app.push_screen(ConfirmModal("Submitted before", body, "Submit again"), answered)

    def _set_phase(self, phase: SubmitPhase) -> None:
        self.phase = phase.phase
        now = time.monotonic()
        if (
            phase.phase == "uploading"
            and now - self._last_paint < 0.05
            and phase.done != phase.total
        ):
            return  # progress callbacks come per 256 KB chunk; repaint at most 20 times a second
        self._last_paint = now
        label = self.query_one("#submit-phase", Static)
        bar = self.query_one("#submit-progress", ProgressBar)
        if phase.phase == "hashing":
            label.update("Checksumming…")
        elif phase.phase == "checking":
            label.update("Checking for an earlier submit of this file…")
        elif phase.phase == "uploading":
            total = phase.total or self.report.bytes
            bar.update(total=max(total, 1), progress=phase.done)
            elapsed = max(now - self._started, 1e-6)
            label.update(
                f"Uploading {human_bytes(phase.done)} of {human_bytes(total)} · "
                f"{human_bytes(phase.done / elapsed)}/s · ctrl+x or Cancel stops it"
            )
        elif phase.phase == "creating":
            bar.update(progress=bar.total)
            label.update("Uploaded. Creating the batch… (cannot be cancelled now)")
            self.query_one("#submit-cancel", Button).disabled = True

    def _failed(self, message: str) -> None:
        self.phase = "failed"
        self.remove_class("-busy")
        self._show_error(f"✖ {message}")
        go = self.query_one("#submit-go", Button)
        go.label = "Retry ⏎"
        go.disabled = False
        cancel = self.query_one("#submit-cancel", Button)
        cancel.label = "Close"
        cancel.disabled = False
        go.focus()

    def _file_changed(self, what_was_done: str) -> None:
        """The file is not what this dialog checked: its one way on is checking it again."""
        self.phase = "stale"
        self.remove_class("-busy")
        self._show_error(
            f"✖ {self.path.name} changed since it was checked; {what_was_done}. ⏎ checks it again."
        )
        for button in self.query("#submit-go, #submit-job").results(Button):
            button.label = "Check again ⏎"
            button.disabled = False
            button.focus()
        for button in self.query("#submit-cancel").results(Button):
            button.label = "Close"
            button.disabled = False

    def _cancelled(self) -> None:
        self.phase = "cancelled"
        try:
            self.remove_class("-busy")
            self._show_error("Upload cancelled; nothing was submitted.")
            go = self.query_one("#submit-go", Button)
            go.label = "Submit ⏎"
            go.disabled = False
            self.query_one("#submit-cancel", Button).label = "Close"
        except Exception:
            pass  # the modal is already gone

    def _show_error(self, text: str) -> None:
        error = self.query_one("#submit-error", Static)
        error.update(text)
        error.display = bool(text)  # no empty line in the dialog until there is an error

    @on(Button.Pressed, "#submit-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.phase in ("hashing", "checking", "uploading"):
            self.action_cancel_upload()
        elif self.phase != "creating":
            self.dismiss(None)

    def action_cancel_upload(self) -> None:
        if self.phase not in ("hashing", "checking", "uploading"):
            return
        self.workers.cancel_group(self, "submit")
        self._cancelled()

    def action_close(self) -> None:
        if self.phase in ("hashing", "checking", "uploading", "creating"):
            # A bare escape over a slow SSH link is easy to send by accident: say how.
            self.notify("The upload is running: press ctrl+x or Cancel to stop it.", timeout=3)
            return
        self.dismiss(None)

    @on(Button.Pressed, "#submit-close-button")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    @on(Button.Pressed, "#submit-job")
    def _job_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run_job()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_job":  # offered only for a file that is just over the limits
            return bool(self.query("#submit-job"))
        return True

    def action_run_job(self) -> None:
        if self.phase == "stale":
            self.dismiss(CHECK_AGAIN)
            return
        problem = costs(self.app).budget_problem(self.estimate) if self.estimate else None
        if problem is None:
            self._run_as_job()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_as_job()

        body = f"{problem}.\n\nRun it as a job anyway?"
        self.app.push_screen(ConfirmModal("Over budget", body, "Run anyway"), answered)

    @work(exclusive=True, group="submit-job", exit_on_error=False)
    async def _run_as_job(self, again: bool = False) -> None:
        """Make the job in history; the app's job driver plans and runs it from there. A
        file that ran as a job before is asked about first (`again`: the user said yes),
        as `run` refuses it without --new: every row would be paid for again."""
        from fr_tui.core.jobs_store import Job, JobStore, new_job_id
        from fr_tui.core.workflow import signed_sha256
        from fr_tui.tui.job_rows import job_key
        from fr_tui.tui.messages import JobsChanged

        app: Any = self.app
        client = app.client
        try:
            sha, signature = await asyncio.to_thread(signed_sha256, self.path)
        except OSError as exc:
            self.notify(f"Cannot read {self.path.name}: {exc.strerror or exc}", severity="error")
            return
        if self.signature is not None and signature != self.signature:
            # what this dialog says of it is stale: a job of it would fail at once
            self._file_changed("no job was made")
            return
        jobs = JobStore(app.store)
        earlier = jobs.with_content(client.origin, sha)
        running = [j for j in earlier if not j.terminal]
        if running:
            job = running[0]
            self.notify(f"{self.path.name} already runs as job {job.id}.", title="Job")
        elif earlier and not again:
            last = earlier[0]
            made = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.created_at))
            body = (
                f"{self.path.name} ran as job {last.id} ({last.status}, made {made}). A new "
                "job runs every row again, and each is paid for again.\n\nRun it again?"
            )

            def answered(yes: bool | None) -> None:
                if yes:
                    self._run_as_job(again=True)

            self.app.push_screen(ConfirmModal("Ran before", body, "Run again"), answered)
            return
        else:
            profile = app.profile
            job = Job(
                id=new_job_id(),
                origin=client.origin,
                input_path=str(self.path.resolve()),
                input_sha256=sha,
                settings=self._job_settings(),
                profile=profile.name,
                base_url=None if app.is_sandbox else client.base_url,
                input_bytes=signature.size,
                input_mtime_ns=signature.mtime_ns,
                input_inode=signature.inode,
                endpoint=self.report.endpoint,
                estimate_low=self.estimate.cost_low if self.estimate else None,
                estimate_high=self.estimate.cost_high if self.estimate else None,
            )
            await asyncio.to_thread(jobs.add, job)
            self.notify(
                f"Job {job.id}: {plural(self.report.rows, 'row')} in parts of at most "
                f"{profile.max_rows:,}; it runs while fr-tui is open.",
                title="Job made",
            )
        app.jobs_driver.kick()
        app.broadcast(JobsChanged([job.id]))
        self.dismiss(None)
        app.open_batches(select=job_key(job.id))
