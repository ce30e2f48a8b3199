"""The portal emulator: a real HTTP(S) server serving schemas/portal-api.openapi.yaml on the local store."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import random
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, unquote

from hbsdeploy import __version__
from hbsdeploy.errors import HbsError
from hbsdeploy.load.partner import canonical_ids, is_canonical_id
from hbsdeploy.portal.contract import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PARTNERS_PATH, loads_strict
from hbsdeploy.portal.errors import PartnerNotFound, PayloadRejected, PortalError, VersionConflict
from hbsdeploy.portal.interface import ServiceTypeState
from hbsdeploy.portal.local import LocalPortal
from hbsdeploy.text import escape_line

if TYPE_CHECKING:
    from hbsdeploy.load.servicetypes import ServiceTypeSpec
    from hbsdeploy.portal.replica import Replica

MAX_BODY_BYTES = 64 * 1024
FAULTS = ("500", "503", "429", "drop", "lost-response")
_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 411: "length_required", 412: "precondition_failed", 413: "payload_too_large",
    414: "uri_too_long", 422: "validation", 428: "precondition_required", 429: "rate_limited",
    431: "headers_too_large", 500: "internal", 501: "not_implemented", 503: "unavailable",
    505: "http_version_not_supported",
}


class EmulatorError(HbsError):
    """The emulator cannot start: a bad option, a certificate that does not load, a port in use."""


def is_partner_id(value: str) -> bool:
    """Whether a string is an OICP OperatorID or ProviderID in its canonical form (`DE*A36`, `+49*536`, `DE-8EO`:
    the only partner IDs the emulator accepts, as clients send them)."""
    return is_canonical_id(value)


def _not_canonical(value: str) -> str:
    forms = canonical_ids(value)
    if not forms:
        return "not an OICP OperatorID or ProviderID"
    return "not in canonical form; write " + " or ".join(
        f"{form!r} ({'OperatorID' if role == 'cpo' else 'ProviderID'})" for role, form in forms.items())


@dataclass
class Stats:
    """What the emulator has served: requests (answered or dropped), answers by status, faults injected by kind."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any] | None
    headers: tuple[tuple[str, str], ...] = ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], portal: LocalPortal, *, ssl_context: ssl.SSLContext | None,
                 token: str | None, latency: float, fail_rate: float, seed: int | None, auto_register: bool,
                 log_stream: TextIO | None, ui: Replica | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.portal = portal
        self.ssl_context = ssl_context
        self.token = token
        self.latency = latency
        self.fail_rate = fail_rate
        self.auto_register = auto_register
        self.ui = ui
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._log_stream = log_stream

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs in the request's thread (finish_request), so a slow client cannot block accept.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.log(f"{client_address[0]} TLS handshake failed: {_reason(exc)}")
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        self.log(f"{client_address[0]} connection error: {_reason(error)}")

    def pick_fault(self) -> str | None:
        if self.fail_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.fail_rate:
                return None
            fault = self._rng.choice(FAULTS)
            self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1
            return fault

    def count(self, status: int) -> None:
        """One request served; status 0 for one whose connection was dropped."""
        with self._lock:
            self.stats.requests += 1
            if status:
                self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1

    def log(self, line: str) -> None:
        if self._log_stream is None:
            return
        with self._lock:
            try:
                self._log_stream.write(line + "\n")
                self._log_stream.flush()
            except (OSError, ValueError):
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"hbsdeploy-emulator/{__version__}"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls

    def version_string(self) -> str:
        return self.server_version

    def __getattr__(self, name: str) -> Any:
        # Any other method (POST, DELETE, PATCH, HEAD, made-up ones) gets 405, never 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _is_ui(self) -> bool:
        """Whether the request is for a page of the web UI replica (everything but /v1 when --ui is on)."""
        path = self.path.split("?", 1)[0]
        return self.server.ui is not None and path != "/v1" and not path.startswith("/v1/")

    # -- one request ----------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        started = time.monotonic()
        fault = None
        status = 0
        ui = self._is_ui()
        try:
            body = self._read_body()
            if isinstance(body, _Reply):
                status = self._send(body)
                return
            if self.server.latency:
                time.sleep(self.server.latency)
            fault = self.server.pick_fault()
            if fault == "drop":
                self._drop()
                return
            if fault in ("500", "503", "429"):
                code = int(fault)
                headers = (("Retry-After", "1"),) if code in (429, 503) else ()
                if ui and self.server.ui is not None:
                    status = self._send_page(self.server.ui.error_page(code))
                    return
                status = self._send(_error(code, f"fault injected by the emulator ({code})", headers))
                return
            if ui and self.server.ui is not None:
                page = self.server.ui.handle(self.command, self.path, self._header_map(), body)
                if fault == "lost-response":
                    self._drop()
                    return
                status = self._send_page(page)
                return
            reply = self._route(body)
            if fault == "lost-response":
                self._drop()
                return
            status = self._send(reply)
        finally:
            self.server.count(status)
            elapsed = (time.monotonic() - started) * 1000
            shown = f"{status}" if status else "dropped"
            extra = f" fault={fault}" if fault else ""
            # No query string in the log: nothing a client sends there belongs in a log.
            path = self.path.split("?", 1)[0]
            self.server.log(f'{self.client_address[0]} "{self.command} {escape_line(path, 200)}" {shown} '
                            f"{elapsed:.1f}ms{extra}")

    def _read_body(self) -> bytes | _Reply:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return _error(411, "send the body with Content-Length, not Transfer-Encoding")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return _error(400, "Content-Length is not a number")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _route(self, body: bytes) -> _Reply:
        if not self._authorized():
            return _error(401, "missing or wrong bearer token; send Authorization: Bearer <token>",
                          (("WWW-Authenticate", 'Bearer realm="hbs-portal"'),))
        path, _, query = self.path.split("#", 1)[0].partition("?")
        if path == PARTNERS_PATH:
            if self.command != "GET":
                return _error(405, f"{self.command} is not allowed here; use GET", (("Allow", "GET"),))
            return self._list_page(query)
        segments = path.split("/")
        if not (len(segments) in (5, 6) and segments[:3] == ["", "v1", "partners"]
                and segments[4] == "service-types" and all(segments[1:])):
            return _error(404, "no such resource; see schemas/portal-api.openapi.yaml")
        partner_id = unquote(segments[3], errors="replace")
        service_type = unquote(segments[5], errors="replace") if len(segments) == 6 else None
        allowed = ("GET",) if service_type is None else ("GET", "PUT")
        if self.command not in allowed:
            return _error(405, f"{self.command} is not allowed here; use {' or '.join(allowed)}",
                          (("Allow", ", ".join(allowed)),))
        if not is_partner_id(partner_id):
            return _error(404, f"unknown partner: {_not_canonical(partner_id)}")
        portal = self.server.portal
        try:
            if service_type is None:
                states = portal.list_service_types(partner_id)
                return _Reply(200, {"partner_id": partner_id, "service_types": {
                    name: {"settings": dict(state.settings), "version": state.version}
                    for name, state in states.items()}})
            if self.command == "GET":
                return _state_reply(portal.get_service_type(partner_id, service_type))
            if_match = self.headers.get("If-Match")
            if if_match is None:
                portal.get_service_type(partner_id, service_type)  # 404 comes before 428
                return _error(428, "send If-Match with the version (ETag) you read; updates without it are refused")
            try:
                payload = loads_strict(body.decode("utf-8"))
            except RecursionError:
                portal.get_service_type(partner_id, service_type)
                return _error(400, "the body is JSON nested too deeply to read")
            except UnicodeEncodeError:
                portal.get_service_type(partner_id, service_type)
                return _error(400, "the body holds a lone surrogate (\\udXXX), which is not valid Unicode text")
            except (UnicodeDecodeError, ValueError) as exc:
                portal.get_service_type(partner_id, service_type)
                return _error(400, f"the body is not JSON ({_reason(exc)})")
            return _state_reply(portal.update_service_type(partner_id, service_type, payload, if_match))
        except PartnerNotFound as exc:
            return _error(404, _without_label(str(exc)))
        except VersionConflict as exc:
            return _error(412, _without_label(str(exc)))
        except PayloadRejected as exc:
            reply = _error(422, _without_label(str(exc)))
            assert reply.body is not None
            return _Reply(422, {**reply.body, "details": exc.details})
        except PortalError as exc:
            return _error(503, _without_label(str(exc)), (("Retry-After", "1"),))

    def _list_page(self, query: str) -> _Reply:
        """GET /v1/partners: one page of every registered partner's service types, in partner ID order."""
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=20)
        except ValueError:
            return _error(400, "the query string does not parse; send page_size and page_token only")
        if any(len(values) > 1 for values in params.values()):
            return _error(400, "a query parameter is repeated; send page_size and page_token once each")
        size_text = params.get("page_size", [str(DEFAULT_PAGE_SIZE)])[0]
        if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 9 or int(size_text) < 1:
            return _error(400, f"page_size must be a whole number from 1 (larger than {MAX_PAGE_SIZE} is served as "
                               f"{MAX_PAGE_SIZE})")
        token = params.get("page_token", [None])[0]  # present but empty is a token this portal never issued
        try:
            page, next_token = self.server.portal.list_page(token, int(size_text))
        except ValueError:
            return _error(400, "page_token is not one this portal issued; start again without it")
        except PortalError as exc:
            return _error(503, _without_label(str(exc)), (("Retry-After", "1"),))
        body: dict[str, Any] = {"partners": [
            {"partner_id": partner_id, "service_types": {
                name: {"settings": dict(state.settings), "version": state.version} for name, state in states.items()}}
            for partner_id, states in page.items()]}
        if next_token is not None:
            body["next_page_token"] = next_token
        return _Reply(200, body)

    def _authorized(self) -> bool:
        expected = self.server.token
        if expected is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected.encode())

    # -- writing ---------------------------------------------------------------------------------------------------

    def _send(self, reply: _Reply) -> int:
        data = json.dumps(reply.body, sort_keys=True).encode("utf-8") if reply.body is not None else b""
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return reply.status

    def _header_map(self) -> dict[str, str]:
        """The request's headers by lower-case name; repeated ones (two Cookie lines) joined with `; `."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}; {value}" if key in headers else value
        return headers

    def _send_page(self, page: Any) -> int:
        """Send a page of the web UI replica (a replica.Response)."""
        self.send_response(page.status)
        self.send_header("Content-Length", str(len(page.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in page.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page.body)
        return int(page.status)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and headers: a JSON error like every other answer, then close. A request line
        # that did not parse leaves the version at HTTP/0.9, which would send no status line: answer as HTTP/1.0.
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(_error(code, message or phrase))
        self.server.count(code)
        self.server.log(f'{self.client_address[0]} "{escape_line(getattr(self, "requestline", ""), 200)}" {code}')

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _dispatch logs one line per request

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} {escape_line(format % args, 200)}")


def _state_reply(state: ServiceTypeState) -> _Reply:
    body = {"partner_id": state.partner_id, "service_type": state.service_type, "settings": dict(state.settings),
            "version": state.version}
    return _Reply(200, body, (("ETag", state.version),))


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, {"error": _ERROR_CODES.get(status, "error"), "message": message}, headers)


def _without_label(message: str) -> str:
    return message.removeprefix("emulator: ").removeprefix("emulator ")


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    return escape_line(str(exc), 200) or type(exc).__name__


class ServerHandle:
    """A running emulator: its URL and port, stats, and `stop()`; also a context manager that stops on exit."""

    def __init__(self, server: _Server, thread: threading.Thread, scheme: str) -> None:
        self._server = server
        self._thread = thread
        self.scheme = scheme
        address = server.server_address
        self.host = str(address[0])
        self.port = int(address[1])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{shown}:{self.port}"
        self.portal = server.portal
        self.ui = server.ui  # the web UI replica (users, sessions, labels) when served with ui=True

    @property
    def stats(self) -> Stats:
        """What the emulator has served so far."""
        return self._server.stats

    def stop(self) -> None:
        """Stop accepting, finish the serve loop and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        self.portal.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(state_file: Path, *, host: str = "127.0.0.1", port: int = 0, tls_cert: Path | None = None,
          tls_key: Path | None = None, client_ca: Path | None = None, token: str | None = None,
          latency_ms: float = 0, fail_rate: float = 0.0, seed: int | None = None, allow_private_urls: bool = False,
          auto_register: bool = False, partners: Iterable[str] = (), allow_remote: bool = False,
          log_stream: TextIO | None = sys.stderr, ui: bool = False, ui_users: Path | None = None,
          ui_session_minutes: float = 30, service_types: Mapping[str, ServiceTypeSpec] | None = None
          ) -> ServerHandle:
    """Start the emulator in a background thread; the handle tells the bound port (pass port 0 for a free one).
    With `ui`, the web UI replica is served next to /v1 (users from `ui_users`, or added through `handle.ui`).
    `service_types`: those of a project's partner schema (None: hbsdeploy's own copy's)."""
    if not allow_remote and not _is_loopback(host):
        raise EmulatorError(f"--host {host} is not a loopback address; the emulator is for tests and demos "
                            "(pass --allow-remote to serve other hosts anyway)")
    if not 0 <= fail_rate <= 1:
        raise EmulatorError(f"--fail-rate {fail_rate} must be between 0 and 1")
    if latency_ms < 0:
        raise EmulatorError(f"--latency-ms {latency_ms} must not be negative")
    if token is not None and not token:
        raise EmulatorError("the bearer token is empty; set the variable named by --token-env")
    context = _ssl_context(tls_cert, tls_key, client_ca)
    portal = LocalPortal(Path(state_file), name="emulator", allow_private_hosts=allow_private_urls,
                         auto_register=auto_register, label="emulator", service_types=service_types)
    for partner_id in partners:
        if not is_partner_id(partner_id):
            raise EmulatorError(f"--partner {partner_id!r} is {_not_canonical(partner_id)} "
                                "(e.g. DE*A36, +49*536, DE-8EO)")
        portal.register_partner(partner_id)
    replica = _replica(portal, ui, ui_users, ui_session_minutes, secure=context is not None)
    try:
        server = _Server((host, port), portal, ssl_context=context, token=token, latency=latency_ms / 1000,
                         fail_rate=fail_rate, seed=seed, auto_register=auto_register, log_stream=log_stream,
                         ui=replica)
    except OSError as exc:
        raise EmulatorError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="hbsdeploy-emulator", daemon=True)
    thread.start()
    return ServerHandle(server, thread, "https" if context else "http")


def _replica(portal: LocalPortal, ui: bool, users: Path | None, session_minutes: float, *,
             secure: bool) -> Replica | None:
    if not ui:
        if users is not None:
            raise EmulatorError("--ui-users needs --ui (the web UI replica)")
        return None
    from hbsdeploy.portal.replica import Replica
    from hbsdeploy.portal.replica_users import Directory, load_users_file

    if session_minutes <= 0:
        raise EmulatorError(f"--ui-session-minutes {session_minutes} must be more than 0")
    directory = load_users_file(users) if users is not None else Directory()
    return Replica(portal, directory, session_minutes=session_minutes, secure=secure)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_context(tls_cert: Path | None, tls_key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    if tls_cert is None:
        if tls_key is not None or client_ca is not None:
            raise EmulatorError("--tls-key and --client-ca need --tls-cert (the server certificate)")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise EmulatorError(f"cannot load --tls-cert {tls_cert} / --tls-key {tls_key} ({_reason(exc)}); give a "
                            "PEM certificate and its unencrypted key") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise EmulatorError(f"cannot load --client-ca {client_ca} ({_reason(exc)}); give a PEM CA "
                                "certificate") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context
