"""Issue 11: jobs, run as a user runs them (`fr-tui run`, `jobs`, `job ...`) against the
sandbox over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fault_helpers import run
from job_helpers import (
    job_batches_on_server,
    jobs_in_history,
    merged_lines,
    parts_in_history,
    slots_of,
    write_input,
)

FAST = ("--poll-interval", "0.02")


def run_job(sandbox: Any, home: Path, *args: str) -> Any:
    return run("--base-url", sandbox.base_url, "run", *args, *FAST, home=home, timeout=120)


def test_a_flaky_12000_row_job_in_3_parts_ends_with_every_row_ok(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "big.jsonl", 12_000, "sandbox/flaky-20")
    done = run_job(sandbox, fr_home, str(path), "--max-rows", "4000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert (result["parts"], result["rounds"]) == (3, 2)  # the flaky rows came back once
    assert (result["total"], result["ok"], result["failed"], result["missing"]) == (
        12_000,
        12_000,
        0,
        0,
    )
    lines = merged_lines(result["output_path"])
    assert [line["custom_id"] for line in lines] == [f"row-{i:05d}" for i in range(12_000)]
    assert {line["outcome"] for line in lines} == {"ok"}
    second = [line for line in lines if line["round"] == 2]
    assert 1_500 < len(second) < 3_300  # about a fifth failed the first time
    assert all(line["response"]["status_code"] == 200 for line in second)
    # one batch per part and round on the server, each listed in the job's batches
    on_server = job_batches_on_server(sandbox.base_url, result["job_id"])
    assert len(on_server) == len(slots_of(fr_home, result["job_id"])) == 4
    assert sorted(b["id"] for b in on_server) == sorted(result["batches"])
    # the progress line went to stderr; stdout is the one JSON document
    assert "round 2" in done.stderr and "in flight" in done.stderr


def test_run_again_resumes_nothing_and_prints_the_summary(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "small.jsonl", 30, "openai/gpt-4.1-nano")
    first = run_job(sandbox, fr_home, str(path), "--max-rows", "10", "--json")
    assert first.returncode == 0, first.stderr
    again = run_job(sandbox, fr_home, str(path), "--rounds", "5", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["job_id"] == json.loads(first.stdout)["job_id"]
    assert "ran as" in again.stderr and "--new" in again.stderr
    # flags a finished job does not take are said, not ignored in silence
    assert "keeps its own settings (--max-rows 10, --rounds 3)" in again.stderr
    assert len(job_batches_on_server(sandbox.base_url, json.loads(first.stdout)["job_id"])) == 3
    fresh = run_job(sandbox, fr_home, str(path), "--new", "--json")
    assert json.loads(fresh.stdout)["job_id"] != json.loads(first.stdout)["job_id"]
    assert len(jobs_in_history(fr_home)) == 2


def test_permanent_failures_are_not_retried_and_the_summary_says_why(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    write_input(tmp_path / "ok.jsonl", 8, "openai/gpt-4.1-nano")
    write_input(tmp_path / "bad.jsonl", 3, "sandbox/fail-400")
    write_input(tmp_path / "gone.jsonl", 2, "sandbox/fail-503")
    rows = []
    for name in ("ok", "bad", "gone"):
        for line in (tmp_path / f"{name}.jsonl").read_text().splitlines():
            request = json.loads(line)
            request["custom_id"] = f"{name}-{request['custom_id']}"
            rows.append(json.dumps(request))
    path.write_text("\n".join(rows) + "\n")
    done = run_job(sandbox, fr_home, str(path), "--rounds", "2")
    assert done.returncode == 4, done.stderr  # finished, with rows not ok
    assert "8 ok, 5 failed, 0 missing" in done.stdout
    assert "3 invalid_request (not retried)" in done.stdout
    assert "2 server_error (still failing after 2 rounds)" in done.stdout
    status = run("job", "status", jobs_in_history(fr_home)[0]["id"], "--json", home=fr_home)
    assert json.loads(status.stdout)["left"] == {"invalid_request": 3, "server_error": 2}


def test_retry_kinds_choose_what_is_retried(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    path = write_input(tmp_path / "bad.jsonl", 4, "sandbox/fail-400")
    done = run_job(sandbox, fr_home, str(path), "--retry-kinds", "invalid_request", "--json")
    assert done.returncode == 4
    assert json.loads(done.stdout)["rounds"] == 3  # retried each round, failing each time
    wrong = run_job(sandbox, fr_home, str(path), "--retry-kinds", "flaky", "--new")
    assert wrong.returncode == 2 and "unknown retry kind 'flaky'" in wrong.stderr
    assert "server_error" in wrong.stderr  # the accepted names are listed


def test_a_budget_refusal_uploads_nothing(sandbox: Any, tmp_path: Path, fr_home: Path) -> None:
    path = write_input(tmp_path / "big.jsonl", 200, "openai/gpt-4.1-nano")
    done = run_job(sandbox, fr_home, str(path), "--max-cost", "0.000001")
    assert done.returncode == 1
    assert "over the budget" in done.stderr and "nothing was uploaded" in done.stderr
    assert sandbox.app.store.files == {} and sandbox.app.store.batches == {}
    assert jobs_in_history(fr_home) == []
    assert job_folders(fr_home) == []  # the parts planned while it was checked are gone


def test_an_invalid_file_is_refused_before_anything_is_made(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 5, "openai/gpt-4.1-nano")
    path.write_text(path.read_text() + "{not json\n")
    done = run_job(sandbox, fr_home, str(path))
    assert done.returncode == 1 and "line 6" in done.stderr
    assert sandbox.app.store.files == {} and jobs_in_history(fr_home) == []
    assert job_folders(fr_home) == []
    assert "fr-tui validate" in done.stderr
    # a row no part can hold: validate would call the file valid, so it is not suggested
    path = write_input(tmp_path / "long.jsonl", 3, "openai/gpt-4.1-nano")
    done = run_job(sandbox, fr_home, str(path), "--max-enqueued-tokens", "5")
    assert done.returncode == 1 and "cannot run as a job: 3 rows no part can hold" in done.stderr
    assert "fr-tui validate" not in done.stderr and "--max-enqueued-tokens" in done.stderr
    assert jobs_in_history(fr_home) == []
    # a per-model limit for a model no row uses (a typo) is said; the job runs
    done = run_job(sandbox, fr_home, str(path), "--max-enqueued-tokens", "openai/gpt-4.1-nan=9")
    assert done.returncode == 0, done.stderr
    assert "names openai/gpt-4.1-nan, which no row of" in done.stderr


def job_folders(home: Path) -> list[str]:
    folder = home / "data" / "jobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_new_job_is_planned_while_it_is_checked_and_a_dead_runs_staging_goes(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    # what a run killed while it planned a new job leaves (its pid is long gone)
    dead = fr_home / "data" / "jobs" / ".new-job-20260101-dead00-999999999"
    (dead / "round-1" / "parts").mkdir(parents=True)
    path = write_input(tmp_path / "in.jsonl", 90, "openai/gpt-4.1-nano")
    done = run_job(sandbox, fr_home, str(path), "--max-rows", "40", "--json")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["job_id"]
    assert job_folders(fr_home) == [job_id]
    manifest = json.loads(
        (fr_home / "data" / "jobs" / job_id / "round-1" / "plan.json").read_text()
    )
    assert [part["rows"] for part in manifest["parts"]] == [40, 40, 10]
    assert [p["rows"] for p in parts_in_history(fr_home, job_id)] == [40, 40, 10]


def test_job_commands_show_status_results_and_export_csv(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 25, "openai/gpt-4.1-nano")
    done = run_job(sandbox, fr_home, str(path), "--max-rows", "10", "-o", str(tmp_path / "m.jsonl"))
    assert done.returncode == 0, done.stderr
    job_id = jobs_in_history(fr_home)[0]["id"]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 25
    status = json.loads(run("job", "status", job_id, "--json", home=fr_home).stdout)
    assert set(status) >= {
        "job_id",
        "status",
        "parts",
        "rounds",
        "batches",
        "total",
        "ok",
        "failed",
        "missing",
        "output_path",
    }
    assert (status["status"], status["parts"], len(status["batches"])) == ("completed", 3, 3)
    # in words, part by part: rows, state, its batch and what came back
    said = run("job", "status", job_id, home=fr_home).stdout.splitlines()
    parts = [line.split() for line in said if line.strip().startswith("round ")]
    assert [(p[1], p[3], p[4], p[6], p[8]) for p in parts] == [
        ("1", "1", "10", "done", "completed"),
        ("1", "2", "10", "done", "completed"),
        ("1", "3", "5", "done", "completed"),
    ]
    assert {p[7] for p in parts} == set(status["batches"])
    assert [" ".join(p[9:]) for p in parts] == ["✓ 10 ✗ 0 ? 0"] * 2 + ["✓ 5 ✗ 0 ? 0"]
    listed = json.loads(run("jobs", "--json", home=fr_home).stdout)
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    out = tmp_path / "rows.csv"
    results = run("job", "results", job_id, "-o", str(out), "--json", home=fr_home)
    assert results.returncode == 0, results.stderr
    assert json.loads(results.stdout)["exported"] == 25
    csv_lines = out.read_text().splitlines()
    assert csv_lines[0].startswith("custom_id,") and len(csv_lines) == 26
    assert csv_lines[1].startswith("row-00000,")
    cancel = run("job", "cancel", job_id, home=fr_home)
    assert cancel.returncode == 0 and "nothing to cancel" in cancel.stdout


def test_the_parts_follow_the_enqueued_token_limit_when_one_is_given(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    from fr_tui.core.tokens import estimate_prompt_tokens

    path = write_input(tmp_path / "in.jsonl", 40, "openai/gpt-4.1-nano")
    body = json.loads(path.read_text().splitlines()[0])["body"]
    per_row = estimate_prompt_tokens(body, "/v1/chat/completions")
    done = run_job(sandbox, fr_home, str(path), "--max-enqueued-tokens", str(per_row * 10 + 5))
    assert done.returncode == 0, done.stderr
    job_id = jobs_in_history(fr_home)[0]["id"]
    parts = parts_in_history(fr_home, job_id)
    assert len(parts) >= 4 and all(p["tokens"] <= per_row * 10 + 5 for p in parts)


def test_compare_takes_job_ids_beside_batch_ids(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    # the same sums asked of two models, as two jobs, and once more as a plain batch
    nano = write_input(tmp_path / "nano.jsonl", 25, "openai/gpt-4.1-nano")
    mini = write_input(tmp_path / "mini.jsonl", 25, "openai/gpt-4.1-mini")
    for path in (nano, mini):
        done = run_job(sandbox, fr_home, str(path), "--max-rows", "10")
        assert done.returncode == 0, done.stderr
    by_input = {Path(j["input_path"]).name: j["id"] for j in jobs_in_history(fr_home)}
    submitted = run(
        *("--base-url", sandbox.base_url, "submit", str(nano), "--wait", "--json"),
        *("--force", "--poll-interval", "0.02"),
        home=fr_home,
    )
    assert submitted.returncode == 0, submitted.stderr
    batch_id = json.loads(submitted.stdout)["batch_id"]

    def compare(a: str, b: str) -> dict[str, Any]:
        done = run("--base-url", sandbox.base_url, "compare", a, b, "--json", home=fr_home)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    # every model gets a sum right: two jobs on two models agree on every row
    jobs = compare(by_input["nano.jsonl"], by_input["mini.jsonl"])
    assert (jobs["both"], jobs["only_a"], jobs["only_b"]) == (25, 0, 0)
    assert (jobs["same"], jobs["different"], jobs["agreement"]) == (25, 0, 1)
    assert jobs["a_stats"]["ok"] == jobs["b_stats"]["ok"] == 25
    # a job and a batch of the same file: the job's merged rows against the batch's
    mixed = compare(by_input["nano.jsonl"], batch_id)
    assert (mixed["both"], mixed["same"]) == (25, 25)
    unknown = run("compare", "job-nope", batch_id, home=fr_home)
    assert unknown.returncode == 2 and "no batch or job job-nope" in unknown.stderr


def test_a_batch_a_job_made_is_not_resubmitted_by_retry_without_force(
    sandbox: Any, tmp_path: Path, fr_home: Path
) -> None:
    path = write_input(tmp_path / "in.jsonl", 60, "sandbox/flaky-30")
    result = json.loads(run_job(sandbox, fr_home, str(path), "--max-rows", "30", "--json").stdout)
    first = result["batches"][0]  # its flaky rows went into round 2 and came back ok
    made = len(job_batches_on_server(sandbox.base_url, result["job_id"]))
    refused = run("--base-url", sandbox.base_url, "retry", first, "--submit", home=fr_home)
    assert refused.returncode == 1
    assert f"it is a batch of job {result['job_id']}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(job_batches_on_server(sandbox.base_url, result["job_id"])) == made
    forced = run(
        "--base-url",
        sandbox.base_url,
        "retry",
        first,
        "--submit",
        "--force",
        "--json",
        home=fr_home,
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["batch_id"]


def test_sandbox_flag_uses_the_sandbox_profiles_limits(tmp_path: Path, fr_home: Path) -> None:
    # --sandbox is the sandbox profile, as in the TUI: its limits decide what is over them
    config = fr_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[profiles.sandbox]\nbase_url = "sandbox"\nmax_rows = 10\n')
    config.chmod(0o600)
    path = write_input(tmp_path / "in.jsonl", 25, "openai/gpt-4.1-nano")
    checked = run("--sandbox", "validate", str(path), "--json", home=fr_home)
    assert checked.returncode == 1, checked.stdout
    assert json.loads(checked.stdout)["valid"] is False
    done = run("--sandbox", "run", str(path), *FAST, "--json", home=fr_home, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parts"] == 3  # parts of at most 10 rows
