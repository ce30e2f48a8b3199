"""`hbsdeploy show PLANFILE` in every plan format, and `apply --format json` checked against its shipped schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hbsdeploy.apply.orchestrate import ApplyReport
from hbsdeploy.apply.report import apply_report_document, report_json
from hbsdeploy.apply.run import ApplyResult, ChangeResult, Status
from hbsdeploy.load.resources import load_schema
from hbsdeploy.plan.formats import PLAN_FORMATS
from tests.e2e.helpers import LOCAL_CONFIG, snapshot, write_config
from tests.helpers import run_cli
from tests.plan.factories import one_of_each_kind


def _check(document: dict[str, Any]) -> dict[str, Any]:
    validator = jsonschema.Draft202012Validator(load_schema("apply-report"))
    validator.check_schema(validator.schema)
    validator.validate(document)
    return document


# --- show -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output_format", list(PLAN_FORMATS))
def test_show_prints_a_saved_plan_as_plan_did(repo: Path, output_format: str) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox"))
    planned = run_cli("plan", "--env", "qa", "--format", output_format, "--out", "qa.plan.json")
    assert planned.code == 0, planned.output
    shown = run_cli("show", "qa.plan.json", "--format", output_format)
    assert shown.code == 0, shown.output
    assert shown.stdout == planned.stdout  # every format of the registry, the manual portal's label included
    checksum = json.loads((repo / "qa.plan.json").read_text(encoding="utf-8"))["checksum"]
    assert shown.stderr == f"qa.plan.json: a plan for qa, checksum {checksum} verified\n"


def test_show_refuses_an_altered_or_unreviewed_plan(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    path = repo / "plan.json"
    text = path.read_text(encoding="utf-8")
    checksum = json.loads(text)["checksum"]
    assert run_cli("show", "plan.json", "--checksum", checksum).code == 0
    wrong = run_cli("show", "plan.json", "--checksum", "sha256:00")
    assert wrong.code == 1 and "is not the reviewed sha256:00" in wrong.stderr and wrong.stdout == ""
    path.write_text(text.replace("Example Charging GmbH", "Example Charging AG"), encoding="utf-8")
    altered = run_cli("show", "plan.json")
    assert altered.code == 1 and altered.stdout == ""
    assert altered.stderr.startswith("error: plan.json: the plan file was altered")
    missing = run_cli("show", "nowhere.json")
    assert missing.code == 1 and "nowhere.json: cannot read the plan file" in missing.stderr


def test_show_reads_standard_input_and_needs_no_repository(repo: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    planned = run_cli("plan", "--out", "-").stdout
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no hbsdeploy.yaml here or above: the plan still shows
    shown = run_cli("show", "-", "--format", "json", "-q", input=planned)
    assert shown.code == 0, shown.output
    assert shown.stdout == planned and shown.stderr == ""


def test_show_narrows_to_a_service_type_or_partner(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    shown = run_cli("show", "plan.json", "--service-type", "reservation", "--format", "json")
    assert shown.code == 0, shown.output
    part = json.loads(shown.stdout)
    assert [(c["partner_id"], c["service_type"]) for c in part["changes"]] == [("DE*A36", "reservation")]
    assert "shown: 1 change of 4, with the checksum of that part" in shown.stderr
    partner = run_cli("show", "plan.json", "--partner", "de-8eo", "--format", "json")  # any way of writing it
    assert [c["partner_id"] for c in json.loads(partner.stdout)["changes"]] == ["DE-8EO"]
    # the part is a plan of its own: apply takes it, and only it
    (repo / "part.json").write_text(shown.stdout, encoding="utf-8")
    applied = run_cli("apply", "part.json")
    assert applied.code == 0, applied.output
    assert sorted(snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3")) == [("DE*A36", "reservation")]
    unknown = run_cli("show", "plan.json", "--service-type", "nope")
    assert unknown.code == 2 and "no such service type" in unknown.stderr


# --- apply --format json --------------------------------------------------------------------------------------------

def test_apply_json_reports_every_change_and_exits_0(repo: Path) -> None:
    ran = run_cli("apply", "--auto-approve", "--format", "json")
    assert ran.code == 0, ran.output
    report = _check(json.loads(ran.stdout))  # stdout is the report only: the plan went to stderr
    assert (report["status"], report["exit_code"], report["environment"]) == ("applied", 0, "sandbox")
    assert report["summary"] == {"applied": 4, "failed": 0, "not_attempted": 0, "unchanged": 0}
    assert [(c["partner_id"], c["service_type"], c["result"]) for c in report["changes"]] == [
        ("+49*536", "authorization", "applied"), ("DE*A36", "authorization", "applied"),
        ("DE*A36", "reservation", "applied"), ("DE-8EO", "authorization", "applied")]
    assert report["plan_checksum"].startswith("sha256:")
    assert "Plan: 4 to enable" in ran.stderr

    again = run_cli("apply", "--auto-approve", "--format", "json")
    nothing = _check(json.loads(again.stdout))
    assert (again.code, nothing["status"], nothing["exit_code"], nothing["changes"]) == (0, "no-changes", 0, [])


def test_apply_json_of_a_saved_plan(repo: Path) -> None:
    planned = run_cli("plan", "--out", "plan.json")
    checksum = json.loads((repo / "plan.json").read_text(encoding="utf-8"))["checksum"]
    ran = run_cli("apply", "plan.json", "--checksum", checksum, "--format", "json")
    assert ran.code == 0, planned.output + ran.output
    report = _check(json.loads(ran.stdout))
    assert report["plan_checksum"] == checksum and report["status"] == "applied"


def test_a_refused_apply_still_reports_in_json(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    assert run_cli("apply", "--partner", "DE-8EO", "--auto-approve").code == 0  # the portal moves on
    stale = run_cli("apply", "plan.json", "--format", "json")
    assert stale.code == 1
    report = _check(json.loads(stale.stdout))
    assert (report["status"], report["exit_code"], report["changes"]) == ("refused", 1, [])
    assert report["error"] in stale.stderr
    usage = run_cli("apply", "--checksum", "sha256:00", "--format", "json")
    assert usage.code == 2 and _check(json.loads(usage.stdout))["exit_code"] == 2


def test_the_report_of_failed_and_interrupted_applies() -> None:
    plan = one_of_each_kind()
    first, second, *rest = plan.changes
    results = (ChangeResult(first, Status.APPLIED), ChangeResult(second, Status.FAILED, "portal said 500"),
               *(ChangeResult(change, Status.NOT_ATTEMPTED, "interrupted before this change") for change in rest))
    failed = _check(apply_report_document(ApplyReport("qa", plan, ApplyResult(results))))
    assert (failed["status"], failed["exit_code"]) == ("failed", 1)
    assert failed["summary"] == {"applied": 1, "failed": 1, "not_attempted": 1, "unchanged": 1}
    assert failed["changes"][1]["message"] == "portal said 500"
    assert failed["next_step"] == "Run `hbsdeploy apply --env qa` again to finish: it plans what remains."
    stopped = _check(apply_report_document(ApplyReport("qa", plan, ApplyResult(results, interrupted=True))))
    assert (stopped["status"], stopped["exit_code"]) == ("interrupted", 130)
    unaudited = ApplyResult(tuple(ChangeResult(c, Status.APPLIED) for c in plan.changes), audit_error="disk full")
    audit = _check(apply_report_document(ApplyReport("qa", plan, unaudited)))
    assert (audit["status"], audit["exit_code"], audit["audit_error"]) == ("failed", 1, "disk full")
    assert report_json(audit).endswith("}\n") and json.loads(report_json(audit)) == audit


def test_the_schema_is_shipped_and_printed(repo: Path) -> None:
    ran = run_cli("schema", "apply-report")
    assert ran.code == 0 and json.loads(ran.stdout) == load_schema("apply-report")
