"""Interruption: SIGINT and SIGKILL in the middle of apply and of `plan --out`, as real processes.

Afterwards the plan files, the store and the audit log are readable; the next plan shows exactly what remains; the
next apply converges. SIGINT also gets a report (exit 130) with every change applied or not attempted.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.apply.audit import AuditError, AuditLog, read_audit
from hbsdeploy.plan.model import plan_from_json
from hbsdeploy.portal.emulator import ServerHandle
from tests.helpers import run_cli
from tests.reliability.helpers import (
    audit_count,
    audit_path,
    held,
    make_repo,
    parse_report,
    partner_ids,
    start_cli,
    strict_audit_lines,
    wait_for,
)

Start = Callable[..., ServerHandle]
Key = tuple[str, str]

# Apply at parallelism 1 against an emulator answering each request after 100 ms: a change (its write and the read
# back) takes 200 ms, so the 13 changes left after the third give the signal seconds to land in the middle of the
# writes. Once no write can be in flight any more, the tests go on through a second emulator without latency
# serving the same store.
PARTNERS = 8
LATENCY_MS = 100


def keys(partners: int) -> set[Key]:
    return {(p, t) for p in partner_ids(partners) for t in ("authorization", "reservation")}


def written(state_file: Path) -> set[Key]:
    return {key for key, (_, version) in held(state_file).items() if version >= 1}


def planned_keys(repo: Path, *config: str) -> set[Key]:
    """What the next plan would change, from the plan's JSON."""
    ran = run_cli(*config, "plan", "--format", "json")
    assert ran.code == 0, ran.output
    return {(c["partner_id"], c["service_type"]) for c in json.loads(ran.stdout)["changes"]}


def converge(*config: str) -> None:
    ran = run_cli(*config, "apply", "--auto-approve")
    assert ran.code == 0 and " 0 failed, 0 not attempted." in ran.stdout, ran.output
    assert run_cli(*config, "plan", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("signals", [
    pytest.param((signal.SIGINT,), id="ctrl-c"),
    pytest.param((signal.SIGTERM,), id="sigterm"),  # what CI sends when a job is cancelled
    pytest.param((signal.SIGINT, signal.SIGINT), id="ctrl-c twice"),
    pytest.param((signal.SIGTERM, signal.SIGINT, signal.SIGTERM), id="three signals"),
])
def test_sigint_mid_apply_reports_applied_and_not_attempted_then_a_rerun_converges(
        work: Path, emulator: Start, signals: tuple[signal.Signals, ...]) -> None:
    """Every interrupt after the first, sent while a write is in flight, still gets the report, and every write the
    portal took is in the report and the audit log (issue 14)."""
    slow = emulator(auto_register=True, latency_ms=LATENCY_MS)
    make_repo(work, PARTNERS, url=slow.url, parallelism=1)
    process = start_cli(work, "apply", "--auto-approve")
    wait_for(lambda: audit_count(work) >= 3, "three changes applied", process)
    for signum in signals:
        process.process.send_signal(signum)
        time.sleep(0.02)  # spacing only: the later signals land while the write in flight is still waiting
    code, out, err = process.finish()
    assert code == 130, (out, err)
    assert err.count("hbsdeploy: stopping;") <= len(signals) - 1  # a signal after the report is silent
    assert "Traceback" not in err and "Run `hbsdeploy apply --env qa` again to finish" in err
    report = parse_report(out)
    applied = {key for key, o in report.items() if o.status == "applied"}
    not_attempted = {key for key, o in report.items() if o.status == "not attempted"}
    assert set(report) == keys(PARTNERS) and applied | not_attempted == keys(PARTNERS)  # none failed or unreported
    assert len(applied) >= 3 and not_attempted
    assert all(report[key].message == "interrupted before this change" for key in not_attempted)
    assert f"Apply: {len(applied)} applied, 0 failed, {len(not_attempted)} not attempted." in out
    # the portal holds exactly what was reported applied; the audit log says the same, in whole lines
    assert written(slow.portal.store.path) == applied
    entries = strict_audit_lines(work)
    assert {(e["partner_id"], e["service_type"]) for e in entries} == applied
    assert all(e["result"] == "applied" for e in entries)
    # the next plan shows exactly what remains; applying it converges
    make_repo(work, PARTNERS, url=emulator(auto_register=True).url, parallelism=1)
    assert planned_keys(work) == not_attempted
    converge()


def test_a_second_interrupt_during_a_write_waits_for_it_and_reports_it(work: Path, emulator: Start) -> None:
    """Ctrl-C, then Ctrl-C again while a write is in flight: the write's outcome is still awaited (within its
    deadline), reported and audited; the portal holds exactly what the report and the audit log say (issue 14)."""
    slow = emulator(auto_register=True, latency_ms=1000)  # each request answers after a second
    make_repo(work, 2, url=slow.url, parallelism=1)
    process = start_cli(work, "apply", "--auto-approve")
    wait_for(lambda: audit_count(work) >= 1, "the first change applied", process)
    time.sleep(0.1)  # the second change's write has been sent and waits for its answer
    process.process.send_signal(signal.SIGINT)
    time.sleep(0.1)
    process.process.send_signal(signal.SIGINT)
    code, out, err = process.finish()
    assert code == 130, (out, err)
    assert err.count("hbsdeploy: stopping;") == 1 and "Traceback" not in err
    report = parse_report(out)
    took = written(slow.portal.store.path)
    assert len(took) == 2  # the first change, and the one whose write was in flight
    entries = strict_audit_lines(work)
    assert {(e["partner_id"], e["service_type"]) for e in entries} == took
    assert {key for key, o in report.items() if o.status != "not attempted"} == took
    assert [o.status for key, o in sorted(report.items()) if key in took] == ["applied", "applied"], out


def test_sigkill_mid_apply_of_a_saved_plan_leaves_every_file_readable_and_a_rerun_converges(
        work: Path, emulator: Start) -> None:
    slow = emulator(auto_register=True, latency_ms=LATENCY_MS)
    make_repo(work, PARTNERS, url=slow.url, parallelism=1)
    assert run_cli("plan", "--out", "plan.json").code == 0
    saved = (work / "plan.json").read_bytes()
    process = start_cli(work, "apply", "plan.json")
    wait_for(lambda: audit_count(work) >= 3, "three changes applied", process)
    process.process.kill()
    code, out, _ = process.finish()
    assert code == -signal.SIGKILL and "Apply:" not in out  # no report: the process is gone

    assert (work / "plan.json").read_bytes() == saved
    plan = plan_from_json(json.loads(saved))  # still a valid plan, checksum intact
    # the saved plan is now stale and is refused whole (its freshness check reads every partner through the slow
    # emulator, by which time the write in flight when the process died has landed or not)
    refused = run_cli("apply", "plan.json")
    assert refused.code == 1 and "the portal changed since the plan was made" in refused.stderr
    assert "nothing was written" in refused.stderr
    entries = strict_audit_lines(work, allow_torn_last=True)
    assert read_audit(audit_path(work)) == entries
    audited = {(e["partner_id"], e["service_type"]) for e in entries if e["result"] == "applied"}
    holds = written(slow.portal.store.path)
    # every audited change is in the portal; at most the one write in flight when killed is not audited
    assert audited <= holds and len(holds - audited) <= 1 and holds < keys(PARTNERS)
    # the next plan shows exactly what remains; applying it converges
    make_repo(work, PARTNERS, url=emulator(auto_register=True).url, parallelism=1)
    assert planned_keys(work) == {c.key for c in plan.changes} - holds
    converge()


def test_sigkill_while_applying_to_the_sandbox_store_leaves_it_consistent(work: Path) -> None:
    make_repo(work, 200, default="sandbox", parallelism=2)
    store = work / ".hbsdeploy" / "sandbox.sqlite3"
    process = start_cli(work, "apply", "--auto-approve")
    wait_for(lambda: audit_count(work) >= 20, "twenty changes applied", process)
    process.process.kill()
    assert process.finish()[0] == -signal.SIGKILL

    with sqlite3.connect(store) as db:  # the WAL is recovered on open
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    holds = written(store)
    assert all(version <= 1 for _, version in held(store).values())
    entries = strict_audit_lines(work, allow_torn_last=True)
    audited = {(e["partner_id"], e["service_type"]) for e in entries if e["result"] == "applied"}
    assert audited <= holds and len(holds - audited) <= 2  # at most one write in flight per worker
    assert holds < keys(200)  # killed midway
    assert planned_keys(work) == keys(200) - holds
    converge()


# -- plan --out under SIGKILL ----------------------------------------------------------------------------------------

# Runs `hbsdeploy plan --out plan.json` with os.fsync wrapped: at its N-th call it says so in a marker file and
# sleeps, so the test kills the process at a known point of write_atomic (1: the temporary file is written but not
# yet renamed over plan.json; 2: renamed, the folder not yet synced).
_PAUSING_PLAN = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path
    pause_at, calls, real_fsync = int(sys.argv[1]), [], os.fsync
    def fsync(fd):
        real_fsync(fd)
        calls.append(fd)
        if len(calls) == pause_at:
            Path("paused").write_text("yes")
            time.sleep(120)
    os.fsync = fsync
    from hbsdeploy.cli.main import main
    main(["plan", "--out", "plan.json"])
""")


@pytest.mark.parametrize("pause_at, expected", [(1, "old"), (2, "new")])
def test_sigkill_during_plan_out_leaves_the_old_plan_or_the_new_never_a_partial_one(work: Path, pause_at: int,
                                                                                    expected: str) -> None:
    make_repo(work, 30, default="sandbox")
    assert run_cli("plan", "--out", "plan.json").code == 0
    old = (work / "plan.json").read_bytes()
    make_repo(work, 30, default="sandbox", variant="b")  # the partner files change: the next plan differs
    (work / "pausing_plan.py").write_text(_PAUSING_PLAN, encoding="utf-8")
    process = start_cli(work, str(pause_at), prefix=["pausing_plan.py"])
    wait_for(lambda: (work / "paused").exists(), "plan to reach write_atomic", process)
    process.process.kill()
    assert process.finish()[0] == -signal.SIGKILL
    now = (work / "plan.json").read_bytes()
    plan = plan_from_json(json.loads(now))  # whole and valid either way
    if expected == "old":
        assert now == old
    else:
        assert now != old and all("/b" in str(c.after["service_url"]) for c in plan.changes)
    leftovers = sorted(p.name for p in work.iterdir() if p.name.startswith(".plan.json."))
    assert len(leftovers) == (1 if expected == "old" else 0)  # a killed write leaves its hidden temporary file
    assert run_cli("plan", "--out", "plan.json").code == 0  # and the next plan --out still works


# -- the audit log: whole lines ------------------------------------------------------------------------------------

def record(log: AuditLog, partner_id: str = "DE*R00") -> None:
    log.record(environment="qa", partner_id=partner_id, service_type="authorization", kind="enable", before={},
               after={"online_request": True}, result="applied", message=None, plan_checksum="sha256:0")


def test_an_entry_after_a_torn_last_line_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    record(log, "DE*R00")
    with path.open("ab") as handle:  # what a crash in the middle of a write leaves behind
        handle.write(b'{"environment": "qa", "partner_id": "DE*R01", "serv')
    record(log, "DE*R02")
    assert [e["partner_id"] for e in read_audit(path)] == ["DE*R00", "DE*R02"]  # only the torn entry is lost


def test_each_entry_is_one_append_of_a_whole_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: Any) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    log = AuditLog(tmp_path / "audit.jsonl")
    for partner_id in ("DE*R00", "DE*R01", "DE*R02"):
        record(log, partner_id)
    assert len(writes) == 3 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    assert os.stat(tmp_path / "audit.jsonl").st_mode & 0o777 == 0o600


def test_a_short_write_stops_apply_instead_of_leaving_a_silent_torn_line(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:20]))  # disk full
    with pytest.raises(AuditError, match=r"cannot append to the audit log .*wrote 20 of \d+ bytes"):
        record(log, "DE*R00")
    monkeypatch.setattr(os, "write", real_write)
    record(log, "DE*R01")
    assert [e["partner_id"] for e in read_audit(path)] == ["DE*R01"]


def test_signals_until_the_exit_never_turn_the_reported_outcome_into_a_death_by_signal(
        work: Path, emulator: Start) -> None:
    """Ctrl-C held down: after the first SIGINT stops the apply, more keep coming through the report and the
    interpreter's shutdown. The exit stays 130 with the whole report: a signal after the outcome is ignored by the
    whole process (a mask held only for the main thread, and Python's shutdown restores the default action, which
    then killed the process through a pool or watchdog thread still running)."""
    slow = emulator(auto_register=True, latency_ms=LATENCY_MS)
    make_repo(work, PARTNERS, url=slow.url, parallelism=1)
    for _ in range(3):
        before = audit_count(work)
        process = start_cli(work, "apply", "--auto-approve")
        wait_for(lambda: audit_count(work) > before, "a change applied", process)  # noqa: B023 (called at once)
        while process.poll() is None:
            process.process.send_signal(signal.SIGINT)
            time.sleep(0.001)
        code, out, err = process.finish()
        assert code == 130, (out, err[-2000:])
        assert "Traceback" not in err and " not attempted." in out
