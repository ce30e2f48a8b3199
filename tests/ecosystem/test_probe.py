"""`hbsdeploy doctor --probe` against HTTPS servers on 127.0.0.1: what it trusts (the uploaded User certificate, else
public CAs), a server that wants a client certificate, the HTTP check of the OICP stop path, and which addresses it
never reaches (issue 13, finding 4)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hbsdeploy.errors import InputError
from hbsdeploy.load.config import load_config
from hbsdeploy.load.schemaset import package_schemas
from hbsdeploy.load.servicetypes import PLACEHOLDER_IDS, operation_path
from hbsdeploy.tools.checks import CheckStatus
from hbsdeploy.tools.probe import Trust, classify, probe_url
from tests.ecosystem.helpers import RunHbs

STOP_PATH = "/api/oicp/charging/v21/providers/XX-HBS/authorize-remote/stop"
ANSWER_405 = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


# --- an HTTPS server on 127.0.0.1 ------------------------------------------------------------------------------------

@dataclass
class ProbeServer:
    """Accepts TLS connections on 127.0.0.1 with `context`, records each request line and answers `answer`."""

    context: ssl.SSLContext
    answer: bytes = ANSWER_405
    requests: list[str] = field(default_factory=list)
    handshakes: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                    if head:
                        self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                        if self.answer:
                            tls.sendall(self.answer)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def server_context(chain: bytes, key: bytes, tmp: Path, *, client_ca: trustme.CA | None = None,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp / "chain.pem").write_bytes(chain)
    (tmp / "key.pem").write_bytes(key)
    context.load_cert_chain(tmp / "chain.pem", tmp / "key.pem")
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ProbeServer] = []

    def start(chain: bytes, key: bytes, answer: bytes = ANSWER_405, **options: Any) -> ProbeServer:
        folder = tmp_path / f"server-{len(started)}"
        folder.mkdir()
        server = ProbeServer(server_context(chain, key, folder, **options), answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def leaf_files(leaf: trustme.LeafCert) -> tuple[bytes, bytes]:
    return b"".join(pem.bytes() for pem in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


def self_signed(host: str) -> tuple[bytes, bytes]:
    """A self-signed server certificate for `host` (an IP address) and its key, as a partner would make one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def probe(url: str, trust: Trust | None = None, http_path: str | None = STOP_PATH, timeout: float = 3) -> Any:
    return probe_url(url, trust=trust, timeout=timeout, allow_private=True, http_path=http_path)


# --- trust: the uploaded User certificate ----------------------------------------------------------------------------

def test_a_self_signed_server_certificate_that_is_the_uploaded_user_certificate_is_trusted(serve: Any,
                                                                                          tmp_path: Path) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    uploaded = tmp_path / "uploaded.pem"
    uploaded.write_bytes(cert)
    result = probe(server.url, Trust(user_certificate=uploaded, shown="certs/uploaded.pem"))
    assert result.tls[0] is CheckStatus.OK, result.tls
    assert result.tls[1].endswith("trusting the uploaded User certificate certs/uploaded.pem")
    # Trusting public CAs, as the probe did before, refuses the same server.
    status, detail = probe(server.url).tls
    assert status is CheckStatus.FAIL
    assert detail.startswith("TLS: certificate not accepted: self-signed certificate; the platform trusts public CAs "
                             "with the Hubject certificate: for a server certificate of your own, upload it in "
                             "Certificate Management and set certificate: user with certificate_file")


def test_a_leaf_or_an_intermediate_certificate_is_a_trust_anchor(serve: Any, tls_ca: trustme.CA,
                                                                 tmp_path: Path) -> None:
    intermediate = tls_ca.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    server = serve(*leaf_files(leaf))
    for name, pem in (("leaf", leaf.cert_chain_pems[0].bytes()), ("intermediate", intermediate.cert_pem.bytes())):
        uploaded = tmp_path / f"{name}.pem"
        uploaded.write_bytes(pem)
        status, detail = probe(server.url, Trust(user_certificate=uploaded, shown=f"{name}.pem")).tls
        assert status is CheckStatus.OK, (name, detail)


def test_the_uploaded_user_certificate_is_the_only_trust(serve: Any, tls_ca: trustme.CA, tmp_path: Path) -> None:
    """A server certificate from a CA the machine may trust is refused when it is not the uploaded one."""
    server = serve(*leaf_files(tls_ca.issue_cert("127.0.0.1")))
    other, _ = self_signed("127.0.0.1")
    uploaded = tmp_path / "other.pem"
    uploaded.write_bytes(other)
    status, detail = probe(server.url, Trust(user_certificate=uploaded, shown="certs/other.pem")).tls
    assert status is CheckStatus.FAIL
    assert detail.endswith("the platform trusts only the uploaded User certificate certs/other.pem: the server must "
                           "present that certificate, or one it issued")


def test_a_user_certificate_not_naming_the_host_is_refused_with_the_articles_rule(serve: Any, tls_ca: trustme.CA,
                                                                                 tmp_path: Path) -> None:
    leaf = tls_ca.issue_cert("oicp.example.com")
    server = serve(*leaf_files(leaf))
    uploaded = tmp_path / "leaf.pem"
    uploaded.write_bytes(leaf.cert_chain_pems[0].bytes())
    status, detail = probe(server.url, Trust(user_certificate=uploaded, shown="certs/leaf.pem")).tls
    assert status is CheckStatus.FAIL
    assert "certificate is not valid for '127.0.0.1'" in detail
    assert detail.endswith("the uploaded User certificate certs/leaf.pem was trusted, but the server's certificate "
                           "does not name 127.0.0.1: Hubject's Certificate Management article says its CN should "
                           "match the Service URL's host")


def test_an_unreadable_user_certificate_is_named(tmp_path: Path, serve: Any) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    missing = tmp_path / "missing.pem"
    status, detail = probe(server.url, Trust(user_certificate=missing, shown="certs/missing.pem")).tls
    assert status is CheckStatus.FAIL
    assert detail.startswith("TLS: cannot use certs/missing.pem as the trusted certificate (")
    assert detail.endswith("); run `hbsdeploy validate`")


# --- a server that asks for a client certificate ---------------------------------------------------------------------

REFUSED = ("for want of a client certificate: Hubject presents its own certificate on its calls, the probe cannot "
           "present it, so this part cannot be tested from here")


def test_a_tls_1_2_server_requiring_a_client_certificate_is_explained(serve: Any, tls_ca: trustme.CA,
                                                                      tls: Any) -> None:
    server = serve(*leaf_files(tls_ca.issue_cert("127.0.0.1")), client_ca=tls_ca, version=ssl.TLSVersion.TLSv1_2)
    result = probe(server.url, Trust(ca_bundle=tls.ca))
    assert result.tls == (CheckStatus.WARN, f"the server refused the handshake {REFUSED}")
    assert result.http is None  # stopped there
    assert server.requests == []


def test_a_tls_1_3_server_requiring_a_client_certificate_is_explained(serve: Any, tls_ca: trustme.CA,
                                                                      tls: Any) -> None:
    """TLS 1.3: the client's handshake completes; the server's alert arrives on the first read."""
    server = serve(*leaf_files(tls_ca.issue_cert("127.0.0.1")), client_ca=tls_ca, version=ssl.TLSVersion.TLSv1_3)
    result = probe(server.url, Trust(ca_bundle=tls.ca))
    assert result.tls[0] is CheckStatus.OK and "TLSv1.3" in result.tls[1]
    assert result.http == (CheckStatus.WARN, f"the server closed the connection after the handshake {REFUSED}")
    assert server.requests == []


def test_without_the_http_check_a_request_for_a_client_certificate_is_still_said(serve: Any, tls_ca: trustme.CA,
                                                                                  tls: Any) -> None:
    server = serve(*leaf_files(tls_ca.issue_cert("127.0.0.1")), client_ca=tls_ca, version=ssl.TLSVersion.TLSv1_3)
    status, detail = probe(server.url, Trust(ca_bundle=tls.ca), http_path=None).tls
    assert status is CheckStatus.WARN
    assert detail.endswith("; the server asks for a client certificate: Hubject presents its own certificate on its "
                           "calls, the probe cannot present it, so whether the server accepts a call cannot be tested "
                           "from here")


# --- the HTTP check --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "status", "says"), [
    (b"HTTP/1.1 404 Not Found\r\n\r\n", CheckStatus.WARN,
     "answered 404: the OICP path was not found under this base URL: check the Service URL's base path"),
    (ANSWER_405, CheckStatus.OK, "answered 405: the OICP path exists (answers GET with 405)"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", CheckStatus.OK, "answered 400: the OICP path exists (answers GET with 400)"),
    (b"HTTP/1.1 401 Unauthorized\r\n\r\n", CheckStatus.OK, "answered 401: the OICP path exists (answers GET with 401)"),
    (b"HTTP/1.0 403 Forbidden\r\n\r\n", CheckStatus.OK, "answered 403: the OICP path exists (answers GET with 403)"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", CheckStatus.WARN,
     "answered 200: a GET should not succeed on a POST operation"),
    (b"HTTP/1.1 500 Internal Server Error\r\n\r\n", CheckStatus.WARN, "answered 500: the server is failing"),
    (b"HTTP/1.1 302 Found\r\nLocation: https://login.example.com/\x1b[31mx\r\n\r\n", CheckStatus.WARN,
     "answered 302, a redirect to https://login.example.com/\\x1b[31mx; not followed"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", CheckStatus.FAIL, "the answer is not HTTP (SSH-2.0-OpenSSH_9.6)"),
], ids=["404", "405", "400", "401", "403", "200", "500", "302", "not-http"])
def test_each_http_answer_is_classified(serve: Any, tmp_path: Path, answer: bytes, status: CheckStatus,
                                        says: str) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key, answer)
    result = probe(server.url, pinned(tmp_path, cert))
    assert result.tls[0] is CheckStatus.OK, result.tls
    assert result.http is not None
    assert result.http[0] is status, result.http
    assert result.http[1].startswith(f"GET {STOP_PATH} {says}") or result.http[1] == f"GET {STOP_PATH}: {says}"
    assert server.requests == [f"GET {STOP_PATH} HTTP/1.1"]


def pinned(folder: Path, cert: bytes) -> Trust:
    path = folder / "pinned.pem"
    path.write_bytes(cert)
    return Trust(user_certificate=path, shown="pinned.pem")


def test_a_server_that_never_answers_the_get_fails(serve: Any, tmp_path: Path) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key, answer=b"")  # reads the request, answers nothing, closes
    result = probe(server.url, pinned(tmp_path, cert))
    assert result.http == (CheckStatus.FAIL, f"GET {STOP_PATH}: the server closed the connection without an HTTP "
                                             "answer")


def test_a_server_that_keeps_the_connection_open_without_answering_fails_after_the_timeout(tmp_path: Path) -> None:
    cert, key = self_signed("127.0.0.1")
    context = server_context(cert, key, tmp_path)
    release = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def hold() -> None:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                release.wait(30)

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        try:
            result = probe(f"https://127.0.0.1:{listener.getsockname()[1]}", pinned(tmp_path, cert), timeout=0.3)
        finally:
            release.set()
            thread.join(5)
    assert result.http == (CheckStatus.FAIL, f"GET {STOP_PATH}: no HTTP answer within 0.3 s")


def test_the_answer_is_read_only_up_to_a_few_kib(serve: Any, tmp_path: Path) -> None:
    """A server that sends endless headers is read 8 KiB deep: the status line decides."""
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key, answer=b"HTTP/1.1 405 Method Not Allowed\r\nX-Pad: " + b"a" * 200_000)
    result = probe(server.url, pinned(tmp_path, cert))
    assert result.http == (CheckStatus.OK, f"GET {STOP_PATH} answered 405: the OICP path exists (answers GET with "
                                           "405)")


def test_the_get_goes_to_the_base_path_plus_the_operation_path(serve: Any, tmp_path: Path) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    probe(f"{server.url}/oicp/base/", pinned(tmp_path, cert))
    assert server.requests == [f"GET /oicp/base{STOP_PATH} HTTP/1.1"]


def test_the_schemas_probe_paths_are_oicp_stop_operations() -> None:
    """The data behind the HTTP check: for each service type and role that has one, an OICP 2.3 path under
    /api/oicp/ ending in a stop operation, with a placeholder ID: never one that could start a session."""
    paths = {(name, role): operation_path(template) for name, spec in package_schemas().service_types.items()
             for role, template in spec.probe_path.items()}
    assert paths == {
        ("authorization", "cpo"): STOP_PATH,
        ("authorization", "emp"): "/api/oicp/charging/v21/operators/XX*HBS/authorize/stop",
        ("reservation", "cpo"): "/api/oicp/charging/v21/providers/XX-HBS/authorize-remote-reservation/stop",
    }
    assert set(PLACEHOLDER_IDS.values()) == {"XX-HBS", "XX*HBS"}


@pytest.mark.parametrize("template", [
    "/api/oicp/charging/v21/providers/{provider_id}/authorize-remote/start",
    "/api/oicp/charging/v21/providers/{provider_id}/authorize-remote-reservation/START",
    "/oicp/charging/v21/providers/{provider_id}/authorize-remote/stop",
    "/api/oicp/charging/v21/providers/{unknown}/authorize-remote/stop",
    "/api/oicp/charging/v21/providers/{provider_id}/stop\r\nX: y",
])
def test_a_probe_path_that_could_start_something_or_is_not_oicp_is_refused(template: str) -> None:
    assert operation_path(template) is None


def test_classify_an_empty_answer() -> None:
    assert classify("GET /x", b"") == (CheckStatus.FAIL, "GET /x: the server closed the connection without an HTTP "
                                                         "answer")


# --- which addresses are reached -------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "100.64.0.1", "0.0.0.0", "::ffff:169.254.169.254",
                                     "fd00:ec2::254", "fd00:ec2::253", "fd00:ec2::123"])
def test_link_local_metadata_and_other_non_public_addresses_are_never_reached(
        monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, 443))])
    connected: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a))
    status, detail = probe_url("https://metadata.example.com", timeout=1, allow_private=True).tls
    assert (status, detail) == (CheckStatus.FAIL, f"DNS: metadata.example.com resolves to {address}, a link-local, "
                                                  "cloud metadata or other non-public address; never probed (not "
                                                  "even with probe_private_hosts)")
    assert connected == []


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1", "::1"])
def test_loopback_and_private_addresses_are_reached_only_when_allowed(monkeypatch: pytest.MonkeyPatch,
                                                                      address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, 443))])
    connected: list[Any] = []

    def refuse(target: Any, *args: Any, **kwargs: Any) -> Any:
        connected.append(target)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    status, detail = probe_url("https://oicp.example.com", timeout=1, allow_private=False).tls
    assert status is CheckStatus.FAIL and "not probed" in detail and connected == []
    status, detail = probe_url("https://oicp.example.com", timeout=1, allow_private=True).tls
    assert (status, detail) == (CheckStatus.FAIL, f"TCP: cannot connect to port 443 ({address}: Connection refused)")
    assert connected == [(address, 443)]


def test_probe_private_hosts_is_refused_for_a_protected_environment(tmp_path: Path, hbs: RunHbs) -> None:
    path = tmp_path / "hbsdeploy.yaml"
    path.write_text("default_environment: sandbox\nenvironments:\n  sandbox:\n    portal: local\n"
                    "    probe_private_hosts: true\n  prod:\n    portal: manual\n    protected: true\n"
                    "    probe_private_hosts: true\n", encoding="utf-8")
    (tmp_path / "partners").mkdir()
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert [(p.rule, p.line) for p in caught.value.problems] == [("protected-probe-private-hosts", 9)]
    code, out, err = hbs("validate", cwd=tmp_path)
    assert code == 1
    assert "hbsdeploy.yaml:9" in out + err and "protected-probe-private-hosts" in out + err


def test_probe_private_hosts_defaults_to_false_for_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "hbsdeploy.yaml"
    path.write_text("default_environment: sandbox\nenvironments:\n  sandbox:\n    portal: local\n"
                    "  qa:\n    portal: manual\n  api:\n    portal: https://gateway.example.com\n"
                    "  web:\n    portal: web\n    url: https://portal-qa.hubject.com\n", encoding="utf-8")
    config = load_config(path)
    assert {name: env.probe_private_hosts for name, env in config.environments.items()} == {
        "sandbox": False, "qa": False, "api": False, "web": False}


# --- doctor --probe end to end ---------------------------------------------------------------------------------------

def write_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hbsdeploy.yaml").write_text("default_environment: sandbox\nenvironments:\n  sandbox:\n    portal: local\n"
                                         "    probe_private_hosts: true\n", encoding="utf-8")
    (root / "partners").mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def lines_by_check(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        name, sep, detail = rest.strip().partition(": ")
        if sep:
            found[name] = f"{status} {detail}"
    return found


LIMITS = ("note cannot test whether the partner's firewall admits the platform's source addresses, nor present "
          "Hubject's client certificate: ask Hubject for its outgoing addresses and send a test request from the QA "
          "portal (docs/config.md, `hbsdeploy doctor`)")


def test_doctor_probe_trusts_the_partners_uploaded_user_certificate(serve: Any, tmp_path: Path, hbs: RunHbs,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")
    monkeypatch.delenv("HBSDEPLOY_PROBE_CA_BUNDLE", raising=False)
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    root = write_project(tmp_path / "repo", {
        "certs/server.pem": cert.decode(),
        "partners/cpo.yaml": f'name: CPO\nrole: cpo\noperator_id: "DE*A01"\nenvironments:\n  sandbox:\n'
                             f"service_types:\n  authorization:\n    online_request: true\n"
                             f"    service_url: {server.url}\n    client_certification: true\n"
                             "    certificate: user\n    certificate_file: certs/server.pem\n"})
    code, out, _ = hbs("doctor", "--probe", "--timeout", "3", cwd=root)
    checks = lines_by_check(out)
    assert code == 0, out
    assert checks["probe DE*A01 authorization"].startswith(f"ok {server.url}: 127.0.0.1 port {server.port}, TLSv1.")
    assert checks["probe DE*A01 authorization"].endswith(", trusting the uploaded User certificate certs/server.pem")
    assert checks["probe DE*A01 authorization http"] == (
        f"ok GET {STOP_PATH} answered 405: the OICP path exists (answers GET with 405)")
    assert checks["probe limits"] == LIMITS
    assert out.splitlines()[-2] == f"note probe limits: {LIMITS[5:]}"


def test_doctor_probe_sends_only_gets_of_stop_paths(serve: Any, tmp_path: Path, hbs: RunHbs,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Authorization and Reservation of a CPO, Authorization of an EMP: one GET each, of the stop operation; never a
    POST, never AuthorizeRemoteStart."""
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    user = "    certificate: user\n    certificate_file: certs/server.pem\n"
    root = write_project(tmp_path / "repo", {
        "certs/server.pem": cert.decode(),
        "partners/cpo.yaml": f'name: CPO\nrole: cpo\noperator_id: "DE*A01"\nenvironments:\n  sandbox:\n'
                             f"service_types:\n  authorization:\n    online_request: true\n"
                             f"    service_url: {server.url}/cpo\n    client_certification: true\n{user}"
                             f"  reservation:\n    online_request: true\n    service_url: {server.url}/cpo\n{user}",
        "partners/emp.yaml": f'name: EMP\nrole: emp\nprovider_id: "DE-B01"\nenvironments:\n  sandbox:\n'
                             f"service_types:\n  authorization:\n    online_request: true\n"
                             f"    broadcast_request: true\n    service_url: {server.url}/emp/\n{user}"})
    code, out, _ = hbs("doctor", "--probe", "--timeout", "3", cwd=root)
    assert code == 0, out
    assert sorted(server.requests) == [
        "GET /cpo/api/oicp/charging/v21/providers/XX-HBS/authorize-remote-reservation/stop HTTP/1.1",
        "GET /cpo/api/oicp/charging/v21/providers/XX-HBS/authorize-remote/stop HTTP/1.1",
        "GET /emp/api/oicp/charging/v21/operators/XX*HBS/authorize/stop HTTP/1.1",
    ]
    assert not any("start" in request for request in server.requests)


def test_doctor_probe_without_the_http_check_sends_no_request(serve: Any, tmp_path: Path, hbs: RunHbs,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    root = write_project(tmp_path / "repo", {
        "certs/server.pem": cert.decode(),
        "partners/cpo.yaml": f'name: CPO\nrole: cpo\noperator_id: "DE*A01"\nenvironments:\n  sandbox:\n'
                             f"service_types:\n  authorization:\n    online_request: true\n"
                             f"    service_url: {server.url}\n    client_certification: true\n"
                             "    certificate: user\n    certificate_file: certs/server.pem\n"})
    code, out, _ = hbs("doctor", "--probe", "--no-probe-http", "--timeout", "3", cwd=root)
    checks = lines_by_check(out)
    assert code == 0, out
    assert checks["probe DE*A01 authorization"].startswith("ok ")
    assert "probe DE*A01 authorization http" not in checks
    assert server.requests == []
    assert checks["probe limits"] == LIMITS


@pytest.mark.parametrize("url", ["https://oicp.example.com/a\r\nX-Injected: 1", "https://oicp.example.com/a\tb",
                                 "https://oicp.example.com/a b", "https://oicp.example.com/\u202e"])
def test_a_url_that_could_inject_into_the_request_is_not_probed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    resolved: list[Any] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: resolved.append(a))
    assert probe_url(url, timeout=1).tls == (CheckStatus.FAIL, "holds a blank or control character; run `hbsdeploy "
                                                               "validate`")
    assert resolved == []


def test_a_non_ascii_base_path_is_sent_percent_encoded(serve: Any, tmp_path: Path) -> None:
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key)
    probe(f"{server.url}/größe", pinned(tmp_path, cert))
    assert server.requests == [f"GET /gr%C3%B6%C3%9Fe{STOP_PATH} HTTP/1.1"]


def test_quiet_doctor_probe_leaves_out_the_note(serve: Any, tmp_path: Path, hbs: RunHbs,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """-q prints only what needs action: the note on what the probe cannot test is not a problem found."""
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")
    cert, key = self_signed("127.0.0.1")
    server = serve(cert, key, answer=b"HTTP/1.1 404 Not Found\r\n\r\n")
    root = write_project(tmp_path / "repo", {
        "certs/server.pem": cert.decode(),
        "partners/cpo.yaml": f'name: CPO\nrole: cpo\noperator_id: "DE*A01"\nenvironments:\n  sandbox:\n'
                             f"service_types:\n  authorization:\n    online_request: true\n"
                             f"    service_url: {server.url}\n    client_certification: true\n"
                             "    certificate: user\n    certificate_file: certs/server.pem\n"})
    code, out, _ = hbs("-q", "doctor", "--probe", "--timeout", "3", cwd=root)
    assert code == 0, out
    assert out == (f"warn probe DE*A01 authorization http: GET {STOP_PATH} answered 404: the OICP path was not found "
                   "under this base URL: check the Service URL's base path (a server that answers 404 to a GET on a "
                   "POST-only path says the same; then it is fine)\n")


def test_a_server_that_asks_for_a_client_certificate_but_answers_without_one_says_so(serve: Any, tls_ca: trustme.CA,
                                                                                     tls: Any) -> None:
    server = serve(*leaf_files(tls_ca.issue_cert("127.0.0.1")), client_ca=tls_ca, version=ssl.TLSVersion.TLSv1_3)
    server.context.verify_mode = ssl.CERT_OPTIONAL
    result = probe(server.url, Trust(ca_bundle=tls.ca))
    assert result.http == (CheckStatus.OK, f"GET {STOP_PATH} answered 405: the OICP path exists (answers GET with "
                                           "405) (the server asked for a client certificate, and answered without "
                                           "one)")


def test_the_cloud_service_addresses_are_one_list_never_public_nor_private() -> None:
    """Was: AWS's IPv6 metadata address fd00:ec2::254, in the ULA range, counted as private and was probed with both
    switches set (issue 13 review). hosts.CLOUD_SERVICE_ADDRESSES is the one list; the probe asks it."""
    import ipaddress

    from hbsdeploy.hosts import CLOUD_SERVICE_ADDRESSES, is_cloud_service, is_public
    from hbsdeploy.tools.probe import _kind

    assert ipaddress.ip_address("fd00:ec2::254") in CLOUD_SERVICE_ADDRESSES
    for address in CLOUD_SERVICE_ADDRESSES:
        assert is_cloud_service(address) and not is_public(address) and _kind(address) == "never", address
    assert _kind(ipaddress.ip_address("fd00:ec2::1")) == "private"  # the rest of the ULA range stays private
