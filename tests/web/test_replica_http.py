"""The web UI replica over plain HTTP requests (TLS on 127.0.0.1): login, sessions, CSRF, saving, refusals."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from hbsdeploy.portal.totp import totp
from tests.web.helpers import FINGERPRINT, PASSWORD, Served, alert_of, csrf_of, status_of

Start = Callable[..., Served]
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _form(page: str, **overrides: str | None) -> dict[str, str]:
    """The settings form's fields as a browser would send them from `page`, with overrides (None drops one)."""
    fields: dict[str, str] = {"action": "update"}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[name] = html.unescape(value)
    for name in ("online_request", "broadcast_request", "client_certification"):
        if re.search(rf'id="{name}"[^>]*\bchecked\b', page):
            fields[name] = "on"
    url = re.search(r'id="service_url" name="service_url" value="([^"]*)"', page)
    if url and url.group(1):
        fields["service_url"] = html.unescape(url.group(1))
    fields["certificate"] = "user" if re.search(r'value="user" checked', page) else "hubject"
    for name, value in overrides.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def _edit(served: Served, session: requests.Session, account: str = "DE*A36",
          service_type: str = "authorization") -> str:
    answer = served.page(session, account=account, service_type=service_type, mode="edit")
    assert answer.status_code == 200
    return answer.text


def _post(served: Served, session: requests.Session, fields: dict[str, Any]) -> requests.Response:
    return session.post(f"{served.handle.url}/administration/service-type-settings", data=fields)


def test_login_then_administration_then_service_type_settings(replica: Start) -> None:
    served = replica()
    client = served.client()
    login = client.get(f"{served.handle.url}/administration/service-type-settings")
    assert login.url == f"{served.handle.url}/login" and alert_of(login.text) is None
    assert '<label for="username">Username</label>' in login.text
    assert '<label for="password">Password</label>' in login.text and 'type="password"' in login.text
    assert '<button type="submit">Log in</button>' in login.text
    session = served.login()
    home = session.get(f"{served.handle.url}/")
    assert '<a href="/administration">Administration</a>' in home.text and ">Log out</a>" in home.text
    admin = session.get(f"{served.handle.url}/administration")
    assert '<a href="/administration/service-type-settings">Service Type Settings</a>' in admin.text
    page = served.page(session).text
    assert "<h1>Service Type Settings</h1>" in page
    assert '<label for="account">Partner Account</label>' in page
    assert '<option value="DE*A36" selected>DE*A36 - Example Charging GmbH</option>' in page
    assert '<option value="DE*B12">DE*B12</option>' in page  # several accounts for one user
    assert '<option value="authorization" selected>Authorization</option>' in page
    assert '<option value="reservation">Reservation</option>' in page


def test_wrong_credentials_show_the_alert_and_the_form_again(replica: Start) -> None:
    served = replica()
    for username, password in (("operator", "wrong"), ("nobody", PASSWORD), ("", "")):
        client = served.client()
        answer = client.post(f"{served.handle.url}/login", data={"username": username, "password": password})
        assert answer.status_code == 200 and answer.url == f"{served.handle.url}/login"
        assert alert_of(answer.text) == "Invalid username or password."
        assert '<button type="submit">Log in</button>' in answer.text
        assert not client.cookies
        assert client.get(f"{served.handle.url}/administration").url == f"{served.handle.url}/login"


def test_session_cookie_is_random_httponly_and_secure_over_tls(replica: Start) -> None:
    served = replica()
    client = served.client()
    answer = client.post(f"{served.handle.url}/login", data={"username": "operator", "password": PASSWORD},
                         allow_redirects=False)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    other = served.client().post(f"{served.handle.url}/login", data={"username": "operator", "password": PASSWORD},
                                 allow_redirects=False).headers["Set-Cookie"]
    assert cookie.split(";")[0] != other.split(";")[0]
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 40


def test_second_factor_accepts_the_current_code_and_one_step_of_drift(replica: Start) -> None:
    served = replica()
    ui = served.handle.ui
    assert ui is not None
    now = 1_700_000_015.0
    ui.clock = lambda: now
    ui.add_user("second", PASSWORD, ["DE*A36"], totp_secret=TOTP_SECRET)
    for at, accepted in ((now, True), (now - 30, True), (now + 30, True), (now - 60, False), (now + 60, False)):
        client = served.client()
        first = client.post(f"{served.handle.url}/login", data={"username": "second", "password": PASSWORD})
        assert first.url == f"{served.handle.url}/login/verify"
        assert '<label for="code">Verification code</label>' in first.text
        assert client.get(f"{served.handle.url}/administration").url == f"{served.handle.url}/login/verify"
        answer = client.post(f"{served.handle.url}/login/verify",
                             data={"code": totp(TOTP_SECRET, at), "csrf_token": csrf_of(first.text)})
        if accepted:
            assert answer.url == f"{served.handle.url}/", at
            assert client.get(f"{served.handle.url}/administration").status_code == 200
        else:
            assert alert_of(answer.text) == "Invalid verification code.", at
            assert client.get(f"{served.handle.url}/administration").url == f"{served.handle.url}/login/verify"


def test_five_wrong_codes_end_the_half_done_login(replica: Start) -> None:
    served = replica()
    assert served.handle.ui is not None
    served.handle.ui.add_user("second", PASSWORD, ["DE*A36"], totp_secret=TOTP_SECRET)
    client = served.client()
    page = client.post(f"{served.handle.url}/login", data={"username": "second", "password": PASSWORD}).text
    token = csrf_of(page)
    for _ in range(5):
        answer = client.post(f"{served.handle.url}/login/verify", data={"code": "000000", "csrf_token": token})
    assert '<button type="submit">Log in</button>' in answer.text
    assert client.get(f"{served.handle.url}/login/verify").url == f"{served.handle.url}/login"


def test_expired_session_redirects_to_login_with_the_alert(replica: Start) -> None:
    served = replica()
    session = served.login()
    assert served.handle.ui is not None
    assert served.handle.ui.expire_sessions() == 1
    answer = served.page(session)
    assert answer.url == f"{served.handle.url}/login?expired=1"
    assert alert_of(answer.text) == "Your session has expired. Please log in again."
    assert not session.cookies.get("hbs_session")  # the dead cookie is cleared


def test_idle_time_expires_a_session_and_activity_keeps_it(replica: Start) -> None:
    served = replica(ui_session_minutes=10)
    ui = served.handle.ui
    assert ui is not None
    clock = [1_000_000.0]
    ui.clock = lambda: clock[0]
    session = served.login()
    clock[0] += 9 * 60
    assert served.page(session).status_code == 200 and served.page(session).url.endswith("settings")
    clock[0] += 9 * 60  # 18 minutes after login, 9 after the last page
    assert served.page(session).url.endswith("settings")
    clock[0] += 10 * 60 + 1
    assert served.page(session).url.endswith("/login?expired=1")


def test_post_with_an_expired_session_saves_nothing(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    before = served.settings()
    assert served.handle.ui is not None
    served.handle.ui.expire_sessions("operator")
    answer = _post(served, session, _form(page, online_request="on", service_url="https://new.example.com"))
    assert answer.url == f"{served.handle.url}/login?expired=1"
    assert served.settings() == before


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_post_without_the_sessions_csrf_token_is_refused(replica: Start, token: str | None) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    before = served.settings()
    answer = _post(served, session, _form(page, csrf_token=token, online_request="on",
                                          service_url="https://new.example.com"))
    assert answer.status_code == 403
    assert alert_of(answer.text) == "The form could not be verified. Reload the page and try again."
    assert served.settings() == before


def test_csrf_token_of_another_session_is_refused(replica: Start) -> None:
    served = replica()
    mine, theirs = served.login(), served.login()
    page = _edit(served, theirs)
    answer = _post(served, mine, _form(page, online_request="on", service_url="https://new.example.com"))
    assert answer.status_code == 403
    assert served.settings()["version"] == '"0"'


def test_read_only_view_then_edit_mode(replica: Start) -> None:
    served = replica()
    session = served.login()
    view = served.page(session).text
    assert '<button type="submit">Edit</button>' in view
    assert "Update Service Type" not in view and ">Cancel<" not in view
    for name in ("online_request", "broadcast_request", "service_url", "client_certification", "certificate_sha256"):
        assert re.search(rf'id="{name}"[^>]*\bdisabled\b', view), name
    assert re.search(r'<fieldset role="radiogroup" disabled><legend>Server certification</legend>', view)
    edit = _edit(served, session)
    assert '<button type="submit" name="action" value="update">Update Service Type</button>' in edit
    assert ">Cancel</button>" in edit and ">Edit</button>" not in edit
    assert not re.search(r'id="online_request"[^>]*\bdisabled\b', edit)
    # Online Request is off: Broadcast Request and Service URL stay disabled until it is ticked
    assert re.search(r'id="broadcast_request"[^>]*\bdisabled\b', edit)
    assert re.search(r'id="service_url"[^>]*\bdisabled\b', edit)
    for text, target in (("Online Request", "online_request"), ("Broadcast Request", "broadcast_request"),
                         ("Service URL", "service_url"), ("Client Certification", "client_certification"),
                         ("Hubject certificate", "certificate_hubject"), ("User certificate", "certificate_user"),
                         ("User Certificate", "certificate_sha256")):
        assert f'<label for="{target}">{text}</label>' in edit


def test_reservation_has_no_broadcast_request(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session, service_type="reservation")
    assert ">Broadcast Request<" not in page and 'id="broadcast_request"' not in page
    assert '<option value="reservation" selected>Reservation</option>' in page
    answer = _post(served, session, _form(page, online_request="on", service_url="https://r.example.com"))
    assert status_of(answer.text) == "Service type updated."
    assert served.settings(service_type="reservation")["settings"]["service_url"] == "https://r.example.com"


def test_ui_write_is_seen_by_the_api(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    answer = _post(served, session, _form(page, online_request="on", broadcast_request="on",
                                          service_url="https://oicp.example.com/base"))
    assert answer.url.startswith(f"{served.handle.url}/administration/service-type-settings?")
    assert status_of(answer.text) == "Service type updated."
    assert ">Edit</button>" in answer.text  # back to the read-only view
    assert 'value="https://oicp.example.com/base"' in answer.text
    api = served.client().get(f"{served.handle.url}/v1/partners/DE%2AA36/service-types/authorization").json()
    assert api["settings"]["online_request"] is True and api["settings"]["broadcast_request"] is True
    assert api["settings"]["service_url"] == "https://oicp.example.com/base"
    assert api["version"] == '"1"'
    assert status_of(served.page(session).text) is None  # the message is shown once


def test_api_write_is_seen_by_the_ui(replica: Start) -> None:
    served = replica()
    client = served.client()
    payload = {"online_request": True, "broadcast_request": False, "service_url": "https://api.example.com/x",
               "client_certification": True, "certificate": "user", "certificate_sha256": FINGERPRINT}
    written = client.put(f"{served.handle.url}/v1/partners/DE%2AA36/service-types/authorization", json=payload,
                         headers={"If-Match": '"0"'})
    assert written.status_code == 200
    page = served.page(served.login()).text
    assert re.search(r'id="online_request"[^>]*\bchecked\b', page)
    assert not re.search(r'id="broadcast_request"[^>]*\bchecked\b', page)
    assert 'value="https://api.example.com/x"' in page
    assert re.search(r'id="client_certification"[^>]*\bchecked\b', page)
    assert re.search(r'id="certificate_user" name="certificate" value="user" checked', page)
    assert f'<option value="{FINGERPRINT}" selected>{FINGERPRINT}</option>' in page


def test_a_service_url_with_a_blank_is_refused_and_nothing_is_saved(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    answer = _post(served, session, _form(page, online_request="on", service_url="https://oicp.example.com/a b"))
    assert answer.status_code == 422
    alert = alert_of(answer.text)
    assert alert is not None and alert.startswith("The service type was not updated:")
    assert "Service URL contains U+0020 (SPACE)" in alert
    assert 'value="https://oicp.example.com/a b"' in answer.text  # the user's values, still in edit mode
    assert ">Update Service Type</button>" in answer.text
    assert served.settings()["version"] == '"0"'
    assert served.settings()["settings"]["online_request"] is False


def test_cancel_discards_the_edit(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    answer = _post(served, session, _form(page, action="cancel", online_request="on",
                                          service_url="https://oicp.example.com"))
    assert answer.status_code == 200 and ">Edit</button>" in answer.text and status_of(answer.text) is None
    assert served.settings()["version"] == '"0"'


def test_an_account_the_user_may_not_administer_is_refused(replica: Start) -> None:
    served = replica()
    assert served.handle.ui is not None
    served.handle.ui.add_account("DE*ZZZ", "Somebody Else GmbH")
    session = served.login()
    page = served.page(session, account="DE*ZZZ")
    assert page.status_code == 403
    assert alert_of(page.text) == "You are not allowed to administer this partner account."
    assert "Somebody Else" not in served.page(session).text
    mine = _edit(served, session)
    answer = _post(served, session, _form(mine, account="DE*ZZZ", online_request="on",
                                          service_url="https://oicp.example.com"))
    assert answer.status_code == 403
    assert served.settings("DE*ZZZ")["version"] == '"0"'


def test_a_change_made_meanwhile_is_not_overwritten(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    payload = {"online_request": True, "broadcast_request": False, "service_url": "https://api.example.com",
               "client_certification": False, "certificate": "hubject", "certificate_sha256": None}
    served.handle.portal.update_service_type("DE*A36", "authorization", payload, '"0"')
    answer = _post(served, session, _form(page, online_request="on", service_url="https://ui.example.com"))
    assert answer.status_code == 409
    assert "changed in the meantime" in (alert_of(answer.text) or "")
    assert served.settings()["settings"]["service_url"] == "https://api.example.com"


def test_user_certificate_lists_the_accounts_fingerprints(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    assert f'<option value="{FINGERPRINT}">{FINGERPRINT}</option>' in page
    other = _edit(served, session, account="DE*B12")
    assert FINGERPRINT not in other
    stranger = "ab" * 32
    refused = _post(served, session, _form(page, certificate="user", certificate_sha256=stranger))
    assert refused.status_code == 422 and "Certificate Management" in (alert_of(refused.text) or "")
    assert served.settings()["version"] == '"0"'
    answer = _post(served, session, _form(page, certificate="user", certificate_sha256=FINGERPRINT))
    assert status_of(answer.text) == "Service type updated."
    assert served.settings()["settings"]["certificate_sha256"] == FINGERPRINT


def test_a_viewer_sees_no_edit_and_cannot_save(replica: Start) -> None:
    served = replica()
    assert served.handle.ui is not None
    served.handle.ui.add_user("viewer", PASSWORD, ["DE*A36"], role="viewer")
    admin_page = _edit(served, served.login())
    session = served.login("viewer")
    view = served.page(session).text
    assert ">Edit</button>" not in view
    edit = served.page(session, mode="edit")
    assert alert_of(edit.text) == "Editing needs the Partner Account Administrator role."
    token = csrf_of(view)
    answer = _post(served, session, _form(admin_page, csrf_token=token, online_request="on",
                                          service_url="https://oicp.example.com"))
    assert answer.status_code == 403
    assert served.settings()["version"] == '"0"'


def test_logout_ends_the_session(replica: Start) -> None:
    served = replica()
    session = served.login()
    cookie = session.cookies.get("hbs_session")
    assert session.get(f"{served.handle.url}/logout").url == f"{served.handle.url}/login"
    replay = served.client()
    replay.cookies.set("hbs_session", str(cookie))
    assert replay.get(f"{served.handle.url}/administration").url.endswith("/login?expired=1")


def test_access_log_holds_no_cookie_form_body_or_password(replica: Start) -> None:
    served = replica()
    session = served.login()
    page = _edit(served, session)
    _post(served, session, _form(page, online_request="on", service_url="https://secret-path.example.com"))
    served.client().post(f"{served.handle.url}/login?password=in-the-query",
                         data={"username": "operator", "password": PASSWORD})
    log = served.log.getvalue()
    assert '"POST /login" 303' in log and '"POST /administration/service-type-settings" 303' in log
    for secret in (PASSWORD, str(session.cookies.get("hbs_session")), csrf_of(page), "secret-path", "in-the-query"):
        assert secret not in log


def test_pages_honour_the_latency(replica: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    import time  # the emulator sleeps through the time module: its sleep is patched for every thread

    slept: list[float] = []
    real_sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(0)

    served = replica(latency_ms=250)
    session = served.login()
    monkeypatch.setattr(time, "sleep", recording_sleep)
    served.page(session)
    assert slept.count(0.25) == 1


def test_injected_faults_show_an_error_page(replica: Start) -> None:
    served = replica(fail_rate=1.0, seed=3)
    answers = []
    for _ in range(12):
        try:
            answers.append(served.client().get(f"{served.handle.url}/login"))
        except requests.ConnectionError:
            continue  # a dropped connection, the other kind of fault
    pages = [a for a in answers if a.status_code in (500, 503, 429)]
    assert pages, "seed 3 injects at least one error status in 12 requests"
    for answer in pages:
        assert answer.headers["Content-Type"].startswith("text/html")
        assert alert_of(answer.text) == "The portal is temporarily unavailable. Please try again later."


def test_a_relabelled_button_is_what_the_page_shows(replica: Start) -> None:
    served = replica()
    assert served.handle.ui is not None
    served.handle.ui.relabel("update", "Save")
    page = _edit(served, served.login())
    assert ">Save</button>" in page and "Update Service Type" not in page
    served.handle.ui.reset_labels()
    assert "Update Service Type" in _edit(served, served.login())


def test_every_value_is_html_escaped(replica: Start) -> None:
    served = replica()
    assert served.handle.ui is not None
    served.handle.ui.add_account("DE*A36", '<script>alert("x")</script> & Co')
    page = served.page(served.login(), service_type='"><b>').text
    assert alert_of(page) == "Page not found."
    page = served.page(served.login()).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page


def test_headers_forbid_framing_and_foreign_scripts(replica: Start) -> None:
    served = replica()
    answer = served.client().get(f"{served.handle.url}/login")
    assert answer.headers["X-Frame-Options"] == "DENY"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["Cache-Control"] == "no-store"


def test_api_keeps_its_bearer_token_and_pages_do_not_need_it(replica: Start) -> None:
    served = replica(token="api-token-value")
    client = served.client()
    assert client.get(f"{served.handle.url}/v1/partners/DE%2AA36/service-types").status_code == 401
    assert client.get(f"{served.handle.url}/login").status_code == 200
    assert client.get(f"{served.handle.url}/v1/partners/DE%2AA36/service-types",
                      headers={"Authorization": "Bearer api-token-value"}).status_code == 200


def test_one_page_can_be_made_slow(replica: Start) -> None:
    served = replica()
    ui = served.handle.ui
    assert ui is not None
    slept: list[float] = []
    ui.sleep = slept.append
    ui.slow_down("/administration/service-type-settings", 7.5)
    session = served.login()
    served.page(session)
    session.get(f"{served.handle.url}/administration")
    assert slept == [7.5]
    ui.slow_down("/administration/service-type-settings", 0)
    served.page(session)
    assert slept == [7.5]
