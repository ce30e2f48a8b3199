"""HttpPortal against `responses`: every status path, retries, Retry-After, timeouts, shapes, encoding, redaction."""

from __future__ import annotations

import email.utils
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from hbsdeploy import __version__
from hbsdeploy.load.settings import DEFAULT_SETTINGS
from hbsdeploy.portal import (
    PartnerNotFound,
    PayloadRejected,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalProtocolError,
    PortalRefused,
    PortalUnavailable,
    VersionConflict,
    open_portal,
)
from hbsdeploy.portal.http import HttpPortal
from tests.portal.helpers import BASE, TOKEN, TOKEN_ENV, Sleeps, make_env, payload

PARTNER = "DE*A36"
ITEM = f"{BASE}/v1/partners/DE%2AA36/service-types/authorization"
LIST = f"{BASE}/v1/partners/DE%2AA36/service-types"


def state_body(settings: dict[str, Any] | None = None, version: str = '"3"', partner: str = PARTNER,
               service_type: str = "authorization") -> dict[str, Any]:
    return {"partner_id": partner, "service_type": service_type, "settings": settings or payload(),
            "version": version}


def test_list_is_one_request_with_encoded_id_and_headers(rsps: responses.RequestsMock,
                                                         client: Callable[..., HttpPortal]) -> None:
    rsps.get(LIST, json={"partner_id": PARTNER, "service_types": {
        "authorization": {"settings": payload(service_url="HTTPS://OICP.Example.com:443/base/"), "version": '"2"'},
        "reservation": {"settings": dict(DEFAULT_SETTINGS), "version": '"0"'},
    }}, match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}", "User-Agent": f"hbsdeploy/{__version__}",
                                        "Accept": "application/json"})])
    portal = client()
    states = portal.list_service_types(PARTNER)
    assert portal.request_count == 1
    assert set(states) == {"authorization", "reservation"}
    assert states["authorization"].version == '"2"'
    assert states["authorization"].settings["service_url"] == "https://oicp.example.com/base"  # canonical form
    assert states["reservation"].settings == DEFAULT_SETTINGS


@pytest.mark.parametrize(("partner", "encoded"), [("DE*A36", "DE%2AA36"), ("+49*536", "%2B49%2A536"),
                                                  ("DE-8EO", "DE-8EO")])
def test_partner_id_is_percent_encoded(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                       partner: str, encoded: str) -> None:
    rsps.get(f"{BASE}/v1/partners/{encoded}/service-types/authorization", json=state_body(partner=partner))
    portal = client()
    state = portal.get_service_type(partner, "authorization")
    assert rsps.calls[0].request.url == f"{BASE}/v1/partners/{encoded}/service-types/authorization"
    assert state.partner_id == partner and state.version == '"3"'


def test_update_sends_payload_and_if_match(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    body = payload()
    rsps.put(ITEM, json=state_body(body, '"4"'), headers={"ETag": '"4"'},
             match=[matchers.json_params_matcher(body),
                    matchers.header_matcher({"If-Match": '"3"', "Content-Type": "application/json"})])
    portal = client()
    state = portal.update_service_type(PARTNER, "authorization", body, '"3"')
    assert state.version == '"4"' and dict(state.settings) == body
    assert portal.request_count == 1


@pytest.mark.parametrize(("status", "error", "words"), [
    (401, PortalAuthError, TOKEN_ENV),
    (403, PortalAuthError, "not allowed"),
    (404, PartnerNotFound, "does not know"),
    (400, PortalRefused, "malformed"),
    (418, PortalRefused, "unexpected"),
])
def test_error_statuses(rsps: responses.RequestsMock, client: Callable[..., HttpPortal], status: int,
                        error: type[Exception], words: str) -> None:
    rsps.get(ITEM, status=status, json={"error": "x", "message": "the portal says no"})
    portal = client()
    with pytest.raises(error) as caught:
        portal.get_service_type(PARTNER, "authorization")
    assert words in str(caught.value) and "portal 'test'" in str(caught.value)
    assert "the portal says no" in str(caught.value)
    assert portal.request_count == 1


def test_412_on_first_attempt_is_a_conflict_without_extra_requests(rsps: responses.RequestsMock,
                                                                    client: Callable[..., HttpPortal]) -> None:
    rsps.put(ITEM, status=412, json={"error": "precondition_failed", "message": "stale"})
    portal = client()
    with pytest.raises(VersionConflict, match="changed since the plan"):
        portal.update_service_type(PARTNER, "authorization", payload(), '"2"')
    assert portal.request_count == 1


def test_422_carries_details(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    details = [{"field": "service_url", "rule": "service-url-https", "message": "must be https"}]
    rsps.put(ITEM, status=422, json={"error": "validation", "message": "refused", "details": details})
    with pytest.raises(PayloadRejected) as caught:
        client().update_service_type(PARTNER, "authorization", payload(), '"1"')
    assert caught.value.details == details
    assert "service_url: must be https" in str(caught.value)


def test_428_is_a_protocol_error(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    rsps.put(ITEM, status=428, json={"error": "precondition_required", "message": "send If-Match"})
    with pytest.raises(PortalProtocolError, match="If-Match"):
        client().update_service_type(PARTNER, "authorization", payload(), '"1"')


def test_429_honours_retry_after(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                 sleeps: Sleeps) -> None:
    rsps.get(ITEM, status=429, headers={"Retry-After": "7"}, json={"error": "rate_limited", "message": "slow down"})
    rsps.get(ITEM, json=state_body())
    portal = client()
    assert portal.get_service_type(PARTNER, "authorization").version == '"3"'
    assert sleeps.calls == [7.0]
    assert portal.request_count == 2


def test_retry_after_as_http_date(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                  sleeps: Sleeps) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    rsps.get(ITEM, status=503, headers={"Retry-After": when})
    rsps.get(ITEM, json=state_body())
    client().get_service_type(PARTNER, "authorization")
    assert len(sleeps.calls) == 1 and 15 <= sleeps.calls[0] <= 21


def test_retry_after_beyond_the_cap_fails_at_once(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                                  sleeps: Sleeps) -> None:
    rsps.get(ITEM, status=429, headers={"Retry-After": "3600"})
    portal = client()
    with pytest.raises(PortalUnavailable, match="3600 s"):
        portal.get_service_type(PARTNER, "authorization")
    assert sleeps.calls == [] and portal.request_count == 1


def test_500_is_not_retried(rsps: responses.RequestsMock, client: Callable[..., HttpPortal], sleeps: Sleeps) -> None:
    rsps.put(ITEM, status=500, json={"error": "internal", "message": "boom"})
    portal = client()
    with pytest.raises(PortalUnavailable, match="500"):
        portal.update_service_type(PARTNER, "authorization", payload(), '"1"')
    assert portal.request_count == 1 and sleeps.calls == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_with_jittered_backoff(rsps: responses.RequestsMock,
                                                          client: Callable[..., HttpPortal], sleeps: Sleeps,
                                                          status: int) -> None:
    rsps.get(ITEM, status=status)
    rsps.get(ITEM, status=status)
    rsps.get(ITEM, json=state_body())
    portal = client()
    portal.get_service_type(PARTNER, "authorization")
    assert portal.request_count == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0  # full jitter under base * 2**n


def test_retries_are_bounded(rsps: responses.RequestsMock, client: Callable[..., HttpPortal], sleeps: Sleeps) -> None:
    for _ in range(4):
        rsps.get(ITEM, status=503)
    portal = client(max_retries=3)
    with pytest.raises(PortalUnavailable, match="503.*4 attempts"):
        portal.get_service_type(PARTNER, "authorization")
    assert portal.request_count == 4 and len(sleeps.calls) == 3


def test_timeouts_are_retried_then_reported(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                            sleeps: Sleeps) -> None:
    for _ in range(3):
        rsps.get(ITEM, body=requests.exceptions.ReadTimeout("read timed out"))
    portal = client(max_retries=2)
    with pytest.raises(PortalUnavailable, match="read timeout.*3 attempts"):
        portal.get_service_type(PARTNER, "authorization")
    assert portal.request_count == 3 and len(sleeps.calls) == 2


def test_connection_error_then_success(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    rsps.get(LIST, body=requests.exceptions.ConnectionError("Connection refused"))
    rsps.get(LIST, json={"partner_id": PARTNER, "service_types": {}})
    portal = client()
    assert portal.list_service_types(PARTNER) == {}
    assert portal.request_count == 2


def test_retried_put_that_meets_412_checks_whether_it_landed(rsps: responses.RequestsMock,
                                                             client: Callable[..., HttpPortal]) -> None:
    body = payload()
    rsps.put(ITEM, body=requests.exceptions.ReadTimeout("lost answer"))
    rsps.put(ITEM, status=412, json={"error": "precondition_failed", "message": "stale"})
    rsps.get(ITEM, json=state_body(body, '"4"'))
    portal = client()
    state = portal.update_service_type(PARTNER, "authorization", body, '"3"')
    assert state.version == '"4"' and dict(state.settings) == body
    assert portal.request_count == 3


def test_retried_put_that_meets_412_with_other_settings_is_a_conflict(rsps: responses.RequestsMock,
                                                                      client: Callable[..., HttpPortal]) -> None:
    rsps.put(ITEM, status=503)
    rsps.put(ITEM, status=412, json={"error": "precondition_failed", "message": "stale"})
    rsps.get(ITEM, json=state_body(payload(service_url="https://someone-else.example.com"), '"4"'))
    portal = client()
    with pytest.raises(VersionConflict):
        portal.update_service_type(PARTNER, "authorization", payload(), '"3"')
    assert portal.request_count == 3


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"", b"{\"partner_id\": "])
def test_invalid_json_is_a_protocol_error(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                          body: bytes) -> None:
    rsps.get(ITEM, body=body, content_type="text/html")
    with pytest.raises(PortalProtocolError, match="not JSON"):
        client().get_service_type(PARTNER, "authorization")


@pytest.mark.parametrize("body", [
    [],
    {"partner_id": PARTNER, "service_type": "authorization", "version": '"1"'},
    {"partner_id": "DE*XXX", "service_type": "authorization", "settings": payload(), "version": '"1"'},
    {"partner_id": PARTNER, "service_type": "reservation", "settings": payload(), "version": '"1"'},
    {"partner_id": PARTNER, "service_type": "authorization", "settings": payload(), "version": 3},
    {"partner_id": PARTNER, "service_type": "authorization", "settings": {**payload(), "extra": 1}, "version": '"1"'},
    {"partner_id": PARTNER, "service_type": "authorization", "settings": payload(online_request="yes"),
     "version": '"1"'},
])
def test_wrong_shape_is_a_protocol_error(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                                         body: Any) -> None:
    rsps.get(ITEM, json=body)
    with pytest.raises(PortalProtocolError, match="portal-api.openapi.yaml"):
        client().get_service_type(PARTNER, "authorization")


def test_wrong_list_shape_is_a_protocol_error(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    rsps.get(LIST, json={"partner_id": PARTNER, "service_types": [1, 2]})
    with pytest.raises(PortalProtocolError):
        client().list_service_types(PARTNER)


def test_redirects_are_not_followed(rsps: responses.RequestsMock, client: Callable[..., HttpPortal]) -> None:
    rsps.get(ITEM, status=302, headers={"Location": "https://login.example.com/sso"})
    with pytest.raises(PortalProtocolError, match="redirected to https://login.example.com/sso"):
        client().get_service_type(PARTNER, "authorization")


def test_logs_redact_the_token(rsps: responses.RequestsMock, client: Callable[..., HttpPortal],
                               caplog: pytest.LogCaptureFixture) -> None:
    rsps.get(ITEM, status=503, headers={"Set-Cookie": "session=abc123"})
    rsps.get(ITEM, status=401, json={"error": "unauthorized", "message": "bad token"})
    caplog.set_level(logging.DEBUG, logger="hbsdeploy.portal")
    portal = client()
    with pytest.raises(PortalAuthError) as caught:
        portal.get_service_type(PARTNER, "authorization")
    assert "GET https://gateway.example/hbs/v1/partners/DE%2AA36/service-types/authorization -> 401" in caplog.text
    assert "<redacted>" in caplog.text
    assert TOKEN not in caplog.text and "abc123" not in caplog.text
    assert TOKEN not in str(caught.value) and TOKEN not in repr(portal.session.auth)


def test_a_token_echoed_in_another_case_or_percent_encoded_is_redacted(
        rsps: responses.RequestsMock, client: Callable[..., HttpPortal], monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway may echo the Authorization header lower-cased, or the token inside a URL: every such form is
    redacted from what hbsdeploy relays."""
    token = "Abc/Def+Ghi=jk"
    monkeypatch.setenv(TOKEN_ENV, token)
    echoes = [token.lower(), token.upper(), "Abc%2FDef%2BGhi%3Djk", "abc%2fdef%2bghi%3djk", "bearer " + token]
    rsps.get(ITEM, status=400, json={"error": "bad_request", "message": " ".join(echoes)})
    portal = client()
    with pytest.raises(PortalError) as caught:
        portal.get_service_type(PARTNER, "authorization")
    text = str(caught.value)
    assert text.count("<redacted>") == len(echoes)
    assert not any(form.lower() in text.lower() for form in (token, *echoes))


def test_missing_token_variable_is_named_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(PortalAuthError, match=TOKEN_ENV):
        HttpPortal(make_env(BASE, token_env=TOKEN_ENV))


def test_no_token_env_sends_no_authorization(rsps: responses.RequestsMock) -> None:
    rsps.get(ITEM, json=state_body())
    HttpPortal(make_env(BASE)).get_service_type(PARTNER, "authorization")
    assert "Authorization" not in rsps.calls[0].request.headers


def test_verification_cannot_be_turned_off_for_protected_environments() -> None:
    with pytest.raises(PortalConfigError, match="protected"):
        HttpPortal(make_env(BASE, verify_tls=False, protected=True))
    assert HttpPortal(make_env(BASE, verify_tls=False))._verify is False


def test_missing_certificate_file_is_named(tmp_path: Any) -> None:
    with pytest.raises(PortalConfigError, match="client_cert .*nope.pem does not exist"):
        HttpPortal(make_env(BASE, client_cert=tmp_path / "nope.pem"))


def test_user_name_and_password_in_the_url_are_never_shown() -> None:
    """The client applies the config's URL rule itself (hbsdeploy.hosts), and names the URL without its password."""
    url = "https://alice:hunter2@gateway.example/hbs"
    with pytest.raises(PortalConfigError, match="user name or password") as caught:
        HttpPortal(make_env(url))
    assert "hunter2" not in str(caught.value) and "***@gateway.example" in str(caught.value)


def test_open_portal_picks_the_implementation(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hbsdeploy.portal.local import LocalPortal
    from hbsdeploy.portal.recorded import RecordedPortal

    assert isinstance(open_portal(make_env(BASE)), HttpPortal)
    assert isinstance(open_portal(make_env("local", state_file=tmp_path / "s.sqlite3")), LocalPortal)
    assert isinstance(open_portal(make_env("manual", state_file=tmp_path / "state" / "m.yaml")), RecordedPortal)
    with pytest.raises(PortalConfigError, match=r"m.sqlite3 is not a YAML file; .*state migrate"):
        open_portal(make_env("manual", state_file=tmp_path / "m.sqlite3"))


def test_open_portal_refuses_a_local_environment_without_a_state_file() -> None:
    with pytest.raises(PortalConfigError, match=r"portal 'test' \(local\): no state file configured; set `state:`"):
        open_portal(make_env("local"))


def test_open_portal_dispatches_through_the_driver_table(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new kind of portal is one entry in DRIVERS: a class with from_environment."""
    import hbsdeploy.portal as portal_package

    opened: list[tuple[str, int]] = []

    class Recorder:
        @classmethod
        def from_environment(cls, env: Any, *, parallelism: int) -> Any:
            opened.append((env.name, parallelism))
            return cls()

    monkeypatch.setattr(sys.modules[__name__], "Recorder", Recorder, raising=False)
    monkeypatch.setitem(portal_package.DRIVERS, "http", f"{__name__}:Recorder")
    assert isinstance(open_portal(make_env(BASE), parallelism=3), Recorder)
    assert opened == [("test", 3)]
    monkeypatch.delitem(portal_package.DRIVERS, "http")
    with pytest.raises(PortalConfigError, match="no portal driver for 'http' environments; known: local, manual"):
        open_portal(make_env(BASE))


def test_every_driver_implements_the_whole_portal_interface() -> None:
    from hbsdeploy.portal import DRIVERS, Portal, driver

    members = [name for name in vars(Portal) if not name.startswith("_")]
    assert {"list_service_types", "get_service_type", "update_service_type", "cancel", "close"} <= set(members)
    for kind in DRIVERS:
        implementation = driver(kind)
        assert callable(implementation.from_environment), kind
        assert all(callable(getattr(implementation, name, None)) for name in members), kind


def test_the_portals_own_words_are_shown_escaped(rsps: responses.RequestsMock,
                                                client: Callable[..., HttpPortal]) -> None:
    details = [{"field": "service_url\x1b[2J", "rule": "r", "message": "bad\u202e\nurl"}]
    rsps.put(ITEM, status=422, json={"error": "validation", "message": "no\x1b[31m", "details": details})
    with pytest.raises(PayloadRejected) as caught:
        client().update_service_type(PARTNER, "authorization", payload(), '"1"')
    assert caught.value.details == [{"field": "service_url\\x1b[2J", "rule": "r", "message": "bad\\u202e url"}]
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)
    rsps.get(ITEM, status=400, json={"error": "bad_request", "message": "no\x1b[31m"})
    with pytest.raises(PortalRefused, match=r"\(400: no\\x1b\[31m\)"):
        client().get_service_type(PARTNER, "authorization")
