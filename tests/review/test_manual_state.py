"""A manual environment's state lives in the repository (state/<env>.yaml): written only when a person confirms or
records a step, read by every clone and CI, named as recorded state in every plan format (issue 12, scenarios 1, 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hbsdeploy.apply.audit import read_audit
from hbsdeploy.portal.local import LocalPortal
from tests.helpers import run_cli

PIPED = {"HBSDEPLOY_ALLOW_PIPED_CONFIRMATION": "1"}


@pytest.fixture
def new_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository made by `hbsdeploy init` (its prod is `portal: manual`, protected), as the working folder."""
    for variable in ("HBSDEPLOY_CONFIG", "CI", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        monkeypatch.delenv(variable, raising=False)
    root = tmp_path / "mine"
    assert run_cli("-q", "init", str(root)).code == 0
    monkeypatch.chdir(root)
    return root


def _plan(env: str = "prod", *extra: str) -> tuple[Path, str]:
    ran = run_cli("plan", "--env", env, "--out", "plan.json", *extra)
    assert ran.code == 0, ran.output
    return Path("plan.json"), json.loads(Path("plan.json").read_text())["checksum"]


def _audit(root: Path) -> list[dict[str, object]]:
    return read_audit(root / ".hbsdeploy" / "audit.jsonl")


# --- scenario 1: no faked confirmations ------------------------------------------------------------------------------

def test_the_example_workflow_line_no_longer_fakes_a_confirmation(new_repo: Path) -> None:
    plan_file, checksum = _plan()
    ran = run_cli("apply", str(plan_file), "--env", "prod", "--checksum", checksum, "--auto-approve")
    assert ran.code == 2, ran.output
    assert "--auto-approve never records a step as done" in ran.stderr and "hbsdeploy state record" in ran.stderr
    assert "applied" not in ran.stdout
    assert not (new_repo / "state" / "prod.yaml").exists() and _audit(new_repo) == []


@pytest.mark.parametrize("args", [["apply", "plan.json", "--env", "prod"], ["apply", "--env", "prod"],
                                  ["state", "record", "--env", "prod", "--reason", "done"]])
def test_ci_never_applies_or_records_a_manual_environment(new_repo: Path, args: list[str]) -> None:
    _plan()
    ran = run_cli(*args, input="prod\ny\n", env={"CI": "true", **PIPED})
    assert ran.code == 1, ran.output
    assert ran.stderr.count("\n") == 1 and "'prod' is a manual environment: CI never runs" in ran.stderr
    assert not (new_repo / "state" / "prod.yaml").exists() and _audit(new_repo) == []


def test_a_person_confirming_at_a_terminal_records_the_step_in_the_repository(new_repo: Path) -> None:
    plan_file, _ = _plan()
    ran = run_cli("apply", str(plan_file), "--env", "prod", input="prod\ny\n", env={**PIPED, "GITHUB_ACTOR": ""})
    assert ran.code == 0, ran.output
    assert "applied: DE*X01 / authorization (enable)" in ran.stdout
    assert "Recorded in state/prod.yaml: commit it" in ran.stdout
    recorded = yaml.safe_load((new_repo / "state" / "prod.yaml").read_text())
    entry = recorded["partners"]["DE*X01"]["authorization"]
    assert entry["version"] == 1 and entry["settings"]["online_request"] is True
    assert entry["how"] == "confirmed at a terminal during apply"
    (logged,) = _audit(new_repo)
    assert logged["result"] == "applied"
    assert str(logged["message"]).startswith("confirmed at a terminal as done in the portal by ")


# --- scenario 2: recorded state shared by every clone ----------------------------------------------------------------

def test_a_colleagues_clone_and_ci_see_what_was_recorded(new_repo: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    plan_file, _ = _plan()
    assert run_cli("apply", str(plan_file), "--env", "prod", input="prod\ny\n",
                   env={**PIPED, "GITHUB_ACTOR": "alice"}).code == 0
    clone = tmp_path / "clone"  # what git would give a colleague: the committed files, no .hbsdeploy/
    shutil.copytree(new_repo, clone, ignore=shutil.ignore_patterns(".hbsdeploy", "plan.json"))
    monkeypatch.chdir(clone)
    ran = run_cli("plan", "--env", "prod", "--detailed-exitcode", env={"CI": "true"})
    assert ran.code == 0, ran.output
    assert "No changes in prod" in ran.stdout
    assert "recorded state as of " in ran.stdout
    assert ", by alice (state/prod.yaml), not read from the portal" in ran.stdout


def test_every_plan_format_says_before_is_recorded_state(new_repo: Path) -> None:
    for output_format in ("text", "markdown", "instructions"):
        ran = run_cli("plan", "--env", "prod", "--format", output_format)
        assert "nothing recorded yet (state/prod.yaml does not exist)" in ran.stdout, output_format
        assert "not read from the portal" in ran.stdout, output_format
    document = json.loads(run_cli("plan", "--env", "prod", "--format", "json").stdout)
    assert document["recorded_state"] == {"file": "state/prod.yaml", "as_of": None, "by": None}


def test_recording_steps_done_outside_hbsdeploy_is_its_own_audited_command(new_repo: Path) -> None:
    no_reason = run_cli("state", "record", "--env", "prod", "--reason", " ", input="prod\n", env=PIPED)
    assert no_reason.code == 2 and "--reason is empty" in no_reason.stderr
    declined = run_cli("state", "record", "--env", "prod", "--reason", "OPS-1", input="no\n", env=PIPED)
    assert declined.code == 1 and not (new_repo / "state" / "prod.yaml").exists()
    ran = run_cli("state", "record", "--env", "prod", "--reason", "done in the portal by bob, OPS-1",
                  input="prod\n", env={**PIPED, "GITHUB_ACTOR": "bob"})
    assert ran.code == 0, ran.output
    assert "recorded: DE*X01 / authorization (enable)" in ran.stdout
    (logged,) = _audit(new_repo)
    assert logged["result"] == "recorded" and logged["user"] == "bob"
    assert logged["message"] == "recorded as done outside hbsdeploy (done in the portal by bob, OPS-1) by bob"
    entry = yaml.safe_load((new_repo / "state" / "prod.yaml").read_text())["partners"]["DE*X01"]["authorization"]
    assert entry["how"] == "recorded as done outside hbsdeploy (done in the portal by bob, OPS-1)"
    assert run_cli("plan", "--env", "prod", "--detailed-exitcode").code == 0


def test_state_record_without_a_terminal_says_what_it_needs(new_repo: Path) -> None:
    """Was: "pass --auto-approve, or apply a reviewed plan file", neither of which `state record` has (issue 13
    review)."""
    ran = run_cli("state", "record", "--env", "prod", "--reason", "OPS-1")
    assert ran.code == 2
    assert ran.stderr.strip() == ("error: no terminal to confirm on; `hbsdeploy state record` records steps as done in "
                                  "'prod' only when a person confirms them at a terminal: run it in one (there is no "
                                  "--auto-approve for it)")
    assert not (new_repo / "state" / "prod.yaml").exists() and not _audit(new_repo)
    asked = run_cli("state", "record", "--env", "prod", "--reason", "OPS-1", input="no\n", env=PIPED)
    assert "to record 1 change as done" in asked.stderr and "apply" not in asked.stderr, asked.stderr
    assert asked.code == 1 and "state record cancelled: nothing was recorded" in asked.stderr


def test_a_plan_made_before_someone_recorded_is_refused_as_stale(new_repo: Path) -> None:
    plan_file, checksum = _plan()
    assert run_cli("state", "record", "--env", "prod", "--reason", "OPS-2", input="prod\n", env=PIPED).code == 0
    ran = run_cli("apply", str(plan_file), "--env", "prod", "--checksum", checksum, input="prod\ny\n", env=PIPED)
    assert ran.code == 1 and "changed since the plan was made" in ran.stderr


def test_a_broken_state_file_is_named_with_its_line(new_repo: Path) -> None:
    (new_repo / "state").mkdir()
    (new_repo / "state" / "prod.yaml").write_text("format_version: 1\nenvironment: prod\nupdated_at: x\n"
                                                  "updated_by: y\npartners:\n  DE*X01:\n    authorization:\n"
                                                  "      version: one\n")
    ran = run_cli("plan", "--env", "prod")
    assert ran.code == 1
    assert ran.stderr.startswith("state/prod.yaml:8:")


# --- the old machine-local state -------------------------------------------------------------------------------------

def test_state_kept_on_one_machine_by_an_older_hbsdeploy_is_migrated_not_ignored(new_repo: Path) -> None:
    legacy = LocalPortal(new_repo / ".hbsdeploy" / "prod.sqlite3")
    legacy.update_service_type("DE*X01", "authorization", {
        "online_request": True, "broadcast_request": False, "service_url": "https://oicp.example.com",
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}, '"0"')
    refused = run_cli("plan", "--env", "prod")
    assert refused.code == 1
    assert "still in .hbsdeploy/prod.sqlite3, on this machine only; run `hbsdeploy state migrate --env prod`" \
        in refused.stderr
    migrated = run_cli("state", "migrate", "--env", "prod")
    assert migrated.code == 0, migrated.output
    assert "migrated 1 service type to state/prod.yaml" in migrated.stdout
    assert run_cli("plan", "--env", "prod", "--detailed-exitcode").code == 0
    again = run_cli("state", "migrate", "--env", "prod")
    assert again.code == 1 and "exists already; nothing was migrated" in again.stderr


def test_a_recorded_state_file_that_is_a_link_is_refused(new_repo: Path, tmp_path: Path) -> None:
    """state/prod.yaml linked to a file outside the repository is not read as the recorded state (issue 14)."""
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("format_version: 1\n", encoding="utf-8")
    (new_repo / "state").mkdir(exist_ok=True)
    (new_repo / "state" / "prod.yaml").unlink(missing_ok=True)
    (new_repo / "state" / "prod.yaml").symlink_to(elsewhere)
    refused = run_cli("plan", "--env", "prod")
    assert refused.code == 1 and "Traceback" not in refused.stderr
    assert "prod.yaml is a symbolic link" in refused.stderr, refused.stderr
