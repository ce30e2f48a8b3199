"""Hostile files (issue 14): links planted in the state folder, FIFOs and devices where a file is expected, link
loops, integers too long to convert, JSON nested too deeply. Each is a one-line error, nothing is written outside
the repository, nothing hangs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hbsdeploy.apply.audit import AuditError, AuditLog
from hbsdeploy.check.validate import validate
from hbsdeploy.errors import HbsError, InputError
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.load.config import load_config
from hbsdeploy.plan.model import read_plan_file
from hbsdeploy.portal.store import Store, StoreError

PARTNER = """name: Example Charging GmbH
role: cpo
operator_id: "DE*A36"
environments:
  sandbox:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp.example-charging.com
    client_certification: true
    certificate: {certificate}
"""


def repo(tmp_path: Path, config: str = "", certificate: str = "hubject") -> Path:
    root = tmp_path / "repo"
    (root / "partners").mkdir(parents=True)
    (root / "hbsdeploy.yaml").write_text(config or "environments:\n  sandbox: {portal: local}\n", encoding="utf-8")
    (root / "partners" / "cpo.yaml").write_text(PARTNER.format(certificate=certificate), encoding="utf-8")
    return root


def problems_of(root: Path, *paths: str) -> list[str]:
    config = load_config(root / "hbsdeploy.yaml")
    report = validate(config, [root / p for p in paths] or None)
    return [p.format() for p in report.problems]


def test_a_state_file_linked_elsewhere_is_refused_and_nothing_is_created_there(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = tmp_path / "repo" / ".hbsdeploy"
    state.mkdir(parents=True)
    (state / "sandbox.sqlite3").symlink_to(elsewhere / "x.sqlite3")
    with pytest.raises(StoreError, match="is a symbolic link"):
        Store(state / "sandbox.sqlite3")
    (state / "sandbox.sqlite3").unlink()
    (state / "sandbox.sqlite3-wal").symlink_to(elsewhere / "x-wal")
    with pytest.raises(StoreError, match="sqlite3-wal.*is a symbolic link|is a symbolic link"):
        Store(state / "sandbox.sqlite3")
    assert list(elsewhere.iterdir()) == []


def test_an_audit_log_linked_elsewhere_is_refused_before_any_write(tmp_path: Path) -> None:
    elsewhere = tmp_path / "audit.jsonl"
    (tmp_path / ".hbsdeploy").mkdir()
    (tmp_path / ".hbsdeploy" / "audit.jsonl").symlink_to(elsewhere)
    log = AuditLog(tmp_path / ".hbsdeploy" / "audit.jsonl")
    with pytest.raises(AuditError, match="is a symbolic link"):
        log.check_writable()
    with pytest.raises(AuditError, match="is a symbolic link"):
        log.record(environment="sandbox", partner_id="DE*A36", service_type="authorization", kind="update",
                   before={}, after={}, result="applied", message=None, plan_checksum="sha256:0")
    assert not elsewhere.exists()


def test_a_fifo_partner_file_is_an_error_without_hanging(tmp_path: Path) -> None:
    root = repo(tmp_path)
    os.mkfifo(root / "partners" / "fifo.yaml")
    for found in (problems_of(root, "partners/fifo.yaml"), problems_of(root)):
        assert any("fifo.yaml:1:1: error[not-a-file]: is not a regular file" in line for line in found), found


def test_a_partner_file_linked_to_dev_zero_is_an_error_not_skipped(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "partners" / "zero.yaml").symlink_to("/dev/zero")
    found = problems_of(root)
    assert any("zero.yaml" in line and "error[" in line for line in found), found


def test_dev_zero_named_directly_is_refused_unread() -> None:
    with pytest.raises(FileRefused, match="not a regular file"):
        read_bytes(Path("/dev/zero"), 1024)


@pytest.mark.parametrize("where", ["partner", "config"])
def test_an_integer_of_more_than_4300_digits_is_a_located_error(tmp_path: Path, where: str) -> None:
    digits = "9" * 4301
    if where == "config":
        root = repo(tmp_path, f"environments:\n  sandbox: {{portal: local}}\napply: {{parallelism: {digits}}}\n")
        with pytest.raises(InputError, match=r"hbsdeploy.yaml:3:\d+: error\[number-too-long\]"):
            load_config(root / "hbsdeploy.yaml")
    else:
        root = repo(tmp_path)
        with (root / "partners" / "cpo.yaml").open("a", encoding="utf-8") as handle:
            handle.write(f"notes: {digits}\n")
        assert any("error[number-too-long]" in line for line in problems_of(root)), problems_of(root)


def test_a_certificate_file_link_loop_is_one_line(tmp_path: Path) -> None:
    root = repo(tmp_path, certificate="user\n    certificate_file: loop.pem")
    (root / "loop.pem").symlink_to("loop.pem")
    found = problems_of(root)
    assert any("certificate_file 'loop.pem' is a symbolic link loop" in line for line in found), found


def test_a_config_path_link_loop_is_one_line(tmp_path: Path) -> None:
    root = repo(tmp_path, "partners: ploop\nenvironments:\n  sandbox: {portal: local}\n")
    (root / "ploop").symlink_to("ploop")
    with pytest.raises(InputError, match=r"error\[invalid-path\]: partners 'ploop' is a symbolic link loop"):
        load_config(root / "hbsdeploy.yaml")


@pytest.mark.parametrize("case", ["fifo", "dev-zero", "deep", "long-integer"])
def test_a_hostile_plan_file_is_one_line(tmp_path: Path, case: str) -> None:
    path = tmp_path / "plan.json"
    if case == "fifo":
        os.mkfifo(path)
    elif case == "dev-zero":
        path = Path("/dev/zero")
    elif case == "deep":
        path.write_text("[" * (sys.getrecursionlimit() * 20) + "]" * (sys.getrecursionlimit() * 20))
    else:
        path.write_text(json.dumps({"environment": "sandbox"})[:-1] + ', "n": ' + "9" * 4301 + "}")
    with pytest.raises(HbsError) as caught:
        read_plan_file(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))
