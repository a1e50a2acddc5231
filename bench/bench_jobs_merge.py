"""A job's merge at dataset scale (issue 11): the merged file of a 1,000,000-row job, in
input order, from the stored results index of each of its batches.

The job (generated once into bench/data/jobs-merge-<rows>/): round 1 in parts of 50,000
rows, 94% answered ok, 6% failed with a retried kind (batch_expired, 429); round 2 the
failed rows (scattered over the input), all ok. In fresh processes:

  1. the results index of every part's batch is built (the stored join; its budget is
     bench_results_index.py's), reported for context;
  2. the merge: JobEngine.write_merged, with the indexes there (what a job does once its
     last round ended); time and peak RSS;
  3. the baseline: a bare loop that reads every result file line by line, msgspec-decodes
     each line and writes it out again (the same bytes in, about the same out).

Budget: the merge's peak RSS under 300 MB (memory must not grow with the answers:
arrays keyed by input row, answers read by offset). The time ratio to the baseline is
printed beside. Medians of --runs.

    python bench/bench_jobs_merge.py [--rows 1000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_results import make_error, make_input, make_ok  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
JOB_ID = "job-bench-merge"
PART_ROWS = 50_000

INDEXES = """
import sys, time
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.jobs_store import JobStore
from fr_tui.core.jobs_rows import open_part
start = time.perf_counter()
store = HistoryStore(get_paths().history_db)
job_dir = get_paths().jobs_dir / sys.argv[1]
for part in JobStore(store).parts(sys.argv[1]):
    open_part(job_dir, part, store.get("sandbox", part.batch_id)).joined.close()
print(time.perf_counter() - start)
"""
MERGE = """
import sys, time
from fr_tui.core.paths import get_paths
from fr_tui.core.store import HistoryStore
from fr_tui.core.jobs import JobEngine
start = time.perf_counter()
store = HistoryStore(get_paths().history_db)
engine = JobEngine(None, store, get_paths(), sys.argv[1])
state = engine.write_merged(engine.job(), get_paths().data_dir / "merged.jsonl")
assert state.counts()["ok"] == state.rows, state.counts()
print(time.perf_counter() - start)
"""
BASELINE = """
import sys, time, msgspec
encode, decode = msgspec.json.encode, msgspec.json.decode
start = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            for line in f:
                out.write(encode(decode(line)) + b"\\n")
print(time.perf_counter() - start)
"""


def _write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.writelines(line + b"\n" for line in lines)


def generate(rows: int) -> Path:
    """The job's folder and its batches' result files (made once, then reused)."""
    folder = DATA / f"jobs-merge-{rows}"
    done = folder / "complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rnd = random.Random(11)
    retried: list[int] = []
    for number, start in enumerate(range(0, rows, PART_ROWS), 1):
        chosen = range(start, min(rows, start + PART_ROWS))
        _write(folder / f"round-1/parts/part-{number:05d}.jsonl", [make_input(i) for i in chosen])
        failed = [i for i in chosen if rnd.random() < 0.06]
        skip = set(failed)
        ok = [i for i in chosen if i not in skip]
        rnd.shuffle(ok)
        retried += failed
        results = folder / "results" / f"r1-p{number:05d}"
        _write(results / "output.jsonl", [make_ok(i) for i in ok])
        _write(results / "errors.jsonl", [make_error(i) for i in failed])
    _write(folder / "round-2/input/input.jsonl", [make_input(i) for i in retried])
    (folder / "round-2/input/rows.bin").write_bytes(array("q", retried).tobytes())
    (folder / "round-2/plan").mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "round-2/input/input.jsonl", folder / "round-2/plan/part-00001.jsonl")
    again = list(retried)
    rnd.shuffle(again)
    _write(folder / "results/r2-p00001/output.jsonl", [make_ok(i) for i in again])
    (folder / "retried").write_text(str(len(retried)))
    done.write_text("ok")
    return folder


def make_history(folder: Path, rows: int) -> list[str]:
    """The job in a fresh history (FR_TUI_HOME), its folder linked under jobs/; returns
    the result files (for the baseline)."""
    from fr_tui.core.jobs_store import MERGING, Job, JobPart, JobSettings, JobStore
    from fr_tui.core.models import Batch
    from fr_tui.core.paths import get_paths
    from fr_tui.core.store import HistoryStore

    paths = get_paths().ensure()
    paths.jobs_dir.mkdir(parents=True, exist_ok=True)
    (paths.jobs_dir / JOB_ID).symlink_to(folder)
    store = HistoryStore(paths.history_db)
    jobs = JobStore(store)
    settings = JobSettings(PART_ROWS, 1 << 40)
    jobs.add(Job(JOB_ID, "sandbox", "/data/in.jsonl", "0" * 64, settings, status=MERGING,
                 round=2, total=rows))  # fmt: skip
    retried = int((folder / "retried").read_text())
    parts = [
        JobPart(JOB_ID, 1, n, f"round-1/parts/part-{n:05d}.jsonl", (n - 1) * PART_ROWS,
                min(PART_ROWS, rows - (n - 1) * PART_ROWS), 0, state="done",
                batch_id=f"batch-r1-p{n:05d}")
        for n in range(1, (rows + PART_ROWS - 1) // PART_ROWS + 1)
    ] + [JobPart(JOB_ID, 2, 1, "round-2/plan/part-00001.jsonl", 0, retried, 0, state="done",
                 batch_id="batch-r2-p00001")]  # fmt: skip
    jobs.add_parts(parts)
    files = []
    for part in parts:
        results = folder / "results" / f"r{part.round}-p{part.part:05d}"
        batch = Batch.parse({"id": part.batch_id, "status": "completed", "output_file_id": "o"})
        store.record_created(batch, origin="sandbox")
        output, errors = results / "output.jsonl", results / "errors.jsonl"
        present = errors if errors.exists() else None
        store.set_result_paths("sandbox", batch.id, str(output), str(present) if present else None)
        files += [str(p) for p in (output, present) if p is not None]
    return files


def run(code: str, args: list[str]) -> tuple[float, float]:
    """Run code in a fresh interpreter: (the seconds it prints, its peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {out}")
    return float(out.split()[0]), usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    folder = generate(args.rows)
    for stale in folder.rglob("index.frx"):
        stale.unlink()
    os.environ["FR_TUI_HOME"] = tempfile.mkdtemp(prefix="fr-bench-jobs-merge-")
    files = make_history(folder, args.rows)
    sink = str(Path(os.environ["FR_TUI_HOME"]) / "baseline.jsonl")
    index_seconds, index_rss = run(INDEXES, [JOB_ID])
    merges, rss, bases = [], [], []
    for _ in range(args.runs):
        bases.append(run(BASELINE, [sink, *files])[0])
        seconds, peak = run(MERGE, [JOB_ID])
        merges.append(seconds)
        rss.append(peak)
    merge, base, peak = statistics.median(merges), statistics.median(bases), max(rss)
    size = sum(Path(f).stat().st_size for f in files) / 1e6
    print(
        f"{args.rows:,} rows, {len(files)} result files ({size:.0f} MB): indexes built in "
        f"{index_seconds:.1f} s (peak RSS {index_rss:.0f} MB; bench_results_index.py's budget)"
    )
    ok = peak < 300
    print(
        f"merge {merge:.1f} s, peak RSS {peak:.0f} MB (budget 300); bare read+parse+write of "
        f"the result files {base:.1f} s (ratio {merge / base:.2f})  {'PASS' if ok else 'FAIL'}"
    )
    print(f"medians of {args.runs} runs, each step in a fresh process")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
