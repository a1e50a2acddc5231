"""Opening the user's paths safely: only regular files are read, and only regular files
(or new paths) are written over.

A FIFO opened for reading blocks until a writer comes (a frozen UI); a device, a socket
or a directory is never what a user meant to read a batch from or to replace with an
export. Errors are OSErrors that name the user's path (never a temp name) and say what
the path is, so every front end can show them as one line.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class FileSignature:
    """What a file was when it was checked: a submit refuses it once any of these moved
    (an edit in another window after validation must not be uploaded unchecked; a file
    replaced by a rename is another inode even when its size and time match)."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileSignature:
        return cls.of_stat(os.stat(path))

    @classmethod
    def of_stat(cls, info: os.stat_result) -> FileSignature:
        return cls(info.st_size, info.st_mtime_ns, info.st_ino)


class UnusablePathError(OSError):
    """The path exists but is not a regular file: `strerror` says what it is."""


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _unusable(path: str | os.PathLike[str], mode: int) -> UnusablePathError:
    if stat.S_ISDIR(mode):
        return UnusablePathError(errno.EISDIR, "is a directory", str(path))
    kind = kind_of(mode)
    what = "is not a regular file" + ("" if kind == "not a regular file" else f" ({kind})")
    return UnusablePathError(errno.EINVAL, what, str(path))


NO_SUCH_FOLDER = "no such folder"


def describe(exc: OSError) -> str:
    """One line for the user: 'PATH: what is wrong'."""
    if isinstance(exc, FileNotFoundError) and exc.filename:
        missing = NO_SUCH_FOLDER if exc.strerror == NO_SUCH_FOLDER else "no such file"
        return f"{exc.filename}: {missing}"
    if exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc.strerror or exc)


def check_regular(path: str | os.PathLike[str]) -> int:
    """The size of a regular file at `path`; raises an OSError naming the path otherwise."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path)) from None
    if not stat.S_ISREG(info.st_mode):
        raise _unusable(path, info.st_mode)
    return info.st_size


def open_regular(path: str | os.PathLike[str], buffering: int = -1) -> BinaryIO:
    """Open a regular file for reading in binary mode; anything else raises at once.

    O_NONBLOCK makes opening a FIFO return instead of waiting for a writer; the type is
    then checked on the open descriptor (no race with a path swapped after a stat)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _unusable(path, mode)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise unless `path` is new or a regular file (following symlinks): a device, FIFO,
    socket or directory is never replaced by a file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise NotADirectoryError(
            errno.ENOTDIR, "a part of this path is a file, not a folder", str(path)
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise _unusable(path, info.st_mode)


def write_target(path: str | os.PathLike[str]) -> Path:
    """Where writing `path` really lands: through a symlink to its target, so replacing
    the file keeps the user's link. Checked to be new or a regular file."""
    check_replaceable(path)
    return Path(os.path.realpath(path))
