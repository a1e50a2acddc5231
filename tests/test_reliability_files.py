"""Issue 9, cases 5-9: downloads that look complete but are not, writes that destroy what
was there, reads that hang or say "no such file". Whole `fr-tui` processes against the
sandbox (its range_from and short_download faults), or a tiny server where the sandbox
would have to lie about itself."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_helpers import KEY, SAMPLES, TinyBatchServer, no_traceback, run

# `results` of server_fails.jsonl: finished, but with failed and missing rows
ROWS_NOT_OK = 4


def finished_batch(sandbox: Any, home: Path, name: str = "server_fails.jsonl") -> dict[str, Any]:
    done = run(
        *("--base-url", sandbox.base_url, "submit", str(SAMPLES / name), "--wait"),
        *("--json", "--force", "--poll-interval", "0.05"),
        home=home,
    )
    # 4: it finished, but some rows failed or went missing (server_fails.jsonl does that)
    assert done.returncode == (4 if name == "server_fails.jsonl" else 0), done.stderr
    batch_id = json.loads(done.stdout)["batch_id"]
    status = run("--base-url", sandbox.base_url, "status", batch_id, "--json", home=home)
    return dict(json.loads(status.stdout))


def server_file(sandbox: Any, file_id: str) -> bytes:
    answer = httpx.get(
        f"{sandbox.base_url}/v1/files/{file_id}/content",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    return answer.content


def results_dir(sandbox: Any, batch_id: str) -> Path:
    """Where fr-tui keeps the results of a batch of the test sandbox (a server like any)."""
    from fr_tui.core.config import origin_for
    from fr_tui.core.paths import get_paths

    return get_paths().results_for(origin_for(sandbox.base_url), batch_id)


# ----------------------------------------------------------------- case 5


def test_a_206_from_the_wrong_byte_starts_the_download_over(sandbox: Any, fr_home: Path) -> None:
    batch = finished_batch(sandbox, fr_home)
    expected = server_file(sandbox, batch["output_file_id"])
    folder = results_dir(sandbox, batch["id"])
    folder.mkdir(parents=True)
    (folder / "output.jsonl.part").write_bytes(expected[:300])  # an earlier run was cut
    sandbox.set_faults({"range_from": 0})  # asked for byte 300, the server sends from 0
    done = run("--base-url", sandbox.base_url, "results", batch["id"], "--json", home=fr_home)
    assert done.returncode == ROWS_NOT_OK, done.stderr
    assert (folder / "output.jsonl").read_bytes() == expected
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["failed"], summary["missing"], summary["duplicates"]) == (
        6,
        3,
        1,
        0,
    )


# ----------------------------------------------------------------- cases 6 and 7


def test_a_body_cut_short_without_length_is_never_kept_as_complete(
    sandbox: Any, fr_home: Path
) -> None:
    batch = finished_batch(sandbox, fr_home)
    expected = server_file(sandbox, batch["output_file_id"])
    folder = results_dir(sandbox, batch["id"])
    sandbox.set_faults({"short_download": 200})  # every answer ends, cleanly, too early
    done = run("--base-url", sandbox.base_url, "results", batch["id"], home=fr_home)
    assert done.returncode == 3, done.stdout
    no_traceback(done)
    part = folder / "output.jsonl.part"
    kept = part.stat().st_size
    assert f"Partial data kept: {kept:,} bytes in {part}" in done.stderr
    assert expected.startswith(part.read_bytes()) and 0 < kept < len(expected)
    assert not (folder / "output.jsonl").exists()
    sandbox.set_faults({})
    again = run("--base-url", sandbox.base_url, "results", batch["id"], "--json", home=fr_home)
    assert again.returncode == ROWS_NOT_OK, again.stderr
    assert (folder / "output.jsonl").read_bytes() == expected
    assert json.loads(again.stdout)["missing"] == 1  # only the row the sandbox dropped


def test_a_short_body_once_is_resumed_to_the_whole_file(sandbox: Any, fr_home: Path) -> None:
    batch = finished_batch(sandbox, fr_home)
    expected = server_file(sandbox, batch["output_file_id"])
    content = f"/v1/files/{batch['output_file_id']}/content"
    sandbox.set_faults({"short_download": 500, "count": 1, "path_prefix": content})
    done = run("--base-url", sandbox.base_url, "results", batch["id"], "--json", home=fr_home)
    assert done.returncode == ROWS_NOT_OK, done.stderr
    assert (results_dir(sandbox, batch["id"]) / "output.jsonl").read_bytes() == expected


def test_results_cut_short_by_an_older_fr_tui_are_checked_and_fetched_again(
    sandbox: Any, fr_home: Path
) -> None:
    batch = finished_batch(sandbox, fr_home)
    expected = server_file(sandbox, batch["output_file_id"])
    folder = results_dir(sandbox, batch["id"])
    folder.mkdir(parents=True)
    cut = expected[: expected.index(b"\n", 600) + 40]  # whole lines, then half of one
    (folder / "output.jsonl").write_bytes(cut)
    done = run("--base-url", sandbox.base_url, "results", batch["id"], "--json", home=fr_home)
    assert done.returncode == ROWS_NOT_OK, done.stderr
    assert "downloading it again" in done.stderr
    assert (folder / "output.jsonl").read_bytes() == expected
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["missing"], summary["bad_lines"]) == (6, 1, 0)


def test_a_server_that_gives_no_size_and_ends_mid_line_is_not_believed(
    tmp_path: Path,
) -> None:
    """No Content-Length, no file size, a body that stops in the middle of a line: the
    last line is the only witness, and it says the file is incomplete."""
    import asyncio

    from fr_tui.core.api import BatchClient
    from fr_tui.core.errors import DownloadError

    body = b'{"custom_id": "a", "response": {}}\n{"custom_id": "b", "resp'

    def content(request: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Connection": "close"}, body

    with TinyBatchServer() as server:
        server.routes[("GET", "/v1/files/file-out/content")] = content

        async def fetch() -> None:
            async with BatchClient(server.base_url, KEY, max_attempts=2, backoff_cap=0.01) as c:
                await c.download_file("file-out", tmp_path / "out.jsonl", jsonl=True)

        with pytest.raises(DownloadError, match="middle of a line"):
            asyncio.run(fetch())
    assert not (tmp_path / "out.jsonl").exists()
    assert (tmp_path / "out.jsonl.part").read_bytes() == body  # kept, as said


def test_a_server_that_compresses_the_content_is_asked_for_the_plain_bytes(
    tmp_path: Path,
) -> None:
    """A server (or a CDN before it) that gzips file content when the client allows it:
    the sizes it declares and the byte offsets of a resume are those of the plain file,
    so fr-tui asks for the plain file (Accept-Encoding: identity) and gets it whole."""
    import asyncio
    import gzip

    from fr_tui.core.api import BatchClient

    body = b"".join(
        json.dumps({"custom_id": f"r{i}", "response": {"status_code": 200}}).encode() + b"\n"
        for i in range(200)
    )
    asked: list[str] = []

    def content(request: Any) -> tuple[int, dict[str, str], bytes]:
        accepted = request.headers.get("Accept-Encoding") or ""
        asked.append(accepted)
        if "gzip" in accepted:
            return 200, {"Content-Encoding": "gzip"}, gzip.compress(body)
        return 200, {}, body

    def file_object(request: Any) -> tuple[int, dict[str, str], bytes]:
        doc = {"id": "file-out", "object": "file", "bytes": len(body), "purpose": "batch"}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    with TinyBatchServer() as server:
        server.routes[("GET", "/v1/files/file-out/content")] = content
        server.routes[("GET", "/v1/files/file-out")] = file_object

        async def fetch() -> None:
            async with BatchClient(server.base_url, KEY, max_attempts=2, backoff_cap=0.01) as c:
                await c.download_file("file-out", tmp_path / "out.jsonl", jsonl=True)

        asyncio.run(fetch())
    assert (tmp_path / "out.jsonl").read_bytes() == body
    assert asked == ["identity"]


# ----------------------------------------------------------------- case 8


def special_files(tmp_path: Path) -> dict[str, Path]:
    """A FIFO, a socket, a directory and (as root) a character device, each named like an
    export the user might choose."""
    made = {}
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    made["FIFO"] = fifo
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    made["directory"] = folder
    sock_path = tmp_path / "sock.csv"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    made["socket"] = sock_path
    if os.geteuid() == 0:
        device = tmp_path / "full.csv"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
        made["character device"] = device
    return made


def test_results_never_replace_a_device_fifo_socket_or_directory(
    sandbox: Any, fr_home: Path, tmp_path: Path
) -> None:
    batch = finished_batch(sandbox, fr_home)
    for kind, path in special_files(tmp_path).items():
        before = path.lstat()
        done = run(
            "--base-url", sandbox.base_url, "results", batch["id"], "-o", str(path), home=fr_home
        )
        assert done.returncode == 2, (kind, done.stdout)
        no_traceback(done)
        assert str(path) in done.stderr and ".tmp" not in done.stderr
        assert ("is a directory" if kind == "directory" else kind) in done.stderr
        assert stat.S_IFMT(path.lstat().st_mode) == stat.S_IFMT(before.st_mode)  # still there
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_write_through_a_symlink_and_keep_it(
    sandbox: Any, fr_home: Path, tmp_path: Path
) -> None:
    batch = finished_batch(sandbox, fr_home)
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    done = run(
        "--base-url", sandbox.base_url, "results", batch["id"], "-o", str(link), home=fr_home
    )
    assert done.returncode == ROWS_NOT_OK, done.stderr
    assert link.is_symlink() and len(target.read_text().splitlines()) == 10


def test_an_export_into_a_folder_that_does_not_exist_is_refused(
    sandbox: Any, fr_home: Path, tmp_path: Path
) -> None:
    """A typo in the folder (~/Documets/out.csv) is said, not made into a folder tree."""
    batch = finished_batch(sandbox, fr_home)
    missing = tmp_path / "Documets" / "deeper"
    for command in ("results", "retry"):
        done = run(
            "--base-url", sandbox.base_url, command, batch["id"], "-o", str(missing / "x.csv"),
            home=fr_home,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"fr-tui: {missing}: no such folder", done.stderr
    assert not (tmp_path / "Documets").exists()


def test_an_export_keeps_the_mode_of_the_file_it_replaces(
    sandbox: Any, fr_home: Path, tmp_path: Path
) -> None:
    """A replaced export keeps its permission bits (0644, or shared with a group); a new
    one gets 0666 less the umask, as any tool's file does."""
    import subprocess

    from fault_helpers import command, environment

    batch = finished_batch(sandbox, fr_home)
    shared = tmp_path / "shared.csv"
    shared.write_text("old\n")
    shared.chmod(0o664)
    fresh = tmp_path / "fresh.csv"
    for path in (shared, fresh):
        done = subprocess.run(
            command("--base-url", sandbox.base_url, "results", batch["id"], "-o", str(path)),
            capture_output=True,
            text=True,
            env=environment(fr_home),
            timeout=60,
            preexec_fn=lambda: os.umask(0o027),
        )
        assert done.returncode == ROWS_NOT_OK, done.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664 and shared.read_text() != "old\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_split_never_writes_into_a_fifo(tmp_path: Path, fr_home: Path) -> None:
    out = tmp_path / "parts"
    out.mkdir()
    os.mkfifo(out / "chat.part1.jsonl")
    done = run(
        "split", str(SAMPLES / "chat.jsonl"), "--max-rows", "5", "-o", str(out), home=fr_home,
        timeout=20,
    )  # fmt: skip
    assert done.returncode == 2 and "FIFO" in done.stderr
    no_traceback(done)
    assert stat.S_ISFIFO((out / "chat.part1.jsonl").lstat().st_mode)


# ----------------------------------------------------------------- case 9


@pytest.mark.parametrize("command", ["validate", "submit", "split", "estimate"])
def test_reading_anything_but_a_file_says_what_it_is(
    command: str, tmp_path: Path, fr_home: Path
) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    # A writer that would unblock a reader stuck on the FIFO, so a hang fails fast.
    unblock = threading.Timer(15, lambda: open(fifo, "wb").close())  # noqa: SIM115
    unblock.daemon = True
    unblock.start()
    try:
        for path, says in (
            (fifo, "is not a regular file (a FIFO)"),
            (folder, "is a directory"),
            (Path("/dev/null"), "is not a regular file (a character device)"),
            (tmp_path / "nothing.jsonl", "no such file"),
        ):
            done = run(command, str(path), home=fr_home, timeout=30)
            assert done.returncode == 2, (path, done.stdout)
            assert f"{path}: {says}" in done.stderr, done.stderr
            no_traceback(done)
    finally:
        unblock.cancel()
