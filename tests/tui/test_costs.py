"""Issue 12 in the TUI, on the embedded sandbox: the Files screen's cost range and model
checks, the submit modal's estimate (red and asking when over a budget), the actual
cost in the Results header and the Batches screen's spend line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any

from textual.widgets import Static

from fr_tui.core.costlog import batch_costs
from fr_tui.core.units import human_count, money
from fr_tui.sandbox.catalog import MODELS
from fr_tui.tui.modals.confirm import ConfirmModal
from fr_tui.tui.modals.submit import SubmitModal
from fr_tui.tui.screens.results import ResultsScreen
from fr_tui.tui.widgets.cost_lines import EstimateLine, SpendLine

from .test_shell import SAMPLES, make_app, screen_text, wait_for


def chat_sample_cost() -> Decimal:
    """The chat sample's cost, worked out from the sandbox's price table: each row's
    prompt at a token per started four characters, 3 tokens per message and 3 per request
    (core/tokens.py), and its max_tokens, at half the list price."""
    total = Decimal(0)
    for line in (SAMPLES / "chat.jsonl").read_text().splitlines():
        body = json.loads(line)["body"]
        model = MODELS[body["model"]]
        messages = body["messages"]
        chars = sum(len(m["content"]) for m in messages)
        prompt = -(-chars // 4) + 3 * len(messages) + 3
        total += (prompt * model.input_price + body["max_tokens"] * model.output_price) / 2
    return total


async def validated(pilot: Any, app: Any) -> Any:
    await wait_for(pilot, lambda: getattr(app.screen, "run", None) is not None)
    await wait_for(pilot, lambda: app.screen.run.finished and app.screen.run.handled)
    await pilot.pause()
    return app.screen


async def test_files_shows_the_cost_range_and_checks_models() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await validated(pilot, app)
        summary = str(app.screen.query_one("#summary", Static).render())
        # no batch has ended yet: the figure is the max_tokens bound, and says so
        assert f"est. ≤{money(chat_sample_cost())} (batch -50%)" in summary
        app.screen.open_path(SAMPLES / "broken.jsonl")
        await wait_for(pilot, lambda: app.screen.current_path.name == "broken.jsonl")
        await validated(pilot, app)
        codes = [p.code for p in app.screen.panel.problems]
        assert "unknown_model" in codes  # "gpt-4.1-nano" has no provider prefix
        assert any(
            "Did you mean openai/gpt-4.1-nano" in p.message for p in app.screen.panel.problems
        )


async def open_submit(pilot: Any, app: Any) -> SubmitModal:
    await validated(pilot, app)
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, SubmitModal))
    modal = app.screen
    await wait_for(pilot, lambda: modal.query_one(EstimateLine).checked)
    await pilot.pause()
    return modal


async def test_over_budget_is_red_and_asks_before_uploading() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    app.config.profile("sandbox").max_cost_per_batch = Decimal("0.001")
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_submit(pilot, app)
        line = modal.query_one(EstimateLine)
        assert line.has_class("-over") and "over the budget of $0.001" in str(line.render())
        await pilot.press("enter")  # from the name field
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        # back at the modal, with no submit started
        await wait_for(pilot, lambda: app.screen is modal and modal.phase == "idle")
        assert not [w for w in app.workers if w.group == "submit"]
        assert app.store.batches() == [] and app.sandbox_server.app.store.files == {}
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.store.batches())
        record = app.store.batches()[0]
        key = (record.origin, record.id)
        await wait_for(pilot, lambda: batch_costs(app.store, [key]))
        kept = batch_costs(app.store, [key])[key]
        assert sum(r.est_cost_high for r in kept) == chat_sample_cost()


async def test_within_budget_submits_at_once_then_results_and_spend_show_the_cost() -> None:
    app = make_app(sandbox=True, sandbox_tick=0.02, start_path=SAMPLES / "chat.jsonl")
    app.config.profile("sandbox").max_cost_per_batch = Decimal(1)
    async with app.run_test(size=(120, 40)) as pilot:
        modal = await open_submit(pilot, app)
        assert not modal.query_one(EstimateLine).has_class("-over")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.store.batches())
        record = app.store.batches()[0]
        await wait_for(pilot, lambda: app.store.get("sandbox", record.id).status == "completed", 20)
        app.open_results(record.id)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined)
        await wait_for(pilot, lambda: app.screen.cost_text is not None)  # after the rows
        summary = str(app.screen.query_one("#results-summary", Static).render())
        assert f"estimate {money(chat_sample_cost())}" in summary
        key = (record.origin, record.id)
        actual = sum((r.actual_cost for r in batch_costs(app.store, [key])[key]), Decimal(0))
        assert actual > 0 and f"cost {money(actual)} (openai " in summary
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ResultsScreen))
        spend = app.screen.query_one(SpendLine)
        spend.refresh_spend()
        expected = f"spend today {money(actual)}"
        await wait_for(pilot, lambda: expected in str(spend.render()))
        assert "(sandbox)" in str(spend.render())


def shown_token_counts(text: str) -> set[str]:
    return set(re.findall(r"~([\d.,]+[kM]?) (?:input tokens|tokens|in\b)", text))


async def test_files_and_submit_show_one_prompt_token_count_corrected_by_past_batches() -> None:
    # A finished batch of the file, its results read, teaches a correction: the sandbox
    # counts Anthropic prompts with a tokenizer that finds more tokens than the estimate.
    cli = [sys.executable, "-m", "fr_tui", "--sandbox"]
    done = subprocess.run(
        [
            *cli,
            "submit",
            str(SAMPLES / "chat.jsonl"),
            "--wait",
            "--poll-interval",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    batch_id = json.loads(done.stdout)["batch_id"]
    read = subprocess.run([*cli, "results", batch_id], capture_output=True, text=True, timeout=90)
    assert read.returncode == 0, read.stderr

    app = make_app(sandbox=True, sandbox_tick=0.05, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        files = await validated(pilot, app)
        summary = str(files.query_one("#summary", Static).render())
        assert "✔ valid" in screen_text(app)  # the longer token text leaves the verdict in view
        modal = await open_submit(pilot, app)
        corrected = modal.estimate.input_tokens
        assert corrected != modal.report.stats["est_input_tokens"]  # a correction applies
        shown = human_count(corrected)
        modal_text = "\n".join(
            str(modal.query_one(selector, Static).render())
            for selector in ("#submit-summary", "#submit-estimate")
        )
        for text in (summary, modal_text):
            assert shown_token_counts(text) == {shown}, text
            assert re.search(rf"~{shown} (input )?tokens \(corrected", text), text


async def finished_batch(pilot: Any, app: Any, name: str) -> Any:
    """A batch of the sample `name`, submitted and run to its end on the app's sandbox."""
    from fr_tui.core.prepare import prepare_submit
    from fr_tui.core.workflow import poll_batch, submit_file
    from fr_tui.tui.costs import costs

    prepared = prepare_submit(SAMPLES / name, costs(app).basis())  # the estimate, as a submit
    record = await submit_file(
        app.client, app.store, SAMPLES / name, profile="sandbox", estimate=prepared.estimate
    )
    for _ in range(500):
        batch, _ = await poll_batch(app.client, app.store, record.id)
        if batch.terminal:
            return app.store.get(record.origin, record.id)
        await pilot.pause(0.02)
    raise AssertionError("the sandbox batch did not finish")


async def test_a_retry_is_estimated_and_held_to_the_budgets_like_a_submit() -> None:
    """`R` goes through the step every submit does: over a budget of the batch's profile
    it asks first (nothing is submitted on a no), and a retry that goes ahead keeps its
    estimate (spend's running figure, the daily budget)."""
    from fr_tui.tui.modals.retry import RetryModal

    app = make_app(sandbox=True, sandbox_tick=0.02)
    async with app.run_test(size=(80, 24)) as pilot:
        parent = await finished_batch(pilot, app, "server_fails.jsonl")
        made = len(app.sandbox_server.app.store.batches)
        app.config.profile("sandbox").max_cost_per_batch = Decimal("0.0000001")

        async def retry_until_asked() -> ConfirmModal:
            app.push_screen(RetryModal(parent))
            await wait_for(pilot, lambda: getattr(app.screen, "phase", "") == "ready")
            # what the chosen rows may cost (the parent's estimate per row), before any write
            preview = app.screen.query_one("#retry-preview", Static)
            await wait_for(pilot, lambda: "About $" in str(preview.render()))
            await pilot.press("enter")  # the Retry button has focus
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
            return app.screen

        asked = await retry_until_asked()
        body = str(asked.query_one("#confirm-body", Static).render())
        assert "estimated at ≤$" in body and "max_cost_per_batch" in body, body
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, (ConfirmModal, RetryModal)))
        assert len(app.sandbox_server.app.store.batches) == made  # nothing submitted
        assert [r.id for r in app.store.batches()] == [parent.id]

        await retry_until_asked()
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.store.batches()) == 2)
        child = next(r for r in app.store.batches() if r.id != parent.id)
        assert child.parent_batch_id == parent.id
        kept = batch_costs(app.store, [(child.origin, child.id)])[(child.origin, child.id)]
        assert all(r.has_estimate for r in kept) and sum(r.rows for r in kept) == 3


def test_a_batchs_cost_rests_on_its_own_server_and_profile(fr_home: Any, tmp_path: Any) -> None:
    """The Results header prices rows without usage.cost for the batch's own server (its
    catalog) and profile (its batch_discount), whichever profile is active."""
    from fr_tui.core.records import BatchRecord
    from fr_tui.core.results import join_results
    from fr_tui.tui.costs import costs

    config = fr_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'active_profile = "a"\n'
        '[profiles.a]\nbase_url = "https://a.example"\napi_key = "sk-a"\nbatch_discount = 0.5\n'
        '[profiles.b]\nbase_url = "https://B.example:443"\napi_key = "sk-b"\nbatch_discount = 0\n'
        '[prices."test/priced"]\ninput = 1.0\noutput = 2.0\n'
    )
    body = {"model": "test/priced", "messages": [{"role": "user", "content": "hi"}]}
    request = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": body}
    answer = {"model": "test/priced", "choices": [{"message": {"content": "hi"}}]}
    answer["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500}  # no cost
    result = {"custom_id": "r1", "response": {"status_code": 200, "body": answer}, "error": None}
    (tmp_path / "in.jsonl").write_text(json.dumps(request) + "\n")
    (tmp_path / "out.jsonl").write_text(json.dumps(result) + "\n")
    app = make_app()
    batch_of_b = BatchRecord(id="batch-1", status="completed", origin="https://b.example")
    with join_results(tmp_path / "in.jsonl", tmp_path / "out.jsonl", None) as joined:
        text = costs(app).result_cost_text(batch_of_b, joined)
    # (1000 x $1 + 500 x $2) per million tokens, and profile b takes nothing off
    assert text is not None and text.startswith("cost $0.002"), text


async def test_past_results_show_their_rows_before_their_cost(monkeypatch: Any) -> None:
    """The cost walks every row (seconds at a million): the rows come first, the cost
    joins the header when it is ready."""
    import threading

    from fr_tui.tui.costs import CostService

    release = threading.Event()
    real = CostService.result_cost_text

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CostService, "result_cost_text", held)
    app = make_app(sandbox=True, sandbox_tick=0.02)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            record = await finished_batch(pilot, app, "chat.jsonl")
            app.open_results(record.id)

            def summary() -> str:
                return str(app.screen.query_one("#results-summary", Static).render())

            await wait_for(
                pilot,
                lambda: isinstance(app.screen, ResultsScreen) and app.screen.joined is not None,
            )
            assert "✓ 12 ok" in summary() and "cost" not in summary()
            release.set()
            await wait_for(pilot, lambda: "cost $" in summary())
    finally:
        release.set()


async def test_the_spend_line_shows_whole_at_80_columns() -> None:
    """Today, this week, what is running and whose profile it is, all in view at 80
    columns; a bound is written once ("≤$0.014", never "≤<$0.000001")."""
    from fr_tui.core.prepare import prepare_submit
    from fr_tui.core.workflow import submit_file
    from fr_tui.tui.costs import costs

    app = make_app(sandbox=True, sandbox_tick=0.02)
    async with app.run_test(size=(80, 24)) as pilot:
        await finished_batch(pilot, app, "chat.jsonl")  # today's spend
        tiny = SAMPLES / "embeddings.jsonl"  # estimated under a millionth of a dollar
        prepared = prepare_submit(tiny, costs(app).basis())
        await submit_file(
            app.client, app.store, tiny, profile="sandbox",
            metadata={"sandbox_fault": "hang_validating"}, estimate=prepared.estimate,
        )  # fmt: skip
        await pilot.press("2")
        spend = app.screen.query_one(SpendLine)
        spend.refresh_spend()
        await wait_for(pilot, lambda: "running" in str(spend.render()))
        text = str(spend.render())
        assert "1 running <$0.000001" in text and "sandbox" in text and "≤<" not in text, text
        await pilot.pause()
        assert text in screen_text(app), screen_text(app)


async def test_a_finished_batch_teaches_the_next_estimate_without_opening_its_results() -> None:
    """The first estimate of a file counts every row's max_tokens (nothing to learn from
    yet); once a batch of it has finished and its results are downloaded, the next
    estimate is a range whose low end is the output the model really gave, with no
    Results screen opened and no restart."""
    from fr_tui.core.costlog import model_history

    app = make_app(sandbox=True, sandbox_tick=0.02, start_path=SAMPLES / "chat.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        modal = await open_submit(pilot, app)
        first = modal.estimate
        assert first.cost_low == first.cost_high  # max_tokens alone: one figure
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.store.batches())
        record = app.store.batches()[0]
        models = [m.model for m in first.models]
        # finished, downloaded by the poller, and its actuals kept in history
        await wait_for(pilot, lambda: model_history(app.store, models, "sandbox"), 30)
        assert not isinstance(app.screen, ResultsScreen)
        assert app.store.get(record.origin, record.id).output_path
        app.open_file(SAMPLES / "chat.jsonl")
        again = await open_submit(pilot, app)
        assert again.estimate.cost_low < first.cost_low  # the sandbox answers briefly
        assert all(m.expected_from == "history" for m in again.estimate.models)
