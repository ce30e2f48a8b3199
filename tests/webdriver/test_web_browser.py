"""The web driver in a real headless Chromium against the portal's UI replica (`portal serve --ui`) on 127.0.0.1.

Few tests, each a whole story, because every command starts a browser.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hbsdeploy.apply.audit import AuditLog, read_audit
from hbsdeploy.apply.run import Status, apply_plan
from hbsdeploy.check.project import load_project
from hbsdeploy.cli.main import cli
from hbsdeploy.load.config import Environment, load_config
from hbsdeploy.plan.build import make_plan
from hbsdeploy.portal import PayloadRejected, PortalAuthError, ServiceTypeState
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.web.driver import WebPortal
from tests.webdriver.helpers import PASSWORD, USER, start_replica, write_repo

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ACCOUNTS = {"DE*A36": "Example Charging GmbH", "DE*B12": "Second Charging GmbH"}
SERVICE_URL = "https://oicp-qa.example-charging.com"

CONFIG = """\
default_environment: sandbox
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
{extra}"""

PARTNER = """\
name: Example Charging GmbH
role: cpo
operator_id: "DE*A36"
environments:
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: {url}
    client_certification: true
  reservation:
    online_request: true
    service_url: {url}/reservation
    client_certification: true
"""


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[ServerHandle]:
    """The portal's UI replica: user `operator` administers two partner accounts; `second` has a TOTP factor."""
    handle = start_replica(tmp_path / "portal.sqlite3", ACCOUNTS)
    assert handle.ui is not None
    handle.ui.add_user("second", PASSWORD, ["DE*A36"], totp_secret=TOTP_SECRET)
    yield handle
    handle.stop()


@pytest.fixture
def repo(tmp_path: Path, replica: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose `qa` is the replica's web UI, with the credentials in HBSDEPLOY_* variables."""
    root = write_repo(tmp_path / "repo", CONFIG.format(url=replica.url, extra=""),
                      {"example.yaml": PARTNER.format(url=SERVICE_URL)})
    monkeypatch.chdir(root)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.setenv("HBSDEPLOY_WEB_USER", USER)
    monkeypatch.setenv("HBSDEPLOY_WEB_PASSWORD", PASSWORD)
    return root


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def stored(replica: ServerHandle, partner_id: str, service_type: str) -> ServiceTypeState:
    return replica.portal.get_service_type(partner_id, service_type)


def environment(repo: Path) -> Environment:
    return load_config(repo / "hbsdeploy.yaml").environment("qa")


def test_plan_apply_verify_reapply_drift_and_import(repo: Path, replica: ServerHandle) -> None:
    code, out = run("apply", "--env", "qa", "--auto-approve")  # plans (printed), then applies
    assert code == 0, out
    assert "+ DE*A36 (Example Charging GmbH) / authorization" in out
    assert "Apply: 2 applied, 0 failed, 0 not attempted." in out
    assert stored(replica, "DE*A36", "authorization").settings == {
        "online_request": True, "broadcast_request": False, "service_url": SERVICE_URL,
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}
    assert stored(replica, "DE*A36", "reservation").settings["service_url"] == SERVICE_URL + "/reservation"

    # Evidence: before and after screenshots of each write, named in the report and in the audit entry.
    entries = read_audit(repo / ".hbsdeploy" / "audit.jsonl")
    assert [e["result"] for e in entries] == ["applied", "applied"]
    for entry in entries:
        names = entry["evidence"]
        assert [name.rsplit("-", 1)[1] for name in names] == ["before.png", "after.png"]
        assert names[0].startswith("evidence/") and f"-DE-A36-{entry['service_type']}-" in names[0]
        for name in names:
            assert (repo / ".hbsdeploy" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert name.rsplit("/", 1)[1] in out
    session = repo / ".hbsdeploy" / "web-session-qa.json"
    assert session.stat().st_mode & 0o777 == 0o600
    assert PASSWORD not in out and PASSWORD not in session.read_text(encoding="utf-8")

    versions = {t: stored(replica, "DE*A36", t).version for t in ("authorization", "reservation")}
    code, out = run("apply", "--env", "qa", "--auto-approve")
    assert code == 0, out
    assert {t: stored(replica, "DE*A36", t).version for t in versions} == versions  # zero writes

    # Drift made in the portal is seen by plan.
    replica.portal.update_service_type("DE*A36", "authorization", {
        "online_request": True, "broadcast_request": True, "service_url": SERVICE_URL,
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None},
        versions["authorization"])
    code, out = run("plan", "--env", "qa", "--detailed-exitcode")
    assert code == 2, out
    assert "broadcast_request" in out

    # Import reads the other account from the web UI into a partner file that validates.
    replica.portal.update_service_type("DE*B12", "authorization", {
        "online_request": True, "broadcast_request": False, "service_url": "https://b12.example.com/oicp",
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}, '"0"')
    code, out = run("import", "--env", "qa", "--partner", "DE*B12", "--role", "cpo", "--out", "partners/b12.yaml")
    assert code == 0, out
    text = (repo / "partners" / "b12.yaml").read_text(encoding="utf-8")
    assert "https://b12.example.com/oicp" in text
    code, out = run("validate")
    assert code == 0, out


class ExpiringPortal:
    """A web portal whose replica session ends right after the first write (as an idle timeout would)."""

    listing_is_cheap = False

    def __init__(self, portal: WebPortal, replica: ServerHandle) -> None:
        self.portal = portal
        self.replica = replica
        self.writes = 0

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        return self.portal.list_service_types(partner_id)

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        return self.portal.list_all_service_types()

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        return self.portal.get_service_type(partner_id, service_type)

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        state = self.portal.update_service_type(partner_id, service_type, payload, if_match)
        self.writes += 1
        if self.writes == 1:
            assert self.replica.ui is not None
            self.replica.ui.expire_sessions()
        return state

    def cancel(self) -> None:
        self.portal.cancel()

    def close(self) -> None:
        self.portal.close()


def test_a_session_expiring_mid_apply_logs_in_again_or_stops_clearly(repo: Path, replica: ServerHandle,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(repo / "hbsdeploy.yaml")
    env = config.environment("qa")
    portal = WebPortal(env)
    try:
        plan = make_plan(load_project(config, env), env, portal, 2)
        assert len(plan.changes) == 2
        wrapped = ExpiringPortal(portal, replica)
        result = apply_plan(plan, wrapped, AuditLog(repo / "audit.jsonl"), parallelism=1)
        assert [r.status for r in result.results] == [Status.APPLIED, Status.APPLIED], result
        assert portal.sessions.logins == 2  # the first log-in, and one more after the expiry
    finally:
        portal.close()

    # Without credentials, an expired session stops with a one-line error and the form is left unsaved.
    monkeypatch.delenv("HBSDEPLOY_WEB_PASSWORD")
    before = stored(replica, "DE*A36", "authorization")
    assert replica.ui is not None
    replica.ui.expire_sessions()
    portal = WebPortal(env)
    try:
        with pytest.raises(PortalAuthError) as caught:
            portal.update_service_type("DE*A36", "authorization", {**before.settings, "broadcast_request": True},
                                       portal_version(before.settings))
    finally:
        portal.close()
    assert "has expired; run `hbsdeploy login --env qa`" in str(caught.value)
    assert stored(replica, "DE*A36", "authorization").version == before.version
    assert not (repo / ".hbsdeploy" / "web-session-qa.json").exists()  # the dead session is forgotten


def portal_version(settings: Mapping[str, Any]) -> str:
    from hbsdeploy.portal.web.forms import content_version

    return content_version(settings)


def apply_once(repo: Path) -> list[tuple[Status, str | None]]:
    """Plan and apply the repository's qa environment with one web portal (one browser)."""
    config = load_config(repo / "hbsdeploy.yaml")
    env = config.environment("qa")
    portal = WebPortal(env)
    try:
        plan = make_plan(load_project(config, env), env, portal, 2)
        result = apply_plan(plan, portal, AuditLog(repo / "audit.jsonl"), parallelism=2)
    finally:
        portal.close()
    return [(r.status, r.message) for r in result.results]


def test_a_label_the_portal_changed_stops_the_write_and_a_one_line_override_fixes_it(
        repo: Path, replica: ServerHandle) -> None:
    assert replica.ui is not None
    replica.ui.relabel("update", "Save")
    results = apply_once(repo)
    assert [status for status, _ in results] == [Status.FAILED, Status.FAILED]
    for _, message in results:
        assert message is not None
        assert 'the button "Update Service Type" (ui.buttons.update) is not on the Service Type Settings page' \
            in message
    assert stored(replica, "DE*A36", "authorization").version == '"0"'  # nothing written
    assert stored(replica, "DE*A36", "reservation").version == '"0"'

    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=replica.url, extra="    ui:\n      buttons:\n"
                                                                             "        update: Save\n"),
                                         encoding="utf-8")
    assert [status for status, _ in apply_once(repo)] == [Status.APPLIED, Status.APPLIED]
    assert stored(replica, "DE*A36", "authorization").settings["service_url"] == SERVICE_URL


def test_parallel_contexts_and_the_portals_refusal_in_its_words(repo: Path, replica: ServerHandle) -> None:
    env = environment(repo)
    portal = WebPortal(env)
    try:
        results: dict[str, Any] = {}

        def read(partner_id: str) -> None:
            results[partner_id] = portal.list_service_types(partner_id)

        threads = [threading.Thread(target=read, args=(p,)) for p in (*ACCOUNTS, *ACCOUNTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == sorted(ACCOUNTS)
        assert portal.browsers == 2  # bounded by parallelism (default 2), though 4 reads were asked at once
        # Every account the user holds, from the Partner Account list, each read as above.
        everything = portal.list_all_service_types()
        assert sorted(everything) == sorted(ACCOUNTS)
        assert everything["DE*B12"] == results["DE*B12"]

        current = results["DE*A36"]["authorization"]
        with pytest.raises(PayloadRejected) as caught:
            portal.update_service_type("DE*A36", "authorization", {
                "online_request": True, "broadcast_request": False, "service_url": "https://a.example.com/o icp",
                "client_certification": True, "certificate": "hubject", "certificate_sha256": None},
                current.version)
        assert "the portal refused the settings: The service type was not updated:" in str(caught.value)
        assert "Service URL" in str(caught.value)
        assert caught.value.evidence and Path(caught.value.evidence[0]).name.endswith("-before.png")
        assert stored(replica, "DE*A36", "authorization").version == '"0"'
        # Cancelled: the next read sees the read-only view, unchanged.
        assert portal.get_service_type("DE*A36", "authorization").settings == current.settings
    finally:
        portal.close()


def test_logging_in_wrong_credentials_totp_a_missing_browser_and_a_slow_page(repo: Path, replica: ServerHandle,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBSDEPLOY_WEB_PASSWORD", "wrong-password")
    code, out = run("plan", "--env", "qa")
    assert code == 1
    assert out.strip().splitlines()[-1].endswith("the portal refused the log-in: Invalid username or password.")
    assert "wrong-password" not in out

    # `login --headless` with a second factor: the code comes from the TOTP secret variable.
    monkeypatch.setenv("HBSDEPLOY_WEB_USER", "second")
    monkeypatch.setenv("HBSDEPLOY_WEB_PASSWORD", PASSWORD)
    monkeypatch.setenv("HBSDEPLOY_WEB_TOTP", TOTP_SECRET)
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=replica.url, extra="    totp_env: HBSDEPLOY_WEB_TOTP\n"),
                                         encoding="utf-8")
    code, out = run("login", "--env", "qa", "--headless")
    assert code == 0, out
    assert "session saved in .hbsdeploy/web-session-qa.json" in out
    saved = json.loads((repo / ".hbsdeploy" / "web-session-qa.json").read_text(encoding="utf-8"))
    assert saved["portal"] == replica.url + "/"

    # Later runs reuse the session without any credential.
    for variable in ("HBSDEPLOY_WEB_USER", "HBSDEPLOY_WEB_PASSWORD", "HBSDEPLOY_WEB_TOTP"):
        monkeypatch.delenv(variable)
    code, out = run("plan", "--env", "qa", "--detailed-exitcode")
    assert code == 2, out

    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=replica.url, extra="    browser: /nonexistent/chromium\n"),
                                         encoding="utf-8")
    code, out = run("plan", "--env", "qa")
    assert code == 1
    assert out.strip().splitlines() == [
        "error: browser /nonexistent/chromium is not an executable file; install one with `apt-get install "
        "chromium` or `playwright install chromium`, or set `browser:`"]

    # A page that never loads in time: a bounded wait, then a one-line error naming the step.
    (repo / "hbsdeploy.yaml").write_text(CONFIG.format(url=replica.url, extra="").replace("page: 15", "page: 3"),
                                         encoding="utf-8")
    assert replica.ui is not None
    replica.ui.slow_down("/administration/service-type-settings", 6)
    code, out = run("plan", "--env", "qa")
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert 'did not load the page after clicking the link "Service Type Settings"' in last
    assert "within 3 s" in last and "raise timeouts.page" in last


def test_a_read_takes_the_whole_form_at_once_and_a_missing_label_still_names_its_key(
        repo: Path, replica: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    from hbsdeploy.portal import PortalProtocolError
    from hbsdeploy.portal.web.pages import SettingsPage

    settings = {"online_request": True, "broadcast_request": True, "service_url": SERVICE_URL,
                "client_certification": True, "certificate": "hubject", "certificate_sha256": None}
    replica.portal.update_service_type("DE*A36", "authorization", settings, '"0"')
    one_by_one = SettingsPage._read_one_by_one

    def forbidden(page: SettingsPage, has_broadcast: bool) -> Any:
        raise AssertionError("the form was read field by field")

    monkeypatch.setattr(SettingsPage, "_read_one_by_one", forbidden)
    portal = WebPortal(environment(repo))
    try:
        assert portal.get_service_type("DE*A36", "authorization").settings == settings
        assert portal.get_service_type("DE*A36", "reservation").settings["online_request"] is False
        assert replica.ui is not None
        replica.ui.relabel("service_url", "Endpoint")
        monkeypatch.setattr(SettingsPage, "_read_one_by_one", one_by_one)
        with pytest.raises(PortalProtocolError, match=r'the textbox "Service URL" \(ui\.labels\.service_url\) is not'):
            portal.get_service_type("DE*A36", "authorization")
    finally:
        portal.close()
