"""Opening the files hbsdeploy reads and writes: only regular files, with a size cap, without hanging on a FIFO, and
state files (stores, audit log, lock) never through a symbolic link. The one home of these checks."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class FileRefused(OSError):
    """A file hbsdeploy will not read or write; `str()` is the one-line reason, without the path."""

    def __init__(self, reason: str, rule: str = "file-unreadable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule

    def __str__(self) -> str:
        return self.reason


def _refused(exc: OSError) -> FileRefused:
    return FileRefused(_why(exc), "file-not-found" if exc.errno == errno.ENOENT else "file-unreadable")


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop (or a link where none may be); point it at a real file"
    if exc.errno == errno.ENOENT:
        return "no such file; check the path"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; make the file readable"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return f"cannot be read ({exc.strerror or exc}); check the path"


def read_bytes(path: Path, limit: int, *, what: str = "file") -> bytes:
    """At most `limit` bytes of the regular file at `path`; FileRefused for anything else: a FIFO or device (opened
    without blocking, never read), a folder, a link loop, a file over `limit` (not read past it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise FileRefused(f"is a folder, not a {what}", "not-a-file") from None
        raise _refused(exc) from None
    except ValueError:  # a NUL in the path
        raise FileRefused("the path holds a NUL character") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused(f"is a folder, not a {what}", "not-a-file")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"is not a regular file (a FIFO, socket or device such as /dev/zero); name a {what}",
                              "not-a-file")
        if info.st_size > limit:
            raise FileRefused(f"is larger than {_size(limit)}; a {what} is far smaller", "file-too-large")
        os.set_blocking(fd, True)
        data = _read_upto(fd, limit + 1, info.st_size)
    except OSError as exc:
        if isinstance(exc, FileRefused):
            raise
        raise _refused(exc) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while being read
        raise FileRefused(f"is larger than {_size(limit)}; a {what} is far smaller", "file-too-large")
    return data


def _read_upto(fd: int, most: int, expected: int) -> bytes:
    # os.read rather than a buffered file: asking for exactly the size fstat gave (and one byte more, to see the end)
    # costs a fraction of a file object's read(limit), which sets up a buffer the size of the limit.
    chunks: list[bytes] = []
    size = 0
    want = min(most, expected + 1)
    while size < most:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        want = min(most - size, 1 << 16)
    return b"".join(chunks)


def refuse_link(path: Path) -> None:
    """FileRefused when `path` is a symbolic link or exists and is not a regular file: a store, the audit log or a
    lock is only ever a plain file inside the state folder, so that a planted link cannot send writes elsewhere."""
    info = _lstat(path)
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise FileRefused("is a symbolic link; hbsdeploy writes its state only to plain files in the state folder: "
                          "remove the link")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise FileRefused("is not a regular file (a FIFO, socket, device or folder); remove it")


def refuse_linked_folder(path: Path) -> None:
    """FileRefused when the folder `path` is a symbolic link: state files are kept only in plain folders of the
    repository, so that a planted link (a committed `.hbsdeploy/locks`) cannot lead their writes elsewhere."""
    info = _lstat(path)
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise FileRefused("is a symbolic link; hbsdeploy keeps its state only in plain folders: remove the link")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileRefused(_why(exc)) from None


def open_append(path: Path, mode: int = 0o600) -> int:
    """A descriptor appending to `path` (created if missing), never through a symbolic link (O_NOFOLLOW)."""
    refuse_link(path)
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileRefused("is a symbolic link; hbsdeploy writes its state only to plain files in the state "
                              "folder: remove the link") from None
        raise


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
