"""Disables after review (issue 12, scenario 3): a small operator's switch-off applies from a reviewed plan file;
above the floor, the permission is given at plan time, shown in every plan format and covered by the checksum."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli

RESERVATION_ON = "  reservation:\n    online_request: true\n"
RESERVATION_OFF = "  reservation:\n    online_request: false\n"


def _switch_reservation_off(repo: Path) -> None:
    cpo = repo / "partners" / "example-cpo.yaml"
    text = cpo.read_text(encoding="utf-8")
    assert RESERVATION_ON in text
    cpo.write_text(text.replace(RESERVATION_ON, RESERVATION_OFF), encoding="utf-8")


def test_one_cpo_switching_off_its_reservation_applies_from_the_reviewed_plan(repo: Path) -> None:
    # Before: `apply plan.json` refused "disables 1 of 2 service types in scope (50%, ...) pass --force".
    for other in ("example-emp.yaml", "example-cpo-user-certificate.yaml"):
        (repo / "partners" / other).unlink()  # one CPO: authorization and reservation
    assert run_cli("apply", "--auto-approve").code == 0
    _switch_reservation_off(repo)
    planned = run_cli("plan", "--out", "plan.json")
    assert "Plan: 0 to enable, 0 to change, 1 to disable. 1 unchanged." in planned.stdout
    assert "Needs permission" not in planned.stdout  # 2 in scope: below apply.disable_check_min_scope (10)
    checksum = json.loads((repo / "plan.json").read_text())["checksum"]
    applied = run_cli("apply", "plan.json", "--checksum", checksum)
    assert applied.code == 0, applied.output
    assert "disable" in applied.stdout and "Apply: 1 applied, 0 failed, 0 not attempted." in applied.stdout


def test_above_the_floor_every_format_says_permission_is_needed_and_the_reviewed_permission_applies(
        repo: Path) -> None:
    config = repo / "hbsdeploy.yaml"
    text = config.read_text(encoding="utf-8")
    assert "apply:\n" in text
    config.write_text(text.replace("apply:\n", "apply:\n  disable_check_min_scope: 2\n"), encoding="utf-8")
    assert run_cli("apply", "--auto-approve").code == 0
    _switch_reservation_off(repo)
    cpo = repo / "partners" / "example-cpo.yaml"
    cpo.write_text(cpo.read_text(encoding="utf-8").replace("  authorization:            # the seed's recommended "
                                                           "CPO settings\n    online_request: true",
                                                           "  authorization:\n    online_request: false"),
                   encoding="utf-8")
    for output_format, expected in (("text", "Needs permission: this plan disables 2 of"),
                                    ("markdown", "> **Needs permission:**"),
                                    ("instructions", "Note: Needs permission: this plan disables 2 of")):
        shown = run_cli("plan", "--format", output_format).stdout
        assert expected in shown, output_format
    document = json.loads(run_cli("plan", "--format", "json").stdout)
    assert document["disable_check"]["needs_permission"] is True and document["disable_check"]["allowed"] is False

    assert run_cli("plan", "--out", "refused.json").code == 0
    refused = run_cli("apply", "refused.json")
    assert refused.code == 1 and "was not allowed to when it was made" in refused.stderr
    assert run_cli("plan", "--allow-disables", "--out", "allowed.json").code == 0
    allowed = json.loads((repo / "allowed.json").read_text())
    assert allowed["disable_check"]["allowed"] is True
    applied = run_cli("apply", "allowed.json", "--checksum", allowed["checksum"])  # CI: no --force, no question
    assert applied.code == 0, applied.output
