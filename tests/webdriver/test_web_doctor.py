"""`hbsdeploy doctor` on a web environment, in headless Chromium against the UI replica: the UI map, read-only."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.portal.emulator import ServerHandle
from tests.webdriver.helpers import EXAMPLE_PARTNER, PASSWORD, USER, start_replica, write_repo

CONFIG = """\
environments:
  sandbox:
    portal: local
  qa:
    portal: web
    url: {url}
    username_env: HBSDEPLOY_WEB_USER
    password_env: HBSDEPLOY_WEB_PASSWORD
    timeouts:
      page: 15
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerHandle, io.StringIO]]:
    """The replica, its access log kept: user `operator` administers two partner accounts."""
    log = io.StringIO()
    handle = start_replica(tmp_path / "portal.sqlite3",
                           {"DE*A36": "Example Charging GmbH", "DE*B12": "Second Charging GmbH"}, log_stream=log)
    yield handle, log
    handle.stop()


@pytest.fixture
def repo(tmp_path: Path, served: tuple[ServerHandle, io.StringIO], monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_repo(tmp_path / "repo", CONFIG.format(url=served[0].url), {"example.yaml": EXAMPLE_PARTNER})
    monkeypatch.chdir(root)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.setenv("HBSDEPLOY_WEB_USER", USER)
    monkeypatch.setenv("HBSDEPLOY_WEB_PASSWORD", PASSWORD)
    return root


def doctor() -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["doctor", "--env", "qa"], catch_exceptions=False)
    return result.exit_code, result.output.splitlines()


def posts(log: io.StringIO) -> list[str]:
    """The paths of every POST the replica served (its access log: `address "METHOD path" status time`)."""
    return re.findall(r'"POST (\S+)"', log.getvalue())


def test_doctor_finds_every_ui_map_entry_then_names_the_one_label_the_portal_changed(
        repo: Path, served: tuple[ServerHandle, io.StringIO]) -> None:
    handle, log = served
    assert handle.ui is not None
    versions = {name: handle.portal.get_service_type("DE*A36", name).version for name in ("authorization",
                                                                                         "reservation")}
    code, lines = doctor()
    assert code == 0, lines
    ui = [line for line in lines if " ui " in f" {line[5:]}"]
    assert ui == [
        "ok   ui log-in: logged in as $HBSDEPLOY_WEB_USER; session saved",
        "ok   ui login page: 3 UI map entries found",
        "ok   ui home page: 1 UI map entry found",
        "ok   ui Administration page: 1 UI map entry found",
        "ok   ui Service Type Settings page: 14 UI map entries found (DE*A36 Authorization, DE*A36 Reservation)",
        "ok   ui edit mode: 2 UI map entries found (DE*A36 Authorization, DE*A36 Reservation)",
        "ok   ui verification page: not shown (no verification code was asked for in this log-in): "
        "ui.labels.verification_code, ui.buttons.verify not checked",
        "ok   ui messages: not checked read-only: ui.messages.updated (shown only after a save); "
        "ui.messages.error (shown only when the portal refuses something)",
    ]
    assert lines[-1] == "all checks passed"
    # The log-in, then one Cancel per service type (the replica's Cancel posts the form with action=cancel, which
    # saves nothing); Update Service Type is never clicked.
    cancel = "/administration/service-type-settings"
    assert posts(log) == ["/login", cancel, cancel]

    # The portal calls the field "Partner Service URL" (as one EMP article does): doctor names exactly that entry.
    handle.ui.relabel("service_url", "Partner Service URL")
    code, lines = doctor()
    assert code == 1, lines
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1, lines
    found = re.fullmatch(
        r'FAIL ui Service Type Settings page: ui\.labels\.service_url: the textbox "Service URL" not found '
        r"\(DE\*A36 Authorization, DE\*A36 Reservation\); screenshot (\S+\.png); if the portal names it differently, "
        r"set environments\.qa\.ui\.labels\.service_url in hbsdeploy\.yaml", failed[0])
    assert found, failed[0]
    screenshot = repo / found.group(1)
    assert screenshot.parent == repo / ".hbsdeploy" / "evidence"  # beside the audit log
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert "ok   ui log-in: the saved session .hbsdeploy/web-session-qa.json was accepted" in lines
    assert lines[-1] == "1 check failed"
    assert posts(log) == ["/login", cancel, cancel, cancel, cancel]  # the saved session reused, nothing saved
    assert {name: handle.portal.get_service_type("DE*A36", name).version for name in versions} == versions

    # A one-line override in hbsdeploy.yaml makes the map match the portal again.
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=handle.url) + "    ui:\n      labels:\n"
                                         "        service_url: Partner Service URL\n", encoding="utf-8")
    code, lines = doctor()
    assert code == 0, lines
