"""TLS promises the portal tests (tests/portal/) do not prove already; docs/security.md maps the others to them.

Verification is on by default: a config that names no ca_bundle trusts only the system's CAs and refuses the
emulator's trustme certificate, through the client and through doctor. verify_tls: false is refused for a protected
environment already in hbsdeploy.yaml. The client negotiates TLS 1.2 at least, as the emulator and the probe do.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from hbsdeploy.errors import InputError
from hbsdeploy.load.config import load_config
from hbsdeploy.portal import PortalUnavailable
from hbsdeploy.portal.emulator import ServerHandle, serve
from hbsdeploy.portal.http import HttpPortal
from hbsdeploy.tools.doctor import CheckStatus, DoctorOptions, run_checks

TOKEN_ENV = "HBSDEPLOY_TLS_TEST_TOKEN"
_TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls-default")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    for name, leaf in (("server", ca.issue_cert("127.0.0.1")), ("client", ca.issue_cert("client.example.com"))):
        leaf.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    return folder


@pytest.fixture
def emulator(tls: Path, tmp_path: Path) -> Iterator[ServerHandle]:
    handle = serve(tmp_path / "emulator.sqlite3", tls_cert=tls / "server.pem", tls_key=tls / "server.key",
                   client_ca=tls / "ca.pem", partners=["DE*A36"], log_stream=None)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _system_trust_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable may point requests or OpenSSL at another trust store: only the config decides."""
    for name in _TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_config(folder: Path, url: str, tls: Path, extra: str = "") -> Path:
    path = folder / "hbsdeploy.yaml"
    path.write_text(f"""\
environments:
  sandbox:
    portal: local
  qa:
    portal: {url}
    client_cert: {tls / "client.pem"}
    client_key: {tls / "client.key"}
    max_retries: 0
{extra}""", encoding="utf-8")
    return path


def test_verification_is_on_when_the_config_names_no_ca_bundle(emulator: ServerHandle, tls: Path,
                                                               tmp_path: Path) -> None:
    env = load_config(write_config(tmp_path, emulator.url, tls)).environment("qa")
    assert env.verify_tls is True and env.ca_bundle is None
    portal = HttpPortal(env)
    with pytest.raises(PortalUnavailable, match="verification failed.*unknown CA.*set ca_bundle"):
        portal.list_service_types("DE*A36")
    portal.close()
    assert portal.request_count == 1  # refused at the handshake: not retried, nothing sent
    assert emulator.stats.requests == 0


def test_the_same_config_with_the_ca_bundle_connects(emulator: ServerHandle, tls: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, emulator.url, tls, f"    ca_bundle: {tls / 'ca.pem'}\n")
    portal = HttpPortal(load_config(path).environment("qa"))
    assert set(portal.list_service_types("DE*A36")) >= {"authorization"}
    portal.close()


def test_doctor_without_a_ca_bundle_fails_the_portal_check_on_tls(emulator: ServerHandle, tls: Path,
                                                                  tmp_path: Path) -> None:
    path = write_config(tmp_path, emulator.url, tls)
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
