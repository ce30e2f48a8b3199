"""The portal API client: requests with mutual TLS, a bearer token, timeouts and bounded, jittered retries."""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import json
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hbsdeploy import __version__
from hbsdeploy.hosts import HostError, parse_portal_url
from hbsdeploy.load.settings import fields_in, normalize_settings
from hbsdeploy.portal.contract import (
    MAX_PAGE_SIZE,
    PARTNERS_PATH,
    loads_strict,
    partners_page_path,
    payload_validator,
    service_types_path,
)
from hbsdeploy.portal.errors import (
    PartnerNotFound,
    PayloadRejected,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalProtocolError,
    PortalRefused,
    PortalUnavailable,
    VersionConflict,
    portal_label,
)
from hbsdeploy.portal.interface import ServiceTypeState
from hbsdeploy.text import REDACTED, escape_line, one_line, redact_headers, redact_url

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment

log = logging.getLogger("hbsdeploy.portal")

USER_AGENT = f"hbsdeploy/{__version__}"
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # and 500 for a GET: a read changes nothing, so repeating it is safe
MAX_RETRY_AFTER = 60.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MAX_BODY_BYTES = 16 * 1024 * 1024  # read and after decompression: a partner's listing is kilobytes
_CHUNK = 64 * 1024
_ACCEPT_ENCODING = "gzip, deflate"  # the encodings _read_body decodes itself, under the size cap


class _Bearer(requests.auth.AuthBase):
    # Set as the session's auth so requests never falls back to ~/.netrc, and so the token stays out of
    # session.headers (which are easy to log by mistake).
    def __init__(self, token: str | None) -> None:
        self._token = token
        # a token under 6 characters is no secret worth garbling every message for
        self._echoes = _echoes_of(token) if token and len(token) >= 6 else None

    def redact(self, text: str) -> str:
        """`text` with the token replaced by `<redacted>` wherever it stands, in any letter case or percent-encoded
        (a gateway may echo the header lower-cased, or the token as part of a URL)."""
        return self._echoes.sub(REDACTED, text) if self._echoes is not None else text

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<bearer token redacted>"


def _echoes_of(token: str) -> re.Pattern[str]:
    forms = {token, urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token, safe="")}
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


def _check_token(label: str, variable: str, token: str) -> None:
    # http.client refuses CR/LF and requests refuses leading blanks with a ValueError that quotes the header, and
    # with it the token; refuse every value that cannot travel in a header here, naming the variable only.
    try:
        token.encode("latin-1")
    except UnicodeEncodeError:
        problem = "a non-Latin-1 character"
    else:
        bad = next((c for c in token if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
        problem = "" if bad is None else ("a line break" if bad in "\r\n" else "a control character")
        if not problem and token != token.strip():
            problem = "a leading or trailing blank"
    if problem:
        raise PortalAuthError(f"{label}: the environment variable {variable} (token_env) holds {problem}, which "
                              "cannot be sent in an HTTP header; export the token alone (e.g. without a trailing "
                              "newline)")


class _Deadline:
    """The end of one request attempt: when it passes (or on cancel) the attempt's connection is shut down, so that
    neither a portal trickling bytes nor a stalled socket holds a thread past it."""

    def __init__(self, seconds: float, write: bool) -> None:
        self.write = write
        self.seconds = seconds
        self.expired = False
        self.cancelled = False
        self.finished = False  # the attempt is over: the watchdog leaves it alone
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        _watchdog().watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.deadline = None
        self.finished = True

    def attach(self, connection: HTTPConnection) -> None:
        """The connection this attempt uses (called as it sends the request, and after it connects)."""
        with self._lock:
            self._connection = connection
            ended = self.expired or self.cancelled
        if ended:
            _shutdown(connection)

    def end(self, *, cancelled: bool = False) -> None:
        """Shut the attempt's connection down: the deadline passed, or the run was interrupted."""
        with self._lock:
            if cancelled:
                self.cancelled = True
            else:
                self.expired = True
            connection = self._connection
        if connection is not None:
            _shutdown(connection)

    @property
    def ended(self) -> bool:
        """The deadline passed or the run was interrupted."""
        return self.expired or self.cancelled


_current = threading.local()  # the _Deadline of the attempt running on this thread


class _Watchdog:
    """One thread per process ends every attempt whose deadline passes (a timer thread per request cost more CPU than
    the request itself): a heap of deadlines, the earliest waited for."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._wake = threading.Condition()
        self._sequence = 0
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="hbsdeploy-deadlines", daemon=True).start()

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            self._sequence += 1
            heapq.heappush(self._heap, (time.monotonic() + deadline.seconds, self._sequence, deadline))
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)  # ended in time: forget it
                if not self._heap:
                    self._wake.wait()
                    continue
                when, _, deadline = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not deadline.finished:
                deadline.end()


_watchdog_lock = threading.Lock()
_watchdog_instance: _Watchdog | None = None


def _watchdog() -> _Watchdog:
    global _watchdog_instance
    with _watchdog_lock:
        if _watchdog_instance is None or _watchdog_instance.pid != os.getpid():  # a forked child has no thread
            _watchdog_instance = _Watchdog()
        return _watchdog_instance


def _shutdown(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # socket.socket's shutdown, not SSLSocket's, which would tear down the TLS
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # object under the reading thread


class _Watched:
    """A connection that hands itself to the deadline of the attempt that uses it."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._attach()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._attach()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _attach(self) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _BodyError(Exception):
    """The answer's body could not be read whole: cut off, too large, or not decodable."""


class _BodyRefused(_BodyError):
    """A body hbsdeploy will not take however often it asks (too large, an unknown encoding): never retried."""


class HttpPortal:
    """The portal API over HTTP(S), as described in schemas/portal-api.openapi.yaml."""

    listing_is_cheap = True

    def __init__(self, env: Environment, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] | None = None, rng: random.Random | None = None,
                 max_retry_after: float = MAX_RETRY_AFTER, backoff_base: float = BACKOFF_BASE,
                 backoff_cap: float = BACKOFF_CAP, pool_size: int = 10) -> None:
        self.env = env
        self.label = portal_label(env)
        self.base_url = env.portal.rstrip("/")
        self.request_count = 0
        self.retry_count = 0
        self._count_lock = threading.Lock()  # the counters are bumped from plan's and apply's worker threads
        self._cancelled = threading.Event()
        self._sleep = sleep or self._cancelled.wait  # a back-off wait ends at once on cancel()
        self._rng = rng or random.Random()
        self.max_retry_after = max_retry_after
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = (env.connect_timeout, env.read_timeout)
        self.deadline = env.total_timeout
        self._in_flight: set[_Deadline] = set()
        try:
            parse_portal_url(env.portal, protected=env.protected)
        except HostError as exc:
            raise PortalConfigError(f"{self.label}: portal {escape_line(redact_url(env.portal), 200)} {exc}; fix it "
                                    "in hbsdeploy.yaml") from None
        if not env.verify_tls and env.protected:
            raise PortalConfigError(f"{self.label}: verify_tls: false is refused for a protected environment; "
                                    "give the portal's CA in ca_bundle instead")
        self._verify: bool | str = str(env.ca_bundle) if env.ca_bundle else True
        if not env.verify_tls:
            self._verify = False
            log.warning("%s: TLS verification is off (verify_tls: false)", self.label)
        for setting, path in (("client_cert", env.client_cert), ("client_key", env.client_key),
                              ("ca_bundle", env.ca_bundle)):
            if path is not None and not path.is_file():
                raise PortalConfigError(f"{self.label}: {setting} {path} does not exist; fix the path in "
                                        "hbsdeploy.yaml")
        if env.client_key is not None and env.client_cert is None:
            raise PortalConfigError(f"{self.label}: client_key is set without client_cert; set both")
        self._cert: tuple[str, str] | str | None = None
        if env.client_cert is not None:
            self._cert = (str(env.client_cert), str(env.client_key)) if env.client_key else str(env.client_cert)
        token: str | None = None
        if env.token_env:
            token = os.environ.get(env.token_env) or None
            if token is None:
                raise PortalAuthError(f"{self.label}: the environment variable {env.token_env} (token_env) is not "
                                      "set or empty; export the portal's bearer token in it")
            _check_token(self.label, env.token_env, token)
        self._bearer = _Bearer(token)
        if session is None:
            session = requests.Session()
            # One pooled connection per worker thread: a smaller pool would close and re-handshake TLS each time.
            adapter = _Adapter(pool_connections=1, pool_maxsize=max(10, pool_size))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        # requests looks the proxy and CA variables up in the environment on every request (a scan of os.environ,
        # a third of a GET's client CPU): look them up once, here, as requests would, and switch that off.
        self._proxies = requests.utils.get_environ_proxies(self.base_url)
        if self._verify is True:
            self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
        self.session = session
        self.session.auth = self._bearer
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json",
                                     "Accept-Encoding": _ACCEPT_ENCODING})

    @classmethod
    def from_environment(cls, env: Environment, *, parallelism: int) -> HttpPortal:
        """The portal API at env.portal, with a pooled connection for each of `parallelism` workers."""
        return cls(env, pool_size=parallelism)

    # -- the Portal interface -----------------------------------------------------------------------------------

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type the portal knows for the partner, in one request."""
        response, _ = self._call("GET", service_types_path(partner_id), partner_id=partner_id)
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("service_types"), dict):
            raise self._shape("the list of service types", "an object with a `service_types` object")
        self._same_partner(body, partner_id)
        return self._states(partner_id, body["service_types"])

    def _states(self, partner_id: str, listed: dict[str, Any]) -> dict[str, ServiceTypeState]:
        states = {}
        for name, entry in listed.items():
            if not isinstance(entry, dict):
                raise self._shape(f"service type {name!r}", "an object with `settings` and `version`")
            states[name] = self._state(partner_id, name, entry)
        return states

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        """Every partner's service types the account holds: GET /v1/partners a page at a time (MAX_PAGE_SIZE each),
        following next_page_token until the last page. The next page is requested as soon as its token is known,
        while this page's entries are checked: the checking overlaps the portal's work instead of adding to it."""
        found: dict[str, dict[str, ServiceTypeState]] = {}
        seen_tokens: set[str] = set()
        last = ""  # the contract lists partners in ascending ID order (code points), so every page moves on
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hbsdeploy-page")
        try:
            body = self._partners_page(None)
            while True:
                token = self._next_page_token(body, seen_tokens, len(found))
                following = prefetch.submit(self._partners_page, token) if token is not None else None
                for item in body["partners"]:
                    if not isinstance(item, dict) or not isinstance(item.get("partner_id"), str) \
                            or not isinstance(item.get("service_types"), dict):
                        raise self._shape("an entry of the partners listing",
                                          "an object with `partner_id` and a `service_types` object")
                    partner_id = item["partner_id"]
                    if partner_id in found:
                        raise self._shape("the partners listing", f"a list naming each partner once "
                                          f"({partner_id!r} came twice)")
                    if partner_id <= last:
                        raise self._shape("the partners listing", f"a list in ascending ID order ({partner_id!r} "
                                          f"came after {last!r})")
                    last = partner_id
                    found[partner_id] = self._states(partner_id, item["service_types"])
                if following is None:
                    return found
                body = following.result()
        except BaseException:
            self.cancel()  # a failed listing ends the read: the page under way is abandoned, not waited for
            raise
        finally:
            prefetch.shutdown(wait=True, cancel_futures=True)

    def _partners_page(self, token: str | None) -> dict[str, Any]:
        try:
            response, _ = self._call("GET", partners_page_path(MAX_PAGE_SIZE, token), partner_id="",
                                     what="the partners listing", refuse_after_cancel=True)
        except PartnerNotFound:
            raise PortalProtocolError(f"{self.label}: the portal does not serve the partners listing (GET "
                                      f"{PARTNERS_PATH}, 404); the gateway implements an older "
                                      "schemas/portal-api.openapi.yaml: upgrade it, or plan with --partner") from None
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("partners"), list):
            raise self._shape("the partners listing", "an object with a `partners` list")
        return body

    def _next_page_token(self, body: dict[str, Any], seen_tokens: set[str], listed_before: int) -> str | None:
        """The page token to follow from this page (None after the last page), refused when the listing would not
        end: a token seen before, an empty page before a token, or more partners than any account holds."""
        token = body.get("next_page_token")
        if token is None or token == "":
            return None
        if not isinstance(token, str) or len(token) > 1000 or token in seen_tokens:
            raise self._shape("next_page_token", "a new page token (or none after the last page)")
        if not body["partners"]:
            raise self._shape("the partners listing", "a page with partners before a next_page_token")
        if listed_before + len(body["partners"]) >= MAX_LISTED_PARTNERS:
            raise PortalProtocolError(f"{self.label}: the partners listing goes on past "
                                      f"{MAX_LISTED_PARTNERS:,} partners; no HBS account holds that many, so "
                                      "the portal does not follow schemas/portal-api.openapi.yaml (plan with "
                                      "--partner to read partners one by one)")
        seen_tokens.add(token)
        return token

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type with its version (ETag)."""
        response, _ = self._call("GET", service_types_path(partner_id, service_type), partner_id=partner_id,
                                 service_type=service_type)
        return self._single(response, partner_id, service_type)

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """PUT the payload with If-Match; a retried PUT that meets 412 checks whether its first attempt landed."""
        _current.writing = True  # the read-back below belongs to the write: cancel() lets it finish too
        try:
            return self._update(partner_id, service_type, payload, if_match)
        finally:
            _current.writing = False

    def _update(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                if_match: str) -> ServiceTypeState:
        try:
            response, attempts = self._call("PUT", service_types_path(partner_id, service_type),
                                            partner_id=partner_id, service_type=service_type,
                                            body=dict(payload), if_match=if_match)
        except VersionConflict as conflict:
            if conflict.attempts <= 1:
                raise
            # An earlier attempt may have been applied and only its answer lost: if the portal now holds
            # exactly this payload, the update did happen.
            current = self.get_service_type(partner_id, service_type)
            if dict(current.settings) == normalize_settings(payload, fields_in(payload)):
                log.debug("%s: PUT retried after a lost answer; the portal holds the payload (version %s)",
                          self.label, current.version)
                return current
            raise
        return self._single(response, partner_id, service_type)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    # -- requests and retries -----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, partner_id: str, service_type: str | None = None,
              body: dict[str, Any] | None = None, if_match: str | None = None,
              what: str | None = None, refuse_after_cancel: bool = False) -> tuple[requests.Response, int]:
        if what is None:
            what = f"{service_type} of {partner_id}" if service_type else f"the service types of {partner_id}"
        try:
            return self._attempts(method, path, what=what, body=body, if_match=if_match,
                                  refuse_after_cancel=refuse_after_cancel)
        except PortalError as error:
            raise self._redacted(error) from None

    def _redacted(self, error: PortalError) -> PortalError:
        # A portal may echo the request, token included, in an error message: no relayed text carries it on.
        redact = self._bearer.redact
        error.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in error.args)
        details = getattr(error, "details", None)
        if isinstance(details, list):
            for item in details:
                for key, value in item.items():
                    item[key] = redact(value)
        return error

    def _attempts(self, method: str, path: str, *, what: str, body: dict[str, Any] | None,
                  if_match: str | None, refuse_after_cancel: bool = False) -> tuple[requests.Response, int]:
        url = self.base_url + path
        headers = {"If-Match": if_match} if if_match is not None else {}
        data = json.dumps(body).encode("utf-8") if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            deadline = _Deadline(self.deadline, write=method != "GET" or getattr(_current, "writing", False))
            with self._count_lock:  # under cancel()'s lock: a page after cancel is refused here, one before it ended
                if refuse_after_cancel and self._cancelled.is_set():
                    raise PortalUnavailable(f"{self.label}: interrupted; {what} was not requested")
                self.request_count += 1
                self._in_flight.add(deadline)
            started = time.monotonic()
            try:
                with deadline:
                    response = self._send(method, url, data, headers, deadline)
            except requests.exceptions.SSLError as exc:
                self._raise_if_ended(deadline, what)
                log.debug("%s %s -> TLS error after %.3fs: %s", method, redact_url(url),
                          time.monotonic() - started, exc)
                raise _tls_error(self.label, exc, self._cert is not None) from None
            except _BodyRefused as exc:  # the same answer would come again: retrying only spends the attempts
                self._raise_if_ended(deadline, what)
                raise PortalProtocolError(f"{self.label}: the portal's answer to {what}: {exc}; not retried, "
                                          "check the portal") from None
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError,
                    _BodyError) as exc:
                self._raise_if_ended(deadline, what)
                elapsed = time.monotonic() - started
                log.debug("%s %s -> %s after %.3fs", method, redact_url(url), type(exc).__name__, elapsed)
                tls = _tls_error(self.label, exc, self._cert is not None) if _looks_like_tls(exc) else None
                if tls is not None and isinstance(tls, PortalAuthError):
                    raise tls from None
                if attempt > self.env.max_retries:
                    raise PortalUnavailable(f"{self.label}: {_describe_connection(exc)} while reading/writing "
                                            f"{what}, after {attempt} attempts; check the URL, the network and "
                                            "the timeouts, then try again") from None
                self._backoff(attempt, None)
                continue
            finally:
                with self._count_lock:
                    self._in_flight.discard(deadline)
            elapsed = time.monotonic() - started
            self._log(method, url, response, elapsed, data)
            status = response.status_code
            if status in RETRY_STATUSES or (status == 500 and method == "GET"):
                retry_after = _retry_after(response)
                if retry_after is not None and retry_after > self.max_retry_after:
                    cap = self.max_retry_after
                    raise PortalUnavailable(f"{self.label}: the portal answered {status} and asks to wait "
                                            f"{retry_after:.0f} s (Retry-After), more than the {cap:.0f} s "
                                            "hbsdeploy waits; try again later")
                if attempt <= self.env.max_retries:
                    self._backoff(attempt, retry_after)
                    continue
                reason = "rate-limited the requests (429)" if status == 429 else f"answered {status}"
                raise PortalUnavailable(f"{self.label}: the portal {reason} for {what}, {attempt} attempts; "
                                        "try again later")
            self._raise_for_status(response, what, attempt)
            return response, attempt

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str],
              deadline: _Deadline) -> requests.Response:
        """One attempt: the request and its whole answer, read under the deadline and the size cap."""
        response = self.session.request(method, url, data=data, headers=headers, timeout=self.timeout,
                                        verify=self._verify, cert=self._cert, proxies=self._proxies,
                                        allow_redirects=False, stream=True)
        try:
            body = _read_body(response)
        finally:
            response.close()
        if deadline.ended:  # the shutdown may have come right after the last byte: the answer is not trusted
            raise _BodyError("the deadline passed")
        response._content = body
        return response

    def _raise_if_ended(self, deadline: _Deadline, what: str) -> None:
        if deadline.cancelled:
            raise PortalUnavailable(f"{self.label}: interrupted while reading/writing {what}; the request was "
                                    "abandoned")
        if deadline.expired:
            raise PortalUnavailable(f"{self.label}: the portal did not answer {what} in full within the "
                                    f"{self.deadline:g} s deadline (timeouts: total in hbsdeploy.yaml); the request "
                                    "was abandoned, not retried; check the portal, or raise the deadline")

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        # Full jitter: a random delay up to an exponentially growing ceiling; Retry-After wins when given.
        if retry_after is not None:
            delay = retry_after
        else:
            delay = self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
        with self._count_lock:
            self.retry_count += 1
        log.debug("%s: retry %d in %.3fs", self.label, attempt, delay)
        self._sleep(delay)
        self._raise_if_cancelled()

    def cancel(self) -> None:
        """Stop: a call in back-off fails at once, a listing requests no further page, and every read under way is
        abandoned on the spot (its socket shut down); a write under way still runs to its answer, within its
        deadline, so that its outcome is known (apply calls this on Ctrl-C). A call made after it still sends its
        first attempt: apply's look at a write whose answer was lost settles that write's outcome."""
        self._cancelled.set()
        with self._count_lock:
            reads = [deadline for deadline in self._in_flight if not deadline.write]
        for deadline in reads:
            deadline.end(cancelled=True)

    def _raise_if_cancelled(self, when: str = "while waiting to retry; the request was not sent again") -> None:
        if self._cancelled.is_set():
            raise PortalUnavailable(f"{self.label}: interrupted {when}")

    def _log(self, method: str, url: str, response: requests.Response, elapsed: float, data: bytes | None) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        sent = response.request.headers if response.request is not None else {}
        log.debug("%s %s -> %d in %.3fs; request headers %s; response headers %s; request body %s; "
                  "response body %s", method, redact_url(url), response.status_code, elapsed,
                  redact_headers(sent), redact_headers(response.headers),
                  (data or b"").decode("utf-8", "replace")[:1000],
                  self._bearer.redact(response.content[:1000].decode("utf-8", "replace")))

    def _raise_for_status(self, response: requests.Response, what: str, attempts: int) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = _server_message(response)
        said = f" ({status}: {message})" if message else f" ({status})"
        error: PortalError
        if status == 401:
            hint = (f"check the token in ${self.env.token_env}" if self.env.token_env
                    else "set token_env in hbsdeploy.yaml to the variable holding the portal's token")
            error = PortalAuthError(f"{self.label}: the portal refused the credentials{said}; {hint}")
        elif status == 403:
            error = PortalAuthError(f"{self.label}: not allowed to access {what}{said}; the account needs the "
                                    "Partner Account Administrator role and a client certificate for this partner")
        elif status == 404:
            error = PartnerNotFound(f"{self.label}: the portal does not know {what}{said}; check the partner ID "
                                    "and the service type")
        elif status == 412:
            error = VersionConflict(f"{self.label}: {what} changed since the plan (412: the If-Match version is "
                                    "stale); run plan again")
        elif status == 422:
            details = _server_details(response)
            summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or message or "no reason given"
            error = PayloadRejected(f"{self.label} refused the settings of {what} (422): {summary}", details)
        elif status == 428:
            error = PortalProtocolError(f"{self.label}: the portal wants If-Match{said} but did not get it; a proxy "
                                        "between hbsdeploy and the portal may drop the header")
        elif 300 <= status < 400:
            location = redact_url(response.headers.get("Location", "?"))
            error = PortalProtocolError(f"{self.label}: the portal redirected to {location} ({status}); set "
                                        "portal: to the final URL")
        elif status >= 500 or status == 429:
            error = PortalUnavailable(f"{self.label}: the portal failed{said} for {what}; try again later")
        elif status == 400:
            error = PortalRefused(f"{self.label}: the portal called the request malformed{said}; check the payload "
                                  "templates against schemas/portal-payload.schema.json")
        else:
            error = PortalRefused(f"{self.label}: unexpected answer{said} for {what}")
        error.attempts = attempts
        raise error

    # -- response bodies ----------------------------------------------------------------------------------------

    def _json(self, response: requests.Response) -> Any:
        try:
            return loads_strict(response.content)
        except RecursionError:
            raise PortalProtocolError(f"{self.label}: the portal answered with JSON nested too deeply to read; the "
                                      "portal does not follow schemas/portal-api.openapi.yaml") from None
        except UnicodeError:
            raise PortalProtocolError(f"{self.label}: the portal's answer holds text that is not valid Unicode (a "
                                      "lone surrogate \\udXXX escape); the portal does not follow "
                                      "schemas/portal-api.openapi.yaml") from None
        except ValueError:
            kind = escape_line(response.headers.get("Content-Type", "no content type"), 100)
            raise PortalProtocolError(f"{self.label}: the portal answered {response.status_code} with a body that is "
                                      f"not JSON ({kind}); is portal: the API's base URL?") from None

    def _shape(self, what: str, expected: str) -> PortalProtocolError:
        return PortalProtocolError(f"{self.label}: {what} in the portal's answer is not {expected}; "
                                   "the portal does not follow schemas/portal-api.openapi.yaml")

    def _same_partner(self, body: dict[str, Any], partner_id: str) -> None:
        if body.get("partner_id") != partner_id:
            raise self._shape("partner_id", f"{partner_id!r} (the partner asked for)")

    def _single(self, response: requests.Response, partner_id: str, service_type: str) -> ServiceTypeState:
        body = self._json(response)
        if not isinstance(body, dict):
            raise self._shape("the service type", "an object")
        self._same_partner(body, partner_id)
        if body.get("service_type") != service_type:
            raise self._shape("service_type", repr(service_type))
        return self._state(partner_id, service_type, body)

    def _state(self, partner_id: str, service_type: str, entry: dict[str, Any]) -> ServiceTypeState:
        settings = entry.get("settings")
        if not isinstance(settings, dict):
            raise self._shape(f"settings of {service_type}", "an object")
        validator = payload_validator()
        errors = [] if validator.is_valid(settings) else sorted(validator.iter_errors(settings),
                                                                  key=lambda e: str(e.absolute_path))
        if errors:
            raise self._shape(f"settings of {service_type}", f"valid settings ({one_line(errors[0].message, 200)})")
        version = entry.get("version")
        if not isinstance(version, str) or not version or len(version) > 200:
            raise self._shape(f"version of {service_type}", "a non-empty string")
        spec = self.env.schemas.service_types.get(service_type)  # its fields: the project's partner schema
        fields = spec.fields if spec is not None else fields_in(settings)
        return ServiceTypeState(partner_id, service_type, normalize_settings(settings, fields), version)


# A bound on a listing that never ends (every page new partners and a new token): Hubject's whole network has a few
# thousand partners, and one account holds its own.
MAX_LISTED_PARTNERS = 100_000

_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")


def _read_body(response: requests.Response) -> bytes:
    """The whole body, decompressed here (gzip, deflate) so that neither the bytes read nor the bytes they expand to
    pass MAX_BODY_BYTES; _BodyError when it is cut off, too large or does not decode."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        decoder = None
    elif encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    else:
        raise _BodyRefused(f"the body came in the unsupported encoding {escape_line(encoding, 40)!r}")
    chunks: list[bytes] = []
    read = size = 0
    while True:
        chunk = response.raw.read(_CHUNK, decode_content=False)
        if not chunk:
            break
        read += len(chunk)
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, MAX_BODY_BYTES + 1 - size)
            except zlib.error:
                raise _BodyError(f"the {encoding} body does not decode") from None
            if decoder.unconsumed_tail:  # more output than the cap allows is waiting: a compression bomb
                raise _BodyRefused(f"the body expands to more than {MAX_BODY_BYTES // (1024 * 1024)} MiB")
        size += len(chunk)
        if read > MAX_BODY_BYTES or size > MAX_BODY_BYTES:
            raise _BodyRefused(f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB")
        chunks.append(chunk)
    if decoder is not None and read and not decoder.eof:
        raise _BodyError(f"the {encoding} body does not decode (cut off)")
    if decoder is not None and decoder.unused_data:  # a second gzip member: refused rather than silently dropped
        raise _BodyError(f"the {encoding} body has data after its end")
    return b"".join(chunks)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):  # ASCII digits only: str.isdigit() takes `²`, which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _server_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _server_message(response: requests.Response) -> str:
    message = _server_body(response).get("message")
    if not isinstance(message, str):
        return ""
    return escape_line(message, 300)


def _server_details(response: requests.Response) -> list[dict[str, str]]:
    details = _server_body(response).get("details")
    if not isinstance(details, list):
        return []
    found = []
    for item in details[:100]:
        if isinstance(item, dict):
            found.append({key: escape_line(str(item.get(key, "")), 300) for key in ("field", "rule", "message")})
    return found


_TLS_MARKERS = ("ssl", "tls", "certificate")


def _looks_like_tls(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _TLS_MARKERS)


def _tls_error(label: str, exc: BaseException, has_client_cert: bool) -> PortalError:
    """A TLS failure told plainly: expired, wrong host, unknown CA, or our client certificate refused."""
    text = str(exc)
    lowered = text.lower()
    if "eof occurred in violation of protocol" in lowered or "unexpected eof" in lowered:
        # The server hung up during the handshake: with TLS 1.3 that is how a refused client certificate looks.
        cause = ("it probably requires a client certificate: set client_cert and client_key" if not has_client_cert
                 else "it probably does not accept the client certificate in client_cert")
        return PortalUnavailable(f"{label}: the portal closed the TLS connection during the handshake; {cause}")
    if "certificate required" in lowered or "alert bad certificate" in lowered or "alert unknown ca" in lowered \
            or "alert certificate unknown" in lowered or "alert handshake failure" in lowered:
        return PortalAuthError(f"{label}: the portal refused the TLS client certificate (or none was sent); set "
                               "client_cert and client_key to a certificate the portal trusts")
    if "certificate has expired" in lowered or "certificate is not yet valid" in lowered:
        problem = "has expired" if "expired" in lowered else "is not valid yet"
        return PortalUnavailable(f"{label}: TLS certificate verification failed: the portal's certificate "
                                 f"{problem}; the portal's operator must renew it")
    if "hostname mismatch" in lowered or "doesn't match" in lowered or "ip address mismatch" in lowered:
        return PortalUnavailable(f"{label}: TLS certificate verification failed: the portal's certificate is not "
                                 "for this host name; check the portal URL")
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return PortalUnavailable(f"{label}: TLS certificate verification failed: the portal's certificate is "
                                 "signed by an unknown CA (unable to verify it); set ca_bundle to the CA that "
                                 "signed it")
    if "no such file" in lowered or "pem lib" in lowered or "key values mismatch" in lowered:
        return PortalConfigError(f"{label}: the client certificate or key cannot be loaded; check client_cert and "
                                 "client_key (a PEM certificate and its unencrypted private key)")
    return PortalUnavailable(f"{label}: the TLS handshake with the portal failed ({escape_line(text, 200)}); check the "
                             "URL and TLS settings")


def _describe_connection(exc: BaseException) -> str:
    if isinstance(exc, _BodyError):
        return f"the portal's answer could not be read ({exc})"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the portal did not answer within the read timeout"
    text = str(exc).lower()
    if "refused" in text:
        return "the connection was refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "the portal's host name does not resolve"
    if "aborted" in text or "reset" in text or "remote end closed" in text or "remotedisconnected" in text:
        return "the portal closed the connection"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
                        urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError)):
        return "the portal closed the connection while answering"
    return "the portal could not be reached"
