"""The audit log: one JSON line per attempted change, appended to <state_dir>/audit.jsonl. Never a secret."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hbsdeploy.errors import HbsError
from hbsdeploy.files import open_append, refuse_link, refuse_linked_folder
from hbsdeploy.who import current_user


class AuditError(HbsError):
    """The audit log cannot be written: apply checks that before its first write, and stops starting writes when it
    happens later (the change just made is reported, marked as missing from the log)."""


class AuditLog:
    """Appends whole lines with one write each (O_APPEND), fsynced: a crash leaves whole lines behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.user = current_user()
        self._lock = threading.Lock()

    def check_writable(self) -> None:
        """AuditError now, before any write to the portal, when the log cannot be appended to."""
        try:
            refuse_linked_folder(self.path.parent)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(open_append(self.path))
        except OSError as exc:
            raise AuditError(f"cannot append to the audit log {self.path} ({exc.strerror or exc}); nothing was "
                             "written to the portal. Fix the file or its folder and run apply again") from None

    def record(self, *, environment: str, partner_id: str, service_type: str, kind: str,
               before: Mapping[str, Any], after: Mapping[str, Any], result: str, message: str | None,
               plan_checksum: str, evidence: Sequence[str] = ()) -> None:
        entry: dict[str, Any] = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "user": self.user,
            "environment": environment,
            "partner_id": partner_id,
            "service_type": service_type,
            "kind": kind,
            "before": dict(before),
            "after": dict(after),
            "result": result,
            "message": message,
            "plan_checksum": plan_checksum,
        }
        if evidence:
            entry["evidence"] = [self.relative(path) for path in evidence]
        line = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = open_append(self.path)
                try:
                    _append_line(fd, line)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise AuditError(f"cannot append to the audit log {self.path} ({exc.strerror or exc}); apply "
                                 f"stopped after {partner_id} {service_type} ({result}). Fix the file or its folder, "
                                 "then run `hbsdeploy plan` to see what remains") from None


    def relative(self, path: str) -> str:
        """A file beside the log as a path relative to the log's folder (`evidence/...png`); others as they are."""
        try:
            return Path(path).resolve().relative_to(self.path.parent.resolve()).as_posix()
        except ValueError:
            return path


def _append_line(fd: int, line: bytes) -> None:
    # A crash mid-write (power loss, a full disk) can leave a torn last line: start on a fresh line, so the torn one
    # stays the only entry lost, instead of gluing this entry to it where read_audit must skip both. The look at the
    # last byte and the append hold the file's lock together: another apply's append (to another environment, with
    # its own AuditLog) may be half in the file while its write runs, its first page in and the size ending
    # mid-line, and that is no torn line. The lock is the kernel's flock: it ends with the process, however it ends.
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)  # one write with O_APPEND: whole lines, even from concurrent applies
        if written != len(line):
            raise OSError(f"wrote {written} of {len(line)} bytes (disk full?)")
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every complete entry of an audit log (a torn last line, from a crash mid-write, is skipped)."""
    if not path.exists():
        return []
    refuse_link(path)
    entries = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entries.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return entries
