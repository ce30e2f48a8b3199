"""Concurrency: two applies with different desired states for the same partners at once.

No update is lost: each version is written once, by one side; the other side is told "the portal changed since the
plan"; every service type ends with one side's settings, never a mix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hbsdeploy.apply.audit import AuditLog
from hbsdeploy.apply.run import ApplyResult, Status, apply_plan
from hbsdeploy.check.project import load_project
from hbsdeploy.load.config import load_config
from hbsdeploy.plan.build import make_plan
from hbsdeploy.portal import ServiceTypeState
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.http import HttpPortal
from tests.reliability.helpers import (
    Child,
    audit_entries,
    desired_after,
    held,
    make_repo,
    parse_report,
    partner_ids,
    start_cli,
    strict_audit_lines,
)

Start = Callable[..., ServerHandle]
PARTNERS = 12
KEYS = [(p, t) for p in partner_ids(PARTNERS) for t in ("authorization", "reservation")]
CHANGED = "changed since the plan"


def check_race(state_file: Path, reports: dict[str, dict[tuple[str, str], str]]) -> dict[str, int]:
    """Each service type: written exactly once, holding all of one side's settings; that side alone says applied."""
    wanted = {variant: desired_after(KEYS, variant) for variant in ("a", "b")}
    holds = held(state_file)
    wins = {"a": 0, "b": 0}
    for key in KEYS:
        settings, version = holds[key]
        assert version == 1, (key, version)  # one write per version: the other side's was refused, not stacked
        winner = next(v for v in ("a", "b") if settings == wanted[v][key])  # StopIteration would be a mix
        wins[winner] += 1
        loser = "b" if winner == "a" else "a"
        assert reports[winner].get(key) == "applied", (key, reports[winner].get(key))
        assert reports[loser].get(key, "stale") != "applied", key
    return wins


def collect(processes: Mapping[str, Child]) -> dict[str, dict[tuple[str, str], str]]:
    """Each side's per-change outcome (none for a saved plan refused as a whole), checking what it printed."""
    reports: dict[str, dict[tuple[str, str], str]] = {}
    for variant, process in processes.items():
        code, out, err = process.finish()
        assert code in (0, 1) and "Traceback" not in err, (variant, out, err)
        report = parse_report(out)
        if not report:  # the whole saved plan was refused before any write
            # refused by the If-Match freshness check, or (one state folder) by the other apply's lock
            assert code == 1 and ("the portal changed since the plan was made" in err
                                  or "another apply to 'sandbox' is running" in err), err
            assert "nothing was written" in err
        for outcome in report.values():
            if outcome.status != "applied":
                assert outcome.status == "failed" and CHANGED in (outcome.message or ""), outcome
        assert code == (0 if report and all(o.status == "applied" for o in report.values()) else 1)
        reports[variant] = {key: outcome.status for key, outcome in report.items()}
    return reports


def test_two_cli_applies_against_the_emulator_lose_no_update(tmp_path: Path, emulator: Start) -> None:
    handle = emulator(auto_register=True, latency_ms=20)
    repos = {v: make_repo(tmp_path / v, PARTNERS, url=handle.url, variant=v, parallelism=2) for v in ("a", "b")}
    planning = [start_cli(repo, "plan", "--out", "plan.json") for repo in repos.values()]  # at once: same versions
    assert [process.finish()[0] for process in planning] == [0, 0]
    processes = {variant: start_cli(repo, "apply", "plan.json") for variant, repo in repos.items()}
    reports = collect(processes)
    check_race(handle.portal.store.path, reports)
    for variant, repo in repos.items():
        entries = strict_audit_lines(repo)  # whole lines only
        assert sorted((e["partner_id"], e["service_type"]) for e in entries) == sorted(reports[variant])
        assert all(e["result"] == reports[variant][(e["partner_id"], e["service_type"])] for e in entries)
    # the side that lost a service type sees it again in its next plan, planned from the winner's version
    next_plans = {variant: start_cli(repo, "plan", "--detailed-exitcode") for variant, repo in repos.items()}
    for variant, process in next_plans.items():
        lost = sum(1 for key in KEYS if reports[variant].get(key) != "applied")
        code, out, _ = process.finish()
        assert code == (2 if lost else 0)
        assert (f"Plan: 0 to enable, {lost} to change, 0 to disable." in out) if lost else "No changes" in out


def test_two_cli_applies_on_one_local_store_lose_no_update(tmp_path: Path) -> None:
    """Two partner folders and configs in one repository: one sandbox store, one audit log, two processes. The
    apply lock usually refuses the second at once; when the first has finished before, the freshness check does."""
    repo = tmp_path / "repo"
    for variant in ("a", "b"):
        make_repo(repo, PARTNERS, variant=variant, default="sandbox", parallelism=2, partners_dir=f"partners-{variant}",
                  config_name=f"{variant}.yaml")
    for variant in ("a", "b"):  # both plans from the same versions
        assert start_cli(repo, "--config", f"{variant}.yaml", "plan", "--out", f"{variant}.json").finish()[0] == 0
    processes = {v: start_cli(repo, "--config", f"{v}.yaml", "apply", f"{v}.json") for v in ("a", "b")}
    reports = collect(processes)
    check_race(repo / ".hbsdeploy" / "sandbox.sqlite3", reports)
    entries = strict_audit_lines(repo)  # both processes appended to one audit log: whole lines only
    assert len(entries) == sum(len(report) for report in reports.values())
    assert sorted(e["result"] for e in entries).count("applied") == len(KEYS)


class Rendezvous:
    """An HttpPortal whose writes wait for the other applier's write of the same service type: a forced race."""

    listing_is_cheap = True

    def __init__(self, portal: HttpPortal, barriers: dict[tuple[str, str], threading.Barrier]) -> None:
        self.portal = portal
        self.barriers = barriers

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        return self.portal.list_service_types(partner_id)

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        return self.portal.list_all_service_types()

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        return self.portal.get_service_type(partner_id, service_type)

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        self.barriers[(partner_id, service_type)].wait(timeout=30)
        return self.portal.update_service_type(partner_id, service_type, payload, if_match)

    def cancel(self) -> None:
        self.portal.cancel()

    def close(self) -> None:
        self.portal.close()


def test_every_write_raced_on_the_same_version_has_one_winner(tmp_path: Path, emulator: Start) -> None:
    handle = emulator(auto_register=True)
    repos = {v: make_repo(tmp_path / v, PARTNERS, url=handle.url, variant=v) for v in ("a", "b")}
    barriers = {key: threading.Barrier(2) for key in KEYS}
    plans, portals, audits = {}, {}, {}
    for variant, repo in repos.items():
        config = load_config(repo / "hbsdeploy.yaml")
        env = config.environment("qa")
        portals[variant] = Rendezvous(HttpPortal(env), barriers)
        plans[variant] = make_plan(load_project(config, env), env, portals[variant].portal, 4)
        audits[variant] = AuditLog(config.state_dir / "audit.jsonl")
    results: dict[str, ApplyResult] = {}

    def run(variant: str) -> None:
        results[variant] = apply_plan(plans[variant], portals[variant], audits[variant], parallelism=4)

    threads = [threading.Thread(target=run, args=(v,)) for v in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for portal in portals.values():
        portal.close()
    reports = {v: {r.change.key: r.status.value for r in results[v].results} for v in ("a", "b")}
    for variant in ("a", "b"):
        for item in results[variant].results:
            if item.status is not Status.APPLIED:
                assert item.status is Status.FAILED and f"{CHANGED} (412" in (item.message or ""), item
    wins = check_race(handle.portal.store.path, reports)
    assert wins["a"] + wins["b"] == len(KEYS)
    assert handle.stats.statuses.get(412) == len(KEYS)  # every race had a loser, told so by the portal
    for variant, repo in repos.items():
        assert {(e["partner_id"], e["service_type"]): e["result"] for e in audit_entries(repo)} == reports[variant]


def test_audit_logs_appending_at_once_leave_no_blank_line(tmp_path: Path) -> None:
    """Was: an append that saw the log while another one was being written (its first page in, size ending mid-line)
    began with a newline of its own, leaving a blank line in audit.jsonl (several in 1,200 appends; once in
    tests/e2e/test_emulator.py's two applies at once, issue 13 review). Applies to two environments share the log,
    each with its own AuditLog: the check of the last byte and the append now hold the file's lock together."""
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path) for _ in range(3)]
    start = threading.Barrier(len(logs))

    def append(log: AuditLog) -> None:
        start.wait()
        for index in range(400):
            log.record(environment="qa", partner_id="DE*A" + "3" * (index % 50), service_type="authorization",
                       kind="enable", before={}, after={"online_request": True}, result="applied", message=None,
                       plan_checksum="sha256:" + "0" * 64)

    threads = [threading.Thread(target=append, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and "" not in lines[:-1]
    assert len(lines) - 1 == 1200
