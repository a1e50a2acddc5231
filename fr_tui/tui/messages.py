"""App-wide messages. The batch poller posts these to the App, which forwards them to
every screen that wants them (see FrTuiApp.broadcast)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from fr_tui.core.store import BatchRecord


@dataclass
class BatchesChanged(Message):
    """History rows changed (polled, submitted, imported): ids of the changed batches."""

    ids: list[str]


@dataclass
class BatchFinished(Message):
    """A batch reached a terminal state during this session."""

    record: BatchRecord
    old_status: str | None


@dataclass
class PollStatus(Message):
    """After each poll round: whether it went well, when, and the last error."""

    ok: bool
    at: float
    error: str | None = None
    paused: bool = False


@dataclass
class JobsChanged(Message):
    """Jobs moved on (a step of their driver, a cancel, a new job): their ids."""

    ids: list[str]
