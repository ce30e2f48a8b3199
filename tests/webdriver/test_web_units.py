"""The web driver's pure parts: the UI map and its overrides, config, session files, versions, evidence, browsers."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from hbsdeploy.errors import InputError
from hbsdeploy.load.config import load_config
from hbsdeploy.load.settings import DEFAULT_SETTINGS
from hbsdeploy.load.uimap import GROUPS, UIMAP_FILE, default_uimap, unknown_override_keys
from hbsdeploy.portal import PortalAuthError
from hbsdeploy.portal.web.browser import BrowserMissing, find_browser, launch_args
from hbsdeploy.portal.web.forms import FormValues, content_version, differences, evidence_paths, safe_name
from hbsdeploy.portal.web.session import read_session, session_file, write_session

PORTAL = "https://portal-qa.hubject.com"
WEB_ENV = """\
environments:
  sandbox:
    portal: local
  qa:
    portal: web
    url: https://portal-qa.hubject.com
    username_env: HBSDEPLOY_QA_USER
    password_env: HBSDEPLOY_QA_PASSWORD
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hbsdeploy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the UI map ---------------------------------------------------------------------------------------------------


def test_every_shipped_entry_has_a_role_a_name_a_page_and_a_source() -> None:
    ui = default_uimap()
    entries = list(ui)
    assert len(entries) >= 25
    for entry in entries:
        assert entry.group in GROUPS and entry.role and entry.page and entry.source, entry
        assert entry.name or entry.role == "alert", entry
    assert ui.name("labels", "service_url") == "Service URL"
    assert ui.name("buttons", "update") == "Update Service Type"
    assert [e.dotted for e in ui.on_page("login")] == ["labels.username", "labels.password", "buttons.log_in"]


def test_the_shipped_map_names_no_css_path_or_generated_id() -> None:
    text = UIMAP_FILE.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    names = [raw["name"] for group in GROUPS for raw in data[group].values()]
    assert not [name for name in names if name.startswith(("#", ".", "//")) or "[" in name]


def test_an_override_replaces_one_name_and_keeps_the_others() -> None:
    ui = default_uimap().with_overrides({"labels": {"service_url": "Partner Service URL"}})
    assert ui.name("labels", "service_url") == "Partner Service URL"
    assert ui.entry("labels", "service_url").source == "hbsdeploy.yaml"
    assert ui.name("labels", "online_request") == "Online Request"
    assert ui.overridden == frozenset({"labels.service_url"})
    assert default_uimap().name("labels", "service_url") == "Service URL"  # the shipped map is unchanged


def test_unknown_override_keys_name_the_choices() -> None:
    found = unknown_override_keys({"labels": {"servce_url": "x", "service_url": "y"}, "menus": {}})
    assert [path for path, _ in found] == [("labels", "servce_url"), ("menus",)]
    assert "choose one of: broadcast_request" in found[0][1]


def test_config_takes_a_ui_override_in_one_line(tmp_path: Path) -> None:
    override = "    ui:\n      labels:\n        service_url: Partner Service URL\n"
    config = load_config(_config(tmp_path, WEB_ENV + override))
    env = config.environment("qa")
    assert env.kind == "web" and env.url == PORTAL
    assert env.ui == {"labels": {"service_url": "Partner Service URL"}}
    assert env.web_parallelism == 2 and env.page_timeout == 30.0
    assert env.state_dir == tmp_path / ".hbsdeploy"


def test_an_unknown_ui_key_is_an_error_with_its_line_and_column(tmp_path: Path) -> None:
    path = _config(tmp_path, WEB_ENV + "    ui:\n      labels:\n        servce_url: Partner Service URL\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:11:9: error[unknown-ui-key]: ui.labels has no entry 'servce_url'")


@pytest.mark.parametrize(("extra", "expected"), [
    ("    password_env: GITHUB_TOKEN\n", "error[token-env-name]"),
    ("    parallelism: 50\n", "parallelism"),
    ("    url: http://portal-qa.hubject.com\n", "the portal password would travel in clear text"),
])
def test_web_settings_are_checked(tmp_path: Path, extra: str, expected: str) -> None:
    text = WEB_ENV.replace("    password_env: HBSDEPLOY_QA_PASSWORD\n", "").replace(
        "    url: https://portal-qa.hubject.com\n", "" if "url:" in extra else "    url: https://portal-qa.hubject.com\n")
    with pytest.raises(InputError) as caught:
        load_config(_config(tmp_path, text + extra))
    assert expected in str(caught.value)


def test_web_needs_url_and_url_needs_web(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_config(_config(tmp_path, "environments:\n  qa:\n    portal: web\n  sandbox:\n    portal: local\n"
                                      "    url: https://a.example\n"))
    message = str(caught.value)
    assert ":3:13: error[web-setting]: portal: web needs url" in message
    assert ":6:10: error[web-setting]: url is only used with portal: web" in message


def test_validate_with_a_web_environment_imports_no_playwright(tmp_path: Path) -> None:
    _config(tmp_path, WEB_ENV + "    ui:\n      buttons:\n        update: Save\n")
    (tmp_path / "partners").mkdir()
    (tmp_path / "templates").mkdir()  # a full validate checks the templates (issue 15): a folder without any here
    code = ("import runpy, sys\nsys.argv = ['hbsdeploy', 'validate']\ntry:\n"
            "    runpy.run_module('hbsdeploy', run_name='__main__')\nexcept SystemExit as exit:\n"
            "    print(exit.code, sorted(m for m in sys.modules if m.split('.')[0] in ('playwright', 'requests')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


# -- versions, form values, evidence names -------------------------------------------------------------------------


def test_the_version_is_a_content_hash_of_the_canonical_settings() -> None:
    default = content_version(DEFAULT_SETTINGS)
    assert default.startswith('"w-') and default.endswith('"') and len(default) == 20
    # Equal after normalisation: equal version (the UI cannot show what normalisation drops).
    assert content_version({**DEFAULT_SETTINGS, "broadcast_request": True}) == default
    online = {**DEFAULT_SETTINGS, "online_request": True, "service_url": "https://a.example/oicp"}
    assert content_version(online) != default
    assert content_version({**online, "service_url": "HTTPS://A.example/oicp/"}) == content_version(online)


def test_form_values_become_canonical_settings() -> None:
    shown = FormValues(online_request=True, broadcast_request=None, service_url=" https://A.example/x/ ",
                       client_certification=True, user_certificate=True, certificate_sha256="AB" * 32)
    assert shown.settings() == {"online_request": True, "broadcast_request": False,
                                "service_url": "https://a.example/x", "client_certification": True,
                                "certificate": "user", "certificate_sha256": "ab" * 32}
    off = FormValues(False, True, "https://left.example", False, False, "")
    assert off.settings() == dict(DEFAULT_SETTINGS)


def test_differences_name_each_field() -> None:
    assert differences(DEFAULT_SETTINGS, {**DEFAULT_SETTINGS, "client_certification": True}) == [
        "client_certification: expected False, the portal shows True"]


def test_evidence_names_are_utc_time_partner_and_service_type() -> None:
    moment = dt.datetime(2026, 11, 26, 14, 5, 9, 123456, tzinfo=dt.timezone.utc)
    before, after = evidence_paths(Path("/state/evidence"), "+49*536", "authorization", moment)
    assert before.name == "20261126T140509.123Z-49-536-authorization-before.png"
    assert after.name == "20261126T140509.123Z-49-536-authorization-after.png"
    assert safe_name("DE*A36") == "DE-A36" and safe_name("../x") == "..-x"


# -- session files -------------------------------------------------------------------------------------------------


def test_a_session_is_written_0600_atomically_and_read_back(tmp_path: Path) -> None:
    path = session_file(tmp_path, "qa")
    assert path.name == "web-session-qa.json"
    state = {"cookies": [{"name": "hbs_session", "value": "secret-cookie"}], "origins": []}
    write_session(path, PORTAL, state)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_session(path, PORTAL, "qa") == state
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert read_session(tmp_path / "none.json", PORTAL, "qa") is None


def test_a_session_of_another_portal_is_refused(tmp_path: Path) -> None:
    path = session_file(tmp_path, "qa")
    write_session(path, "https://portal.hubject.com", {"cookies": [{"value": "secret-cookie"}]})
    with pytest.raises(PortalAuthError) as caught:
        read_session(path, PORTAL, "qa")
    message = str(caught.value)
    assert "belongs to portal 'https://portal.hubject.com', not 'https://portal-qa.hubject.com'" in message
    assert "hbsdeploy login --env qa" in message and "secret-cookie" not in message and "\n" not in message


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe", json.dumps({"cookies": []}).encode(),
                                     json.dumps({"format": "hbsdeploy-web-session/1", "portal": PORTAL}).encode()])
def test_an_unreadable_session_file_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = session_file(tmp_path, "qa")
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(PortalAuthError, match=r"is unreadable \(not a session hbsdeploy saved\); delete it"):
        read_session(path, PORTAL, "qa")


def test_a_session_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = session_file(tmp_path, "qa")
    write_session(path, PORTAL, {"cookies": []})
    path.chmod(0o644)
    with pytest.raises(PortalAuthError, match="readable by other users"):
        read_session(path, PORTAL, "qa")


# -- browsers -------------------------------------------------------------------------------------------------------


def test_no_sandbox_only_as_root() -> None:
    assert launch_args(as_root=True)[0] == "--no-sandbox"
    assert "--no-sandbox" not in launch_args(as_root=False)
    assert "--disable-background-networking" in launch_args(as_root=False)


def test_a_configured_browser_that_is_missing_says_how_to_install_one(tmp_path: Path) -> None:
    with pytest.raises(BrowserMissing) as caught:
        find_browser(tmp_path / "chromium")
    assert "is not an executable file" in str(caught.value)
    assert "apt-get install chromium" in str(caught.value) and "playwright install chromium" in str(caught.value)


def test_the_system_browser_then_playwrights_then_none(tmp_path: Path) -> None:
    system = tmp_path / "chromium"
    system.write_text("#!/bin/sh\n")
    system.chmod(0o755)
    assert find_browser(None, system=system) == system
    own = tmp_path / "own-chrome"
    own.write_text("")
    own.chmod(0o755)
    assert find_browser(None, own, system=tmp_path / "missing") is None  # Playwright launches its own
    with pytest.raises(BrowserMissing, match="no browser found"):
        find_browser(None, tmp_path / "missing-too", system=tmp_path / "missing")
    assert os.access(system, os.X_OK)


def test_the_ui_map_file_is_valid_yaml_with_a_version() -> None:
    assert yaml.safe_load(textwrap.dedent(UIMAP_FILE.read_text(encoding="utf-8")))["version"] == 1


def test_the_verification_code_is_computed_from_the_secret_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from hbsdeploy.load.config import Environment
    from hbsdeploy.portal.web.driver import Credentials

    env = Environment(name="qa", portal="web", url=PORTAL, username_env="HBSDEPLOY_U", password_env="HBSDEPLOY_P",
                      totp_env="HBSDEPLOY_TOTP")
    # RFC 6238, appendix B: the SHA-1 secret "12345678901234567890" at T=59 s gives 94287082 (6 digits: 287082).
    monkeypatch.setenv("HBSDEPLOY_TOTP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    monkeypatch.setattr("time.time", lambda: 59.0)
    code = Credentials(env).totp_code()
    assert code is not None and code() == "287082"
    monkeypatch.setenv("HBSDEPLOY_TOTP", "not-base32!-secret-value")
    with pytest.raises(PortalAuthError) as caught:
        code()
    assert str(caught.value).startswith("HBSDEPLOY_TOTP: the TOTP secret is not base32")
    assert "secret-value" not in str(caught.value)
    monkeypatch.delenv("HBSDEPLOY_U", raising=False)
    with pytest.raises(PortalAuthError, match="HBSDEPLOY_U is not set"):
        Credentials(env).user_and_password()
    assert Credentials(Environment(name="qa", portal="web", url=PORTAL)).totp_code() is None


def test_doctor_on_a_web_environment_checks_the_state_folder_and_needs_a_session_to_check_the_ui_map(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from hbsdeploy.cli.main import cli

    _config(tmp_path, WEB_ENV)
    (tmp_path / "partners").mkdir()
    monkeypatch.delenv("HBSDEPLOY_QA_USER", raising=False)
    monkeypatch.delenv("HBSDEPLOY_QA_PASSWORD", raising=False)
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "hbsdeploy.yaml"), "doctor", "--env", "qa"])
    assert result.exit_code == 1, result.output
    assert "ok   portal: web: state folder" in result.output
    # Neither a saved session nor credentials: no browser is started, the line says how to get a session.
    assert "FAIL ui log-in: no session for portal 'qa'; run `hbsdeploy login --env qa`, or set HBSDEPLOY_QA_USER " \
           "and HBSDEPLOY_QA_PASSWORD; the UI map was not checked\n" in result.output
