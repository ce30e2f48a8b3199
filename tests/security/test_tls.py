"""TLS promises the portal tests (tests/portal/) do not prove already; docs/security.md maps the others to them.

Verification is on by default: a config that names no ca_bundle trusts only the system's CAs and refuses the
emulator's trustme certificate, through the client and through doctor. verify_tls: false is refused for a protected
environment already in hbsdeploy.yaml. The client negotiates TLS 1.2 at least, as the emulator and the probe do.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from hbsdeploy.errors import InputError
from hbsdeploy.load.config import load_config
from hbsdeploy.portal import PortalUnavailable
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.http import HttpPortal
from hbsdeploy.tools.doctor import CheckStatus, DoctorOptions, run_checks
from tests.fixtures.emulator import Start
from tests.fixtures.tls import TlsFiles

TOKEN_ENV = "HBSDEPLOY_TLS_TEST_TOKEN"
_TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture
def server(tls_emulator: Start) -> ServerHandle:
    """An emulator over mutual TLS with the session's certificates, signed by a CA no system trusts."""
    return tls_emulator(partners=["DE*A36"])


@pytest.fixture(autouse=True)
def _system_trust_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable may point requests or OpenSSL at another trust store: only the config decides."""
    for name in _TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_config(folder: Path, url: str, tls: TlsFiles, extra: str = "") -> Path:
    path = folder / "hbsdeploy.yaml"
    path.write_text(f"""\
environments:
  sandbox:
    portal: local
  qa:
    portal: {url}
    client_cert: {tls.client_cert}
    client_key: {tls.client_key}
    max_retries: 0
{extra}""", encoding="utf-8")
    return path


def test_verification_is_on_when_the_config_names_no_ca_bundle(server: ServerHandle, tls: TlsFiles,
                                                               tmp_path: Path) -> None:
    env = load_config(write_config(tmp_path, server.url, tls)).environment("qa")
    assert env.verify_tls is True and env.ca_bundle is None
    portal = HttpPortal(env)
    with pytest.raises(PortalUnavailable, match="verification failed.*unknown CA.*set ca_bundle"):
        portal.list_service_types("DE*A36")
    portal.close()
    assert portal.request_count == 1  # refused at the handshake: not retried, nothing sent
    assert server.stats.requests == 0


def test_the_same_config_with_the_ca_bundle_connects(server: ServerHandle, tls: TlsFiles, tmp_path: Path) -> None:
    path = write_config(tmp_path, server.url, tls, f"    ca_bundle: {tls.ca}\n")
    portal = HttpPortal(load_config(path).environment("qa"))
    assert set(portal.list_service_types("DE*A36")) >= {"authorization"}
    portal.close()


def test_doctor_without_a_ca_bundle_fails_the_portal_check_on_tls(server: ServerHandle, tls: TlsFiles,
                                                                  tmp_path: Path) -> None:
    path = write_config(tmp_path, server.url, tls)
    (tmp_path / "partners").mkdir()
    checks = {c.name: c for c in run_checks(str(path), DoctorOptions(environment="qa"))}
    assert checks["portal"].status is CheckStatus.FAIL
    assert "TLS failed" in checks["portal"].detail and "ca_bundle" in checks["portal"].detail


def test_verify_tls_false_is_refused_for_a_protected_environment_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "hbsdeploy.yaml"
    path.write_text("environments:\n  prod:\n    portal: https://gateway.example.com\n    protected: true\n"
                    "    verify_tls: false\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert [p.rule for p in caught.value.problems] == ["protected-tls"]


def test_the_client_negotiates_tls_1_2_at_least() -> None:
    """requests builds its context with urllib3, whose floor is TLS 1.2 (HBS: TLS 1.2 or 1.3)."""
    from urllib3.util.ssl_ import create_urllib3_context

    context = create_urllib3_context()
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
