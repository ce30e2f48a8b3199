"""Service types are data in the project: its schemas/partner.schema.json and templates/ take effect, no module of
hbsdeploy changes, and a type declares its own fields (x-hbsdeploy.fields)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from hbsdeploy import __version__
from hbsdeploy.cli.main import cli
from hbsdeploy.load.config import load_config
from hbsdeploy.load.schemaset import package_schemas, schema_differences
from hbsdeploy.load.servicetypes import SpecError, specs_from_schema
from hbsdeploy.portal import PayloadRejected
from hbsdeploy.portal.local import LocalPortal
from tests.fixtures.emulator import Emulators
from tests.helpers import run_cli

NEW_TYPE = "charging_notifications"
NEW_ENTRY: dict[str, Any] = {
    "$ref": "#/$defs/service_type",
    "title": "Charging Notifications",
    "description": "Where eRoamingChargingNotifications arrive.",
    "x-hbsdeploy": {"label": "Charging Notifications", "roles": ["emp"], "order": 3,
                    "fields": ["online_request", "service_url"]},
}
EMP_FILE = """\
name: Example Mobility
role: emp
provider_id: "DE-8EO"
environments:
  sandbox:
  qa:
service_types:
  charging_notifications:
    online_request: true
    service_url: https://oicp.example-mobility.com/notifications
"""
TEMPLATE = """{%- import "_payload.j2" as payload -%}
{{ payload.service_type_payload(settings) }}
"""


def run(project: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(project / "hbsdeploy.yaml"), *args])


def edit_schema(project: Path, change: Any) -> None:
    path = project / "schemas" / "partner.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")


def add_new_type(schema: dict[str, Any]) -> None:
    schema["$defs"]["service_types"]["properties"][NEW_TYPE] = NEW_ENTRY


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project as `hbsdeploy init` makes it, with one more service type in its own schema and a template."""
    monkeypatch.chdir(tmp_path)
    made = CliRunner().invoke(cli, ["init", "project"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "project"
    edit_schema(folder, add_new_type)
    (folder / "templates" / f"{NEW_TYPE}.json.j2").write_text(TEMPLATE, encoding="utf-8")
    (folder / "partners" / "example-emp.yaml").write_text(EMP_FILE, encoding="utf-8")
    return folder


def test_a_new_service_type_with_two_fields_validates_plans_applies_and_settles(project: Path) -> None:
    validated = run(project, "validate")
    assert validated.exit_code == 0, validated.output

    rendered = run(project, "render", "--env", "sandbox", "--partner", "DE-8EO")
    assert rendered.exit_code == 0, rendered.output
    payload = json.loads(rendered.stdout)["sandbox"]["DE-8EO"][NEW_TYPE]
    assert payload == {"online_request": True, "service_url": "https://oicp.example-mobility.com/notifications"}

    planned = run(project, "plan", "--partner", "DE-8EO", "--format", "json")
    assert planned.exit_code == 0, planned.output
    change = json.loads(planned.stdout)["changes"][0]
    assert (change["service_type"], change["kind"]) == (NEW_TYPE, "enable")
    assert set(change["before"]) == set(change["after"]) == {"online_request", "service_url"}
    assert [f["field"] for f in change["fields"]] == ["online_request", "service_url"]

    steps = run(project, "plan", "--partner", "DE-8EO", "--format", "instructions").stdout
    assert 'Choose the service type "Charging Notifications"' in steps
    assert "Client Certification" not in steps and "Server certification" not in steps
    markdown = run(project, "plan", "--partner", "DE-8EO", "--format", "markdown").stdout
    assert "/ Charging Notifications: enable" in markdown and "client_certification" not in markdown

    applied = run(project, "apply", "--auto-approve", "--partner", "DE-8EO")
    assert applied.exit_code == 0, applied.output
    again = run(project, "plan", "--partner", "DE-8EO", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    imported = run(project, "import", "--partner", "DE-8EO", "--env", "sandbox")
    assert imported.exit_code == 0, imported.output
    assert (f"{NEW_TYPE}:\n        online_request: true\n        service_url: "
            '"https://oicp.example-mobility.com/notifications"\n') in imported.stdout
    assert "client_certification" not in imported.stdout and "certificate" not in imported.stdout
    stored = LocalPortal(project / ".hbsdeploy" / "sandbox.sqlite3",
                         service_types=load_config(project / "hbsdeploy.yaml").schemas.service_types)
    assert dict(stored.get_service_type("DE-8EO", NEW_TYPE).settings) == payload


def test_the_emulator_serves_the_projects_service_types(project: Path, emulator: Emulators) -> None:
    config = load_config(project / "hbsdeploy.yaml")
    handle = emulator(partners=["DE-8EO"], service_types=config.schemas.service_types)
    text = (project / "hbsdeploy.yaml").read_text(encoding="utf-8")
    qa = re.search(r"^  qa:\n(    .*\n)+", text, re.MULTILINE)
    assert qa is not None and "portal: manual" in qa.group(0)
    (project / "hbsdeploy.yaml").write_text(text.replace(qa.group(0), f"  qa:\n    portal: {handle.url}\n"),
                                            encoding="utf-8")

    planned = run(project, "plan", "--env", "qa", "--partner", "DE-8EO", "--format", "json")
    assert planned.exit_code == 0, planned.output
    assert [c["service_type"] for c in json.loads(planned.stdout)["changes"]] == [NEW_TYPE]
    applied = run(project, "apply", "--env", "qa", "--auto-approve", "--partner", "DE-8EO")
    assert applied.exit_code == 0, applied.output
    assert run(project, "plan", "--env", "qa", "--partner", "DE-8EO", "--detailed-exitcode").exit_code == 0


def test_portal_serve_takes_the_service_types_of_schemas_dir(project: Path, tmp_path: Path) -> None:
    """`hbsdeploy portal serve --schemas DIR`, as a process outside any repository: the type is listed with its two
    fields, and a payload with a third is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("HBSDEPLOY_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "hbsdeploy", "portal", "serve", "--port", "0", "--state", "state.sqlite3",
         "--partner", "DE-8EO", "--schemas", str(project / "schemas")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=outside)
    try:
        assert process.stdout is not None
        match = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+)\n", process.stdout.readline())
        assert match, process.stderr.read() if process.stderr else ""
        url = f"{match.group(1)}/v1/partners/DE-8EO/service-types"
        listed = requests.get(url, timeout=10).json()["service_types"]
        assert listed[NEW_TYPE]["settings"] == {"online_request": False, "service_url": None}
        refused = requests.put(f"{url}/{NEW_TYPE}", json={"online_request": False, "service_url": None,
                                                         "client_certification": False},
                               headers={"If-Match": listed[NEW_TYPE]["version"]}, timeout=10)
        assert refused.status_code == 422 and "unknown field 'client_certification'" in refused.text
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert f"service types: authorization, reservation, {NEW_TYPE} (from " in stderr
    assert "project/schemas/partner.schema.json)" in stderr


def test_a_manual_environment_gets_two_steps_and_records_two_fields(project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    steps = run_cli("plan", "--env", "qa", "--partner", "DE-8EO", "--format", "instructions")
    assert steps.code == 0, steps.stderr
    assert 'Choose the service type "Charging Notifications" and click Edit' in steps.stdout
    assert 'Tick "Online Request".' in steps.stdout
    assert "Type into \"Service URL\": https://oicp.example-mobility.com/notifications" in steps.stdout
    assert "Certification" not in steps.stdout and "Broadcast" not in steps.stdout

    recorded = run_cli("state", "record", "--env", "qa", "--partner", "DE-8EO", "--reason", "done by alice",
                       input="yes\n", env={"HBSDEPLOY_ALLOW_PIPED_CONFIRMATION": "1"})
    assert recorded.code == 0, recorded.output
    state = (project / "state" / "qa.yaml").read_text(encoding="utf-8")
    entry = yaml.safe_load(state)["partners"]["DE-8EO"][NEW_TYPE]
    assert entry["settings"] == {"online_request": True, "service_url": "https://oicp.example-mobility.com/notifications"}
    assert run_cli("plan", "--env", "qa", "--partner", "DE-8EO", "--detailed-exitcode").code == 0


def test_the_emulator_refuses_a_field_the_type_does_not_have(project: Path) -> None:
    specs = load_config(project / "hbsdeploy.yaml").schemas.service_types
    portal = LocalPortal(project / "emulated.sqlite3", service_types=specs)
    with pytest.raises(PayloadRejected, match="unknown field 'client_certification'"):
        portal.update_service_type("DE-8EO", NEW_TYPE, {"online_request": False, "service_url": None,
                                                        "client_certification": True}, '"0"')


def test_a_field_the_type_does_not_have_is_an_error_in_the_partner_file(project: Path) -> None:
    path = project / "partners" / "example-emp.yaml"
    path.write_text(EMP_FILE + "    client_certification: true\n", encoding="utf-8")
    result = run(project, "validate")
    assert result.exit_code == 1
    assert "example-emp.yaml:11:27: error[field-not-for-service-type]: Charging Notifications has no Client " \
           "Certification in the portal" in result.stdout


def test_the_service_type_follows_its_roles(project: Path) -> None:
    path = project / "partners" / "example-cpo.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f"  {NEW_TYPE}:\n    online_request: false\n",
                    encoding="utf-8")
    result = run(project, "validate")
    assert result.exit_code == 1
    assert "service-type-not-for-role" in result.stdout and "Charging Notifications" in result.stdout


def test_an_edit_to_an_existing_rule_in_the_project_schema_takes_effect(project: Path) -> None:
    assert run(project, "validate").exit_code == 0

    def shorter_urls(schema: dict[str, Any]) -> None:
        schema["$defs"]["service_type"]["properties"]["service_url"]["maxLength"] = 30

    edit_schema(project, shorter_urls)
    result = run(project, "validate")
    assert result.exit_code == 1
    assert "error[value-too-long]: service_url is longer than 30 characters" in result.stdout

    def authorization_optional(schema: dict[str, Any]) -> None:
        schema["$defs"]["service_type"]["properties"]["service_url"]["maxLength"] = 2048
        annotation = schema["$defs"]["service_types"]["properties"]["authorization"]["x-hbsdeploy"]
        annotation["recommended"] = {}

    edit_schema(project, authorization_optional)
    path = project / "partners" / "example-cpo.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("client_certification: true",
                                                             "client_certification: false"), encoding="utf-8")
    result = run(project, "validate")
    assert result.exit_code == 0 and "client-certification-off" not in result.output, result.output


def test_the_schema_folder_is_a_config_setting(project: Path) -> None:
    (project / "schemas").rename(project / "json-schemas")
    without = run(project, "validate")
    assert without.exit_code == 1 and "unknown-key" in without.stdout  # hbsdeploy's copy has no such type
    config = project / "hbsdeploy.yaml"
    config.write_text("schemas: json-schemas\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    assert run(project, "validate").exit_code == 0


@pytest.mark.parametrize(("breakage", "expected"), [
    ("{\n  \"title\": \"x\",\n  oops\n}\n",
     r"project/schemas/partner\.schema\.json:3: not valid JSON \(Expecting property name enclosed in double quotes, "
     r"column 3\); fix it, or delete it"),
    ("[1, 2]\n", r"project/schemas/partner\.schema\.json:1: not a JSON Schema \(the file must hold one JSON object\)"),
])
def test_a_broken_project_schema_is_one_line_naming_the_file(project: Path, breakage: str, expected: str) -> None:
    (project / "schemas" / "partner.schema.json").write_text(breakage, encoding="utf-8")
    for command in (["validate"], ["plan"]):
        result = run(project, *command)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert re.match(f"error: {expected}", lines[0]), lines[0]


def test_a_project_schema_without_x_hbsdeploy_or_with_an_unknown_control(project: Path) -> None:
    def no_annotation(schema: dict[str, Any]) -> None:
        del schema["$defs"]["service_types"]["properties"][NEW_TYPE]["x-hbsdeploy"]

    edit_schema(project, no_annotation)
    result = run(project, "validate")
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("error: project/schemas/partner.schema.json:") and "\n" not in line
    assert "service type 'charging_notifications' has no x-hbsdeploy object" in line

    def unknown_control(schema: dict[str, Any]) -> None:
        entry = schema["$defs"]["service_types"]["properties"][NEW_TYPE]
        entry["x-hbsdeploy"] = {"label": "Charging Notifications", "roles": ["emp"], "fields": ["online_request",
                                                                                              "evse_filter"]}

    edit_schema(project, unknown_control)
    result = run(project, "validate")
    assert result.exit_code == 1
    assert "'evse_filter', not a portal control hbsdeploy knows" in result.output
    assert "a new kind of control needs code (the web driver must know how to set it)" in result.output


@pytest.mark.parametrize("ref", ["#/$defs/nothing", "other.schema.json", "#/properties/name/nowhere"])
def test_a_reference_that_leads_nowhere_is_one_line_not_a_traceback(project: Path, ref: str) -> None:
    """Issue 13 review: a `$ref` out of the file or to nothing crashed validate and doctor inside jsonschema."""
    def dangling(schema: dict[str, Any]) -> None:
        schema["properties"]["name"] = {"$ref": ref}

    edit_schema(project, dangling)
    result = run(project, "validate")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: project/schemas/partner.schema.json:")
    assert f"properties/name/$ref: {ref!r} does not point at a part of this schema" in line
    doctor = run(project, "doctor")
    assert doctor.exit_code == 1 and "Traceback" not in doctor.output
    assert [row.split(":")[0] for row in doctor.output.splitlines() if row.startswith("FAIL")] == ["FAIL schema"]
    assert "error:" not in doctor.output  # said once, by the schema check; nothing reads partner files through it


def test_a_pattern_python_cannot_run_is_reported_at_its_line(project: Path) -> None:
    """A `pattern` that cannot run with its ECMA 262 meaning is one line at the line of the pattern, not line 1."""
    def unterminated(schema: dict[str, Any]) -> None:
        schema["properties"]["name"] = {"type": "string", "pattern": "^(a"}

    edit_schema(project, unterminated)
    text = (project / "schemas" / "partner.schema.json").read_text(encoding="utf-8").splitlines()
    line = next(number for number, row in enumerate(text, start=1) if '"^(a"' in row)
    assert line > 1
    result = run(project, "validate")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().startswith(f"error: project/schemas/partner.schema.json:{line}: not a usable JSON "
                                            "Schema (pattern '^(a'")


def test_schemas_naming_a_file_is_one_line_at_its_key(project: Path) -> None:
    """`schemas:` naming a file, not a folder: one line at the key (issue 13 review: an absolute path and Errno 20)."""
    config = project / "hbsdeploy.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "schemas: hbsdeploy.yaml\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    result = run(project, "validate")
    assert result.exit_code == 1 and "Errno" not in result.output and "Traceback" not in result.output
    assert f"hbsdeploy.yaml:{line}:10: error[invalid-path]: schemas 'hbsdeploy.yaml' is a file, not a folder" in \
        result.output


def test_an_edit_to_a_schema_hbsdeploy_does_not_read_is_reported(project: Path) -> None:
    """Only partner.schema.json is the project's: an edited copy of another schema would change nothing, silently."""
    assert "schema-copy-differs" not in run(project, "validate").output  # init's copies are hbsdeploy's
    config_schema = project / "schemas" / "config.schema.json"
    config_schema.write_text(config_schema.read_text(encoding="utf-8").replace('"maximum": 64', '"maximum": 2'),
                             encoding="utf-8")
    result = run(project, "validate")
    assert result.exit_code == 0
    assert ("project/schemas/config.schema.json:1:1: warning[schema-copy-differs]: differs from hbsdeploy "
            f"{__version__}'s config.schema.json, which is the one hbsdeploy uses") in result.output
    assert run(project, "validate", "--strict").exit_code == 1


@pytest.mark.parametrize("path", ["/api/oicp/notificationmgmt/v11/charging-notifications/{provider_id}/start",
                                  "/oicp/notificationmgmt/v11/charging-notifications/stop"])
def test_an_unsafe_probe_path_is_refused_when_the_schema_is_loaded(project: Path, path: str) -> None:
    """Was: a probe_path ending in /start or outside /api/oicp/ passed validate and was refused only by doctor
    --probe, without file and line (issue 13 review)."""
    def probe_path(schema: dict[str, Any]) -> None:
        schema["$defs"]["service_types"]["properties"][NEW_TYPE]["x-hbsdeploy"]["probe_path"] = {"emp": path}

    edit_schema(project, probe_path)
    schema_file = project / "schemas" / "partner.schema.json"
    line = next(number for number, text in enumerate(schema_file.read_text(encoding="utf-8").splitlines(), 1)
                if path in text)
    expected = (f"project/schemas/partner.schema.json:{line}: service type {NEW_TYPE!r}: x-hbsdeploy.probe_path.emp "
                f"'{path}' is not an OICP operation path under /api/oicp/ without a start operation (doctor --probe "
                "sends a GET to it); write the service type's stop operation, e.g. "
                "/api/oicp/charging/v21/providers/{provider_id}/authorize-remote/stop; fix it, or delete it to use "
                f"hbsdeploy's own copy (`hbsdeploy schema partner` prints hbsdeploy {__version__}'s)")
    for command in (["validate"], ["plan"]):
        result = run(project, *command)
        assert result.exit_code == 1 and "Traceback" not in result.output, (command, result.output)
        assert result.output.strip() == f"error: {expected}", (command, result.output)
    doctor = run(project, "doctor", "--probe")  # before any probe: the schema check fails, nothing is sent
    assert doctor.exit_code == 1 and "Traceback" not in doctor.output
    assert any(text.startswith("FAIL") and text.endswith(expected) for text in doctor.output.splitlines()), \
        doctor.output


def test_doctor_names_the_differences_from_hbsdeploys_copy(project: Path) -> None:
    config = load_config(project / "hbsdeploy.yaml")
    assert schema_differences(config.schemas) == [f"service types added: {NEW_TYPE}"]

    def drop_reservation(schema: dict[str, Any]) -> None:
        del schema["$defs"]["service_types"]["properties"]["reservation"]
        schema["properties"]["name"]["maxLength"] = 100

    edit_schema(project, drop_reservation)
    result = run(project, "doctor")
    assert (f"project/schemas/partner.schema.json differs from hbsdeploy {__version__}'s copy: service types added: "
            f"{NEW_TYPE}; removed: reservation; other changes (field rules, IDs or descriptions)") in result.output


def test_the_package_copy_declares_every_field_for_the_existing_types() -> None:
    specs = package_schemas().service_types
    assert all(len(spec.fields) == 6 for spec in specs.values())
    with pytest.raises(SpecError, match="must include online_request"):
        specs_from_schema({"$defs": {"service_types": {"properties": {"x": {"x-hbsdeploy": {
            "label": "X", "roles": ["cpo"], "fields": ["service_url"]}}}}}})
