"""Removals are visible: a deleted service-type block or partner file shows in every plan format as no longer
managed, with what the portal keeps; switching a service type off is one edit (issue 12, scenario 4)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import LOCAL_CONFIG
from tests.helpers import run_cli

RESERVATION_BLOCK = """  reservation:
    online_request: true
    service_url: https://oicp.example-charging.com/reservation
    client_certification: true
"""


def _applied(repo: Path) -> None:
    ran = run_cli("apply", "--auto-approve")
    assert ran.code == 0, ran.output


def test_a_deleted_service_type_block_is_no_longer_managed_in_every_format(repo: Path) -> None:
    _applied(repo)
    cpo = repo / "partners" / "example-cpo.yaml"
    text = cpo.read_text(encoding="utf-8")
    assert RESERVATION_BLOCK in text
    cpo.write_text(text.replace(RESERVATION_BLOCK, ""), encoding="utf-8")

    plain = run_cli("plan", "--detailed-exitcode")
    assert plain.code == 0, plain.output  # nothing for apply to do: it never touches what it does not manage
    assert "No longer managed in sandbox (1; hbsdeploy leaves them as the portal keeps them):" in plain.stdout
    assert ("  ! DE*A36 / reservation: its partner file no longer has this service type; the portal keeps "
            'online_request true, service_url "https://oicp.example-charging.com/reservation", '
            "client_certification true") in plain.stdout
    assert "set `online_request: false` for it in its partner file" in plain.stdout
    markdown = run_cli("plan", "--format", "markdown").stdout
    assert "#### No longer managed (1)" in markdown
    assert "| DE*A36 | reservation | its partner file no longer has this service type |" in markdown
    steps = run_cli("plan", "--format", "instructions").stdout
    assert "DE*A36 / reservation: its partner file no longer has this service type" in steps
    document = json.loads(run_cli("plan", "--format", "json").stdout)
    (item,) = document["unmanaged"]
    assert (item["partner_id"], item["service_type"], item["reason"]) == ("DE*A36", "reservation",
                                                                          "not-in-partner-file")
    assert item["settings"]["online_request"] is True


def test_a_deleted_partner_file_is_no_longer_managed(repo: Path) -> None:
    _applied(repo)
    (repo / "partners" / "example-emp.yaml").unlink()
    plan = run_cli("plan")
    assert plan.code == 0, plan.output
    assert "/ authorization: no partner file deploys it to sandbox; the portal keeps online_request true" \
        in plan.stdout
    narrowed = run_cli("plan", "--partner", "DE*A36")  # a narrowed plan says nothing of other partners
    assert "No longer managed" not in narrowed.stdout


def test_a_partner_removed_from_a_manual_environment_is_found_in_its_recorded_state(repo: Path) -> None:
    (repo / "hbsdeploy.yaml").write_text(LOCAL_CONFIG.format(default="sandbox"), encoding="utf-8")  # qa: manual
    recorded = run_cli("state", "record", "--env", "qa", "--reason", "OPS-9", input="yes\n",
                       env={"HBSDEPLOY_ALLOW_PIPED_CONFIRMATION": "1"})
    assert recorded.code == 0, recorded.output
    (repo / "partners" / "example-emp.yaml").unlink()
    plan = run_cli("plan", "--env", "qa")
    assert plan.code == 0, plan.output
    assert "no partner file deploys it to qa" in plan.stdout
    assert "recorded state as of" in plan.stdout


def test_switching_a_service_type_off_is_one_edit(repo: Path) -> None:
    _applied(repo)
    cpo = repo / "partners" / "example-cpo.yaml"
    text = cpo.read_text(encoding="utf-8")
    cpo.write_text(text.replace(RESERVATION_BLOCK, RESERVATION_BLOCK.replace("online_request: true",
                                                                             "online_request: false")),
                   encoding="utf-8")
    # The Service URLs of the base and of the qa override are still in the file: ignored while switched off.
    assert "https://oicp-qa.example-charging.com/reservation" in cpo.read_text(encoding="utf-8")
    checked = run_cli("validate")
    assert checked.code == 0, checked.output
    assert "url-needs-online-request" not in checked.output
    plan = run_cli("plan")
    assert "- DE*A36 (Example Charging GmbH) / reservation [disable]" in plan.stdout
    assert 'reservation.service_url: "https://oicp.example-charging.com/reservation" -> null' in plan.stdout
    _applied(repo)
    assert run_cli("plan", "--detailed-exitcode").code == 0
