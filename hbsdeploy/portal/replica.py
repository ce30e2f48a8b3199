"""A replica of the HBS portal's web UI (login, Administration, Service Type Settings) on the emulator's store.

The emulator serves it next to /v1/ (`hbsdeploy portal serve --ui`): a save here goes through the same LocalPortal
as the API, so the portal's rules apply and each side sees the other's writes. See docs/replica.md.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from hbsdeploy.portal.errors import PartnerNotFound, PayloadRejected, PortalError, VersionConflict
from hbsdeploy.portal.local import LocalPortal
from hbsdeploy.portal.replica_html import DEFAULT_LABELS, FormState, Html, Pages, SettingsView
from hbsdeploy.portal.replica_sessions import Session, SessionTable
from hbsdeploy.portal.replica_users import (
    Directory,
    ReplicaSetupError,
    User,
    make_account,
    make_user,
    sha256_hex,
)
from hbsdeploy.portal.totp import verify_totp

COOKIE = "hbs_session"
SETTINGS_PATH = "/administration/service-type-settings"
MAX_CODE_FAILURES = 5  # wrong verification codes before the half-done login is dropped
MAX_FORM_FIELDS = 64


@dataclass(frozen=True)
class Response:
    """What the emulator sends back for a UI request."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes


class Replica:
    """The portal's web UI over one LocalPortal; its set-up methods are for tests (users, accounts, sessions)."""

    def __init__(self, portal: LocalPortal, directory: Directory | None = None, *, session_minutes: float = 30,
                 secure: bool = False, clock: Callable[[], float] = time.time) -> None:
        if session_minutes <= 0:
            raise ReplicaSetupError("the UI session lifetime must be more than 0 minutes")
        self.portal = portal
        self.directory = directory or Directory()
        self.secure = secure
        self.clock = clock
        self.sessions = SessionTable(session_minutes * 60, self._now)
        self._labels = dict(DEFAULT_LABELS)
        self._lock = threading.Lock()
        self._delays: dict[str, float] = {}
        self.sleep: Callable[[float], None] = time.sleep
        for account_id in self.directory.account_ids():
            portal.register_partner(account_id)

    def _now(self) -> float:
        return self.clock()

    # -- set-up (tests and the users file) ---------------------------------------------------------------------------

    def add_user(self, username: str, password: str, accounts: Iterable[str], *, totp_secret: str | None = None,
                 role: str = "administrator") -> None:
        """Let a user log in, administering `accounts` (registered in the store if new)."""
        user = make_user(username, password, accounts, totp_secret=totp_secret, role=role)
        for account_id in user.accounts:
            self.portal.register_partner(account_id)
        self.directory.add_user(user)

    def add_account(self, account_id: str, name: str = "", certificates: Iterable[str] = ()) -> None:
        """Describe a partner account: its name and the fingerprints of its uploaded certificates."""
        account = make_account(account_id, name, certificates)
        self.portal.register_partner(account.id)
        self.directory.add_account(account)

    def expire_sessions(self, username: str | None = None) -> int:
        """End the sessions of one user (or everyone's) now, as a timeout would; how many ended."""
        return self.sessions.expire(username)

    def relabel(self, key: str, text: str) -> None:
        """Show another text for one label (a portal that changed a label); keys are DEFAULT_LABELS'."""
        if key not in DEFAULT_LABELS:
            raise ReplicaSetupError(f"no label {key!r}; the replica's labels are: {', '.join(DEFAULT_LABELS)}")
        with self._lock:
            self._labels[key] = text

    def slow_down(self, path: str, seconds: float) -> None:
        """Delay every answer of one page (e.g. SETTINGS_PATH) by `seconds`, on top of --latency-ms; 0 ends it."""
        if seconds < 0:
            raise ReplicaSetupError(f"a page delay must not be negative, not {seconds}")
        with self._lock:
            if seconds:
                self._delays[path] = seconds
            else:
                self._delays.pop(path, None)

    def reset_labels(self) -> None:
        """Back to the portal's own labels."""
        with self._lock:
            self._labels = dict(DEFAULT_LABELS)

    def _pages(self) -> Pages:
        with self._lock:
            return Pages(dict(self._labels))

    # -- serving ---------------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request for a UI page (`headers` by lower-case name)."""
        pages = self._pages()
        parts = urlsplit(target)
        try:
            fields = parse_qs(parts.query, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            return self._page(400, pages.message(_nonce(), HTTPStatus(400).phrase, [pages.labels["not_found"]],
                                                 logged_in=False))
        query = {key: values[0] for key, values in fields.items()}
        request = _Request(method, parts.path.rstrip("/") or "/", query, headers, body)
        with self._lock:
            delay = self._delays.get(request.path, 0.0)
        if delay:
            self.sleep(delay)
        routes: dict[str, dict[str, Callable[[_Request, Pages], Response]]] = {
            "/": {"GET": self._home},
            "/login": {"GET": self._login_form, "POST": self._login},
            "/login/verify": {"GET": self._verification_form, "POST": self._verify},
            "/logout": {"GET": self._logout},
            "/administration": {"GET": self._administration},
            SETTINGS_PATH: {"GET": self._settings_page, "POST": self._settings_post},
        }
        methods = routes.get(request.path)
        if methods is None:
            return self._page(404, pages.message(_nonce(), pages.labels["not_found"], [pages.labels["not_found"]],
                                                 logged_in=False))
        handler = methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = ", ".join(methods)
            reply = self._page(405, pages.message(_nonce(), HTTPStatus(405).phrase, [f"Use {allowed}."],
                                                  logged_in=False))
            return Response(reply.status, reply.body, (*reply.headers, ("Allow", allowed)))
        try:
            return handler(request, pages)
        except _BadForm:
            return self._page(400, pages.message(_nonce(), HTTPStatus(400).phrase, [pages.labels["bad_form"]],
                                                 logged_in=False))
        except PortalError:
            return self.error_page(503)

    def error_page(self, status: int) -> Response:
        """The page the portal shows when it fails (the emulator's injected faults use it too)."""
        pages = self._pages()
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        reply = self._page(status, pages.message(_nonce(), title, [pages.labels["unavailable"]], logged_in=False))
        extra = (("Retry-After", "1"),) if status in (429, 503) else ()
        return Response(reply.status, reply.body, (*reply.headers, *extra))

    # -- login -----------------------------------------------------------------------------------------------------

    def _login_form(self, request: _Request, pages: Pages) -> Response:
        session = self._session(request)
        if session is not None and session.verified:
            return _redirect("/")
        messages = [pages.labels["session_expired"]] if request.query.get("expired") == "1" else []
        return self._page(200, pages.login(_nonce(), messages))

    def _login(self, request: _Request, pages: Pages) -> Response:
        form = _form(request)
        old = self._cookie(request)
        if old:
            self.sessions.drop(old)
        user = self.directory.user(form.get("username", ""))
        password = form.get("password", "")
        if user is None or not user.check_password(password):
            return self._page(200, pages.login(_nonce(), [pages.labels["invalid_credentials"]]))
        session = self.sessions.create(user.username, verified=user.totp_secret is None)
        target = "/" if session.verified else "/login/verify"
        return _redirect(target, self._set_cookie(session.token))

    def _verification_form(self, request: _Request, pages: Pages) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        if session.verified:
            return _redirect("/")
        return self._page(200, pages.verification(_nonce(), session.csrf))

    def _verify(self, request: _Request, pages: Pages) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_login(request)
        if session.verified:
            return _redirect("/")
        form = _form(request)
        if not _csrf_ok(session, form):
            return self._page(403, pages.verification(_nonce(), session.csrf, [pages.labels["bad_form"]]))
        user = self.directory.user(session.username)
        if user is None or user.totp_secret is None:
            self.sessions.drop(session.token)
            return self._to_login(request)
        if not verify_totp(user.totp_secret, form.get("code", ""), self.clock()):
            session.failures += 1
            if session.failures >= MAX_CODE_FAILURES:
                self.sessions.drop(session.token)
                return self._page(200, pages.login(_nonce(), [pages.labels["invalid_code"]]),
                                  (("Set-Cookie", self._clear_cookie()),))
            return self._page(200, pages.verification(_nonce(), session.csrf, [pages.labels["invalid_code"]]))
        promoted = self.sessions.promote(session)
        return _redirect("/", self._set_cookie(promoted.token))

    def _logout(self, request: _Request, pages: Pages) -> Response:
        token = self._cookie(request)
        if token:
            self.sessions.drop(token)
        return _redirect("/login", self._clear_cookie())

    # -- pages behind the login ------------------------------------------------------------------------------------

    def _home(self, request: _Request, pages: Pages) -> Response:
        session, user = self._logged_in(request)
        if session is None or user is None:
            return self._to_login(request)
        return self._page(200, pages.home(_nonce(), user.username))

    def _administration(self, request: _Request, pages: Pages) -> Response:
        session, user = self._logged_in(request)
        if session is None or user is None:
            return self._to_login(request)
        return self._page(200, pages.administration(_nonce()))

    def _settings_page(self, request: _Request, pages: Pages) -> Response:
        session, user = self._logged_in(request)
        if session is None or user is None:
            return self._to_login(request)
        status, session.flash = session.flash, None
        if not user.accounts:
            return self._page(200, pages.settings(_nonce(), None, status=status))
        account = request.query.get("account") or user.accounts[0]
        service_type = request.query.get("service_type") or next(iter(self.portal.service_types))
        refusal = self._refusal(pages, user, account, service_type)
        if refusal is not None:
            return refusal
        messages = []
        editing = request.query.get("mode") == "edit"
        if editing and not user.may_edit:
            editing = False
            messages.append(pages.labels["not_administrator"])
        view = self._view(session, user, account, service_type, editing=editing)
        return self._page(200, pages.settings(_nonce(), view, messages=messages, status=status))

    def _settings_post(self, request: _Request, pages: Pages) -> Response:
        session, user = self._logged_in(request)
        if session is None or user is None:
            return self._to_login(request)
        form = _form(request)
        if not _csrf_ok(session, form):
            return self._page(403, pages.message(_nonce(), pages.labels["service_type_settings"],
                                                 [pages.labels["bad_form"]], logged_in=True))
        account, service_type = form.get("account", ""), form.get("service_type", "")
        refusal = self._refusal(pages, user, account, service_type)
        if refusal is not None:
            return refusal
        back = f"{SETTINGS_PATH}?{urlencode({'account': account, 'service_type': service_type})}"
        if not user.may_edit:
            view = self._view(session, user, account, service_type, editing=False)
            return self._page(403, pages.settings(_nonce(), view, messages=[pages.labels["not_administrator"]]))
        if form.get("action") == "cancel":
            return _redirect(back)
        shown = FormState(
            online_request="online_request" in form,
            broadcast_request="broadcast_request" in form,
            service_url=form.get("service_url", ""),
            client_certification="client_certification" in form,
            certificate=form.get("certificate", "hubject"),
            certificate_sha256=form.get("certificate_sha256", ""),
        )
        payload: dict[str, Any] = {
            "online_request": shown.online_request,
            "broadcast_request": shown.broadcast_request,
            # A browser does not send the disabled Service URL; a client that sends it anyway meets the rules.
            "service_url": shown.service_url or None,
            "client_certification": shown.client_certification,
            "certificate": shown.certificate,
            "certificate_sha256": (shown.certificate_sha256 or None) if shown.certificate == "user" else None,
        }
        fields = self.portal.service_types[service_type].fields  # the page shows this service type's only
        payload = {name: value for name, value in payload.items() if name in fields}
        messages = self._certificate_problems(pages, account, service_type, payload)
        if not messages:
            try:
                self.portal.update_service_type(account, service_type, payload, form.get("version", ""))
            except PayloadRejected as exc:
                messages = [str(detail.get("message", "")) for detail in exc.details] or [str(exc)]
            except VersionConflict:
                view = self._view(session, user, account, service_type, editing=False)
                return self._page(409, pages.settings(_nonce(), view, messages=[pages.labels["changed_meanwhile"]]))
            except PartnerNotFound:
                return self._page(404, pages.message(_nonce(), pages.labels["service_type_settings"],
                                                     [pages.labels["not_found"]], logged_in=True))
        if messages:
            view = self._view(session, user, account, service_type, editing=True, shown=shown,
                              version=form.get("version", ""))
            return self._page(422, pages.settings(_nonce(), view, messages=[pages.labels["not_updated"], *messages]))
        session.flash = pages.labels["updated"]
        return _redirect(back)

    def _certificate_problems(self, pages: Pages, account: str, service_type: str,
                              payload: Mapping[str, Any]) -> list[str]:
        """A User Certificate must be one uploaded for the account (or the one already saved)."""
        chosen = payload.get("certificate_sha256")
        if not isinstance(chosen, str) or sha256_hex(chosen) != chosen:
            return []  # absent or malformed: the portal's rules name it
        uploaded = self.directory.account(account).certificates
        current = self.portal.get_service_type(account, service_type).settings.get("certificate_sha256")
        return [] if chosen in uploaded or chosen == current else [pages.labels["unknown_certificate"]]

    def _refusal(self, pages: Pages, user: User, account: str, service_type: str) -> Response | None:
        if account not in user.accounts:
            return self._page(403, pages.message(_nonce(), pages.labels["service_type_settings"],
                                                 [pages.labels["not_allowed"]], logged_in=True))
        if service_type not in self.portal.service_types:
            return self._page(404, pages.message(_nonce(), pages.labels["service_type_settings"],
                                                 [pages.labels["not_found"]], logged_in=True))
        return None

    def _view(self, session: Session, user: User, account: str, service_type: str, *, editing: bool,
              shown: FormState | None = None, version: str | None = None) -> SettingsView:
        state = self.portal.get_service_type(account, service_type)
        specs = list(self.portal.service_types.values())
        return SettingsView(
            accounts=[(account_id, self.directory.account(account_id).title) for account_id in user.accounts],
            account=account, service_types=specs, spec=self.portal.service_types[service_type],
            version=state.version if version is None else version,
            form=shown or FormState.of(state.settings),
            certificates=self.directory.account(account).certificates,
            editing=editing, may_edit=user.may_edit, csrf=session.csrf)

    # -- sessions and cookies --------------------------------------------------------------------------------------

    def _cookie(self, request: _Request) -> str | None:
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value
        return None

    def _session(self, request: _Request) -> Session | None:
        token = self._cookie(request)
        return self.sessions.lookup(token) if token else None

    def _logged_in(self, request: _Request) -> tuple[Session | None, User | None]:
        session = self._session(request)
        if session is None or not session.verified:
            return None, None
        user = self.directory.user(session.username)
        if user is None:
            self.sessions.drop(session.token)
            return None, None
        return session, user

    def _to_login(self, request: _Request) -> Response:
        """No live session: to the login page, saying the session expired when the browser had one."""
        token = self._cookie(request)
        if token is None:
            return _redirect("/login")
        session = self.sessions.lookup(token)
        if session is not None and not session.verified:
            return _redirect("/login/verify")
        return _redirect("/login?expired=1", self._clear_cookie())

    def _set_cookie(self, token: str) -> str:
        return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")

    def _clear_cookie(self) -> str:
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")

    def _page(self, status: int, page: Html, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        policy = (f"default-src 'none'; style-src 'nonce-{page.nonce}'; script-src 'nonce-{page.nonce}'; "
                  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        return Response(status, page.text.encode("utf-8"), (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", policy),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            *headers,
        ))


class _BadForm(Exception):
    """The body is not a urlencoded form (or has too many fields)."""


def _form(request: _Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _BadForm
    try:
        text = request.body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise _BadForm from None
    return {key: values[0] for key, values in fields.items()}


def _csrf_ok(session: Session, form: Mapping[str, str]) -> bool:
    given = form.get("csrf_token", "")
    return bool(given) and secrets.compare_digest(given.encode(), session.csrf.encode())


def _redirect(location: str, cookie: str | None = None) -> Response:
    headers: tuple[tuple[str, str], ...] = (("Location", location),)
    if cookie is not None:
        headers += (("Set-Cookie", cookie),)
    return Response(303, b"", headers)


def _nonce() -> str:
    return secrets.token_urlsafe(16)
