"""End to end on the embedded sandbox portal, through the command line as shipped (exit codes included)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.portal import PortalUnavailable, ServiceTypeState
from hbsdeploy.portal.local import LocalPortal
from tests.e2e.helpers import (
    EXAMPLE_KEYS,
    LOCAL_CONFIG,
    OFFLINE_CPO,
    read_audit_lines,
    snapshot,
    write_config,
)
from tests.helpers import run_cli

PIPED = {"HBSDEPLOY_ALLOW_PIPED_CONFIRMATION": "1"}


def state_file(repo: Path, env: str = "sandbox") -> Path:
    return repo / ".hbsdeploy" / f"{env}.sqlite3"


def test_plan_apply_then_plan_is_empty(repo: Path) -> None:
    before = run_cli("plan", "--detailed-exitcode")
    assert before.code == 2, before.output
    assert "Plan: 4 to enable, 0 to change, 0 to disable. 0 unchanged." in before.stdout
    assert run_cli("plan").code == 0  # without --detailed-exitcode, changes pending is still success

    applied = run_cli("apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "Apply: 4 applied, 0 failed, 0 not attempted." in applied.stdout
    held = snapshot(state_file(repo))
    assert sorted(held) == EXAMPLE_KEYS
    assert all(version == 1 for _, version in held.values())

    after = run_cli("plan", "--detailed-exitcode")
    assert after.code == 0, after.output
    assert after.stdout == "No changes in sandbox: the portal matches the partner files (4 service types checked).\n"

    again = run_cli("apply", "--auto-approve")  # applying again right after sends no write
    assert again.code == 0
    assert snapshot(state_file(repo)) == held
    assert len(read_audit_lines(repo)) == 4


def test_saved_plan_is_applied_exactly_without_a_prompt(repo: Path) -> None:
    saved = run_cli("plan", "--out", "plan.json", "--format", "json")
    assert saved.code == 0, saved.output
    text = (repo / "plan.json").read_text(encoding="utf-8")
    assert text == saved.stdout  # the file is the canonical JSON the reviewer saw
    document = json.loads(text)
    assert f"saved plan to plan.json ({document['checksum']})" in saved.stderr
    assert {(o["partner_id"], o["service_type"]) for o in document["observed"]} == set(EXAMPLE_KEYS)

    applied = run_cli("apply", "plan.json", "--checksum", document["checksum"].removeprefix("sha256:"))
    assert applied.code == 0, applied.output
    assert "Apply: 4 applied" in applied.stdout
    assert "?" not in applied.stderr  # no question asked
    assert run_cli("plan", "--detailed-exitcode").code == 0

    # the same plan file again is stale now: nothing is written
    held = snapshot(state_file(repo))
    stale = run_cli("apply", "plan.json")
    assert stale.code == 1
    assert snapshot(state_file(repo)) == held


def test_a_stale_plan_is_refused_writing_nothing(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    # someone changes one planned service type in the portal in between
    portal = LocalPortal(state_file(repo))
    portal.update_service_type("DE*A36", "reservation", {
        "online_request": True, "broadcast_request": False, "service_url": "https://someone.example.com",
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}, '"0"')
    held = snapshot(state_file(repo))

    refused = run_cli("apply", "plan.json")
    assert refused.code == 1
    assert "the portal changed since the plan was made: DE*A36/reservation (planned at version \"0\", now \"1\")" \
        in refused.stderr
    assert "nothing was written" in refused.stderr
    assert "Run `hbsdeploy plan --env sandbox --out FILE` again" in refused.stderr
    assert snapshot(state_file(repo)) == held
    assert read_audit_lines(repo) == []


@pytest.mark.parametrize("edit", [
    pytest.param(lambda d: d["changes"][0]["payload"].update(service_url="https://attacker.example.com"),
                 id="payload"),
    pytest.param(lambda d: d["changes"].pop(0), id="change removed"),
])
def test_an_altered_plan_file_is_refused(repo: Path, edit: Any) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    document = json.loads((repo / "plan.json").read_text(encoding="utf-8"))
    edit(document)
    (repo / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    refused = run_cli("apply", "plan.json")
    assert refused.code == 1
    assert "plan.json: the plan file was altered after it was written (checksum mismatch)" in refused.stderr
    assert "re-run `hbsdeploy plan --out`" in refused.stderr
    assert snapshot(state_file(repo)) == {}


@pytest.mark.parametrize("content, message", [
    ("not json", "not a plan file (invalid JSON"),
    ("[]", "not a plan file"),
    ('{"format_version": 2}', "not a valid hbsdeploy plan"),
])
def test_a_file_that_is_not_a_plan_is_refused(repo: Path, content: str, message: str) -> None:
    (repo / "plan.json").write_text(content, encoding="utf-8")
    refused = run_cli("apply", "plan.json")
    assert refused.code == 1 and message in refused.stderr
    assert "Traceback" not in refused.output


def test_a_binary_file_given_as_plan_is_refused_without_a_traceback(repo: Path) -> None:
    (repo / "plan.json").write_bytes(b"\xff\xfe{\x00")
    refused = run_cli("apply", "plan.json")
    assert refused.code == 1 and "plan.json: not a plan file (not UTF-8 text)" in refused.stderr
    assert "Traceback" not in refused.output


def test_a_checksum_that_is_not_the_reviewed_one_is_refused(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    refused = run_cli("apply", "plan.json", "--checksum", "sha256:" + "0" * 64)
    assert refused.code == 1
    assert "is not the reviewed sha256:000" in refused.stderr and "apply only the plan that was reviewed" in \
        refused.stderr
    assert snapshot(state_file(repo)) == {}
    assert run_cli("apply", "--checksum", "abc", "--auto-approve").code == 2  # --checksum needs a PLANFILE


def test_an_empty_checksum_is_refused_not_skipped(repo: Path) -> None:
    """`--checksum ""` (an unset CI variable) must not silently disable the reviewed-checksum check (issue 14)."""
    assert run_cli("plan", "--out", "plan.json").code == 0
    refused = run_cli("apply", "plan.json", "--checksum", "", "--auto-approve")
    assert refused.code == 2 and "--checksum is empty" in refused.stderr
    assert snapshot(state_file(repo)) == {}


def test_a_plan_whose_payload_disagrees_with_its_after_is_refused(repo: Path) -> None:
    """A plan edited to send another Service URL than the one reviewers saw, its checksum recomputed, is refused."""
    import json

    from hbsdeploy.plan.model import plan_checksum

    assert run_cli("plan", "--out", "plan.json").code == 0
    document = json.loads((repo / "plan.json").read_text(encoding="utf-8"))
    change = next(c for c in document["changes"] if c["payload"].get("online_request"))
    change["payload"]["service_url"] = "https://attacker.example.com"
    body = {key: value for key, value in document.items() if key != "checksum"}
    document["checksum"] = plan_checksum(body)
    (repo / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    refused = run_cli("apply", "plan.json", "--auto-approve")
    assert refused.code == 1 and "disagrees with the `after` values" in refused.stderr, refused.stderr
    assert snapshot(state_file(repo)) == {}


def test_a_plan_whose_payload_carries_a_key_no_plan_shows_is_refused(repo: Path) -> None:
    """A key added to a payload, its checksum recomputed: apply refuses it rather than send what nobody reviewed."""
    from hbsdeploy.plan.model import plan_checksum

    assert run_cli("plan", "--out", "plan.json").code == 0
    document = json.loads((repo / "plan.json").read_text(encoding="utf-8"))
    document["changes"][0]["payload"]["extra"] = "x"
    document["checksum"] = plan_checksum({key: value for key, value in document.items() if key != "checksum"})
    (repo / "plan.json").write_text(json.dumps(document), encoding="utf-8")
    refused = run_cli("apply", "plan.json", "--auto-approve")
    assert refused.code == 1 and "carries extra, which no plan shows" in refused.stderr, refused.stderr
    assert snapshot(state_file(repo)) == {}


def test_a_plan_made_against_another_portal_is_refused(repo: Path) -> None:
    """`portal:` changed after the plan was reviewed (a pull request pointing it elsewhere): the plan file is bound to
    the portal it was read from, and apply refuses it, writing nothing (issue 14)."""
    assert run_cli("plan", "--out", "plan.json").code == 0
    assert json.loads((repo / "plan.json").read_text(encoding="utf-8"))["portal"] == "local .hbsdeploy/sandbox.sqlite3"
    write_config(repo, LOCAL_CONFIG.format(default="sandbox").replace(
        "  sandbox:\n    portal: local\n", "  sandbox:\n    portal: local\n    state: other.sqlite3\n"))
    refused = run_cli("apply", "plan.json", "--auto-approve")
    assert refused.code == 1, refused.output
    assert ("plan.json was made against portal 'local .hbsdeploy/sandbox.sqlite3', but environment 'sandbox' now "
            "reaches 'local other.sqlite3'; nothing was written") in refused.stderr
    assert not (repo / "other.sqlite3").exists() and snapshot(state_file(repo)) == {}


def test_a_protected_environment_must_be_named(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="prod"))
    refused = run_cli("apply", "--auto-approve")
    assert refused.code == 2
    assert "'prod' is a protected environment: name it with --env prod to apply" in refused.stderr
    assert run_cli("plan", "--out", "prod.json").code == 0  # planning needs no naming
    refused_file = run_cli("apply", "prod.json")
    assert refused_file.code == 2 and "--env prod" in refused_file.stderr
    assert snapshot(state_file(repo, "prod")) == {}
    applied = run_cli("apply", "prod.json", "--env", "prod")
    assert applied.code == 0, applied.output
    assert "Apply: 4 applied" in applied.stdout


def test_a_protected_environment_asks_for_its_name(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox"))
    wrong = run_cli("apply", "--env", "prod", input="yes\n", env=PIPED)
    assert wrong.code == 1 and "apply cancelled: nothing was written" in wrong.stderr
    assert "PROTECTED" in wrong.stderr
    assert snapshot(state_file(repo, "prod")) == {}
    right = run_cli("apply", "--env", "prod", input="prod\n", env=PIPED)
    assert right.code == 0, right.output


def test_apply_without_a_plan_file_asks_for_yes(repo: Path) -> None:
    no_terminal = run_cli("apply")
    assert no_terminal.code == 2 and "pass --auto-approve" in no_terminal.stderr
    declined = run_cli("apply", input="y\n", env=PIPED)
    assert declined.code == 1 and "apply cancelled" in declined.stderr
    assert snapshot(state_file(repo)) == {}
    accepted = run_cli("apply", input="yes\n", env=PIPED)
    assert accepted.code == 0, accepted.output


def test_disabling_more_than_the_allowed_share_needs_permission_given_at_plan_time(repo: Path) -> None:
    config = repo / "hbsdeploy.yaml"
    config.write_text(config.read_text().replace("  max_disable_fraction: 0.25\n", "  max_disable_fraction: 0.25\n"
                                                 "  disable_check_min_scope: 4\n"))
    assert run_cli("apply", "--auto-approve").code == 0
    (repo / "partners" / "example-cpo.yaml").write_text(OFFLINE_CPO, encoding="utf-8")
    planned = run_cli("plan", "--out", "plan.json")
    assert "Plan: 0 to enable, 0 to change, 2 to disable. 2 unchanged." in planned.stdout
    assert "Needs permission: this plan disables 2 of 4 service types in scope (50%" in planned.stdout
    held = snapshot(state_file(repo))
    for args in (["apply", "--auto-approve"], ["apply", "plan.json"]):
        refused = run_cli(*args)
        assert refused.code == 1, refused.output
        assert ("the plan disables 2 of 4 service types in scope (50%, more than apply.max_disable_fraction 25%) "
                "and was not allowed to when it was made") in refused.stderr
        assert snapshot(state_file(repo)) == held
    late = run_cli("apply", "plan.json", "--force")  # the permission belongs to the reviewed plan, not to apply
    assert late.code == 2 and "plan --allow-disables" in late.stderr
    allowed = run_cli("plan", "--allow-disables", "--out", "plan.json")
    assert "Disables allowed: this plan disables 2 of 4" in allowed.stdout
    forced = run_cli("apply", "plan.json")
    assert forced.code == 0, forced.output
    assert "Apply: 2 applied" in forced.stdout
    held = snapshot(state_file(repo))
    assert held[("DE*A36", "authorization")][0]["online_request"] is False  # type: ignore[index]
    assert run_cli("plan", "--detailed-exitcode").code == 0


def test_audit_log_has_one_line_per_change_and_no_secrets(repo: Path) -> None:
    assert run_cli("plan", "--out", "plan.json").code == 0
    checksum = json.loads((repo / "plan.json").read_text(encoding="utf-8"))["checksum"]
    assert run_cli("apply", "plan.json", env={"GITHUB_ACTOR": "octocat"}).code == 0
    lines = read_audit_lines(repo)
    assert len(lines) == 4
    assert sorted((e["partner_id"], e["service_type"]) for e in lines) == EXAMPLE_KEYS
    for entry in lines:
        assert set(entry) == {"time", "user", "environment", "partner_id", "service_type", "kind", "before", "after",
                              "result", "message", "plan_checksum"}
        assert entry["user"] == "octocat" and entry["environment"] == "sandbox"
        assert entry["result"] == "applied" and entry["kind"] == "enable"
        assert entry["plan_checksum"] == checksum
        assert entry["before"]["online_request"] is False and entry["after"]["online_request"] is True
    text = (repo / ".hbsdeploy" / "audit.jsonl").read_text(encoding="utf-8")
    for secret in ("Bearer", "token", "PRIVATE KEY", "password"):
        assert secret not in text
    assert (repo / ".hbsdeploy" / "audit.jsonl").stat().st_mode & 0o077 == 0


def test_import_then_plan_is_a_no_op(repo: Path) -> None:
    assert run_cli("apply", "--auto-approve").code == 0
    portal = LocalPortal(state_file(repo))
    portal.update_service_type("DE*B12", "authorization", {
        "online_request": True, "broadcast_request": False, "service_url": "HTTPS://OICP.Legacy.example.com:443/x/",
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}, '"0"')
    portal.update_service_type("DE*B12", "reservation", {
        "online_request": False, "broadcast_request": False, "service_url": None,
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}, '"0"')

    shown = run_cli("import", "--env", "sandbox", "--partner", "DE*B12")
    assert shown.code == 0, shown.output  # no --role needed: only a CPO can have Reservation
    imported = run_cli("import", "--env", "sandbox", "--partner", "DE*B12", "--name", "Legacy \"Charging\" AG",
                       "--out", "partners/de-b12.yaml")
    assert imported.code == 0, imported.output
    assert "wrote partners/de-b12.yaml" in imported.stderr
    text = (repo / "partners" / "de-b12.yaml").read_text(encoding="utf-8")
    assert text == shown.stdout.replace('name: "DE*B12"', 'name: "Legacy \\"Charging\\" AG"')
    validated = run_cli("validate", "--strict", "partners/de-b12.yaml")
    assert validated.code == 0, validated.output
    held = snapshot(state_file(repo))
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert "(6 service types checked)" in plan.stdout
    assert snapshot(state_file(repo)) == held
    again = run_cli("import", "--env", "sandbox", "--partner", "DE*B12", "--out", "partners/de-b12.yaml")
    assert again.code == 1 and "exists" in again.stderr


def test_manual_portal_prints_instructions_and_records_what_was_confirmed(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox"))
    planned = run_cli("plan", "--env", "qa", "--detailed-exitcode")
    assert planned.code == 2
    assert "Plan: 4 to enable" in planned.stdout
    steps = run_cli("plan", "--env", "qa", "--format", "instructions")
    assert "Administration > Service Type Settings" in steps.stdout

    needs_person = run_cli("apply", "--env", "qa")
    assert needs_person.code == 2 and "needs a person to confirm" in needs_person.stderr

    partly = run_cli("apply", "--env", "qa", input="y\nn\ny\ny\n", env=PIPED)
    assert partly.code == 1, partly.output
    assert 'Type into "Service URL": https://oicp-qa.example-charging.com (no blank spaces).' in partly.stdout
    assert partly.stderr.count("Done in the portal:") == 4
    assert "not attempted: DE*A36 / authorization (enable): not confirmed as done in the portal" in partly.stdout
    assert "Apply: 3 applied, 0 failed, 1 not attempted." in partly.stdout
    remaining = run_cli("plan", "--env", "qa")
    assert "Plan: 1 to enable, 0 to change, 0 to disable. 3 unchanged." in remaining.stdout

    rest = run_cli("apply", "--env", "qa", input="y\n", env=PIPED)
    assert rest.code == 0, rest.output
    assert run_cli("plan", "--env", "qa", "--detailed-exitcode").code == 0
    entries = read_audit_lines(repo)
    assert [e["result"] for e in entries].count("applied") == 4
    assert all(e["message"].startswith("confirmed at a terminal as done in the portal by ")
               for e in entries if e["result"] == "applied")
    assert (repo / "state" / "qa.yaml").is_file()  # the recorded state is in the repository, to commit


def test_manual_apply_interrupted_at_a_prompt_still_reports_what_was_recorded(repo: Path) -> None:
    write_config(repo, LOCAL_CONFIG.format(default="sandbox"))
    stopped = run_cli("apply", "--env", "qa", input="y\n", env=PIPED)  # end of input at the second prompt
    assert stopped.code == 130, stopped.output
    assert "Apply: 1 applied, 0 failed, 3 not attempted." in stopped.stdout
    assert stopped.stdout.count("interrupted before this change") == 3
    assert "Plan: 3 to enable" in run_cli("plan", "--env", "qa").stdout
    assert [e["result"] for e in read_audit_lines(repo)] == ["applied"]


def test_partial_failure_is_reported_and_a_rerun_finishes(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_update = LocalPortal.update_service_type

    def flaky(self: LocalPortal, partner_id: str, service_type: str, payload: Mapping[str, Any],
              if_match: str) -> ServiceTypeState:
        if (partner_id, service_type) == ("DE*A36", "authorization"):
            raise PortalUnavailable("portal 'sandbox': injected outage for DE*A36")
        return real_update(self, partner_id, service_type, payload, if_match)

    monkeypatch.setattr(LocalPortal, "update_service_type", flaky)
    failed = run_cli("apply", "--auto-approve", "--parallelism", "2")
    assert failed.code == 1
    assert "       failed: DE*A36 / authorization (enable): portal 'sandbox': injected outage for DE*A36" in \
        failed.stdout
    assert "      applied: DE*A36 / reservation (enable)" in failed.stdout  # the partner's other change went on
    assert "Apply: 3 applied, 1 failed, 0 not attempted." in failed.stdout
    assert "Run `hbsdeploy apply --env sandbox` again to finish: it plans what remains." in failed.stderr
    results = {(e["partner_id"], e["service_type"]): e["result"] for e in read_audit_lines(repo)}
    assert results[("DE*A36", "authorization")] == "failed" and list(results.values()).count("applied") == 3

    monkeypatch.setattr(LocalPortal, "update_service_type", real_update)
    remaining = run_cli("plan")
    assert "Plan: 1 to enable, 0 to change, 0 to disable. 3 unchanged." in remaining.stdout
    finished = run_cli("apply", "--auto-approve")
    assert finished.code == 0 and "Apply: 1 applied, 0 failed, 0 not attempted." in finished.stdout
    assert run_cli("plan", "--detailed-exitcode").code == 0


def test_stopping_apply_leaves_the_rest_not_attempted(repo: Path) -> None:
    """An interruption lets the write in flight finish and attempts no other; a re-run finishes."""
    from hbsdeploy.apply.audit import AuditLog
    from hbsdeploy.apply.run import Status, apply_plan
    from hbsdeploy.check.project import load_project
    from hbsdeploy.load.config import find_config, load_config
    from hbsdeploy.plan.build import make_plan

    config = load_config(find_config())
    env = config.environment("sandbox")
    portal = LocalPortal(state_file(repo))
    stop = threading.Event()
    real_update = portal.update_service_type

    def update_then_stop(partner_id: str, service_type: str, payload: Mapping[str, Any],
                         if_match: str) -> ServiceTypeState:
        state = real_update(partner_id, service_type, payload, if_match)
        stop.set()  # as SIGINT would, while this write is in flight
        return state

    portal.update_service_type = update_then_stop  # type: ignore[method-assign]
    plan = make_plan(load_project(config, env), env, portal, 1)
    result = apply_plan(plan, portal, AuditLog(config.state_dir / "audit.jsonl"), parallelism=1, stop=stop)
    assert result.interrupted and not result.ok
    assert [r.status for r in result.results] == [Status.APPLIED] + [Status.NOT_ATTEMPTED] * 3
    assert all(r.message == "interrupted before this change" for r in result.results[1:])
    assert len(read_audit_lines(repo)) == 1  # not attempted is not audited: nothing happened
    assert "Plan: 3 to enable" in run_cli("plan").stdout
    assert run_cli("apply", "--auto-approve").code == 0
    assert run_cli("plan", "--detailed-exitcode").code == 0


def test_plan_and_import_only_read_the_store(repo: Path) -> None:
    from hbsdeploy.portal.store import Store

    assert run_cli("plan").code == 0
    assert run_cli("import", "--env", "sandbox", "--partner", "DE*Z99", "--role", "cpo").code == 0
    assert Store(state_file(repo)).partners() == []  # a typo'd partner ID is not recorded by a read
    assert run_cli("apply", "--auto-approve").code == 0
    assert "DE*A36" in Store(state_file(repo)).partners()  # the first write registers the partner
