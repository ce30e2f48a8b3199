"""Ctrl-C in the middle of `hbsdeploy apply` on a web environment: a real SIGINT to a real process, against the UI
replica with slow pages. The report is printed, the audit log holds what was done, nothing is half-edited."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hbsdeploy.load.settings import normalize_settings
from hbsdeploy.portal.emulator import ServerHandle
from tests.webdriver.helpers import PASSWORD, REPO, USER, start_replica, write_repo

ACCOUNTS = ("DE*A36", "DE*B12", "DE*C24", "DE*D48")
CONFIG = """\
default_environment: qa
environments:
  qa:
    portal: web
    url: {url}
    username_env: HBSDEPLOY_WEB_USER
    password_env: HBSDEPLOY_WEB_PASSWORD
    parallelism: 1
apply:
  parallelism: 1
"""
PARTNER = """\
name: Partner {index}
role: cpo
operator_id: "{partner_id}"
environments:
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp-qa.partner{index}.example.com
    client_certification: true
  reservation:
    online_request: true
    service_url: https://oicp-qa.partner{index}.example.com/reservation
    client_certification: true
"""
REPORT_LINE = re.compile(r"^\s*(applied|failed|not attempted): (\S+) / (\w+) \((\w+)\)(?:: (.*))?$")


@pytest.fixture
def slow_replica(tmp_path: Path) -> Iterator[ServerHandle]:
    """The replica with 150 ms added to every page: an apply of 8 writes takes long enough to be interrupted."""
    handle = start_replica(tmp_path / "portal.sqlite3", {account: f"Account {account}" for account in ACCOUNTS},
                           latency_ms=150)
    yield handle
    handle.stop()


def audit_entries(repo: Path) -> list[dict[str, object]]:
    path = repo / ".hbsdeploy" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_ctrl_c_mid_apply_on_a_web_environment_reports_audits_and_leaves_nothing_half_edited(
        tmp_path: Path, slow_replica: ServerHandle) -> None:
    repo = write_repo(tmp_path / "repo", CONFIG.format(url=slow_replica.url),
                      {f"partner-{index}.yaml": PARTNER.format(index=index, partner_id=account)
                       for index, account in enumerate(ACCOUNTS)})
    env = {key: value for key, value in os.environ.items() if key != "HBSDEPLOY_CONFIG"}
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), NO_COLOR="1",
               HBSDEPLOY_WEB_USER=USER, HBSDEPLOY_WEB_PASSWORD=PASSWORD)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # A session of its own, so that the signal can go to the whole process group, as a terminal's Ctrl-C does
        # (Python, Playwright's driver and Chromium all receive it); SIGINT back to its default in the child.
        process = subprocess.Popen([sys.executable, "-m", "hbsdeploy", "apply", "--env", "qa", "--auto-approve"],
                                   cwd=repo, env=env, stdout=out, stderr=err, start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            bound = time.monotonic() + 240  # only against a hang; nothing is asserted on time
            while not audit_entries(repo) and process.poll() is None and time.monotonic() < bound:
                time.sleep(0.05)
            if process.poll() is None and audit_entries(repo):
                os.killpg(process.pid, signal.SIGINT)
                code = process.wait(timeout=240)
            else:
                code = None  # apply ended before its first write was audited, or never audited one
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()

    assert code == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "Run `hbsdeploy apply --env qa` again to finish" in stderr, stderr
    report = {(m.group(2), m.group(3)): (m.group(1), m.group(5)) for m in map(REPORT_LINE.match,
                                                                              stdout.splitlines()) if m}
    everything = {(account, kind) for account in ACCOUNTS for kind in ("authorization", "reservation")}
    assert set(report) == everything, stdout
    applied = {key for key, (status, _) in report.items() if status == "applied"}
    not_attempted = {key for key, (status, _) in report.items() if status == "not attempted"}
    assert applied and not_attempted and applied | not_attempted == everything, stdout  # nothing failed
    assert all(message == "interrupted before this change" for key, (_, message) in report.items()
               if key in not_attempted)
    assert f"Apply: {len(applied)} applied, 0 failed, {len(not_attempted)} not attempted." in stdout

    # The audit log holds exactly what was done, each write with its screenshots.
    entries = audit_entries(repo)
    assert {(str(e["partner_id"]), str(e["service_type"])) for e in entries} == applied
    for entry in entries:
        assert entry["result"] == "applied"
        evidence = entry["evidence"]
        assert isinstance(evidence, list) and len(evidence) == 2
        assert all((repo / ".hbsdeploy" / str(shot)).is_file() for shot in evidence)

    # The portal holds each applied change whole, and nothing of the others (not even a half-typed form).
    for entry in entries:
        held = slow_replica.portal.get_service_type(str(entry["partner_id"]), str(entry["service_type"]))
        assert held.settings == normalize_settings(entry["after"])  # type: ignore[arg-type]
    for partner_id, kind in not_attempted:
        assert slow_replica.portal.get_service_type(partner_id, kind).version == '"0"'
