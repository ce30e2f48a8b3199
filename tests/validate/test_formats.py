"""`validate --format github|sarif|gitlab|json`: outputs that CI tools read, each checked against its schema (SARIF
2.1.0's own, GitLab's documented Code Quality fields, and schemas/validation-report.schema.json)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator, Draft202012Validator

from hbsdeploy.check.reporting import VALIDATION_FORMATS, validation_github
from hbsdeploy.check.validate import ValidationReport
from hbsdeploy.cli.main import VALIDATE_FORMATS, cli
from hbsdeploy.errors import Problem, Severity
from tests.validate.helpers import REPO
from tests.validate.test_one_run import HANDWRITTEN

SCHEMAS = REPO / "tests" / "data" / "schemas"
SARIF = Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
GITLAB = Draft202012Validator(json.loads((SCHEMAS / "gitlab-code-quality.schema.json").read_text()))
REPORT_SCHEMA = json.loads((REPO / "schemas" / "validation-report.schema.json").read_text())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The issue's hand-written partner file (four problems) beside a valid one with a warning."""
    root = tmp_path / "repo"
    (root / "partners").mkdir(parents=True)
    (root / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: local\n")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "partners" / "handwritten.yaml").write_text(HANDWRITTEN.replace("  qa:\n", ""))
    (root / "partners" / "warned.yaml").write_text(
        'name: W\nrole: cpo\noperator_id: "DE*W01"\nenvironments:\n  sandbox:\nservice_types:\n  authorization:\n'
        "    online_request: true\n    broadcast_request: true\n    service_url: https://oicp.w.example.com\n"
        "    client_certification: true\n")
    return root


def run(repo: Path, *args: str) -> tuple[int, str]:
    before = Path.cwd()
    os.chdir(repo)
    try:
        result = CliRunner().invoke(cli, ["validate", *args], env={"HBSDEPLOY_CONFIG": None})
    finally:
        os.chdir(before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout


def test_the_cli_offers_every_format_of_the_registry() -> None:
    assert tuple(VALIDATION_FORMATS) == VALIDATE_FORMATS


def test_github_workflow_commands_annotate_each_line(repo: Path) -> None:
    code, out = run(repo, "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == ("::error file=partners/handwritten.yaml,line=8,col=21,title=yaml11-boolean::online_request: "
                        "'yes' is not a boolean in hbsdeploy files (YAML 1.2 reads it as text); write true")
    assert [line.split(" ")[0] for line in lines[:-1]] == ["::error"] * 4 + ["::warning"]
    assert "file=partners/warned.yaml,line=9,col=24,title=cpo-broadcast::" in lines[4]
    assert lines[-1] == "checked 3 files: 4 errors, 1 warning"


def test_github_escapes_what_would_break_a_command() -> None:
    problem = Problem("a,b:c%.yaml", 2, 3, Severity.ERROR, "rule", "50% of\nit, here: there")
    out = validation_github(ValidationReport(files=1, problems=[problem]))
    assert out.splitlines()[0] == "::error file=a%2Cb%3Ac%25.yaml,line=2,col=3,title=rule::50%25 of%0Ait, here: there"


def test_sarif_is_valid_sarif_2_1_0_with_one_result_per_problem(repo: Path) -> None:
    code, out = run(repo, "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    assert list(SARIF.iter_errors(log)) == []
    assert log["version"] == "2.1.0"
    (sarif_run,) = log["runs"]
    rules = [rule["id"] for rule in sarif_run["tool"]["driver"]["rules"]]
    results = sarif_run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("yaml11-boolean", "error"), ("unknown-key", "error"), ("service-url-whitespace", "error"),
        ("service-url-https", "error"), ("cpo-broadcast", "warning")]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    location = results[2]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "partners/handwritten.yaml"},
                        "region": {"startLine": 10, "startColumn": 18}}
    assert len({r["partialFingerprints"]["hbsdeploy/v1"] for r in results}) == len(results)


def test_sarif_of_a_clean_run_and_of_odd_paths_is_valid() -> None:
    clean = json.loads(VALIDATION_FORMATS["sarif"](ValidationReport(files=3)))
    assert list(SARIF.iter_errors(clean)) == [] and clean["runs"][0]["results"] == []
    odd = ValidationReport(files=2, problems=[
        Problem("/abs/dir/my partner.yaml", 1, 1, Severity.ERROR, "r", "m"),
        Problem("partners/ü #1.yaml", 1, 1, Severity.WARNING, "r", "m")]).finish()
    log = json.loads(VALIDATION_FORMATS["sarif"](odd))
    assert list(SARIF.iter_errors(log)) == []
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]]
    assert uris == ["file:///abs/dir/my%20partner.yaml", "partners/%C3%BC%20%231.yaml"]


def test_gitlab_code_quality_as_gitlab_documents_it(repo: Path) -> None:
    code, out = run(repo, "--format", "gitlab")
    assert code == 1
    issues: list[dict[str, Any]] = json.loads(out)
    assert list(GITLAB.iter_errors(issues)) == []
    assert [(i["check_name"], i["severity"], i["location"]["lines"]["begin"]) for i in issues] == [
        ("yaml11-boolean", "major", 8), ("unknown-key", "major", 9), ("service-url-whitespace", "major", 10),
        ("service-url-https", "major", 14), ("cpo-broadcast", "minor", 9)]
    assert {i["location"]["path"] for i in issues} == {"partners/handwritten.yaml", "partners/warned.yaml"}
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert run(repo, "--format", "gitlab")[1] == out  # fingerprints are stable from run to run


def test_gitlab_and_sarif_of_a_clean_run(tmp_path: Path) -> None:
    (tmp_path / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: local\n")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "partners").mkdir()
    assert run(tmp_path, "--format", "gitlab") == (0, "[]\n")
    code, out = run(tmp_path, "--format", "sarif")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []


def _undeclared(schema: dict[str, Any], value: Any, root: dict[str, Any], where: str = "$") -> list[str]:
    """Keys of `value` its schema does not name (the schema allows new fields; this keeps it complete)."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += _undeclared(schema["properties"][key], item, root, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += _undeclared(schema["items"], item, root, f"{where}[{index}]")
    return found


@pytest.mark.parametrize("args", [(), ("partners/warned.yaml",)])
def test_json_matches_its_published_schema_field_by_field(repo: Path, args: tuple[str, ...]) -> None:
    code, out = run(repo, "--format", "json", *args)
    document = json.loads(out)
    assert list(Draft202012Validator(REPORT_SCHEMA).iter_errors(document)) == []
    assert _undeclared(REPORT_SCHEMA, document, REPORT_SCHEMA) == []
    assert document["errors"] or document["warnings"]


@pytest.mark.parametrize("output_format", ["json", "sarif", "gitlab", "github"])
def test_a_missing_config_is_a_problem_in_every_machine_format(tmp_path: Path, output_format: str) -> None:
    code, out = run(tmp_path, "--format", output_format)
    assert code == 1
    assert "config-not-found" in out
    if output_format == "sarif":
        assert list(SARIF.iter_errors(json.loads(out))) == []
    if output_format == "gitlab":
        assert list(GITLAB.iter_errors(json.loads(out))) == []
