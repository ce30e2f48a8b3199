"""`hbsdeploy doctor`: set-up checks, and probing Service URLs against real TLS servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from hbsdeploy.tools.doctor import CheckStatus, Trust, probe_url
from tests.ecosystem.helpers import RunHbs
from tests.fixtures.tls import TlsFiles

NOW = dt.datetime.now(dt.timezone.utc)
TOKEN = "s3cr3t-token-value"


# --- servers on 127.0.0.1 --------------------------------------------------------------------------------------------

class TlsServer:
    """Accepts connections on 127.0.0.1 and completes (or fails) a TLS handshake with the given certificate, then
    answers a request with 405 (an OICP server's answer to a GET on a POST operation)."""

    def __init__(self, leaf: trustme.LeafCert) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(self.context)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
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
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)  # the probe's GET, in one piece on loopback
                    tls.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def tls_server(tls_ca: trustme.CA) -> Iterator[Any]:
    servers: list[TlsServer] = []

    def start(*names: str, not_after: dt.datetime | None = None) -> TlsServer:
        server = TlsServer(tls_ca.issue_cert(*(names or ("127.0.0.1",)), not_after=not_after))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen_headers: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        type(self).seen_headers.append(dict(self.headers))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def portal_server(tls_ca: trustme.CA) -> Iterator[Any]:
    """An HTTPS portal on 127.0.0.1 that requires a client certificate signed by the test CA."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int = 200) -> str:
        handler = type("Handler", (_Handler,), {"status": status, "seen_headers": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ca.issue_cert("127.0.0.1").configure_cert(context)
        tls_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- repositories ----------------------------------------------------------------------------------------------------

def write_repo(root: Path, environments: str, partners: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hbsdeploy.yaml").write_text(f"default_environment: sandbox\nenvironments:\n{environments}")
    (root / "partners").mkdir(exist_ok=True)
    for index, (operator_id, url) in enumerate(sorted((partners or {}).items())):
        (root / "partners" / f"p{index}.yaml").write_text(
            f'name: Partner {index}\nrole: cpo\noperator_id: "{operator_id}"\nenvironments:\n  sandbox:\n'
            f"service_types:\n  authorization:\n    online_request: true\n    service_url: {url}\n"
            "    client_certification: true\n")
    return root


def client_files(ca: trustme.CA, folder: Path, *, not_after: dt.datetime | None = None,
                 other_key: bool = False) -> tuple[Path, Path]:
    leaf = ca.issue_cert("hbsdeploy-client.example.com", not_after=not_after)
    cert, key = folder / "client.pem", folder / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    (ca.issue_cert("someone-else.example.com") if other_key else leaf).private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


def api_environment(url: str, *, token: bool = True, cert: bool = True, ca_bundle: str = "ca.pem") -> str:
    lines = ["  sandbox:\n    portal: local\n", f"  api:\n    portal: {url}\n    timeouts:\n      connect: 2\n"]
    if token:
        lines.append("    token_env: HBSDEPLOY_TEST_TOKEN\n")
    if cert:
        lines.append("    client_cert: client.pem\n    client_key: client.key\n")
    if ca_bundle:
        lines.append(f"    ca_bundle: {ca_bundle}\n")
    return "".join(lines)


@pytest.fixture
def api_repo(tmp_path: Path, tls_ca: trustme.CA, tls: TlsFiles, portal_server: Any,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_repo(tmp_path / "repo", api_environment(portal_server()))
    client_files(tls_ca, root)
    (root / "ca.pem").write_bytes(tls.ca.read_bytes())
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", TOKEN)
    return root


def lines_by_check(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        name, sep, detail = rest.strip().partition(": ")
        if sep:
            found[name] = f"{status} {detail}"
    return found


# --- the set-up checks -----------------------------------------------------------------------------------------------

def test_doctor_on_the_example_repository_sandbox_passes(repo_copy: Path, hbs: RunHbs) -> None:
    code, out, _ = hbs("doctor", cwd=repo_copy)
    checks = lines_by_check(out)
    assert code == 0, out
    assert checks["config"].startswith("ok hbsdeploy.yaml is valid (3 environments")
    assert checks["partners"].startswith("ok 3 partner files valid")
    assert checks["portal"] == "ok local: state folder .hbsdeploy will be created (its parent is writable)"
    assert out.endswith("all checks passed\n")


def test_doctor_without_a_config_fails_and_says_how_to_make_one(tmp_path: Path, hbs: RunHbs) -> None:
    code, out, _ = hbs("doctor", cwd=tmp_path)
    assert code == 1
    assert out.startswith("FAIL config: no hbsdeploy.yaml in")
    assert "hbsdeploy init" in out


def test_doctor_with_an_invalid_config_names_the_line(tmp_path: Path, hbs: RunHbs) -> None:
    (tmp_path / "hbsdeploy.yaml").write_text("environments:\n  sandbox:\n    portal: ftp://x\n")
    code, out, _ = hbs("doctor", cwd=tmp_path)
    assert code == 1
    assert out.startswith("FAIL config: hbsdeploy.yaml:3:")


def test_doctor_with_an_unknown_environment_fails(repo_copy: Path, hbs: RunHbs) -> None:
    code, out, _ = hbs("doctor", "--env", "staging", cwd=repo_copy)
    assert code == 1
    assert "FAIL environment:" in out and "choose one of: prod, qa, sandbox" in out


def test_doctor_checks_certificate_key_ca_token_and_portal(api_repo: Path, hbs: RunHbs) -> None:
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    checks = lines_by_check(out)
    assert code == 0, out
    assert checks["client certificate"].startswith("ok client.pem: ")
    assert checks["client key"] == "ok client.key matches the certificate"
    assert checks["CA bundle"] == "ok ca.pem: 1 certificate"
    assert checks["token"] == "ok $HBSDEPLOY_TEST_TOKEN is set"
    assert checks["portal"].startswith("ok https://127.0.0.1:") and "answered HTTP 200" in checks["portal"]
    assert TOKEN not in out


def test_doctor_fails_on_a_missing_token_without_printing_anything_of_it(api_repo: Path, hbs: RunHbs,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", "")
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    assert code == 1
    assert lines_by_check(out)["token"].startswith("FAIL $HBSDEPLOY_TEST_TOKEN is not set or empty")
    assert out.endswith("1 check failed\n")


def test_doctor_fails_on_a_key_of_another_certificate(api_repo: Path, tls_ca: trustme.CA, hbs: RunHbs) -> None:
    client_files(tls_ca, api_repo, other_key=True)
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    assert code == 1
    assert lines_by_check(out)["client key"].startswith("FAIL client.key does not match client.pem")


def test_doctor_fails_on_an_expired_client_certificate(api_repo: Path, tls_ca: trustme.CA, hbs: RunHbs) -> None:
    client_files(tls_ca, api_repo, not_after=NOW - dt.timedelta(days=1))
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    assert code == 1
    assert "expired on" in lines_by_check(out)["client certificate"]


def test_doctor_warns_about_a_client_certificate_expiring_within_30_days(api_repo: Path, tls_ca: trustme.CA,
                                                                         hbs: RunHbs) -> None:
    client_files(tls_ca, api_repo, not_after=NOW + dt.timedelta(days=10))
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    check = lines_by_check(out)["client certificate"]
    assert check.startswith("warn ") and "renew it" in check
    assert code == 0, out


def test_doctor_fails_on_unreadable_certificate_files(api_repo: Path, hbs: RunHbs) -> None:
    (api_repo / "client.pem").unlink()
    (api_repo / "ca.pem").write_text("not a certificate\n")
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    checks = lines_by_check(out)
    assert code == 1
    assert checks["client certificate"] == "FAIL client.pem not found"
    assert checks["CA bundle"] == "FAIL ca.pem holds no valid PEM certificate"


def test_doctor_fails_on_a_key_it_cannot_read(api_repo: Path, hbs: RunHbs) -> None:
    (api_repo / "client.key").chmod(0)
    if os.geteuid() != 0:
        code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    else:
        # root reads any file: run doctor without the capabilities that let root ignore file permissions.
        no_override = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to test unreadable files as root"
        done = subprocess.run([*no_override, sys.executable, "-m", "hbsdeploy", "doctor", "--env", "api"],
                              cwd=api_repo, capture_output=True, text=True)
        code, out = done.returncode, done.stdout
    assert code == 1
    assert lines_by_check(out)["client key"].startswith("FAIL client.key cannot be read")


def test_doctor_warns_about_a_key_others_can_read(api_repo: Path, hbs: RunHbs) -> None:
    (api_repo / "client.key").chmod(0o644)
    code, out, _ = hbs("doctor", "--env", "api", cwd=api_repo)
    assert code == 0, out
    assert "chmod 600" in lines_by_check(out)["client key"]


def test_doctor_fails_when_the_portal_is_not_reachable(tmp_path: Path, hbs: RunHbs) -> None:
    root = write_repo(tmp_path, api_environment(f"http://127.0.0.1:{closed_port()}", token=False, cert=False,
                                                ca_bundle=""))
    code, out, _ = hbs("doctor", "--env", "api", "--timeout", "2", cwd=root)
    checks = lines_by_check(out)
    assert code == 1
    assert checks["portal"].startswith("FAIL http://127.0.0.1:") and "not reachable" in checks["portal"]
    assert checks["client certificate"].startswith("warn none configured")
    assert checks["token"] == "ok none configured (token_env)"


def test_doctor_warns_when_the_portal_answers_with_a_server_error(tmp_path: Path, tls_ca: trustme.CA, tls: TlsFiles,
                                                                  portal_server: Any, hbs: RunHbs,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_repo(tmp_path, api_environment(portal_server(503), ca_bundle=str(tls.ca)))
    client_files(tls_ca, root)
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", TOKEN)
    code, out, _ = hbs("doctor", "--env", "api", cwd=root)
    assert code == 0, out
    assert lines_by_check(out)["portal"].startswith("warn ") and "HTTP 503" in out


def test_doctor_fails_when_the_portal_needs_a_client_certificate_and_gets_none(
        tmp_path: Path, tls: TlsFiles, portal_server: Any, hbs: RunHbs) -> None:
    root = write_repo(tmp_path, api_environment(portal_server(), token=False, cert=False, ca_bundle=str(tls.ca)))
    code, out, _ = hbs("doctor", "--env", "api", cwd=root)
    assert code == 1
    assert lines_by_check(out)["portal"].startswith("FAIL https://127.0.0.1:")


def test_doctor_fails_when_the_state_folder_is_not_writable(repo_copy: Path, hbs: RunHbs) -> None:
    (repo_copy / ".hbsdeploy").write_text("a file where the state folder should be\n")
    code, out, _ = hbs("doctor", cwd=repo_copy)
    assert code == 1
    assert lines_by_check(out)["portal"].startswith("FAIL local:")


def test_quiet_doctor_prints_only_what_is_not_ok(api_repo: Path, hbs: RunHbs,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HBSDEPLOY_TEST_TOKEN")
    code, out, _ = hbs("-q", "doctor", "--env", "api", cwd=api_repo)
    assert code == 1
    assert out == "FAIL token: $HBSDEPLOY_TEST_TOKEN is not set or empty; export it (hbsdeploy never prints it)\n"


# --- probing Service URLs --------------------------------------------------------------------------------------------

def test_probe_accepts_a_good_certificate(tls_server: Any, tls: TlsFiles) -> None:
    server = tls_server()
    status, detail = probe_url(server.url, trust=Trust(ca_bundle=tls.ca), timeout=2, allow_private=True).tls
    assert status is CheckStatus.OK, detail
    assert detail.startswith(f"127.0.0.1 port {server.port}, TLSv1.")
    assert "certificate for 127.0.0.1 valid until" in detail


def test_probe_refuses_a_certificate_for_another_host(tls_server: Any, tls: TlsFiles) -> None:
    server = tls_server("wrong.example.com")
    status, detail = probe_url(server.url, trust=Trust(ca_bundle=tls.ca), timeout=2, allow_private=True).tls
    assert status is CheckStatus.FAIL
    assert detail.startswith("TLS: certificate not accepted: ")
    assert detail.endswith("mismatch, certificate is not valid for '127.0.0.1'.")


def test_probe_refuses_an_expired_certificate(tls_server: Any, tls: TlsFiles) -> None:
    server = tls_server(not_after=NOW - dt.timedelta(days=2))
    status, detail = probe_url(server.url, trust=Trust(ca_bundle=tls.ca), timeout=2, allow_private=True).tls
    assert (status, detail) == (CheckStatus.FAIL, "TLS: certificate not accepted: certificate has expired")


def test_probe_warns_about_a_certificate_expiring_within_30_days(tls_server: Any, tls: TlsFiles) -> None:
    server = tls_server(not_after=NOW + dt.timedelta(days=5))
    status, detail = probe_url(server.url, trust=Trust(ca_bundle=tls.ca), timeout=2, allow_private=True).tls
    assert status is CheckStatus.WARN
    assert "renew it" in detail


def test_probe_refuses_a_certificate_from_a_ca_the_platform_does_not_trust(tls_server: Any) -> None:
    status, detail = probe_url(tls_server().url, timeout=2, allow_private=True).tls
    assert status is CheckStatus.FAIL
    assert "unable to get local issuer certificate" in detail and "--probe-ca-bundle" in detail


def test_probe_fails_on_a_closed_port() -> None:
    port = closed_port()
    status, detail = probe_url(f"https://127.0.0.1:{port}/oicp", timeout=2, allow_private=True).tls
    assert status is CheckStatus.FAIL
    assert detail.startswith(f"TCP: cannot connect to port {port} (127.0.0.1: ")


def test_probe_refuses_a_private_address_outside_a_sandbox(tls_server: Any, tls: TlsFiles) -> None:
    status, detail = probe_url(tls_server().url, trust=Trust(ca_bundle=tls.ca), timeout=2, allow_private=False).tls
    assert status is CheckStatus.FAIL
    assert detail == ("DNS: 127.0.0.1 resolves to 127.0.0.1, which the platform cannot reach from the internet; not "
                      "probed (loopback and private addresses need probe_private_hosts: true for the environment in "
                      "hbsdeploy.yaml and HBSDEPLOY_PROBE_PRIVATE_HOSTS=1 set by the person running doctor)")


def test_probe_fails_on_a_name_that_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    status, detail = probe_url("https://oicp.example.com", timeout=2).tls
    assert (status, detail) == (CheckStatus.FAIL, "DNS: oicp.example.com does not resolve (Name or service not known)")


def test_probe_gives_up_on_a_slow_dns_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver answers only when the test lets it: the probe must give up on its own while it still waits.
    release, answered = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        answered.set()
        raise socket.gaierror(socket.EAI_AGAIN, "too late")

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    try:
        status, detail = probe_url("https://oicp.example.com", timeout=0.2).tls
        assert not answered.is_set()
    finally:
        release.set()
    assert (status, detail) == (CheckStatus.FAIL, "DNS: no answer for oicp.example.com within 0.2 s")


def test_probe_gives_up_on_a_server_that_never_answers_the_handshake() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes TCP; nobody speaks TLS
        status, detail = probe_url(f"https://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3,
                                   allow_private=True).tls
    assert (status, detail) == (CheckStatus.FAIL, "TLS: no handshake within 0.3 s")


def test_doctor_probe_reports_every_service_url(tmp_path: Path, tls_server: Any, tls: TlsFiles, hbs: RunHbs,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    good, wrong_host, expired = tls_server(), tls_server("wrong.example.com"), tls_server(
        not_after=NOW - dt.timedelta(days=1))
    closed = f"https://127.0.0.1:{closed_port()}"
    root = write_repo(tmp_path, "  sandbox:\n    portal: local\n    probe_private_hosts: true\n", {
        "DE*A01": good.url, "DE*A02": wrong_host.url, "DE*A03": expired.url, "DE*A04": closed})
    monkeypatch.setenv("HBSDEPLOY_PROBE_CA_BUNDLE", str(tls.ca))
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")  # the person running doctor allows loopback too
    code, out, _ = hbs("doctor", "--probe", "--timeout", "2", cwd=root)
    checks = lines_by_check(out)
    assert code == 1
    assert checks["probe DE*A01 authorization"].startswith(f"ok {good.url}: 127.0.0.1 port")
    assert checks["probe DE*A01 authorization"].endswith(f"trusting the CA bundle {tls.ca}")
    assert checks["probe DE*A01 authorization http"] == (
        "ok GET /api/oicp/charging/v21/providers/XX-HBS/authorize-remote/stop answered 405: the OICP path exists "
        "(answers GET with 405)")
    assert checks["probe DE*A02 authorization"].startswith(f"FAIL {wrong_host.url}: TLS: certificate not accepted")
    assert "certificate has expired" in checks["probe DE*A03 authorization"]
    assert checks["probe DE*A04 authorization"].startswith(f"FAIL {closed}: TCP: cannot connect")
    assert out.endswith("3 checks failed\n")


def test_doctor_probe_ca_bundle_option_and_without_it(tmp_path: Path, tls_server: Any, tls: TlsFiles,
                                                      hbs: RunHbs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HBSDEPLOY_PROBE_CA_BUNDLE", raising=False)
    monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", "1")
    root = write_repo(tmp_path, "  sandbox:\n    portal: local\n    probe_private_hosts: true\n",
                      {"DE*A01": tls_server().url})
    code, out, _ = hbs("doctor", "--probe", "--probe-ca-bundle", str(tls.ca), cwd=root)
    assert code == 0, out
    code, out, _ = hbs("doctor", "--probe", cwd=root)
    assert code == 1
    assert "unable to get local issuer certificate" in out


def test_doctor_probe_skips_service_types_with_online_request_off(tmp_path: Path, hbs: RunHbs) -> None:
    root = write_repo(tmp_path, "  sandbox:\n    portal: local\n", {"DE*A01": f"https://127.0.0.1:{closed_port()}"})
    partner = root / "partners" / "p0.yaml"
    partner.write_text(partner.read_text().replace("online_request: true", "online_request: false")
                       .replace("    service_url: https://127.0.0.1:", "    # service_url: https://127.0.0.1:"))
    code, out, _ = hbs("doctor", "--probe", cwd=root)
    assert lines_by_check(out)["probe"] == "warn no partner in sandbox has a Service URL with Online Request on"
    assert code == 0, out


def test_doctor_sends_no_credentials_not_even_from_netrc(tmp_path: Path, hbs: RunHbs,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import threading

    seen: list[str | None] = []

    class Capture(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        netrc = tmp_path / ".netrc"
        netrc.write_text("machine 127.0.0.1 login alice password netrc-secret\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        monkeypatch.setenv("HOME", str(tmp_path))
        root = write_repo(tmp_path / "repo", api_environment(f"http://127.0.0.1:{server.server_port}", token=False,
                                                              cert=False, ca_bundle=""))
        hbs("doctor", "--env", "api", cwd=root)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None]


@pytest.mark.parametrize(("key", "variable"), [(False, None), (True, None), (False, "1"), (True, "0")],
                         ids=["neither", "key-only", "variable-only", "key-and-variable-0"])
def test_doctor_probe_on_sandbox_never_connects_to_a_private_host_unless_allowed(
        tmp_path: Path, hbs: RunHbs, monkeypatch: pytest.MonkeyPatch, key: bool, variable: str | None) -> None:
    """A pull request naming 127.0.0.1:22 (or 10.x) as a Service URL gets no port scan from CI: loopback and private
    hosts need the environment's probe_private_hosts: true AND HBSDEPLOY_PROBE_PRIVATE_HOSTS=1 from the person
    running doctor (a pull request can change hbsdeploy.yaml, not the CI job's variables)."""
    import socket

    if variable is None:
        monkeypatch.delenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", raising=False)
    else:
        monkeypatch.setenv("HBSDEPLOY_PROBE_PRIVATE_HOSTS", variable)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        environment = "  sandbox:\n    portal: local\n" + ("    probe_private_hosts: true\n" if key else "")
        root = write_repo(tmp_path, environment, {"DE*A01": f"https://127.0.0.1:{port}"})
        code, out, _ = hbs("doctor", "--probe", cwd=root)
        assert code == 1
        assert lines_by_check(out)["probe DE*A01 authorization"].endswith(
            "not probed (loopback and private addresses need probe_private_hosts: true for the environment in "
            "hbsdeploy.yaml and HBSDEPLOY_PROBE_PRIVATE_HOSTS=1 set by the person running doctor)")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


# --- the token, tried with an authenticated read (issue 12, scenario 6) ---------------------------------------------

def _emulator_repo(root: Path, url: str, partner_id: str = "DE*A36") -> Path:
    return write_repo(root, f"  sandbox:\n    portal: local\n  api:\n    portal: {url}\n"
                            "    token_env: HBSDEPLOY_TEST_TOKEN\n",
                      {partner_id: "https://oicp.example.com"})


def _deployed_to_api(root: Path) -> None:
    for path in (root / "partners").iterdir():
        path.write_text(path.read_text().replace("  sandbox:\n", "  sandbox:\n  api:\n"))


def test_doctor_fails_on_a_wrong_token_naming_the_variable_never_the_value(
        tmp_path: Path, emulator: Any, hbs: RunHbs, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a 401 counted as "reachable" and doctor passed with a wrong token.
    server = emulator(partners=["DE*A36"], token=TOKEN)
    root = _emulator_repo(tmp_path / "repo", server.url)
    _deployed_to_api(root)
    wrong = "wrong-token-value-123"
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", wrong)
    code, out, _ = hbs("doctor", "--env", "api", cwd=root)
    checks = lines_by_check(out)
    assert code == 1, out
    assert checks["portal"].startswith("ok ")  # reachable: the 401 proves that, and only that
    assert checks["authenticated read"].startswith("FAIL the portal refused the token in $HBSDEPLOY_TEST_TOKEN "
                                                   "reading DE*A36 (HTTP 401)")
    assert wrong not in out and TOKEN not in out


def test_doctor_passes_with_the_right_token_after_reading_a_partner(
        tmp_path: Path, emulator: Any, hbs: RunHbs, monkeypatch: pytest.MonkeyPatch) -> None:
    server = emulator(partners=["DE*A36"], token=TOKEN)
    root = _emulator_repo(tmp_path / "repo", server.url)
    _deployed_to_api(root)
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", TOKEN)
    code, out, _ = hbs("doctor", "--env", "api", cwd=root)
    assert code == 0, out
    assert lines_by_check(out)["authenticated read"] == ("ok the token in $HBSDEPLOY_TEST_TOKEN was accepted: read "
                                                         "the service types of DE*A36")
    assert TOKEN not in out


def test_doctor_warns_when_no_partner_is_deployed_to_read_with(
        tmp_path: Path, emulator: Any, hbs: RunHbs, monkeypatch: pytest.MonkeyPatch) -> None:
    server = emulator(partners=["DE*A36"], token=TOKEN)
    root = _emulator_repo(tmp_path / "repo", server.url)  # the partner is deployed to the sandbox only
    monkeypatch.setenv("HBSDEPLOY_TEST_TOKEN", TOKEN)
    code, out, _ = hbs("doctor", "--env", "api", cwd=root)
    assert code == 0, out
    assert lines_by_check(out)["authenticated read"].startswith("warn no partner file deploys to api")
