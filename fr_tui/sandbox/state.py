"""The sandbox's persistent store and its simulated batch processing.

Files live as plain files under ``<state_dir>/files/``; file and batch records live in
``<state_dir>/state.json`` (rewritten atomically on each change), so batches made before a
restart reopen afterwards.

Processing is simulated lazily from the clock: nothing runs in the background. Each read
advances a batch through the transitions whose time has come, stamping each one with the
time it was scheduled for (not the time of the read), so the timeline does not depend on how
often a client polls. One phase step is ``tick`` seconds:

    validating (1 tick) -> in_progress (run_ticks(rows) ticks, request_counts growing)
    -> finalizing (1 tick) -> completed
"""

from __future__ import annotations

import bisect
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from fr_tui.sandbox import answers
from fr_tui.sandbox.faults import SLOW_CANCEL_TICKS, line_fault
from fr_tui.sandbox.limits import (
    FLAKY_STATUS,
    enqueued_tokens,
    flaky_chosen,
    flaky_key,
    flaky_share,
    row_tokens,
    token_limit_problem,
)

DEFAULT_TICK = 0.5
SUPPORTED_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
COMPLETION_WINDOW_SECONDS = 24 * 3600
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_REPORTED_ERRORS = 1000
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
STATE_VERSION = 1


def run_ticks(rows: int) -> int:
    """How many ticks `in_progress` lasts: 6 for a small file, a little more for big ones."""
    return 6 + rows // 2000


class NotFound(LookupError):
    pass


class InvalidState(ValueError):
    pass


class SandboxStore:
    def __init__(
        self,
        state_dir: Path,
        tick: float = DEFAULT_TICK,
        clock: Callable[[], float] = time.time,
        max_enqueued_tokens: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.max_enqueued_tokens = max_enqueued_tokens
        # (model, custom_id) of the flaky rows already failed once (limits.py)
        self.flaky_seen: set[str] = set()
        self.files_dir = self.state_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.tick = tick
        self.clock = clock
        self._lock = threading.RLock()
        self._state_file = self.state_dir / "state.json"
        self._lock_file = self.state_dir / "state.lock"
        self._loaded: tuple[int, int] | None = None  # (mtime_ns, size) of what we read
        self._depth = 0
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._load()

    # -- persistence -------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One thread and one process at a time. Two sandboxes may share a state dir (the
        TUI's and a `fr-tui --sandbox submit` in another terminal): each re-reads the
        state when another has written it, so neither loses the other's batches."""
        with self._lock:
            if self._depth:  # already held by this thread: flock is not reentrant
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._lock_file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    if self._signature() != self._loaded:
                        self._load()
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = self._state_file.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _load(self) -> None:
        self._loaded = self._signature()
        try:
            data = msgspec.json.decode(self._state_file.read_bytes())
        except FileNotFoundError:
            return
        except (msgspec.DecodeError, RecursionError):
            # A damaged state file must not stop the sandbox from starting; keep it aside.
            self._state_file.replace(self._state_file.with_suffix(".damaged"))
            return
        self.files = dict(data.get("files") or {})
        self.batches = dict(data.get("batches") or {})
        self.flaky_seen = set(data.get("flaky_seen") or [])

    def _save(self) -> None:
        data = {
            "version": STATE_VERSION,
            "files": self.files,
            "batches": self.batches,
            "flaky_seen": list(self.flaky_seen),
        }
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(data))
        os.replace(tmp, self._state_file)
        self._loaded = self._signature()

    # -- files ---------------------------------------------------------------------------

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def upload_path(self) -> tuple[str, Path]:
        """A fresh input file id and where to stream its bytes before `add_upload`."""
        file_id = "file-" + os.urandom(12).hex()
        return file_id, self.files_dir / f".upload-{file_id}"

    def add_upload(
        self, file_id: str, tmp: Path, filename: str, size: int, rows: int, purpose: str
    ) -> dict[str, Any]:
        with self._locked():
            os.replace(tmp, self.file_path(file_id))
            record = {
                "id": file_id,
                "filename": filename,
                "bytes": size,
                "num_rows": rows,
                "purpose": purpose,
                "created_at": int(self.clock()),
            }
            self.files[file_id] = record
            self._save()
            return record

    def get_file(self, file_id: str) -> dict[str, Any]:
        with self._locked():
            record = self.files.get(file_id)
            if record is None or not self.file_path(file_id).exists():
                raise NotFound(file_id)
            return dict(record)

    # -- batches -------------------------------------------------------------------------

    def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, Any] | None,
        fault: str | None,
    ) -> dict[str, Any]:
        with self._locked():
            self.get_file(input_file_id)
            batch_id = "fr_batch-" + os.urandom(12).hex()
            now = self.clock()
            record: dict[str, Any] = {
                "id": batch_id,
                "input_file_id": input_file_id,
                "endpoint": endpoint,
                "metadata": metadata,
                "fault": fault,
                "tick": self.tick,
                "status": "validating",
                "t": {"created": now},
                "total": 0,
                "fail_rows": [],
                "drop_rows": [],
                "model": None,
                "errors": None,
                "counts": None,
                "usage": None,
                "output_file_id": None,
                "error_file_id": None,
            }
            self.batches[batch_id] = record
            self._save()
            return self._to_api(record, now)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        with self._locked():
            record = self.batches.get(batch_id)
            if record is None:
                raise NotFound(batch_id)
            now = self.clock()
            if self._advance(record, now):
                self._save()
            return self._to_api(record, now)

    def list_batches(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        with self._locked():
            ordered = sorted(
                self.batches.values(), key=lambda r: (r["t"]["created"], r["id"]), reverse=True
            )
            if after is not None:
                ids = [r["id"] for r in ordered]
                ordered = ordered[ids.index(after) + 1 :] if after in ids else []
            page = ordered[:limit]
            now = self.clock()
            changed = False
            for record in page:
                changed = self._advance(record, now) or changed
            if changed:
                self._save()
            return [self._to_api(r, now) for r in page], len(ordered) > limit

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self._locked():
            record = self.batches.get(batch_id)
            if record is None:
                raise NotFound(batch_id)
            now = self.clock()
            self._advance(record, now)
            status = record["status"]
            if status in TERMINAL:
                raise InvalidState(f"Cannot cancel a batch with status {status!r}.")
            if status != "cancelling":
                record["processed"] = self._processed_at(record, now)
                record["status"] = "cancelling"
                record["t"]["cancelling"] = now
            self._save()
            return self._to_api(record, now)

    # -- simulation ----------------------------------------------------------------------

    def _processed_at(self, record: dict[str, Any], now: float) -> int:
        """How many rows (in input order) have been worked on at `now`."""
        status = record["status"]
        if status == "in_progress":
            span = run_ticks(record["total"]) * record["tick"]
            elapsed = max(0.0, now - record["t"]["in_progress"])
            fraction = 1.0 if span <= 0 else min(1.0, elapsed / span)
            return int(record["total"] * fraction)
        if status == "finalizing":
            return int(record["total"])
        if status == "cancelling":
            return int(record.get("processed", 0))
        return 0

    def _advance(self, record: dict[str, Any], now: float) -> bool:
        """Apply every transition due by `now`; True if the record changed."""
        changed = False
        tick = record["tick"]
        times = record["t"]
        while True:
            status = record["status"]
            if status == "validating":
                if record["fault"] == "hang_validating":
                    return changed
                due = times["created"] + tick
                if now < due:
                    return changed
                errors = self._validate(record, due)
                if errors:
                    record["errors"] = {"object": "list", "data": errors}
                    record["counts"] = {"total": record["total"], "completed": 0, "failed": 0}
                    self._finish(record, "failed", due)
                    return True
                record["status"] = "in_progress"
                times["in_progress"] = due
            elif status == "in_progress":
                span = run_ticks(record["total"]) * tick
                if record["fault"] == "expire":
                    due = times["in_progress"] + span / 2
                    if now < due:
                        return changed
                    self._write_results(record, record["total"] // 2, expire_rest=True)
                    self._finish(record, "expired", due)
                    return True
                due = times["in_progress"] + span
                if now < due:
                    return changed
                record["status"] = "finalizing"
                times["finalizing"] = due
            elif status == "finalizing":
                due = times["finalizing"] + tick
                if now < due:
                    return changed
                self._write_results(record, record["total"], expire_rest=False)
                self._finish(record, "completed", due)
                return True
            elif status == "cancelling":
                steps = SLOW_CANCEL_TICKS if record["fault"] == "slow_cancel" else 1
                due = times["cancelling"] + steps * tick
                if now < due:
                    return changed
                self._write_results(record, int(record.get("processed", 0)), expire_rest=False)
                self._finish(record, "cancelled", due)
                return True
            else:
                return changed
            changed = True

    @staticmethod
    def _finish(record: dict[str, Any], status: str, when: float) -> None:
        record["status"] = status
        record["t"][status] = when

    def _rows(self, file_id: str) -> Iterator[tuple[int, int, bytes]]:
        """(row index, 1-based line number, raw line) for each non-blank line."""
        index = 0
        with open(self.file_path(file_id), "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                yield index, line_no, raw
                index += 1

    def _validate(self, record: dict[str, Any], when: float) -> list[dict[str, Any]]:
        """Job-level errors for the batch's input (empty if it may run); fills row facts."""
        if record["fault"] == "fail_validation":
            return [
                _problem("sandbox_fault", 1, "Sandbox fault fail_validation: rejected on purpose.")
            ]
        path = self.file_path(record["input_file_id"])
        from fr_tui.core.validate import validate_path

        try:
            report = validate_path(path)
        except Exception as exc:  # a validator crash must fail one batch, not every GET
            return [_problem("validation_error", None, f"Could not validate the file: {exc}")]
        if not report.valid:
            record["total"] = int(report.rows)
            return [
                _problem(str(p.code), p.line, str(p.message))
                for p in list(report.errors)[:MAX_REPORTED_ERRORS]
            ]
        endpoint = record["endpoint"]
        total = tokens = 0
        fail_rows: list[int] = []
        drop_rows: list[int] = []
        flaky_rows: list[int] = []
        flaky_now: set[str] = set()
        for index, line_no, raw in self._rows(record["input_file_id"]):
            row = msgspec.json.decode(raw)
            if row.get("url") != endpoint:
                return [
                    _problem(
                        "url_mismatch",
                        line_no,
                        f"The url {row.get('url')!r} does not match the batch endpoint {endpoint!r}.",
                    )
                ]
            body = row.get("body") or {}
            model = body.get("model")
            if record["model"] is None:
                record["model"] = model
            tokens += row_tokens(body, endpoint)
            fault = line_fault(model)
            if fault is not None:
                (drop_rows if fault[0] == "drop" else fail_rows).append(index)
            share = flaky_share(model)
            if share is not None:
                key = flaky_key(model, str(row.get("custom_id")))
                if key not in self.flaky_seen and flaky_chosen(str(row.get("custom_id")), share):
                    fail_rows.append(index)
                    flaky_rows.append(index)
                    flaky_now.add(key)
            total = index + 1
        if total == 0:
            return [_problem("empty_file", None, "The input file has no requests.")]
        record["total"] = total
        limit = self.max_enqueued_tokens
        if limit is not None:
            others = [r for r in self.batches.values() if r["id"] != record["id"]]
            spans = {r["id"]: run_ticks(r["total"]) * r["tick"] for r in others}
            cancels = {
                r["id"]: SLOW_CANCEL_TICKS if r["fault"] == "slow_cancel" else 1 for r in others
            }
            enqueued = enqueued_tokens(others, when, spans, cancels)
            if enqueued + tokens > limit:
                return [token_limit_problem(limit, enqueued, tokens, record["model"])]
        record["tokens"] = tokens
        record["fail_rows"] = fail_rows
        record["drop_rows"] = drop_rows
        record["flaky_rows"] = flaky_rows
        self.flaky_seen |= flaky_now  # they fail now: the next time they succeed
        return []

    def _write_results(self, record: dict[str, Any], processed: int, expire_rest: bool) -> None:
        """Write the output and error files for the first `processed` rows (and expiries)."""
        batch_id = record["id"]
        endpoint = record["endpoint"]
        created = int(record["t"].get("in_progress", record["t"]["created"]))
        ok_lines: list[bytes] = []
        error_lines: list[bytes] = []
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        cost = Decimal(0)
        failed = 0
        flaky = set(record.get("flaky_rows") or ())
        if record["total"] and (processed > 0 or expire_rest):
            for index, _line_no, raw in self._rows(record["input_file_id"]):
                if index >= processed and not expire_rest:
                    break
                row = msgspec.json.decode(raw)
                custom_id = str(row.get("custom_id"))
                body = row.get("body") or {}
                key = answers.digest(batch_id, custom_id)
                fault = line_fault(body.get("model"))
                if fault is not None and fault[0] == "drop":
                    continue
                line: dict[str, Any] = {"id": f"batch_req_{key[:24]}", "custom_id": custom_id}
                if index >= processed:
                    line["response"] = None
                    line["error"] = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
                    error_lines.append(msgspec.json.encode(line))
                    failed += 1
                    continue
                request_id = f"req_{key[24:48]}"
                if fault is None and index in flaky:
                    fault = ("fail", FLAKY_STATUS)
                if fault is not None:
                    status = fault[1]
                    message = f"Sandbox fault: request failed with HTTP {status} on purpose."
                    line["response"] = {
                        "status_code": status,
                        "request_id": request_id,
                        "body": answers.error_body(status, message),
                    }
                    line["error"] = None
                    error_lines.append(msgspec.json.encode(line))
                    failed += 1
                    continue
                reply = answers.answer(endpoint, batch_id, custom_id, body, created)
                row_usage = reply["usage"]
                prompt = int(row_usage.get("prompt_tokens", 0))
                completion = int(row_usage.get("completion_tokens", 0))
                usage["input_tokens"] += prompt
                usage["output_tokens"] += completion
                usage["total_tokens"] += prompt + completion
                cost += answers.row_cost(body.get("model"), row_usage)
                line["response"] = {"status_code": 200, "request_id": request_id, "body": reply}
                line["error"] = None
                ok_lines.append(msgspec.json.encode(line))
        # The real API does not keep input order; clients must join on custom_id.
        shuffler = random.Random(batch_id)
        shuffler.shuffle(ok_lines)
        shuffler.shuffle(error_lines)
        record["output_file_id"] = self._write_output(
            f"batch-output-{batch_id}.jsonl", ok_lines, "batch_output"
        )
        record["error_file_id"] = self._write_output(
            f"batch-errors-{batch_id}.jsonl", error_lines, "batch_output"
        )
        record["counts"] = {
            "total": record["total"],
            "completed": len(ok_lines),
            "failed": failed,
        }
        record["usage"] = {
            **usage,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
            "cost": float(cost),
        }

    def _write_output(self, file_id: str, lines: list[bytes], purpose: str) -> str | None:
        if not lines:
            return None
        path = self.file_path(file_id)
        tmp = path.with_name(f".tmp-{file_id}")
        with open(tmp, "wb") as handle:
            for line in lines:
                handle.write(line)
                handle.write(b"\n")
        os.replace(tmp, path)
        self.files[file_id] = {
            "id": file_id,
            "filename": file_id,
            "bytes": path.stat().st_size,
            "num_rows": len(lines),
            "purpose": purpose,
            "created_at": int(self.clock()),
        }
        return file_id

    def _counts(self, record: dict[str, Any], now: float) -> dict[str, int]:
        if record["counts"] is not None:
            return dict(record["counts"])
        total = int(record["total"])
        processed = self._processed_at(record, now)
        failed = bisect.bisect_left(record["fail_rows"], processed)
        dropped = bisect.bisect_left(record["drop_rows"], processed)
        return {"total": total, "completed": processed - failed - dropped, "failed": failed}

    def _to_api(self, record: dict[str, Any], now: float) -> dict[str, Any]:
        times = record["t"]

        def stamp(name: str) -> int | None:
            value = times.get(name)
            return None if value is None else int(value)

        usage = record["usage"] or {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
            "cost": 0.0,
        }
        return {
            "id": record["id"],
            "batch_id": record["id"],
            "object": "batch",
            "endpoint": record["endpoint"],
            "model": record["model"],
            "errors": record["errors"],
            "input_file_id": record["input_file_id"],
            "completion_window": "24h",
            "status": record["status"],
            "output_file_id": record["output_file_id"],
            "error_file_id": record["error_file_id"],
            "created_at": int(times["created"]),
            "in_progress_at": stamp("in_progress"),
            "expires_at": int(times["created"]) + COMPLETION_WINDOW_SECONDS,
            "finalizing_at": stamp("finalizing"),
            "completed_at": stamp("completed"),
            "failed_at": stamp("failed"),
            "expired_at": stamp("expired"),
            "cancelling_at": stamp("cancelling"),
            "cancelled_at": stamp("cancelled"),
            "request_counts": self._counts(record, now),
            "usage": usage,
            "metadata": record["metadata"],
        }


def _problem(code: str, line: int | None, message: str) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": None}
