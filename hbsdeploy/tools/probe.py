"""`hbsdeploy doctor --probe`: reach a partner's Service URL as the Hubject platform will, on one connection.

Steps, each with its own timeout: DNS (the addresses must be public, or loopback and private where the environment
allows them; link-local and cloud metadata never), TCP to the first address that answers, a TLS 1.2+ handshake that
verifies the certificate for the host, then one HTTP GET of the Service URL plus the OICP operation path that cannot
start anything (`probe_path` of the service type in schemas/partner.schema.json), on the same connection: no second
DNS lookup, so a name cannot resolve to one address for the check and another for the request.

What the certificate is checked against is what the platform trusts: with `certificate: user`, exactly the uploaded
User certificate (Hubject's Certificate Management article: HBS "does not have a list of trusted CAs and needs this
certificate"), as a trust anchor even when it is a leaf or an intermediate (VERIFY_X509_PARTIAL_CHAIN); with the
Hubject certificate (the default), public CAs, or a CA bundle given with --probe-ca-bundle.

A server that asks for a client certificate gets none: Hubject presents its own certificate on its calls, and the
probe cannot. A refusal for want of one (TLS 1.2: the handshake fails; TLS 1.3: the first read after it) is a
warning that says so, and the probe stops there for that URL. Decisions and sources: docs/decisions.md.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hbsdeploy.check.certs import MAX_CERTIFICATE_BYTES
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.hosts import Address, is_cloud_service, is_public
from hbsdeploy.text import escape, shorten
from hbsdeploy.tools.checks import CheckStatus, expiry

DEFAULT_TIMEOUT = 5.0
PROBE_CA_ENV_VAR = "HBSDEPLOY_PROBE_CA_BUNDLE"
# Set to 1 by the person running doctor, never by a file a pull request can change: together with the environment's
# `probe_private_hosts: true` in hbsdeploy.yaml, only then may --probe connect to loopback or private addresses.
PROBE_PRIVATE_VAR = "HBSDEPLOY_PROBE_PRIVATE_HOSTS"

MAX_HTTP_HEAD_BYTES = 8 * 1024  # the status line and headers; the body is never read
_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                            "fc00::/7"))
_CERTIFICATE_REQUEST = 13  # TLS HandshakeType certificate_request (RFC 5246, RFC 8446)
_HANDSHAKE = 22  # TLS ContentType handshake
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)? (\d{3})(?: .*)?")
_HOST_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_UNTRUSTED_CODES = (18, 19, 20, 21)  # self-signed, self-signed in chain, unknown issuer (local, leaf)

Outcome = tuple[CheckStatus, str]


@dataclass(frozen=True)
class Trust:
    """What the probe trusts for a server's certificate: the uploaded User certificate, a CA bundle or public CAs.
    `shown` names the file in messages (the partner file's certificate_file as written, or the bundle's path)."""

    user_certificate: Path | None = None
    ca_bundle: Path | None = None
    shown: str = ""

    def describe(self) -> str:
        if self.user_certificate is not None:
            return f"trusting the uploaded User certificate {escape(self.shown)}"
        if self.ca_bundle is not None:
            return f"trusting the CA bundle {escape(self.shown or str(self.ca_bundle))}"
        return "trusting public CAs"

    def context(self) -> ssl.SSLContext:
        """A client context verifying certificate and host name, TLS 1.2 at least; OSError or ssl.SSLError when the
        trusted file cannot be read or holds no certificate."""
        if self.user_certificate is not None:
            data = read_bytes(self.user_certificate, MAX_CERTIFICATE_BYTES, what="certificate file")
            context = ssl.create_default_context(cadata=data.decode("ascii", errors="replace"))
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a leaf or intermediate is a trust anchor
        else:
            context = ssl.create_default_context(cafile=str(self.ca_bundle) if self.ca_bundle else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


@dataclass(frozen=True)
class ProbeResult:
    """The TLS line of a probe and, when an HTTP check ran, its line."""

    tls: Outcome
    http: Outcome | None = None


@dataclass
class _Handshake:
    """What the TLS library reported while the handshake ran."""

    certificate_requested: bool = False

    def callback(self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
                 data: Any) -> None:
        if direction == "read" and int(content_type) == _HANDSHAKE and int(msg_type) == _CERTIFICATE_REQUEST:
            self.certificate_requested = True


def probe_url(url: str, *, trust: Trust | None = None, timeout: float = DEFAULT_TIMEOUT,
              now: dt.datetime | None = None, allow_private: bool = False,
              http_path: str | None = None) -> ProbeResult:
    """Reach `url` as the platform does: DNS, TCP, TLS 1.2+ handshake verifying the certificate for the host against
    `trust`, then, with `http_path` (an operation path, see operation_path), one GET of the base path plus it."""
    trust = trust or Trust()
    now = now or dt.datetime.now(dt.timezone.utc)
    if not url.isprintable() or any(char.isspace() for char in url):
        return ProbeResult((CheckStatus.FAIL, "holds a blank or control character; run `hbsdeploy validate`"))
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        return ProbeResult((CheckStatus.FAIL, f"does not parse ({exc})"))
    host = parts.hostname
    if parts.scheme.lower() != "https" or not host:
        return ProbeResult((CheckStatus.FAIL, "not an https:// URL; the platform only calls HTTPS"))
    addresses = _resolve(host, port, timeout)
    if isinstance(addresses, str):
        return ProbeResult((CheckStatus.FAIL, f"DNS: {addresses}"))
    refused = _refused(host, addresses, allow_private)
    if refused:
        return ProbeResult((CheckStatus.FAIL, refused))
    sock = _connect(addresses, port, timeout)
    if isinstance(sock, str):
        return ProbeResult((CheckStatus.FAIL, sock))
    request_path = None if http_path is None else _base_path(parts.path) + http_path
    try:
        return _over_tls(sock, parts.netloc, host, trust, timeout, now, request_path,
                         f"{sock.getpeername()[0]} port {port}")
    finally:
        sock.close()


def _base_path(path: str) -> str:
    """The Service URL's path, as the platform appends to it: without a trailing slash, percent-encoded."""
    return quote(path.rstrip("/"), safe="/%!$&'()*+,;=:@-._~")


def _over_tls(sock: socket.socket, netloc: str, host: str, trust: Trust, timeout: float, now: dt.datetime,
              http_path: str | None, where: str) -> ProbeResult:
    try:
        context = trust.context()
    except (OSError, FileRefused, ssl.SSLError, ValueError) as exc:
        return ProbeResult((CheckStatus.FAIL, f"TLS: cannot use {escape(trust.shown)} as the trusted certificate "
                                              f"({escape(str(exc))}); run `hbsdeploy validate`"))
    handshake = _Handshake()
    context._msg_callback = handshake.callback  # type: ignore[attr-defined]  # CPython 3.8+, sees CertificateRequest
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult((CheckStatus.FAIL, _not_accepted(exc, trust, host)))
    except ssl.SSLError as exc:
        if handshake.certificate_requested:
            return ProbeResult((CheckStatus.WARN, _client_certificate_refused("refused the handshake")))
        return ProbeResult((CheckStatus.FAIL, f"TLS: handshake failed ({exc.reason or exc})"))
    except TimeoutError:
        return ProbeResult((CheckStatus.FAIL, f"TLS: no handshake within {timeout:g} s"))
    except OSError as exc:
        return ProbeResult((CheckStatus.FAIL, f"TLS: connection lost during the handshake ({exc.strerror or exc})"))
    with tls:
        peer: dict[str, Any] = tls.getpeercert() or {}
        not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(peer["notAfter"]), dt.timezone.utc)
        status, when = expiry(not_after, now)
        line = (status, f"{where}, {tls.version() or 'TLS'}, certificate for {host} {when}, {trust.describe()}")
        if http_path is None:
            if handshake.certificate_requested:
                return ProbeResult(_worse(line, (CheckStatus.WARN, _CLIENT_CERTIFICATE_ASKED)))
            return ProbeResult(line)
        return ProbeResult(line, _http_check(tls, netloc, http_path, timeout, handshake))


def _client_certificate_refused(what: str) -> str:
    return (f"the server {what} for want of a client certificate: Hubject presents its own certificate on its calls, "
            "the probe cannot present it, so this part cannot be tested from here")


_CLIENT_CERTIFICATE_ASKED = ("the server asks for a client certificate: Hubject presents its own certificate on its "
                             "calls, the probe cannot present it, so whether the server accepts a call cannot be "
                             "tested from here")


def _worse(line: Outcome, extra: Outcome) -> Outcome:
    order = (CheckStatus.OK, CheckStatus.NOTE, CheckStatus.WARN, CheckStatus.FAIL)
    status = max(line[0], extra[0], key=order.index)
    return status, f"{line[1]}; {extra[1]}"


def _not_accepted(exc: ssl.SSLCertVerificationError, trust: Trust, host: str) -> str:
    detail = f"TLS: certificate not accepted: {exc.verify_message}"
    if trust.user_certificate is not None:
        detail = detail.rstrip(".")
        if exc.verify_code in _HOST_MISMATCH:
            return (f"{detail}; the uploaded User certificate {escape(trust.shown)} was trusted, but the server's "
                    f"certificate does not name {host}: Hubject's Certificate Management article says its CN should "
                    "match the Service URL's host")
        return (f"{detail}; the platform trusts only the uploaded User certificate {escape(trust.shown)}: the server "
                "must present that certificate, or one it issued")
    if exc.verify_code in _UNTRUSTED_CODES:
        if trust.ca_bundle is not None:
            return f"{detail}; {trust.describe()}"
        return (f"{detail}; the platform trusts public CAs with the Hubject certificate: for a server certificate of "
                "your own, upload it in Certificate Management and set certificate: user with certificate_file (for "
                f"a private or test CA: --probe-ca-bundle or ${PROBE_CA_ENV_VAR})")
    return detail


def _http_check(tls: ssl.SSLSocket, netloc: str, path: str, timeout: float, handshake: _Handshake) -> Outcome:
    """One GET on the verified connection, its status line and headers read up to MAX_HTTP_HEAD_BYTES."""
    host = netloc.rpartition("@")[2]
    shown = f"GET {escape(path)}"
    if not host.isascii():
        return CheckStatus.FAIL, f"{shown}: not sent, the host is not ASCII; write it in punycode (xn--...)"
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hbsdeploy-doctor\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n")
    try:
        tls.settimeout(timeout)
        tls.sendall(request.encode("ascii"))
        head = _read_head(tls, timeout)
    except TimeoutError:
        return CheckStatus.FAIL, f"{shown}: no HTTP answer within {timeout:g} s"
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None)
        if handshake.certificate_requested or reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
            return CheckStatus.WARN, _client_certificate_refused("closed the connection after the handshake")
        return CheckStatus.FAIL, f"{shown}: the connection failed ({escape(str(reason or exc))})"
    if not head and handshake.certificate_requested:
        return CheckStatus.WARN, _client_certificate_refused("closed the connection after the handshake")
    status, detail = classify(shown, head)
    if handshake.certificate_requested:
        detail += " (the server asked for a client certificate, and answered without one)"
    return status, detail


def _read_head(tls: ssl.SSLSocket, timeout: float) -> bytes:
    """The bytes up to the end of the headers, at most MAX_HTTP_HEAD_BYTES, within `timeout` in all."""
    deadline = time.monotonic() + timeout
    head = b""
    while b"\r\n\r\n" not in head and len(head) < MAX_HTTP_HEAD_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        tls.settimeout(left)
        chunk = tls.recv(MAX_HTTP_HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head[:MAX_HTTP_HEAD_BYTES]


def classify(shown: str, head: bytes) -> Outcome:
    """What an HTTP answer to the GET of an operation path says about the Service URL's base path."""
    if not head:
        return CheckStatus.FAIL, f"{shown}: the server closed the connection without an HTTP answer"
    lines = head.decode("latin-1").split("\r\n")
    found = _STATUS_LINE.fullmatch(lines[0])
    if not found:
        return CheckStatus.FAIL, f"{shown}: the answer is not HTTP ({escape(shorten(lines[0], 60))})"
    code = int(found.group(1))
    answered = f"{shown} answered {code}"
    if code in (400, 401, 403, 405):
        return CheckStatus.OK, f"{answered}: the OICP path exists (answers GET with {code})"
    if code == 404:
        return CheckStatus.WARN, (f"{answered}: the OICP path was not found under this base URL: check the Service "
                                  "URL's base path (a server that answers 404 to a GET on a POST-only path says the "
                                  "same; then it is fine)")
    if 200 <= code < 300:
        return CheckStatus.WARN, (f"{answered}: a GET should not succeed on a POST operation; check that the base URL "
                                  "reaches your OICP server, not a catch-all page")
    if 300 <= code < 400:
        location = next((line.partition(":")[2].strip() for line in lines[1:]
                         if line.lower().startswith("location:")), "")
        where = f"to {escape(shorten(location, 200))}" if location else "without a Location"
        return CheckStatus.WARN, (f"{answered}, a redirect {where}; not followed: give the Service URL that answers "
                                  "itself")
    if code >= 500:
        return CheckStatus.WARN, f"{answered}: the server is failing; check its logs"
    return CheckStatus.WARN, f"{answered}: cannot tell whether the OICP path exists"


def _kind(address: Address) -> str:
    """`public`, `private` (loopback, RFC 1918, ULA) or `never` (link-local, cloud metadata and the cloud's other
    service addresses even in the ULA range, `hosts.CLOUD_SERVICE_ADDRESSES`; shared, reserved, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if is_cloud_service(address):
        return "never"
    if is_public(address):
        return "public"
    if address.is_loopback or any(address in network for network in _PRIVATE_NETWORKS):
        return "private"
    return "never"


def _refused(host: str, addresses: list[str], allow_private: bool) -> str | None:
    kinds = {a: _kind(ipaddress.ip_address(a.split("%")[0])) for a in addresses}
    never = [a for a, kind in kinds.items() if kind == "never"]
    if never:
        return (f"DNS: {host} resolves to {', '.join(never)}, a link-local, cloud metadata or other non-public "
                "address; never probed (not even with probe_private_hosts)")
    private = [a for a, kind in kinds.items() if kind == "private"]
    if private and not allow_private:
        return (f"DNS: {host} resolves to {', '.join(private)}, which the platform cannot reach from the internet; "
                f"not probed (loopback and private addresses need probe_private_hosts: true for the environment in "
                f"hbsdeploy.yaml and {PROBE_PRIVATE_VAR}=1 set by the person running doctor)")
    return None


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket | str:
    errors = []
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except TimeoutError:
            errors.append(f"{address}: no answer within {timeout:g} s")
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    return f"TCP: cannot connect to port {port} ({'; '.join(errors)})"


def _resolve(host: str, port: int, timeout: float) -> list[str] | str:
    """The host's addresses, or why there are none. getaddrinfo has no timeout: it runs in a thread."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hbsdeploy-dns")
    try:
        future = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return f"no answer for {host} within {timeout:g} s"
    except socket.gaierror as exc:
        return f"{host} does not resolve ({exc.strerror})"
    finally:
        pool.shutdown(wait=False)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
