"""`hbsdeploy validate` on the command line: exit codes, text and JSON output, --strict, --env, config discovery,
no traceback on any bad input, and no heavy imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hbsdeploy.cli.main import cli
from tests.validate.helpers import DATA, INVALID, REPO

CONFIG = str(DATA / "hbsdeploy.yaml")
WARNING_ONLY = "invalid/rule-cpo-broadcast-warning.yaml"


def run(args: list[str], cwd: Path = DATA, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process from `cwd`, as `hbsdeploy ARGS`."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, env={"HBSDEPLOY_CONFIG": None, **(env or {})})
    finally:
        os.chdir(before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def test_valid_files_exit_0() -> None:
    result = run(["validate"])
    assert result.exit_code == 0
    assert result.stdout == f"checked {1 + len(list((DATA / 'valid').glob('*.yaml')))} files: 0 errors, 0 warnings\n"


def test_errors_exit_1_with_located_lines_then_a_summary() -> None:
    result = run(["validate", "invalid/schema-unknown-key-typo.yaml", "valid/cpo.yaml"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "invalid/schema-unknown-key-typo.yaml:8:5: error[unknown-key]: unknown key 'servce_url'; did you mean "
        "service_url?",
        "checked 2 files: 1 error, 0 warnings"]


def test_every_problem_in_every_file_in_one_run() -> None:
    files = [str(p.relative_to(DATA)) for p in INVALID]
    result = run(["validate", *files])
    assert result.exit_code == 1
    expected = sorted(line for p in INVALID for line in p.with_suffix(".expected").read_text().splitlines())
    lines = result.stdout.splitlines()
    # Together they give every line they give alone; the only extra lines are the invalid files sharing one ID.
    assert set(expected) <= set(lines[:-1])
    assert {line.split("error[")[1].split("]")[0] for line in set(lines[:-1]) - set(expected)} == {
        "duplicate-partner-id"}
    assert lines[-1].startswith(f"checked {len(files)} files: ")


def test_usage_errors_exit_2() -> None:
    assert run(["validate", "--format", "xml"]).exit_code == 2
    assert run(["validate", "--no-such-option"]).exit_code == 2
    result = run(["validate", "--env", "staging"])
    assert result.exit_code == 2
    assert "--env staging" in result.stderr and "choose one of: prod, qa, sandbox" in result.stderr


def test_json_output_shape() -> None:
    result = run(["validate", "--format", "json", "invalid/rule-client-certification-off-warning.yaml",
                  "invalid/schema-yaml11-booleans.yaml"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert set(document) == {"format_version", "files", "errors", "warnings"}
    assert document["format_version"] == 1 and document["files"] == 2
    # the two files share one partner ID: a duplicate, found although one of them breaks the schema
    assert [e["rule"] for e in document["errors"]].count("duplicate-partner-id") == 1
    # one warning: Client Certification off is recommended on only for Authorization
    assert len(document["errors"]) == 7 and len(document["warnings"]) == 1
    first = next(e for e in document["errors"] if e["rule"] == "yaml11-boolean")
    assert first == {
        "path": "invalid/schema-yaml11-booleans.yaml", "line": 7, "column": 21, "severity": "error",
        "rule": "yaml11-boolean", "json_path": "$.service_types.authorization.online_request",
        "message": "online_request: 'yes' is not a boolean in hbsdeploy files (YAML 1.2 reads it as text); write true"}
    assert document["warnings"][0]["rule"] == "client-certification-off"
    assert all(set(p) >= {"path", "line", "column", "rule", "message", "json_path"}
               for p in document["errors"] + document["warnings"])


def test_json_output_when_clean() -> None:
    result = run(["validate", "--format", "json", "valid/cpo.yaml"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"format_version": 1, "files": 1, "errors": [], "warnings": []}


def test_strict_fails_on_warnings() -> None:
    assert run(["validate", WARNING_ONLY]).exit_code == 0
    result = run(["validate", "--strict", WARNING_ONLY])
    assert result.exit_code == 1
    assert "warning[cpo-broadcast]" in result.stdout


def test_env_chooses_the_rules_of_one_environment() -> None:
    path = "invalid/rule-url-private-host-in-prod.yaml"
    assert run(["validate", "--env", "qa", path]).exit_code == 0
    result = run(["validate", "--env", "prod", path])
    assert result.exit_code == 1
    assert "error[service-url-private-host]" in result.stdout


def test_client_certification_off_is_a_warning_even_in_a_protected_environment() -> None:
    """Issue 13, finding 2: no source makes it an error; the onboarding guidance recommends it for Authorization."""
    result = run(["validate", "--env", "prod", "invalid/rule-client-certification-off-prod-warning.yaml"])
    assert result.exit_code == 0
    assert "warning[client-certification-off]" in result.stdout


def test_quiet_prints_only_problems() -> None:
    assert run(["-q", "validate", "valid/cpo.yaml"]).stdout == ""
    assert run(["-q", "validate", WARNING_ONLY]).stdout.count("\n") == 1


def test_config_found_from_a_subfolder() -> None:
    result = run(["validate", "cpo.yaml"], cwd=DATA / "valid")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert run(["validate", "../invalid/schema-invalid-role.yaml"], cwd=DATA / "valid").exit_code == 1


def test_config_option_and_environment_variable(tmp_path: Path) -> None:
    partner = DATA / "valid" / "cpo.yaml"
    assert run(["validate", str(partner)], cwd=tmp_path).exit_code == 1  # no hbsdeploy.yaml above tmp_path
    assert run(["--config", CONFIG, "validate", str(partner)], cwd=tmp_path).exit_code == 0
    assert run(["validate", str(partner)], cwd=tmp_path, env={"HBSDEPLOY_CONFIG": CONFIG}).exit_code == 0
    # --config wins over the environment variable
    missing = str(tmp_path / "missing.yaml")
    result = run(["--config", missing, "validate", str(partner)], cwd=tmp_path, env={"HBSDEPLOY_CONFIG": CONFIG})
    assert result.exit_code != 0 and "missing.yaml" in result.stderr


def test_invalid_config_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: local\n    protectd: true\n")
    result = run(["validate"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "hbsdeploy.yaml:4:5: error[unknown-key]: unknown key 'protectd'; did you mean protected?")


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_no_traceback_for_any_bad_input(tmp_path: Path) -> None:
    """Every bad input at once, in a real `python -m hbsdeploy validate` process: exit 1, each named, no traceback."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    paths = [*(str(p.relative_to(DATA)) for p in INVALID), str(big), "missing.yaml", "valid"]
    done = _subprocess(["-m", "hbsdeploy", "validate", *paths], DATA)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr == ""
    named = {line.split(":", 1)[0] for line in done.stdout.splitlines()[:-1]}
    assert named == {*paths}


def test_unreadable_file_on_the_command_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: x\n")
    secret.chmod(0)
    command = [sys.executable, "-m", "hbsdeploy", "--config", CONFIG, "validate", "secret.yaml"]
    if os.geteuid() == 0:  # root reads any file: drop that power (setpriv is util-linux, essential on Debian)
        assert shutil.which("setpriv"), "as root this test needs setpriv (util-linux) to enforce file permissions"
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "Traceback" not in done.stderr
    assert done.returncode == 1
    assert done.stdout.startswith("secret.yaml:1:1: error[file-unreadable]")


# Runs `hbsdeploy validate ARGS` in this process and prints which heavy modules it imported.
_IMPORTS = """
import runpy, sys
sys.argv = ["hbsdeploy", "validate", *sys.argv[1:]]
try:
    runpy.run_module("hbsdeploy", run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"requests", "jinja2", "jsonschema", "urllib3", "cryptography",
                                                         "playwright"})
print(code, " ".join(heavy))
"""


@pytest.mark.parametrize(("args", "heavy"), [
    # what pre-commit runs when partner files change: nothing heavy
    (["valid/cpo.yaml", "valid/emp.yaml"], []),
    # a full run, or a change to hbsdeploy.yaml, a schema or a template: the templates are rendered, with Jinja
    ([], ["jinja2"]),
    (["templates/_payload.j2"], ["jinja2"]),
])
def test_validate_imports_nothing_heavy_and_jinja2_only_to_check_templates(tmp_path: Path, args: list[str],
                                                                           heavy: list[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(DATA / "hbsdeploy.yaml", repo / "hbsdeploy.yaml")
    shutil.copytree(DATA / "valid", repo / "valid")
    shutil.copytree(DATA / "templates", repo / "templates")
    (repo / "valid" / "cpo-user-certificate.yaml").unlink()  # a user certificate rightly loads cryptography
    done = _subprocess(["-c", _IMPORTS, *args], repo)
    assert done.stdout.splitlines()[-1].split() == ["0", *heavy], done.stdout + done.stderr
