"""Issue 13, finding 1: a partner is (role, canonical ID). A CPO and an EMP of one company coexist (OICP 2.3 assigns
both IDs to a partner with both roles); `+49*536` and `49*536` are one operator; `--partner` compares as validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hbsdeploy.cli.main import cli
from hbsdeploy.load.partner import canonical_id, canonical_ids, is_canonical_id

CPO = """name: Dual CPO
role: cpo
operator_id: "{pid}"
environments: {{sandbox: }}
service_types:
  authorization: {{online_request: true, service_url: "https://cpo.dual.example.com", client_certification: true}}
"""
EMP = """name: Dual EMP
role: emp
provider_id: "{pid}"
environments: {{sandbox: }}
service_types:
  authorization: {{online_request: true, broadcast_request: true, service_url: "https://emp.dual.example.com",
                  client_certification: true}}
"""


def _run(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(repo / "hbsdeploy.yaml"), *args])


@pytest.fixture(autouse=True)
def _in_repo(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)  # messages show paths relative to the working folder


@pytest.fixture
def dual(repo_copy: Path) -> Path:
    (repo_copy / "partners" / "dua-cpo.yaml").write_text(CPO.format(pid="DE*DUA"))
    (repo_copy / "partners" / "dua-emp.yaml").write_text(EMP.format(pid="DE-DUA"))
    return repo_copy


@pytest.mark.parametrize(("role", "written", "canonical"), [
    ("cpo", "DE*A36", "DE*A36"), ("cpo", "DEA36", "DE*A36"), ("cpo", "de*a36", "DE*A36"),
    ("cpo", "+49*536", "+49*536"), ("cpo", "49*536", "+49*536"),
    ("emp", "DE-8EO", "DE-8EO"), ("emp", "DE8EO", "DE-8EO"), ("emp", "de*8eo", "DE-8EO"),
])
def test_canonical_ids_follow_the_role(role: str, written: str, canonical: str) -> None:
    assert canonical_id(role, written) == canonical


def test_an_id_without_separator_has_one_canonical_form_per_role() -> None:
    assert canonical_ids("DEDUA") == {"cpo": "DE*DUA", "emp": "DE-DUA"}
    assert canonical_ids("+49*536") == {"cpo": "+49*536"}
    assert is_canonical_id("DE*DUA") and is_canonical_id("DE-DUA") and not is_canonical_id("DEDUA")
    assert not is_canonical_id("49*536")


def test_a_cpo_and_an_emp_of_one_company_coexist(dual: Path) -> None:
    validated = _run(dual, "validate")
    assert validated.exit_code == 0, validated.output
    planned = _run(dual, "plan", "--format", "json")
    ids = {(c["partner_id"], c["service_type"]) for c in json.loads(planned.stdout)["changes"]}
    assert {("DE*DUA", "authorization"), ("DE-DUA", "authorization")} <= ids
    applied = _run(dual, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    again = _run(dual, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


def test_two_files_of_one_role_and_id_are_still_a_duplicate(repo_copy: Path) -> None:
    (repo_copy / "partners" / "n1.yaml").write_text(CPO.format(pid="+49*537"))
    (repo_copy / "partners" / "n2.yaml").write_text(CPO.format(pid="49*537"))
    result = _run(repo_copy, "validate")
    assert result.exit_code == 1
    assert ("partners/n2.yaml:3:14: error[duplicate-partner-id]: OperatorID '49*537' is also used by "
            "partners/n1.yaml:3 (as '+49*537')") in result.stdout


def test_a_duplicate_in_a_file_not_checked_this_run_is_matched_by_role(dual: Path) -> None:
    (dual / "partners" / "dua-cpo-copy.yaml").write_text(CPO.format(pid="DEDUA"))
    result = _run(dual, "validate", str(dual / "partners" / "dua-emp.yaml"), str(dual / "partners" / "dua-cpo.yaml"))
    assert result.exit_code == 1
    assert "dua-cpo.yaml:3:14: error[duplicate-partner-id]: OperatorID 'DE*DUA' is also used by" in result.stdout
    assert "dua-emp.yaml" not in result.stdout


def test_partner_option_resolves_like_validate(dual: Path) -> None:
    by_written = _run(dual, "plan", "--partner", "dea36", "--format", "json")
    assert by_written.exit_code == 0, by_written.output
    assert {c["partner_id"] for c in json.loads(by_written.stdout)["changes"]} == {"DE*A36"}
    emp = _run(dual, "plan", "--partner", "DE-DUA", "--format", "json")
    assert {c["partner_id"] for c in json.loads(emp.stdout)["changes"]} == {"DE-DUA"}
    cpo = _run(dual, "plan", "--partner", "DE*DUA", "--format", "json")
    assert {c["partner_id"] for c in json.loads(cpo.stdout)["changes"]} == {"DE*DUA"}
    lower = _run(dual, "plan", "--partner", "de*dua", "--format", "json")  # `*`: the operator, in any case
    assert lower.exit_code == 0, lower.output
    assert {c["partner_id"] for c in json.loads(lower.stdout)["changes"]} == {"DE*DUA"}


def test_partner_option_says_which_when_an_id_names_both_roles(dual: Path) -> None:
    result = _run(dual, "plan", "--partner", "DEDUA")
    assert result.exit_code == 1
    assert ("--partner 'DEDUA' names both DE*DUA (CPO, partners/dua-cpo.yaml) and DE-DUA (EMP, "
            "partners/dua-emp.yaml); write the ID as the one you mean: 'DE*DUA' or 'DE-DUA'") in result.stderr


def test_a_lower_case_id_is_a_warning_naming_the_canonical_form(repo_copy: Path) -> None:
    (repo_copy / "partners" / "lower.yaml").write_text(EMP.format(pid="de8xy"))
    result = _run(repo_copy, "validate")
    assert result.exit_code == 0, result.output
    assert ("partners/lower.yaml:3:14: warning[partner-id-lowercase]: provider_id 'de8xy' is in lower case; OICP IDs "
            "are upper case and plans and the portal show 'DE-8XY': write provider_id: \"DE-8XY\"") in result.stdout


def test_the_emulator_takes_only_canonical_ids(tmp_path: Path) -> None:
    from hbsdeploy.portal.emulator import EmulatorError, serve

    with pytest.raises(EmulatorError, match=r"'DEA36' is not in canonical form; write 'DE\*A36' \(OperatorID\) or "
                                            r"'DE-A36' \(ProviderID\)"):
        serve(tmp_path / "s", partners=["DEA36"])
