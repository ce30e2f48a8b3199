"""Issue 15's import scenarios, replayed as written: one file for every environment, User certificates, a partner
already managed, --role from the repository, a modeline that resolves from where the file is written."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hbsdeploy.check.certs import read_certificate
from hbsdeploy.load.yamlload import parse_yaml
from hbsdeploy.portal.local import LocalPortal
from tests.e2e.helpers import snapshot, write_config
from tests.helpers import run_cli

THREE_LOCAL = """\
default_environment: sandbox
environments:
  sandbox:
    portal: local
  qa:
    portal: local
  prod:
    portal: local
"""


def _portal(repo: Path, env: str) -> LocalPortal:
    return LocalPortal(repo / ".hbsdeploy" / f"{env}.sqlite3")


def _settings(url: str | None, **overrides: Any) -> dict[str, Any]:
    return {"online_request": url is not None, "broadcast_request": False, "service_url": url,
            "client_certification": True, "certificate": "hubject", "certificate_sha256": None, **overrides}


def _hold(repo: Path, env: str, partner_id: str, service_type: str, settings: dict[str, Any]) -> None:
    portal = _portal(repo, env)
    try:
        portal.update_service_type(partner_id, service_type, settings, '"0"')
    finally:
        portal.close()


def _no_changes_anywhere(repo: Path, *envs: str) -> None:
    for env in envs:
        plan = run_cli("plan", "--env", env, "--partner", "DE*B12", "--detailed-exitcode")
        assert plan.code == 0, (env, plan.output)


def test_one_file_for_every_environment_with_per_environment_overrides(repo: Path) -> None:
    write_config(repo, THREE_LOCAL)
    _hold(repo, "qa", "DE*B12", "authorization", _settings("https://oicp-qa.legacy.example.com"))
    _hold(repo, "prod", "DE*B12", "authorization", _settings("https://oicp.legacy.example.com"))
    _hold(repo, "qa", "DE*B12", "reservation", _settings("https://reserve.legacy.example.com"))
    _hold(repo, "prod", "DE*B12", "reservation", _settings("https://reserve.legacy.example.com"))
    for env in ("sandbox", "qa", "prod"):
        assert run_cli("apply", "--env", env, "--auto-approve").code == 0  # the example partners everywhere

    ran = run_cli("import", "--env", "qa", "--env", "prod", "--partner", "DE*B12", "--out", "partners/de-b12.yaml")
    assert ran.code == 0, ran.output
    assert "wrote partners/de-b12.yaml (qa, prod)" in ran.stderr
    data = parse_yaml((repo / "partners" / "de-b12.yaml").read_text(encoding="utf-8"), "x").data
    assert data["service_types"] == {  # what qa and prod agree on is the base
        "authorization": {"online_request": True, "broadcast_request": False, "client_certification": True,
                          "certificate": "hubject"},
        "reservation": {"online_request": True, "broadcast_request": False, "client_certification": True,
                        "certificate": "hubject", "service_url": "https://reserve.legacy.example.com"},
    }
    assert data["environments"] == {  # what differs is under each environment
        "qa": {"service_types": {"authorization": {"service_url": "https://oicp-qa.legacy.example.com"}}},
        "prod": {"service_types": {"authorization": {"service_url": "https://oicp.legacy.example.com"}}},
    }
    assert run_cli("validate", "--strict").code == 0
    _no_changes_anywhere(repo, "sandbox", "qa", "prod")


def test_one_environment_read_never_reaches_an_environment_added_later(repo: Path) -> None:
    """Was: import wrote qa's values as the base, so adding `prod:` later pushed the QA URLs to PROD."""
    write_config(repo, THREE_LOCAL)
    _hold(repo, "qa", "DE*B12", "authorization", _settings("https://oicp-qa.legacy.example.com"))
    _hold(repo, "prod", "DE*B12", "authorization", _settings("https://oicp.legacy.example.com"))
    ran = run_cli("import", "--env", "qa", "--partner", "DE*B12", "--role", "cpo", "--out", "partners/de-b12.yaml")
    assert ran.code == 0, ran.output
    path = repo / "partners" / "de-b12.yaml"
    text = path.read_text(encoding="utf-8")
    assert "service_types: {}" in text and "import an environment (--env) before adding it here" in text
    _no_changes_anywhere(repo, "qa")
    held = snapshot(repo / ".hbsdeploy" / "prod.sqlite3")
    path.write_text(text.replace("environments:\n", "environments:\n  prod:\n"), encoding="utf-8")
    prod = run_cli("apply", "--env", "prod", "--partner", "DE*B12", "--auto-approve")
    # prod's settings are never taken from qa: the file manages no service type there (a service type left out
    # is not managed, issue 13), so nothing is written
    assert prod.code == 0, prod.output
    assert "No changes in prod" in prod.stdout
    assert snapshot(repo / ".hbsdeploy" / "prod.sqlite3") == held


def test_every_environment_is_read_by_default_and_one_without_the_partner_is_left_out(repo: Path) -> None:
    write_config(repo, THREE_LOCAL.replace("  prod:\n    portal: local\n",
                                           "  prod:\n    portal: http://127.0.0.1:9/\n"))  # nothing listens there
    _hold(repo, "qa", "DE*B12", "authorization", _settings("https://oicp-qa.legacy.example.com"))
    failed = run_cli("import", "--partner", "DE*B12", "--role", "cpo")
    assert failed.code == 1
    assert failed.stderr.startswith("error: environment 'prod': ")
    assert "(choose the environments to read with --env)" in failed.stderr

    write_config(repo, THREE_LOCAL)
    ran = run_cli("import", "--partner", "DE*B12", "--role", "cpo")
    assert ran.code == 0, ran.output
    assert "from the portal of environments 'sandbox', 'qa' and 'prod'" in ran.stdout
    chosen = run_cli("import", "--partner", "DE*B12", "--role", "cpo", env={"HBSDEPLOY_ENV": "qa"})
    assert "from the portal of environment 'qa'" in chosen.stdout


def test_a_partner_unknown_to_a_portal_is_left_out(repo: Path, emulator: Any) -> None:
    served = emulator(partners=["DE*B12"])
    write_config(repo, THREE_LOCAL + f"  api:\n    portal: {served.url}\n    token_env: HBSDEPLOY_TEST_TOKEN\n")
    ran = run_cli("import", "--env", "qa", "--env", "api", "--partner", "DE*C34", "--role", "cpo",
                  env={"HBSDEPLOY_TEST_TOKEN": "t0ken"})
    assert ran.code == 0, ran.output
    assert "note: api: the portal does not know DE*C34; left out of the file" in ran.stderr
    assert "from the portal of environment 'qa'" in ran.stdout


def test_a_user_certificate_partner_is_imported_with_the_file_to_add(repo: Path) -> None:
    """Was: import refused a partner with any User certificate."""
    (repo / "partners" / "example-cpo-user-certificate.yaml").unlink()  # +49*536 is not managed any more
    certificate = repo / "certs" / "example-energy-oicp.pem"
    sha = read_certificate(certificate).sha256
    _hold(repo, "sandbox", "+49*536", "authorization",
          _settings("https://oicp.example-energy.com", certificate="user", certificate_sha256=sha))
    ran = run_cli("import", "--env", "sandbox", "--partner", "+49*536", "--out", "partners/energy.yaml", "-q")
    assert ran.code == 0, ran.output
    (note,) = ran.stderr.splitlines()  # shown even with -q: a file to add
    expected_file = f"certs/49-536-{sha.replace(':', '').lower()[:12]}.pem"
    assert note == (f"note: sandbox authorization uses a User certificate (SHA-256 {sha}); the portal cannot hand "
                    f"the file back: save that certificate (PEM) as {expected_file}, next to hbsdeploy.yaml "
                    "(validate reports it missing until then)")
    text = (repo / "partners" / "energy.yaml").read_text(encoding="utf-8")
    assert f"certificate_file: \"{expected_file}\"" in text and "certificate: \"user\"" in text
    missing = run_cli("validate", "partners/energy.yaml")
    assert missing.code == 1 and "certificate-file-missing" in missing.stdout

    shutil.copy(certificate, repo / expected_file)
    assert run_cli("validate", "partners/energy.yaml").code == 0
    held = snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3")
    plan = run_cli("plan", "--partner", "+49*536", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert snapshot(repo / ".hbsdeploy" / "sandbox.sqlite3") == held


def test_a_managed_partner_gets_no_second_file_and_needs_no_role(repo: Path) -> None:
    """Was: a duplicate file for a partner already managed, and --role needed for DE*A36 (both formats)."""
    refused = run_cli("import", "--env", "sandbox", "--partner", "DE*A36", "--out", "partners/de-a36.yaml")
    assert refused.code == 1
    assert refused.stderr.startswith("error: DE*A36 is already managed in partners/example-cpo.yaml; import "
                                     "writes no second file for it: `hbsdeploy plan --partner 'DE*A36'`")
    assert not (repo / "partners" / "de-a36.yaml").exists()
    lower = run_cli("import", "--env", "sandbox", "--partner", "dea36", "--out", "partners/x.yaml")
    assert lower.code == 1 and "already managed in partners/example-cpo.yaml" in lower.stderr

    shown = run_cli("import", "--env", "sandbox", "--partner", "DE*A36")  # no --role: the repository knows it
    assert shown.code == 0, shown.output
    assert "note: DE*A36 is already managed in partners/example-cpo.yaml" in shown.stderr
    data = parse_yaml(shown.stdout, "x").data
    assert (data["role"], data["operator_id"], data["name"]) == ("cpo", "DE*A36", "Example Charging GmbH")


def test_the_modeline_resolves_from_where_the_file_is_written(repo: Path) -> None:
    for out in ("elsewhere/deeper/new.yaml", "new.yaml", "partners/new.yaml"):
        target = repo / out
        target.parent.mkdir(parents=True, exist_ok=True)
        ran = run_cli("import", "--env", "sandbox", "--partner", "DE*C34", "--role", "cpo", "--out", out)
        assert ran.code == 0, ran.output
        first = target.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        reference = first.split("$schema=", 1)[1]
        assert (target.parent / reference).resolve() == (repo / "schemas" / "partner.schema.json").resolve(), out
        target.unlink()
    shown = run_cli("import", "--env", "sandbox", "--partner", "DE*C34", "--role", "cpo")  # stdout: for partners/
    assert shown.stdout.startswith("# yaml-language-server: $schema=../schemas/partner.schema.json\n")


def test_the_written_form_says_the_role_as_plan_reads_it(repo: Path) -> None:
    """Was: `--partner 'DE*DUA'` "managed both as a CPO and as an EMP, pass --role" when an operator DE*DUA and a
    provider DE-DUA are both managed, though `*` writes an OperatorID (issue 13 review); only `DEDUA` is ambiguous."""
    from tests.validate.test_identity import CPO, EMP

    (repo / "partners" / "dua-cpo.yaml").write_text(CPO.format(pid="DE*DUA"), encoding="utf-8")
    (repo / "partners" / "dua-emp.yaml").write_text(EMP.format(pid="DE-DUA"), encoding="utf-8")
    for written, role, key, path in (("DE*DUA", "cpo", "operator_id", "dua-cpo"),
                                     ("de*dua", "cpo", "operator_id", "dua-cpo"),
                                     ("DE-DUA", "emp", "provider_id", "dua-emp")):
        shown = run_cli("import", "--env", "sandbox", "--partner", written)
        assert shown.code == 0, (written, shown.output)
        assert f"is already managed in partners/{path}.yaml" in shown.stderr
        data = parse_yaml(shown.stdout, "x").data
        assert (data["role"], data[key]) == (role, written.upper())
    both = run_cli("import", "--env", "sandbox", "--partner", "DEDUA")
    assert both.code == 2
    assert "--partner 'DEDUA' is managed both as a CPO and as an EMP" in both.stderr and "--role" in both.stderr

    unmanaged = run_cli("import", "--env", "sandbox", "--partner", "DE*X77")  # no file: still an operator
    assert unmanaged.code == 0, unmanaged.output
    assert parse_yaml(unmanaged.stdout, "x").data["operator_id"] == "DE*X77"


def test_two_files_of_one_role_are_named_as_duplicates_not_as_two_roles(repo: Path) -> None:
    """Was: with an operator written DE*A36 in one file and DEA36 in another (validate's duplicate-partner-id),
    `import --partner DEA36 --role cpo` said "managed both as a CPO and as an EMP ... pass --role cpo or --role emp",
    --role already given, with absolute paths (issue 13 review). The message names both roles' files relative to
    the working directory, as plan's does."""
    from tests.validate.test_identity import CPO, EMP

    (repo / "partners" / "a36-again.yaml").write_text(CPO.format(pid="DEA36"), encoding="utf-8")
    duplicate = run_cli("import", "--env", "sandbox", "--partner", "DEA36", "--role", "cpo")
    assert duplicate.code == 1, duplicate.output
    assert duplicate.stderr == ("error: --partner 'DEA36' names the operator DE*A36, written in 2 partner files "
                                "(partners/a36-again.yaml, partners/example-cpo.yaml): one file per partner and role; "
                                "keep one (`hbsdeploy validate` reports the other: duplicate-partner-id)\n")
    (repo / "partners" / "a36-again.yaml").unlink()

    (repo / "partners" / "a36-emp.yaml").write_text(EMP.format(pid="DE-A36"), encoding="utf-8")
    both = run_cli("import", "--env", "sandbox", "--partner", "DEA36")
    assert both.code == 2
    assert ("--partner 'DEA36' is managed both as a CPO and as an EMP (partners/example-cpo.yaml, "
            "partners/a36-emp.yaml); pass --role cpo or --role emp") in both.stderr
