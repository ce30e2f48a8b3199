"""Adding a service type is a schema entry and a template: no module of hbsdeploy changes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.load import resources, schemacheck, servicetypes

NEW_TYPE = "pull_authentication_data"


def _clear_caches() -> None:
    for cached in (resources.load_schema, servicetypes.service_types, schemacheck.partner_validator,
                   schemacheck.config_validator):
        cached.cache_clear()


@pytest.fixture
def extended_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The shipped schemas with one more service type, as a maintainer would add it."""
    folder = tmp_path / "schemas"
    shutil.copytree(resources.schemas_dir(), folder)
    partner_schema = folder / "partner.schema.json"
    schema = json.loads(partner_schema.read_text())
    schema["$defs"]["service_types"]["properties"][NEW_TYPE] = {
        "$ref": "#/$defs/service_type",
        "title": "Pull Authentication Data",
        "description": "CPO: where the platform fetches authentication data.",
        "x-hbsdeploy": {"label": "Pull Authentication Data", "roles": ["cpo"], "required_for": [],
                        "broadcast": False, "order": 3},
    }
    partner_schema.write_text(json.dumps(schema))
    monkeypatch.setattr(resources, "schemas_dir", lambda: folder)
    _clear_caches()
    yield folder
    _clear_caches()


def test_a_new_service_type_validates_renders_and_plans(extended_schemas: Path, repo_copy: Path) -> None:
    shutil.copy(repo_copy / "templates" / "reservation.json.j2", repo_copy / "templates" / f"{NEW_TYPE}.json.j2")
    partner = repo_copy / "partners" / "example-cpo.yaml"
    partner.write_text(partner.read_text() + (
        f"  {NEW_TYPE}:\n"
        "    online_request: true\n"
        "    service_url: https://oicp.example-charging.com/pull\n"
        "    client_certification: true\n"
    ))
    config = ["--config", str(repo_copy / "hbsdeploy.yaml")]
    runner = CliRunner()

    validated = runner.invoke(cli, [*config, "validate"])
    assert validated.exit_code == 0, validated.output

    rendered = runner.invoke(cli, [*config, "render", "--env", "prod", "--partner", "DE*A36"])
    assert rendered.exit_code == 0, rendered.output
    payload = json.loads(rendered.stdout)["prod"]["DE*A36"][NEW_TYPE]
    assert payload["service_url"] == "https://oicp.example-charging.com/pull"

    planned = runner.invoke(cli, [*config, "plan", "--partner", "DE*A36", "--format", "json"])
    assert planned.exit_code == 0, planned.output
    changes = {c["service_type"]: c["kind"] for c in json.loads(planned.stdout)["changes"]}
    assert changes[NEW_TYPE] == "enable"

    applied = runner.invoke(cli, [*config, "apply", "--auto-approve", "--partner", "DE*A36"])
    assert applied.exit_code == 0, applied.output
    again = runner.invoke(cli, [*config, "plan", "--partner", "DE*A36", "--detailed-exitcode"])
    assert again.exit_code == 0, again.output


def test_the_new_service_type_follows_its_annotation(extended_schemas: Path, repo_copy: Path) -> None:
    shutil.copy(repo_copy / "templates" / "reservation.json.j2", repo_copy / "templates" / f"{NEW_TYPE}.json.j2")
    partner = repo_copy / "partners" / "example-emp.yaml"
    partner.write_text(partner.read_text() + f"  {NEW_TYPE}:\n    online_request: false\n")
    result = CliRunner().invoke(cli, ["--config", str(repo_copy / "hbsdeploy.yaml"), "validate"])
    assert result.exit_code == 1
    assert "service-type-not-for-role" in result.stdout and "Pull Authentication Data" in result.stdout
