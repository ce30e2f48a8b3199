"""The portal API client: requests with mutual TLS, a bearer token, timeouts and bounded, jittered retries."""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from hbsdeploy import __version__
from hbsdeploy.load.settings import normalize_settings
from hbsdeploy.portal.contract import payload_validator, service_types_path
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
from hbsdeploy.text import escape_line, one_line, redact_headers, redact_url

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment

log = logging.getLogger("hbsdeploy.portal")

USER_AGENT = f"hbsdeploy/{__version__}"
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # and 500 for a GET: a read changes nothing, so repeating it is safe
MAX_RETRY_AFTER = 60.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


class _Bearer(requests.auth.AuthBase):
    # Set as the session's auth so requests never falls back to ~/.netrc, and so the token stays out of
    # session.headers (which are easy to log by mistake).
    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<bearer token redacted>"


class HttpPortal:
    """The portal API over HTTP(S), as described in schemas/portal-api.openapi.yaml."""

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
        if session is None:
            session = requests.Session()
            # One pooled connection per worker thread: a smaller pool would close and re-handshake TLS each time.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, pool_size))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self.session.auth = _Bearer(token)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

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
        states = {}
        for name, entry in body["service_types"].items():
            if not isinstance(entry, dict):
                raise self._shape(f"service type {name!r}", "an object with `settings` and `version`")
            states[name] = self._state(partner_id, name, entry)
        return states

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type with its version (ETag)."""
        response, _ = self._call("GET", service_types_path(partner_id, service_type), partner_id=partner_id,
                                 service_type=service_type)
        return self._single(response, partner_id, service_type)

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """PUT the payload with If-Match; a retried PUT that meets 412 checks whether its first attempt landed."""
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
            if dict(current.settings) == normalize_settings(payload):
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
              body: dict[str, Any] | None = None, if_match: str | None = None) -> tuple[requests.Response, int]:
        url = self.base_url + path
        what = f"{service_type} of {partner_id}" if service_type else f"the service types of {partner_id}"
        headers = {"If-Match": if_match} if if_match is not None else {}
        data = json.dumps(body).encode("utf-8") if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            with self._count_lock:
                self.request_count += 1
            started = time.monotonic()
            try:
                response = self.session.request(method, url, data=data, headers=headers, timeout=self.timeout,
                                                verify=self._verify, cert=self._cert, allow_redirects=False)
            except requests.exceptions.SSLError as exc:
                log.debug("%s %s -> TLS error after %.3fs: %s", method, redact_url(url),
                          time.monotonic() - started, exc)
                raise _tls_error(self.label, exc, self._cert is not None) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
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
        """Stop waiting to retry: a call in back-off fails at once (apply calls this on Ctrl-C, so that it ends
        promptly; a request already under way, and the read-back of a write, still run to their end)."""
        self._cancelled.set()

    def _raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise PortalUnavailable(f"{self.label}: interrupted while waiting to retry; the request was not sent again")

    def _log(self, method: str, url: str, response: requests.Response, elapsed: float, data: bytes | None) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        sent = response.request.headers if response.request is not None else {}
        log.debug("%s %s -> %d in %.3fs; request headers %s; response headers %s; request body %s; "
                  "response body %s", method, redact_url(url), response.status_code, elapsed,
                  redact_headers(sent), redact_headers(response.headers),
                  (data or b"").decode("utf-8", "replace")[:1000], response.text[:1000])

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
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
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
        errors = sorted(payload_validator().iter_errors(settings), key=lambda e: str(e.absolute_path))
        if errors:
            raise self._shape(f"settings of {service_type}", f"valid settings ({one_line(errors[0].message, 200)})")
        version = entry.get("version")
        if not isinstance(version, str) or not version or len(version) > 200:
            raise self._shape(f"version of {service_type}", "a non-empty string")
        return ServiceTypeState(partner_id, service_type, normalize_settings(settings), version)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
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
    return "the portal could not be reached"
