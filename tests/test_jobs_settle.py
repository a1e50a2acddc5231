"""Issue 11: a part whose create got no clear answer is never created twice. The job
looks the batch up on the server; while the server does not list it, the part waits (the
server may still be making it), and only once reconcile.SETTLE_SECONDS have passed with
a complete listing that has no such batch is the part created again, once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fault_helpers import KEY
from job_helpers import job_batches_on_server, make_job, write_input

from fr_tui.core.api import BatchClient
from fr_tui.core.intents import NOT_CREATED, UNKNOWN, IntentLog
from fr_tui.core.jobs import JobEngine
from fr_tui.core.jobs_store import COMPLETED, PART_PENDING, JobStore
from fr_tui.core.paths import get_paths
from fr_tui.core.reconcile import SETTLE_SECONDS

NO_ANSWER = {"status": 500, "count": 1, "path_prefix": "/v1/batches", "methods": ["POST"]}


def test_a_create_without_an_answer_is_made_again_only_after_the_settle_time(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 5, "openai/gpt-4.1-nano")
    store, job = make_job(path, max_rows=100)
    now = [time.time()]
    sandbox.set_faults(NO_ANSWER)  # the server made nothing, and said only "500"

    async def drive() -> list[list[str]]:
        notes = []
        async with BatchClient(sandbox.base_url, KEY, origin="sandbox") as client:
            engine = JobEngine(client, store, get_paths(), job.id, clock=lambda: now[0])
            await engine.advance()  # plan
            notes.append((await engine.advance()).notes)  # the create: no clear answer
            notes.append((await engine.advance()).notes)  # looked up: not listed yet
            [intent] = IntentLog(store).for_job(job.id)
            assert intent.state == UNKNOWN
            assert JobStore(store).parts(job.id)[0].state == PART_PENDING
            assert job_batches_on_server(sandbox.base_url, job.id) == []

            now[0] += SETTLE_SECONDS + 1
            for _ in range(2_000):
                step = await engine.advance()
                if step.job.terminal:
                    break
                if not step.progressed:
                    await asyncio.sleep(0.01)
            assert step.job.status == COMPLETED, step
        return notes

    notes = asyncio.run(drive())
    assert any("no clear answer" in n for n in notes[0])
    assert any("not listed by the server yet" in n for n in notes[1])
    states = [i.state for i in IntentLog(store).for_job(job.id)]
    assert states[0] == NOT_CREATED and len(states) == 2
    assert len(job_batches_on_server(sandbox.base_url, job.id)) == 1
    assert JobStore(store).get(job.id).ok == 5
