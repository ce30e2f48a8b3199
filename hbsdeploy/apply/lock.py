"""One apply at a time per environment: an advisory lock file in the state folder that names its holder.

The lock is the kernel's `flock` on `<state_dir>/locks/<environment>.lock`: it ends with the process that holds it,
however that process ends, so a killed apply never blocks the next one. The file also records who holds it (pid,
host, user, start, command) for the message another apply gets; a record still in the file when the lock is free
was left by an apply that was killed, and the next apply says so.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hbsdeploy.errors import HbsError
from hbsdeploy.files import FileRefused, refuse_link, refuse_linked_folder

MAX_RECORD_BYTES = 4096


class ApplyLocked(HbsError):
    """Another apply to the same environment holds its lock: nothing was read or written."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) an environment's apply lock."""

    pid: int
    host: str
    user: str
    started: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, by {self.user}, since {self.started} ({self.command})"


def current_holder(user: str) -> Holder:
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    command = " ".join(["hbsdeploy", *sys.argv[1:]])[:200]
    return Holder(os.getpid(), socket.gethostname(), user, started, command)


def lock_path(state_dir: Path, environment: str) -> Path:
    return state_dir / "locks" / f"{environment}.lock"


@contextmanager
def apply_lock(state_dir: Path, environment: str, holder: Holder) -> Iterator[Holder | None]:
    """Hold `environment`'s apply lock for the block, as `holder`; ApplyLocked naming the holder when another apply
    holds it. Yields the record of an earlier apply that ended without releasing the lock (killed), or None."""
    path = lock_path(state_dir, environment)
    try:
        for folder in (state_dir, path.parent):
            refuse_linked_folder(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_link(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        reason = str(exc) if isinstance(exc, FileRefused) else (exc.strerror or str(exc))
        raise HbsError(f"cannot open the apply lock {path}: a file or folder on its way {reason}; nothing was "
                       "written. Fix it and run apply again") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise HbsError(f"cannot take the apply lock {path} ({exc.strerror}); nothing was written") from None
            other = _read_record(fd)
            who = other.describe() if other else "its holder is still starting"
            raise ApplyLocked(f"another apply to {environment!r} is running ({who}); nothing was written. Wait for "
                              f"it to finish, then plan again: applies to one environment run one at a time") from None
        left_behind = _read_record(fd)
        _write_record(fd, holder)
        try:
            yield left_behind
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _read_record(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, MAX_RECORD_BYTES, 0)
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
        if not isinstance(data, dict):
            return None
        return Holder(int(data["pid"]), str(data["host"]), str(data["user"]), str(data["started"]),
                      str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(fd: int, holder: Holder) -> None:
    record = json.dumps(holder.__dict__, sort_keys=True).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, record + b"\n", 0)
    os.fsync(fd)
