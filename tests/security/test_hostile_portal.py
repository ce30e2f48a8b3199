"""A hostile portal (tests/security/hostile_portal.py) against the real HTTP client: no hang past the deadline, no
memory blow-up, no traceback, no token printed; each case is a finding of issue 14, replayed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hbsdeploy.load.config import Environment
from hbsdeploy.portal import PortalAuthError, PortalConfigError, PortalError, PortalProtocolError, PortalUnavailable
from hbsdeploy.portal.http import MAX_BODY_BYTES, HttpPortal
from tests.security.hostile_portal import HostilePortal

TOKEN = "hostile-t0ken-9f3a-never-printed"
PARTNER = "DE*A36"


def env_for(url: str, **overrides: Any) -> Environment:
    settings: dict[str, Any] = {"name": "qa", "portal": url, "token_env": "HBSDEPLOY_QA_TOKEN",
                                "connect_timeout": 2.0, "read_timeout": 5.0, "total_timeout": 30.0,
                                "max_retries": 1}
    settings.update(overrides)
    return Environment(**settings)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBSDEPLOY_QA_TOKEN", TOKEN)


def fast(portal: HttpPortal) -> HttpPortal:
    portal._sleep = lambda seconds: None
    return portal


@pytest.mark.parametrize(("value", "what"), [("secret-123\n", "a line break"), ("secret-\r123", "a line break"),
                                             ("secret-\u20ac", "a non-Latin-1 character"),
                                             ("secret\x1bx", "a control character"),
                                             (" secret", "a leading or trailing blank")])
def test_a_token_that_cannot_be_a_header_names_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch,
                                                                         value: str, what: str) -> None:
    monkeypatch.setenv("HBSDEPLOY_QA_TOKEN", value)
    with pytest.raises(PortalAuthError) as caught:
        HttpPortal(env_for("https://hbs.example.com"))
    message = str(caught.value)
    assert "HBSDEPLOY_QA_TOKEN" in message and what in message and "secret" not in message
    assert "\n" not in message


@pytest.mark.parametrize(("url", "protected", "says"), [
    ("http://hbs.example.com/qa", False, "not this machine"),
    ("http://127.0.0.1:9/qa", True, "protected"),
    ("https://a..example.com", False, "empty label"),
    ("https://" + "a" * 64 + ".example.com", False, "at most 63"),
    ("https://hbs.example.com:70000", False, "invalid port"),
])
def test_the_client_applies_the_one_host_rule_too(url: str, protected: bool, says: str) -> None:
    with pytest.raises(PortalConfigError, match=says):
        HttpPortal(env_for(url, protected=protected))


def test_http_to_loopback_is_allowed_for_an_unprotected_environment() -> None:
    HttpPortal(env_for("http://127.0.0.1:9")).close()
    HttpPortal(env_for("http://localhost:9")).close()


def test_a_trickling_portal_is_cut_off_at_the_total_deadline_and_not_retried() -> None:
    with HostilePortal("trickle", trickle_interval=0.05).running() as hostile:
        portal = fast(HttpPortal(env_for(hostile.url, total_timeout=0.5, read_timeout=5.0)))
        with pytest.raises(PortalUnavailable, match=r"in full within the 0.5 s deadline \(timeouts: total"):
            portal.list_service_types(PARTNER)
        assert hostile.requests == 1


def test_cancel_abandons_a_stalled_read_at_once() -> None:
    with HostilePortal("trickle", trickle_interval=0.5).running() as hostile:
        portal = HttpPortal(env_for(hostile.url, total_timeout=600.0, read_timeout=600.0))
        failures: list[BaseException] = []

        def read() -> None:
            try:
                portal.list_service_types(PARTNER)
            except PortalError as exc:
                failures.append(exc)

        worker = threading.Thread(target=read)
        worker.start()
        while hostile.requests == 0 and worker.is_alive():
            worker.join(0.01)
        portal.cancel()
        worker.join(30)
        assert not worker.is_alive(), "cancel() waited on the stalled socket"
        assert len(failures) == 1 and "interrupted while reading/writing" in str(failures[0])
        assert hostile.requests == 1


def test_a_gzip_bomb_is_refused_under_the_size_cap_and_not_retried() -> None:
    """The same oversized answer would come again: one attempt, not max_retries + 1 (issue 14)."""
    with HostilePortal("bomb", bomb_mib=MAX_BODY_BYTES // (1024 * 1024) * 4).running() as hostile:
        portal = fast(HttpPortal(env_for(hostile.url, max_retries=2)))
        with pytest.raises(PortalProtocolError, match="expands to more than 16 MiB; not retried"):
            portal.list_service_types(PARTNER)
        assert hostile.requests == 1


@pytest.mark.parametrize(("mode", "says"), [("reset-after-headers", "closed the connection"),
                                            ("bad-gzip", "gzip body does not decode")])
def test_a_broken_answer_to_a_get_is_retried_and_named_after_the_portal(mode: str, says: str) -> None:
    with HostilePortal(mode).running() as hostile:
        portal = fast(HttpPortal(env_for(hostile.url, max_retries=2)))
        with pytest.raises(PortalUnavailable) as caught:
            portal.list_service_types(PARTNER)
        assert hostile.requests == 3  # the first attempt and 2 retries
        message = str(caught.value)
        assert says in message and message.startswith("portal 'qa' (http://127.0.0.1:") and "path" not in message


def test_an_odd_retry_after_is_ignored_and_the_request_retried() -> None:
    with HostilePortal("retry-after-odd").running() as hostile:
        portal = fast(HttpPortal(env_for(hostile.url)))
        assert portal.list_service_types(PARTNER) == {}
        assert hostile.requests == 2


def test_a_portal_echoing_the_token_never_gets_it_relayed() -> None:
    with HostilePortal("echo-token").running() as hostile:
        portal = HttpPortal(env_for(hostile.url))
        with pytest.raises(PortalError) as caught:
            portal.list_service_types(PARTNER)
        assert hostile.authorization == [f"Bearer {TOKEN}"]  # the token did go to the portal, as it must
        assert TOKEN not in str(caught.value) and "<redacted>" in str(caught.value)


def test_a_lone_surrogate_in_portal_data_is_a_protocol_error() -> None:
    with HostilePortal("surrogate").running() as hostile:
        portal = HttpPortal(env_for(hostile.url))
        with pytest.raises(PortalProtocolError, match="not valid Unicode"):
            portal.list_service_types(PARTNER)


# -- the emulator against hostile clients --------------------------------------------------------------------------

GOOD = {"online_request": True, "broadcast_request": False, "service_url": "https://oicp.example.com",
        "client_certification": True, "certificate": "hubject", "certificate_sha256": None}
ONE = "/v1/partners/DE%2AA36/service-types/authorization"


def emulator_request(port: int, method: str, path: str, body: str | None = None,
                     headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def put(port: int, body: str, if_match: str = '"0"', path: str = ONE) -> tuple[int, dict[str, Any]]:
    return emulator_request(port, "PUT", path, body, {"If-Match": if_match, "Content-Type": "application/json"})


@pytest.fixture()
def emulator(tmp_path: Any) -> Any:
    from hbsdeploy.portal.emulator import serve as serve_emulator

    handle = serve_emulator(tmp_path / "emulator.sqlite3", partners=("DE*A36",), log_stream=None)
    yield handle
    handle.stop()


def emulator_port(handle: Any) -> int:
    return int(handle.port)


def test_the_emulator_answers_a_deeply_nested_body_400(emulator: Any) -> None:
    status, body = put(emulator_port(emulator), "[" * 30000 + "]" * 30000)
    assert (status, body["error"]) == (400, "bad_request") and "nested too deeply" in body["message"]


def test_the_emulator_refuses_a_lone_surrogate_service_url_and_stores_nothing(emulator: Any) -> None:
    import json

    port = emulator_port(emulator)
    status, body = put(port, json.dumps(dict(GOOD, service_url="https://oicp.example.com/\ud800")))
    assert status == 400 and "lone surrogate" in body["message"]
    status, body = emulator_request(port, "GET", ONE)
    assert status == 200 and body["version"] == '"0"'


def test_if_match_00_is_not_version_0(emulator: Any) -> None:
    import json

    status, _ = put(emulator_port(emulator), json.dumps(GOOD), if_match='"00"')
    assert status == 412


def test_a_rejected_put_does_not_register_the_partner(tmp_path: Any) -> None:
    import json

    from hbsdeploy.portal.emulator import serve as serve_emulator

    handle = serve_emulator(tmp_path / "auto.sqlite3", auto_register=True, log_stream=None)
    try:
        port = emulator_port(handle)
        path = "/v1/partners/DE%2AB99/service-types/authorization"
        assert put(port, json.dumps(dict(GOOD, service_url="http://oicp.example.com")), path=path)[0] == 422
        assert put(port, json.dumps(GOOD), if_match='"7"', path=path)[0] == 412
        assert handle.portal.store.has_partner("DE*B99") is False
        assert put(port, json.dumps(GOOD), path=path)[0] == 200  # an accepted write registers it
    finally:
        handle.stop()
