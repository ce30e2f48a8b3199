"""End to end: HttpPortal against the emulator on 127.0.0.1 over real sockets, with TLS made by trustme."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from hbsdeploy.portal import (
    PartnerNotFound,
    PayloadRejected,
    PortalAuthError,
    PortalError,
    PortalUnavailable,
    VersionConflict,
)
from hbsdeploy.portal.emulator import EmulatorError, ServerHandle
from hbsdeploy.portal.http import HttpPortal
from tests.fixtures.tls import TlsFiles
from tests.portal.helpers import TOKEN, TOKEN_ENV, make_env, payload

PARTNER = "DE*A36"
Start = Callable[..., ServerHandle]


def no_sleep(seconds: float) -> None:
    pass


def tls_server(emulator: Start, tls: TlsFiles, **options: Any) -> ServerHandle:
    return emulator(tls_cert=tls.server_cert, tls_key=tls.server_key, client_ca=tls.ca, partners=[PARTNER],
                    **options)


def mtls_client(handle: ServerHandle, tls: TlsFiles, **overrides: Any) -> HttpPortal:
    options: dict[str, Any] = {"client_cert": tls.client_cert, "client_key": tls.client_key, "ca_bundle": tls.ca}
    options.update(overrides)
    return HttpPortal(make_env(handle.url, **options), sleep=no_sleep, rng=random.Random(0))


def test_mutual_tls_read_and_write(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    assert handle.url.startswith("https://127.0.0.1:")
    portal = mtls_client(handle, tls)
    states = portal.list_service_types(PARTNER)
    assert {s.version for s in states.values()} == {'"0"'}
    written = portal.update_service_type(PARTNER, "authorization", payload(service_url="https://OICP.example.com/"),
                                         states["authorization"].version)
    assert written.version == '"1"' and written.settings["service_url"] == "https://oicp.example.com"
    assert portal.get_service_type(PARTNER, "authorization") == written
    assert portal.request_count == 3
    portal.close()


def test_client_without_certificate_is_refused(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    portal = mtls_client(handle, tls, client_cert=None, client_key=None, max_retries=0)
    with pytest.raises((PortalAuthError, PortalUnavailable)) as caught:
        portal.get_service_type(PARTNER, "authorization")
    assert "client certificate" in str(caught.value) or "closed the connection" in str(caught.value)


def test_client_with_a_certificate_from_another_ca_is_refused(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    portal = mtls_client(handle, tls, client_cert=tls.other_client_cert,
                         client_key=tls.other_client_key, max_retries=0)
    with pytest.raises((PortalAuthError, PortalUnavailable)):
        portal.get_service_type(PARTNER, "authorization")


def test_server_signed_by_an_unknown_ca_is_refused(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    portal = mtls_client(handle, tls, ca_bundle=tls.other_ca)
    with pytest.raises(PortalUnavailable, match="verification failed.*unknown CA"):
        portal.get_service_type(PARTNER, "authorization")
    assert portal.request_count == 1  # a TLS failure is not retried


def test_expired_server_certificate_is_refused(emulator: Start, tls: TlsFiles) -> None:
    handle = emulator(tls_cert=tls.expired_cert, tls_key=tls.expired_key, partners=[PARTNER])
    portal = mtls_client(handle, tls)
    with pytest.raises(PortalUnavailable, match="verification failed.*has expired"):
        portal.get_service_type(PARTNER, "authorization")


def test_server_certificate_for_another_host_is_refused(emulator: Start, tls: TlsFiles) -> None:
    handle = emulator(tls_cert=tls.wrong_host_cert, tls_key=tls.wrong_host_key, partners=[PARTNER])
    portal = mtls_client(handle, tls)
    with pytest.raises(PortalUnavailable, match="verification failed.*not for this host"):
        portal.get_service_type(PARTNER, "authorization")


def test_stale_if_match_is_a_version_conflict(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    portal = mtls_client(handle, tls)
    first = portal.get_service_type(PARTNER, "authorization")
    portal.update_service_type(PARTNER, "authorization", payload(), first.version)
    with pytest.raises(VersionConflict, match="changed since the plan"):
        portal.update_service_type(PARTNER, "authorization", payload(service_url="https://b.example.com"),
                                   first.version)
    assert portal.get_service_type(PARTNER, "authorization").settings["service_url"] == "https://oicp.example.com/base"


def test_concurrent_writers_lose_nothing(emulator: Start, tls: TlsFiles) -> None:
    handle = tls_server(emulator, tls)
    successes: list[str] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        portal = mtls_client(handle, tls)
        for round_ in range(4):
            current = portal.get_service_type(PARTNER, "authorization")
            url = f"https://w{index}-{round_}.example.com"
            try:
                portal.update_service_type(PARTNER, "authorization", payload(service_url=url), current.version)
            except VersionConflict:
                continue
            with lock:
                successes.append(url)
        portal.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = mtls_client(handle, tls).get_service_type(PARTNER, "authorization")
    assert final.version == f'"{len(successes)}"'
    assert final.settings["service_url"] == successes[-1]


def test_bearer_token_is_required_and_never_logged(emulator: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    handle = emulator(token=TOKEN, partners=[PARTNER], log_stream=log)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    good = HttpPortal(make_env(handle.url, token_env=TOKEN_ENV))
    assert good.get_service_type(PARTNER, "authorization").version == '"0"'
    monkeypatch.setenv(TOKEN_ENV, "wrong")
    with pytest.raises(PortalAuthError, match=f"401.*{TOKEN_ENV}"):
        HttpPortal(make_env(handle.url, token_env=TOKEN_ENV)).get_service_type(PARTNER, "authorization")
    with pytest.raises(PortalAuthError, match="401"):
        HttpPortal(make_env(handle.url)).get_service_type(PARTNER, "authorization")
    deadline = time.monotonic() + 2  # the server logs after it answered
    while len(log.getvalue().splitlines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = log.getvalue().splitlines()
    assert all(line.endswith("ms") for line in lines)
    assert sorted(line.split()[-2] for line in lines) == ["200", "401", "401"]  # logged after answering: any order
    assert TOKEN not in log.getvalue() and "wrong" not in log.getvalue()


def test_rules_are_enforced_server_side(emulator: Start) -> None:
    handle = emulator(partners=[PARTNER])
    portal = HttpPortal(make_env(handle.url))
    with pytest.raises(PayloadRejected) as caught:
        portal.update_service_type(PARTNER, "authorization", payload(online_request=False, broadcast_request=True),
                                   '"0"')
    assert {d["rule"] for d in caught.value.details} == {"broadcast-needs-online-request"}
    with pytest.raises(PayloadRejected, match="loopback"):
        portal.update_service_type(PARTNER, "authorization", payload(service_url="https://127.0.0.1:9"), '"0"')
    private = emulator(partners=[PARTNER], allow_private_urls=True)
    HttpPortal(make_env(private.url)).update_service_type(PARTNER, "authorization",
                                                          payload(service_url="https://127.0.0.1:9"), '"0"')
    # a Service URL sent with Online Request off is taken, and not held (issue 13, finding 7)
    version = portal.get_service_type(PARTNER, "authorization").version
    kept = portal.update_service_type(PARTNER, "authorization", payload(online_request=False), version)
    assert kept.settings["service_url"] is None


def test_partners_unknown_unless_registered_or_auto_registered(emulator: Start) -> None:
    strict = HttpPortal(make_env(emulator(partners=["+49*536"]).url))
    with pytest.raises(PartnerNotFound):
        strict.list_service_types(PARTNER)
    assert strict.get_service_type("+49*536", "reservation").version == '"0"'
    with pytest.raises(PartnerNotFound, match="unknown service type"):
        strict.get_service_type("+49*536", "pull-authentication-data")
    auto = HttpPortal(make_env(emulator(auto_register=True).url))
    assert set(auto.list_service_types("DE-8EO")) == {"authorization", "reservation"}


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), [
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": '"0"'}, b"{not json", 400,
     "bad_request"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": '"0"'}, b"\xff\xfe", 400,
     "bad_request"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": '"0"'}, b'["a"]', 422, "validation"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": '"0"'}, b'{"online_request": 1}',
     422, "validation"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {}, json.dumps(payload()).encode(), 428,
     "precondition_required"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": "*"}, json.dumps(payload()).encode(),
     412, "precondition_failed"),
    ("PUT", "/v1/partners/DE%2AA36/service-types", {"If-Match": '"0"'}, b"{}", 405, "method_not_allowed"),
    ("DELETE", "/v1/partners/DE%2AA36/service-types/authorization", {}, b"", 405, "method_not_allowed"),
    ("POST", "/v1/partners/DE%2AA36/service-types/authorization", {}, b"{}", 405, "method_not_allowed"),
    ("GET", "/v1/partners/", {}, b"", 404, "not_found"),
    ("GET", "/v1/partners/DE%2AA36/service-types/authorization/extra", {}, b"", 404, "not_found"),
    ("GET", "/v1/partners/DE%2AA36/service-types/", {}, b"", 404, "not_found"),
    ("GET", "/v1/partners/%00%2F..%2F/service-types", {}, b"", 404, "not_found"),
    ("GET", "/v1/partners/" + "A" * 5000 + "/service-types", {}, b"", 404, "not_found"),
    ("GET", "/v1/partners/DE%2AA36/service-types/%E2%80%AEauth", {}, b"", 404, "not_found"),
    ("PUT", "/v1/partners/DE%2AA36/service-types/authorization", {"If-Match": '"0"'}, b"x" * 70_000, 413,
     "payload_too_large"),
])
def test_malformed_requests_get_json_4xx(emulator: Start, method: str, path: str, headers: dict[str, str],
                                         body: bytes, status: int, code: str) -> None:
    handle = emulator(partners=[PARTNER])
    response = requests.request(method, handle.url + path, headers=headers, data=body, timeout=5)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == code and response.json()["message"]
    assert handle.stats.statuses.get(500) is None


def test_garbage_on_the_socket_gets_a_json_400(emulator: Start) -> None:
    handle = emulator(partners=[PARTNER])
    with socket.create_connection(("127.0.0.1", handle.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):  # the server closes after a malformed request
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    assert b'"error": "bad_request"' in answer


def test_latency_beyond_the_read_timeout(emulator: Start) -> None:
    handle = emulator(partners=[PARTNER], latency_ms=400)
    portal = HttpPortal(make_env(handle.url, read_timeout=0.1, max_retries=1), sleep=no_sleep)
    with pytest.raises(PortalUnavailable, match="read timeout.*2 attempts"):
        portal.get_service_type(PARTNER, "authorization")


def test_injected_faults_never_lose_or_invent_a_change(emulator: Start) -> None:
    handle = emulator(partners=[PARTNER], fail_rate=0.4, seed=7)
    portal = HttpPortal(make_env(handle.url, max_retries=8), sleep=no_sleep, rng=random.Random(0))
    reported: list[str] = []
    failed = 0
    for round_ in range(25):
        url = f"https://r{round_}.example.com"
        try:
            current = portal.get_service_type(PARTNER, "authorization")
            portal.update_service_type(PARTNER, "authorization", payload(service_url=url), current.version)
        except PortalError:
            failed += 1
            continue
        reported.append(url)
        # what the client reported as applied is what the portal holds
        assert handle.portal.get_service_type(PARTNER, "authorization").settings["service_url"] == url
    assert sum(handle.stats.faults.values()) > 0
    assert len(reported) >= 15
    assert portal.retry_count > 0


def test_emulator_refuses_bad_options(tmp_path: Path, tls: TlsFiles) -> None:
    from hbsdeploy.portal.emulator import serve

    with pytest.raises(EmulatorError, match="loopback"):
        serve(tmp_path / "s", host="0.0.0.0")
    with pytest.raises(EmulatorError, match="fail-rate"):
        serve(tmp_path / "s", fail_rate=2)
    with pytest.raises(EmulatorError, match="need --tls-cert"):
        serve(tmp_path / "s", client_ca=tls.ca)
    with pytest.raises(EmulatorError, match="cannot load --tls-cert"):
        serve(tmp_path / "s", tls_cert=tls.ca, tls_key=tls.client_key)
    with pytest.raises(EmulatorError, match="not an OICP"):
        serve(tmp_path / "s", partners=["DE|A36"])


def test_the_emulator_takes_its_partner_id_patterns_from_the_partner_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    from hbsdeploy.load import partner, resources
    from hbsdeploy.portal.emulator import is_partner_id

    assert is_partner_id("DE*A36") and is_partner_id("+49*536") and is_partner_id("DE-8EO")
    assert not is_partner_id("DE*A36\n") and not is_partner_id("DE*A3")
    schema = json.loads(json.dumps(resources.load_schema("partner")))
    schema["properties"]["operator_id"]["pattern"] = "^XX[0-9]$"
    monkeypatch.setattr(partner, "load_schema", lambda name: schema)
    partner._id_patterns.cache_clear()
    try:
        assert is_partner_id("XX1") and not is_partner_id("+49*536") and is_partner_id("DE-8EO")
    finally:
        monkeypatch.undo()
        partner._id_patterns.cache_clear()
    assert is_partner_id("+49*536")
