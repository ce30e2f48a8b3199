"""End to end against the portal emulator on 127.0.0.1: mutual TLS, a bearer token, exact request counts,
concurrent applies and injected faults."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.apply.audit import AuditLog
from hbsdeploy.apply.run import Status, apply_plan
from hbsdeploy.check.project import load_project
from hbsdeploy.load.config import find_config, load_config
from hbsdeploy.plan.build import make_plan
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.http import HttpPortal
from tests.e2e.helpers import EXAMPLE_KEYS, EXAMPLE_PARTNERS, TOKEN, TOKEN_ENV, read_audit_lines, snapshot
from tests.fixtures.emulator import Start
from tests.fixtures.tls import TlsFiles
from tests.helpers import Ran, run_cli

REPO = Path(__file__).resolve().parents[2]


def emulator_config(url: str, tls: TlsFiles, max_retries: int = 2) -> str:
    return f"""\
default_environment: qa
environments:
  sandbox:
    portal: local
  qa:
    portal: {url}
    token_env: {TOKEN_ENV}
    client_cert: {tls.client_cert}
    client_key: {tls.client_key}
    ca_bundle: {tls.ca}
    max_retries: {max_retries}
    timeouts:
      connect: 5
      read: 10
  prod:
    portal: local
    protected: true
"""


@pytest.fixture
def portal_env(repo: Path, tls: TlsFiles, tls_emulator: Start, monkeypatch: pytest.MonkeyPatch) -> ServerHandle:
    """The repository's qa environment pointed at an emulator that knows the example partners."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    handle = tls_emulator(partners=EXAMPLE_PARTNERS, token=TOKEN)
    (repo / "hbsdeploy.yaml").write_text(emulator_config(handle.url, tls), encoding="utf-8")
    return handle


class Counter:
    """Requests the emulator answered since the last look. The emulator counts a request just after sending its
    answer, so the count may trail the client by a moment: wait (bounded) until it reaches what is expected; any
    extra request shows up in the next delta or in the final totals."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.seen = handle.stats.requests

    def delta(self, expected: int) -> int:
        deadline = time.monotonic() + 10
        while self.handle.stats.requests - self.seen < expected and time.monotonic() < deadline:
            time.sleep(0.005)
        now = self.handle.stats.requests
        delta, self.seen = now - self.seen, now
        return delta


def emulator_state(tmp_path: Path) -> dict[tuple[str, str], tuple[dict[str, Any] | None, int]]:
    return snapshot(tmp_path / "emulator.sqlite3")


def test_plan_apply_plan_with_exact_request_counts(portal_env: ServerHandle, repo: Path, tmp_path: Path) -> None:
    count = Counter(portal_env)
    planned = run_cli("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.output
    assert "Plan: 4 to enable, 0 to change, 0 to disable." in planned.stdout
    assert count.delta(1) == 1  # one page of the partners listing

    applied = run_cli("apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "Apply: 4 applied, 0 failed, 0 not attempted." in applied.stdout
    assert count.delta(1 + 4 + 3) == 1 + 4 + 3  # plan, one write per change, one read-back listing per partner

    after = run_cli("plan", "--detailed-exitcode")
    assert after.code == 0, after.output
    assert count.delta(1) == 1
    again = run_cli("apply", "--auto-approve")
    assert again.code == 0 and count.delta(1) == 1  # no write
    assert portal_env.stats.statuses == {200: 1 + 8 + 1 + 1}

    held = emulator_state(tmp_path)
    assert sorted(held) == EXAMPLE_KEYS and all(version == 1 for _, version in held.values())
    assert held[("DE*A36", "authorization")][0]["service_url"] == "https://oicp-qa.example-charging.com"  # type: ignore[index]

    targeted = run_cli("plan", "--partner", "DE*A36", "--detailed-exitcode")
    assert targeted.code == 0 and count.delta(1) == 1  # that partner's own listing


def test_saved_plan_costs_one_listing_per_partner_more(portal_env: ServerHandle, repo: Path) -> None:
    count = Counter(portal_env)
    assert run_cli("plan", "--out", "plan.json").code == 0
    assert count.delta(1) == 1
    applied = run_cli("apply", "plan.json")
    assert applied.code == 0, applied.output
    assert count.delta(3 + 4 + 3) == 3 + 4 + 3  # freshness check and read-back: one listing per partner, writes
    assert run_cli("plan", "--detailed-exitcode").code == 0


MANY = """\
name: Many Partner {index}
role: cpo
operator_id: "{partner_id}"
environments:
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp.many{index}.example.com
    client_certification: true
  reservation:
    online_request: true
    service_url: https://oicp.many{index}.example.com/reservation
    client_certification: true
"""


def test_many_partners_cost_one_write_per_change_and_a_few_pages(repo: Path, tls: TlsFiles, tls_emulator: Start,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"DE*M{index:02d}" for index in range(40)]  # more than BULK_MIN_PARTNERS: pages, not one read each
    for index, partner_id in enumerate(ids):
        (repo / "partners" / f"m{index:02d}.yaml").write_text(MANY.format(partner_id=partner_id, index=index),
                                                               encoding="utf-8")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    handle = tls_emulator(partners=[*EXAMPLE_PARTNERS, *ids], token=TOKEN)
    (repo / "hbsdeploy.yaml").write_text(emulator_config(handle.url, tls), encoding="utf-8")
    count = Counter(handle)
    assert run_cli("plan", "--out", "plan.json").code == 0
    assert count.delta(1) == 1
    changes = 4 + 2 * len(ids)
    applied = run_cli("apply", "plan.json")
    assert applied.code == 0, applied.output
    assert f"Apply: {changes} applied, 0 failed, 0 not attempted." in applied.stdout
    assert count.delta(1 + changes + 1) == 1 + changes + 1  # freshness page, one PUT per change, read-back page
    assert run_cli("apply", "--auto-approve").code == 0 and count.delta(1) == 1  # re-apply: 0 writes
    assert handle.stats.statuses == {200: 1 + 1 + changes + 1 + 1}


def test_the_token_and_key_appear_nowhere(portal_env: ServerHandle, repo: Path, tls: TlsFiles) -> None:
    # in a child process, so that -v really configures logging (pytest owns the root logger here)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def run(*args: str) -> Ran:
        done = subprocess.run([sys.executable, "-m", "hbsdeploy", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=120)
        return Ran(done.returncode, done.stdout, done.stderr)

    runs = [run("-v", "plan", "--out", "plan.json"), run("-vv", "apply", "plan.json"),
            run("-v", "import", "--env", "qa", "--partner", "DE-8EO")]
    key = tls.client_key.read_text(encoding="utf-8").splitlines()[1]
    texts = [r.output for r in runs] + [(repo / "plan.json").read_text(encoding="utf-8"),
                                        (repo / ".hbsdeploy" / "audit.jsonl").read_text(encoding="utf-8")]
    assert all(r.code == 0 for r in runs), [r.output for r in runs]
    assert "<redacted>" in runs[0].stderr  # -v logged the requests, with the secret header redacted
    for text in texts:
        assert TOKEN not in text and key not in text


def test_a_missing_token_is_an_error_naming_the_variable(portal_env: ServerHandle, repo: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    ran = run_cli("plan")
    assert ran.code == 1 and f"the environment variable {TOKEN_ENV} (token_env) is not set" in ran.stderr


def test_a_concurrent_change_makes_the_second_saved_plan_stale(portal_env: ServerHandle, repo: Path,
                                                               tmp_path: Path) -> None:
    assert run_cli("plan", "--out", "a.json").code == 0
    cpo = repo / "partners" / "example-cpo.yaml"
    cpo.write_text(cpo.read_text(encoding="utf-8").replace("oicp-qa.example-charging.com",
                                                           "oicp-qa2.example-charging.com"), encoding="utf-8")
    assert run_cli("plan", "--out", "b.json").code == 0  # from the same portal state, other partner files
    assert run_cli("apply", "a.json").code == 0
    held = emulator_state(tmp_path)
    refused = run_cli("apply", "b.json")
    assert refused.code == 1
    assert "the portal changed since the plan was made" in refused.stderr and "nothing was written" in refused.stderr
    assert emulator_state(tmp_path) == held  # a's changes are all there, nothing lost
    assert run_cli("apply", "--auto-approve").code == 0  # re-planning picks b's intent up on top of a
    held = emulator_state(tmp_path)
    assert held[("DE*A36", "authorization")] == (dict(held[("DE*A36", "authorization")][0] or {},
                                                      service_url="https://oicp-qa2.example-charging.com"), 2)


def test_two_applies_at_once_one_wins_each_version_and_the_other_gets_412(portal_env: ServerHandle, repo: Path,
                                                                          tmp_path: Path) -> None:
    config = load_config(find_config())
    env = config.environment("qa")
    project = load_project(config, env)
    portals = [HttpPortal(env), HttpPortal(env)]
    first = make_plan(project, env, portals[0], 4)
    # the second plan wants other URLs, planned from the same versions
    second = dataclasses.replace(first, changes=tuple(
        dataclasses.replace(c, payload={**c.payload, "service_url": str(c.payload["service_url"]) + "/two"},
                            after={**c.after, "service_url": str(c.after["service_url"]) + "/two"})
        for c in first.changes))
    barrier = threading.Barrier(2)
    results: dict[int, Any] = {}

    def run(index: int) -> None:
        barrier.wait()
        results[index] = apply_plan((first, second)[index], portals[index],
                                    AuditLog(config.state_dir / "audit.jsonl"), parallelism=4)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for portal in portals:
        portal.close()
    held = emulator_state(tmp_path)
    for position, change in enumerate(first.changes):
        outcomes = [results[i].results[position] for i in (0, 1)]
        winners = [i for i in (0, 1) if outcomes[i].status is Status.APPLIED]
        assert len(winners) == 1, outcomes  # exactly one write lands per version
        loser = outcomes[1 - winners[0]]
        assert loser.status is Status.FAILED and "changed since the plan (412" in (loser.message or "")
        winner_plan = (first, second)[winners[0]]
        settings, version = held[change.key]
        assert version == 1 and settings == dict(winner_plan.changes[position].after)  # nothing lost or mixed
    assert portal_env.stats.statuses.get(412) == len(first.changes)
    audit = read_audit_lines(repo)
    assert sorted(e["result"] for e in audit) == ["applied"] * 4 + ["failed"] * 4


def test_faults_are_reported_exactly_and_reruns_converge(repo: Path, tls: TlsFiles, tls_emulator: Start,
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A second emulator serves the same store with faults (500, 503, 429, dropped connections, lost answers)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    clean = tls_emulator(partners=EXAMPLE_PARTNERS, token=TOKEN)
    faulty = tls_emulator(partners=EXAMPLE_PARTNERS, token=TOKEN, fail_rate=0.25, seed=2)
    (repo / "hbsdeploy.yaml").write_text(emulator_config(faulty.url, tls, max_retries=0), encoding="utf-8")
    partial_runs = 0
    for _ in range(30):
        ran = run_cli("apply", "--auto-approve", "--parallelism", "1")
        if ran.code == 0 and "Apply:" not in ran.stdout:
            break  # nothing left to do
        assert ran.code in (0, 1), ran.output
        assert "Traceback" not in ran.output
        if "Apply:" not in ran.stdout:  # planning itself met a fault: an error, nothing written
            assert ran.stderr.startswith("error: portal 'qa'"), ran.output
            continue
        held = emulator_state(tmp_path)
        lines = [line for line in ran.stdout.splitlines() if line.lstrip().startswith(("applied:", "failed:"))]
        applied = [line for line in lines if line.lstrip().startswith("applied:")]
        if applied and len(applied) < len(lines):
            partial_runs += 1
        for line in applied:  # never a change reported applied that the portal does not hold
            partner_id, service_type = line.split(": ", 1)[1].split(" (")[0].split(" / ")
            assert held[(partner_id, service_type)][0]["online_request"] is True  # type: ignore[index]
    assert partial_runs >= 1
    assert sum(faulty.stats.faults.values()) > 0
    (repo / "hbsdeploy.yaml").write_text(emulator_config(clean.url, tls), encoding="utf-8")
    final = run_cli("plan", "--detailed-exitcode")
    assert final.code == 0, final.output
    # the audit log agrees with the portal: the last entry per service type that says applied is what it holds
    held = emulator_state(tmp_path)
    last_applied = {}
    for entry in read_audit_lines(repo):
        if entry["result"] == "applied":
            last_applied[(entry["partner_id"], entry["service_type"])] = entry["after"]
    for key, after in last_applied.items():
        assert held[key][0] == after


def test_plan_json_from_the_emulator_matches_the_file(portal_env: ServerHandle, repo: Path) -> None:
    shown = run_cli("plan", "--format", "json", "--out", "plan.json")
    assert json.loads(shown.stdout) == json.loads((repo / "plan.json").read_text(encoding="utf-8"))
