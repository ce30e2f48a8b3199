"""One apply at a time per environment (issue 14): the lock names its holder, a killed holder never blocks, a record
left behind is reported, and the lock file is never followed through a link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hbsdeploy.apply.lock import ApplyLocked, Holder, apply_lock, lock_path
from hbsdeploy.errors import HbsError
from tests.helpers import run_cli

HOLDER = Holder(4242, "ci-runner-7", "alice", "2026-11-26T10:00:00Z", "hbsdeploy apply --env qa")


def test_a_second_apply_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with apply_lock(tmp_path, "qa", HOLDER), pytest.raises(ApplyLocked) as refused, \
            apply_lock(tmp_path, "qa", HOLDER):
        pytest.fail("two holders at once")
    assert str(refused.value) == (
        "another apply to 'qa' is running (pid 4242 on ci-runner-7, by alice, since 2026-11-26T10:00:00Z "
        "(hbsdeploy apply --env qa)); nothing was written. Wait for it to finish, then plan again: applies to one "
        "environment run one at a time")


def test_environments_lock_separately_and_a_released_lock_is_free(tmp_path: Path) -> None:
    with apply_lock(tmp_path, "qa", HOLDER), apply_lock(tmp_path, "prod", HOLDER):
        pass
    with apply_lock(tmp_path, "qa", HOLDER) as left_behind:
        assert left_behind is None  # released cleanly: no record left
    assert lock_path(tmp_path, "qa").read_bytes() == b""


def test_a_lock_held_by_a_killed_process_is_free_and_reported(tmp_path: Path) -> None:
    """A holder killed with SIGKILL: the kernel drops its lock; its record says who it was."""
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from hbsdeploy.apply.lock import Holder, apply_lock
        with apply_lock(Path({str(tmp_path)!r}), "qa", Holder(os.getpid(), "h", "bob", "t", "hbsdeploy apply")):
            sys.stdout.write("held\\n"); sys.stdout.flush()
            sys.stdin.read()
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    with pytest.raises(ApplyLocked, match=f"pid {child.pid} on h, by bob"), apply_lock(tmp_path, "qa", HOLDER):
        pass
    child.kill()
    child.wait()
    with apply_lock(tmp_path, "qa", HOLDER) as left_behind:
        assert left_behind == Holder(child.pid, "h", "bob", "t", "hbsdeploy apply")
        assert json.loads(lock_path(tmp_path, "qa").read_text())["pid"] == HOLDER.pid


def test_a_lock_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    lock_path(tmp_path, "qa").parent.mkdir()
    os.symlink(elsewhere, lock_path(tmp_path, "qa"))
    with pytest.raises(HbsError, match="is a symbolic link"), apply_lock(tmp_path, "qa", HOLDER):
        pass
    assert not elsewhere.exists()


@pytest.mark.parametrize("linked", ["locks", "state folder"])
def test_a_lock_folder_that_is_a_link_is_refused(tmp_path: Path, linked: str) -> None:
    """A committed `.hbsdeploy/locks` (or `.hbsdeploy`) link cannot lead the lock file outside the repository."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state_dir = tmp_path / "repo" / ".hbsdeploy"
    if linked == "locks":
        state_dir.mkdir(parents=True)
        (state_dir / "locks").symlink_to(elsewhere)
    else:
        state_dir.parent.mkdir()
        state_dir.symlink_to(elsewhere)
    with pytest.raises(HbsError, match="is a symbolic link"), apply_lock(state_dir, "qa", HOLDER):
        pass
    assert list(elsewhere.iterdir()) == []


def test_apply_through_the_cli_is_refused_while_another_holds_the_lock(repo: Path) -> None:
    with apply_lock(repo / ".hbsdeploy", "sandbox", HOLDER):
        refused = run_cli("apply", "--auto-approve")
    assert refused.code == 1
    assert refused.stderr.startswith("error: another apply to 'sandbox' is running (pid 4242 on ci-runner-7"), \
        refused.stderr
    assert run_cli("plan", "--detailed-exitcode").code == 2  # nothing was written
    applied = run_cli("apply", "--auto-approve")
    assert applied.code == 0 and "note:" not in applied.stderr, applied.output


def test_apply_after_a_killed_apply_says_so(repo: Path) -> None:
    path = lock_path(repo / ".hbsdeploy", "sandbox")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(HOLDER.__dict__), encoding="utf-8")
    applied = run_cli("apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert ("note: the last apply to 'sandbox' (pid 4242 on ci-runner-7, by alice, since 2026-11-26T10:00:00Z "
            "(hbsdeploy apply --env qa)) ended without finishing") in applied.stderr
