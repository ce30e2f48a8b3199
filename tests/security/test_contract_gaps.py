"""The parts of the emulator's contract tests/portal/test_portal_contract.py does not fuzz: other methods, the list
path, paths outside the API (traversal, encoded slashes, very long), odd headers. No request gets a 5xx when no fault
is injected, every error is a JSON body with an `error` field, and a wrong token is never echoed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hbsdeploy.portal.emulator import ServerHandle, serve

TOKEN = "contract-gap-t0ken"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = serve(Path(tmp_path_factory.mktemp("contract")) / "emulator.sqlite3", token=TOKEN,
                   partners=["DE*A36"], log_stream=None)
    yield handle
    handle.stop()


_paths = st.one_of(
    st.sampled_from(["/v1/partners/DE%2AA36/service-types", "/v1/partners/DE%2AA36/service-types/authorization",
                     "/v1/partners/DE%2AA36/service-types/../../../etc/passwd", "/v1/partners/%2e%2e%2f/service-types",
                     "/v1/partners/DE%2AA36/service-types/authorization%2f..", "/v1/partners//service-types",
                     "/v1/partners/DE*A36/service-types/authorization?x=%00", "/", "/v1", "/v2/partners",
                     "/v1/partners/DE%2AA36/service-types/authorization/extra", "/" + "a" * 9000]),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n #?"), max_size=40).map(lambda t: "/" + t),
)
_methods = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"])
_header_names = st.sampled_from(["If-Match", "Content-Type", "Content-Length-X", "Accept", "X-Forwarded-For"])
_headers = st.dictionaries(_header_names,
                           st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n\x00"),
                                   max_size=30), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=_methods, path=_paths, headers=_headers, token=st.sampled_from([TOKEN, "wrong-t0ken-echo", None]),
       body=st.binary(max_size=80))
def test_no_request_to_any_path_with_any_method_gets_a_5xx(server: ServerHandle, method: str, path: str,
                                                          headers: dict[str, str], token: str | None,
                                                          body: bytes) -> None:
    if token is not None:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    try:
        response = requests.request(method, server.url + path, headers=headers, data=body or None, timeout=10,
                                    allow_redirects=False)
    except requests.exceptions.InvalidHeader:
        return  # requests refuses to send it: nothing reached the emulator
    assert response.status_code < 500, (method, path, response.status_code, response.text[:200])
    if method != "HEAD" and response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/json"
        assert isinstance(response.json().get("error"), str)
    assert "wrong-t0ken-echo" not in response.text and TOKEN not in response.text
