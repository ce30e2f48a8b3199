"""The web driver in a real headless Chromium on a service type with fewer fields than the shipped two: the replica
shows only that type's controls, so a driver looking for any other one would stop (the page timeout)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.load.config import load_config
from hbsdeploy.load.resources import schemas_dir
from hbsdeploy.portal.emulator import ServerHandle, serve
from tests.webdriver.helpers import PASSWORD, USER, write_repo

NEW_TYPE = "charging_notifications"
URL = "https://oicp.example-charging.com/notifications"
CONFIG = """\
default_environment: qa
environments:
  qa:
    portal: web
    url: {url}
    username_env: HBSDEPLOY_WEB_USER
    password_env: HBSDEPLOY_WEB_PASSWORD
    timeouts:
      page: 10
"""
PARTNER = f"""\
name: Example Charging GmbH
role: cpo
operator_id: "DE*A36"
environments:
  qa:
service_types:
  {NEW_TYPE}:
    online_request: true
    service_url: {URL}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose own schema adds a CPO service type with Online Request and Service URL only."""
    root = write_repo(tmp_path / "repo", "environments: {}\n", {"example.yaml": PARTNER})
    shutil.copytree(schemas_dir(), root / "schemas")
    path = root / "schemas" / "partner.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["$defs"]["service_types"]["properties"][NEW_TYPE] = {
        "$ref": "#/$defs/service_type", "title": "Charging Notifications", "description": "Notifications.",
        "x-hbsdeploy": {"label": "Charging Notifications", "roles": ["cpo"], "order": 3,
                        "fields": ["online_request", "service_url"]}}
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")
    shutil.copy(root / "templates" / "authorization.json.j2", root / "templates" / f"{NEW_TYPE}.json.j2")
    monkeypatch.chdir(root)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.setenv("HBSDEPLOY_WEB_USER", USER)
    monkeypatch.setenv("HBSDEPLOY_WEB_PASSWORD", PASSWORD)
    return root


@pytest.fixture
def replica(tmp_path: Path, repo: Path) -> Iterator[ServerHandle]:
    """The UI replica serving the repository's service types."""
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url="https://127.0.0.1:1"), encoding="utf-8")
    specs = load_config(repo / "hbsdeploy.yaml").schemas.service_types
    handle = serve(tmp_path / "portal.sqlite3", ui=True, log_stream=None, service_types=specs)
    assert handle.ui is not None
    handle.ui.add_account("DE*A36", "Example Charging GmbH")
    handle.ui.add_user(USER, PASSWORD, ["DE*A36"])
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=handle.url), encoding="utf-8")
    yield handle
    handle.stop()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_a_type_with_two_fields_is_planned_written_and_read_back_through_its_two_controls(
        repo: Path, replica: ServerHandle) -> None:
    planned = CliRunner().invoke(cli, ["plan", "--partner", "DE*A36", "--format", "json"])
    assert planned.exit_code == 0, planned.output
    change = json.loads(planned.stdout)["changes"][0]  # stdout: the progress line is on stderr
    assert change["service_type"] == NEW_TYPE and set(change["after"]) == {"online_request", "service_url"}

    code, out = run("apply", "--auto-approve", "--partner", "DE*A36")
    assert code == 0, out
    assert dict(replica.portal.get_service_type("DE*A36", NEW_TYPE).settings) == {"online_request": True,
                                                                                   "service_url": URL}
    code, out = run("plan", "--partner", "DE*A36", "--detailed-exitcode")
    assert code == 0, out
