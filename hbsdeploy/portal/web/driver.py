"""The web portal: the Portal interface over the HBS portal's web UI, driven in Chromium with Playwright (sync API).

Playwright's sync objects belong to the thread that made them, so each of the portal's workers (at most
`parallelism`, each one browser context) lives on one browser host (hosts.py: a thread with its own Playwright and
browser); callers on any thread borrow a free worker and wait for its answer. The session (cookies) is shared: one
worker logs in again when it expires, the others pick up the new one.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import normalize_settings
from hbsdeploy.load.uimap import UiMap, default_uimap
from hbsdeploy.portal import (
    PartnerNotFound,
    PayloadRejected,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalProtocolError,
    PortalRefused,
    PortalUnavailable,
    ServiceTypeState,
    VersionConflict,
)
from hbsdeploy.portal.web.browser import find_browser
from hbsdeploy.portal.web.forms import FormValues, content_version, differences, evidence_paths, shown_controls
from hbsdeploy.portal.web.hosts import BrowserHost, host
from hbsdeploy.portal.web.pages import LoginPage, SessionExpired, SettingsPage
from hbsdeploy.portal.web.session import read_session, remove_session, session_file, write_session
from hbsdeploy.text import escape_line

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from hbsdeploy.load.config import Environment

T = TypeVar("T")
# What a failed step raises when the portal kept nothing (apply then need not look whether the write was made).
NOTHING_WRITTEN = (VersionConflict, PayloadRejected, PartnerNotFound, PortalAuthError, PortalRefused, PortalConfigError)
_STOP = object()


class Credentials:
    """The user name, password and TOTP secret named by an environment's *_env settings (read when needed)."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    @property
    def available(self) -> bool:
        """Whether username_env and password_env are configured and both variables are set."""
        return not self.missing() and bool(self.env.username_env and self.env.password_env)

    def missing(self) -> list[str]:
        """The configured credential variables that are not set."""
        return [v for v in (self.env.username_env, self.env.password_env) if v and not os.environ.get(v)]

    def _value(self, variable: str) -> str:
        value = os.environ.get(variable)
        if not value:
            raise PortalAuthError(f"{variable} is not set; set it for unattended log-ins, or run "
                                  f"`hbsdeploy login --env {self.env.name}`")
        return value

    def user_and_password(self) -> tuple[str, str]:
        assert self.env.username_env and self.env.password_env
        return self._value(self.env.username_env), self._value(self.env.password_env)

    def totp_code(self) -> Callable[[], str] | None:
        """A function giving the current verification code, or None without totp_env."""
        variable = self.env.totp_env
        if not variable:
            return None

        def code() -> str:
            from hbsdeploy.portal.totp import TotpSecretError, totp

            try:
                return totp(self._value(variable), time.time())
            except TotpSecretError as exc:
                raise PortalAuthError(f"{variable}: {exc}") from None

        return code


class SessionKeeper:
    """The shared login: the storage_state every context starts from, its generation, and who renews it."""

    def __init__(self, env: Environment, start_url: str, *, load: bool = True) -> None:
        assert env.state_dir is not None
        self.env = env
        self.start_url = start_url
        self.path = session_file(env.state_dir, env.name)
        self.credentials = Credentials(env)
        self.lock = threading.Lock()
        self.generation = 0
        self.state: dict[str, Any] | None = read_session(self.path, start_url, env.name) if load else None
        self.logins = 0

    def renew(self, seen: int, log_in: Callable[[], dict[str, Any]]) -> None:
        """After a worker met the login page with generation `seen`: log in again, unless another worker did."""
        with self.lock:
            if self.generation != seen and self.state is not None:
                return
            if not self.credentials.available:
                unset = self.credentials.missing()
                how = (f"set {' and '.join(unset)}" if unset else
                       "set username_env and password_env for unattended runs")
                if self.state is not None:
                    remove_session(self.path)
                    self.state = None
                    raise PortalAuthError(f"the session of portal {self.env.name!r} has expired; run `hbsdeploy login "
                                          f"--env {self.env.name}`, or {how}")
                raise PortalAuthError(f"no session for portal {self.env.name!r}; run `hbsdeploy login --env "
                                      f"{self.env.name}`, or {how}")
            state = log_in()
            write_session(self.path, self.start_url, state)
            self.state = state
            self.generation += 1
            self.logins += 1


class _Worker:
    """One browser context on one host, and the page objects on its page; used only on its host's thread."""

    def __init__(self, portal: WebPortal, on: BrowserHost) -> None:
        self.portal = portal
        self.host = on
        self.browser: Browser | None = None  # the host's browser, handed to each call
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.generation = -1

    def _timeout_ms(self) -> float:
        return self.portal.env.page_timeout * 1000

    def _new_context(self, state: dict[str, Any] | None) -> Page:
        assert self.browser is not None
        self.close_context()
        self.context = self.browser.new_context(storage_state=state)  # type: ignore[arg-type]
        self.context.set_default_timeout(self._timeout_ms())
        self.context.set_default_navigation_timeout(self._timeout_ms())
        self.page = self.context.new_page()
        return self.page

    def settings_page(self) -> SettingsPage:
        """The Service Type Settings page in a context holding the current session (logging in when needed)."""
        keeper = self.portal.sessions
        if keeper.state is None:
            keeper.renew(keeper.generation, self._log_in)
        if self.page is None or self.page.is_closed() or self.generation != keeper.generation:
            self._new_context(keeper.state)
            self.generation = keeper.generation
        page = SettingsPage(self._page(), self.portal.ui, self._timeout_ms())
        if not page.has("headings", "service_type_settings"):
            page.open(self.portal.start_url)
        return page

    def _page(self) -> Page:
        assert self.page is not None
        return self.page

    def _log_in(self) -> dict[str, Any]:
        page = self._new_context(None)
        login = LoginPage(page, self.portal.ui, self._timeout_ms())
        SettingsPage(page, self.portal.ui, self._timeout_ms()).goto(self.portal.start_url)
        login.find("buttons", "log_in")
        username, password = self.portal.sessions.credentials.user_and_password()
        login.log_in(username, password, self.portal.sessions.credentials.totp_code())
        assert self.context is not None
        state: dict[str, Any] = dict(self.context.storage_state())
        return state

    def with_session(self, operation: Callable[[SettingsPage, bool], T]) -> T:
        """Run an operation on the settings page; when the session expired, log in again (or stop) and run it once
        more (its second argument is then True)."""
        try:
            return operation(self.settings_page(), False)
        except SessionExpired:
            self.portal.sessions.renew(self.generation, self._log_in)
        try:
            return operation(self.settings_page(), True)
        except SessionExpired:
            raise PortalAuthError(f"the portal {self.portal.env.name!r} ended the session again right after a "
                                  "log-in; check the account in the portal") from None

    def close_context(self) -> None:
        """Close this worker's context (the browser stays for the process's next portal)."""
        if self.context is not None:
            with contextlib.suppress(Exception):  # the browser may be gone already (killed, crashed)
                self.context.close()
        self.context = None
        self.page = None


class WebPortal:
    """The HBS portal's web UI as a Portal: reads from the read-only view, writes through Edit and Update."""

    listing_is_cheap = False  # the Partner Account list, then each account's page

    def __init__(self, env: Environment, *, ui: UiMap | None = None, load_session: bool = True) -> None:
        if env.url is None or env.state_dir is None:
            raise PortalConfigError(f"environment {env.name!r}: portal: web needs url")
        self.env = env
        self.label = f"portal {env.name!r} ({env.url})"
        self.ui = ui or default_uimap().with_overrides(env.ui)
        self.service_types = env.schemas.service_types  # the project's partner schema
        self.start_url = urljoin(env.url.rstrip("/") + "/", self.ui.name("pages", "start").lstrip("/"))
        self.evidence_dir = env.state_dir / "evidence"
        if env.browser is not None:
            find_browser(env.browser)  # a wrong browser: path is an error now, before any thread starts
        self.sessions = SessionKeeper(env, self.start_url, load=load_session)
        self.parallelism = max(1, env.web_parallelism)
        self._cancelled = threading.Event()
        self._workers: list[_Worker] = []
        self._free: list[_Worker] = []
        self._available = threading.Condition()
        self._closed = False

    @classmethod
    def from_environment(cls, env: Environment, *, parallelism: int) -> WebPortal:
        """The web portal of `env`; its own `parallelism:` (default 2) bounds the browser contexts, not apply's."""
        return cls(env)

    @property
    def browsers(self) -> int:
        """How many browser contexts (each on its own browser host) this portal has opened."""
        return len(self._workers)

    # -- the workers -----------------------------------------------------------------------------------------------

    def _acquire(self) -> _Worker:
        # A new context (on the next browser host) only when every one so far is busy; never more than parallelism.
        with self._available:
            while True:
                if self._closed:
                    raise PortalConfigError(f"{self.label}: closed")
                if self._free:
                    return self._free.pop()
                if len(self._workers) < self.parallelism:
                    worker = _Worker(self, host(self.env.browser, True, len(self._workers)))
                    self._workers.append(worker)
                    return worker
                self._available.wait()

    def _release(self, worker: _Worker) -> None:
        with self._available:
            self._free.append(worker)
            self._available.notify()

    def _clean(self, exc: BaseException) -> BaseException:
        """Playwright's own errors (a browser that crashed, a page that closed) as PortalUnavailable, one line."""
        if isinstance(exc, PortalError) or not type(exc).__module__.startswith("playwright"):
            return exc
        first = escape_line(str(exc).split("\n")[0], 300)
        return PortalUnavailable(f"{self.label}: the browser failed ({first})")

    def _run(self, operation: Callable[[_Worker], T], *, write: bool = False) -> T:
        worker = self._acquire()
        try:
            if write and self._cancelled.is_set():
                raise PortalRefused(f"{self.label}: interrupted before this step")

            def on_host(browser: Browser) -> T:
                worker.browser = browser
                try:
                    return operation(worker)
                except BaseException as exc:
                    raise self._clean(exc) from None

            return worker.host.call(on_host)
        finally:
            self._release(worker)

    # -- the Portal interface --------------------------------------------------------------------------------------

    def _option_text(self, service_type: str) -> str:
        if service_type in self.ui.entries["options"]:
            return self.ui.name("options", service_type)
        return self._spec(service_type).label

    def _spec(self, service_type: str) -> ServiceTypeSpec:
        spec = self.service_types.get(service_type)
        if spec is None:
            raise PartnerNotFound(f"{self.label}: unknown service type {service_type!r}")
        return spec

    def _read(self, page: SettingsPage, partner_id: str, service_type: str) -> ServiceTypeState:
        spec = self._spec(service_type)
        page.select(partner_id, service_type, self._option_text(service_type))
        settings = page.read(shown_controls(spec)).settings(spec.fields)
        return ServiceTypeState(partner_id, service_type, settings, content_version(settings))

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type of one partner account, from the read-only view."""

        def read_all(page: SettingsPage, _retry: bool) -> dict[str, ServiceTypeState]:
            # The service type the list shows now first: choosing the next account keeps it (one page load fewer).
            shown = page.selected_text("labels", "service_type")
            order = sorted(self.service_types, key=lambda name: self._option_text(name) != shown)
            found = {name: self._read(page, partner_id, name) for name in order}
            return {name: found[name] for name in self.service_types}

        return self._run(lambda worker: self._labelled(lambda: worker.with_session(read_all)))

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        """Every partner account the user holds, with its service types. The UI shows one account at a time: the
        accounts come from the Partner Account list, then each is read as list_service_types does, on all the
        browser contexts at once."""
        accounts = self._run(lambda worker: self._labelled(
            lambda: worker.with_session(lambda page, _retry: page.accounts())))
        ids = list(dict.fromkeys(account for account in accounts if account))
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            return dict(zip(ids, pool.map(self.list_service_types, ids), strict=True))

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type's settings and their content version."""
        self._spec(service_type)
        return self._run(lambda worker: self._labelled(
            lambda: worker.with_session(lambda page, _retry: self._read(page, partner_id, service_type))))

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """Edit, enter the payload, Update Service Type, read back; Cancel on any error before the save."""
        expected = normalize_settings(payload, self._spec(service_type).fields)

        def write(page: SettingsPage, retry: bool) -> ServiceTypeState:
            return self._write(page, partner_id, service_type, payload, expected, if_match, retry)

        return self._run(lambda worker: self._labelled(lambda: worker.with_session(write)), write=True)

    def _write(self, page: SettingsPage, partner_id: str, service_type: str, payload: Mapping[str, Any],
               expected: dict[str, Any], if_match: str, retry: bool) -> ServiceTypeState:
        spec = self._spec(service_type)
        controls = shown_controls(spec)
        before_png, after_png = evidence_paths(self.evidence_dir, partner_id, service_type)
        page.select(partner_id, service_type, self._option_text(service_type))
        if retry and page.read(controls).settings(spec.fields) == expected:
            # The session ended around the save: the portal holds the settings, so the save went through.
            page.screenshot(after_png)
            return ServiceTypeState(partner_id, service_type, expected, content_version(expected),
                                    evidence=(str(after_png),))
        saved = False
        try:
            page.edit()
            shown = page.read(controls).settings(spec.fields)
            if content_version(shown) != if_match:
                raise VersionConflict(f"{self.label}: {service_type} of {partner_id} changed since the plan (plan "
                                      f"saw version {if_match[:64]}, the portal shows {content_version(shown)}); run "
                                      "plan again")
            page.screenshot(before_png)
            page.fill(payload, controls)
            page.find("buttons", "update")
            saved = True  # from the click on, the portal may hold the settings
            page.update()
        except SessionExpired:
            raise
        except BaseException as exc:
            self._cancel_quietly(page)
            shots = (str(before_png),) if before_png.exists() else ()
            if isinstance(exc, PortalError):
                exc.evidence = shots
            if not saved or isinstance(exc, PayloadRejected) or not isinstance(exc, PortalError):
                if isinstance(exc, NOTHING_WRITTEN) or not isinstance(exc, PortalError):
                    raise
                refused = PortalRefused(str(exc))  # before the click on Update: nothing was saved
                refused.evidence = shots
                raise refused from None
            if isinstance(exc, NOTHING_WRITTEN):  # after the click: the portal may hold the settings; apply looks
                unclear = PortalProtocolError(f"after clicking Update Service Type: {exc}")
                unclear.evidence = shots
                raise unclear from None
            raise
        page.screenshot(after_png)
        found = page.read(controls).settings(spec.fields)
        if found != expected:
            raise PortalProtocolError(f"{self.label}: {service_type} of {partner_id} was saved but reads back "
                                      f"different settings ({'; '.join(differences(expected, found))})")
        return ServiceTypeState(partner_id, service_type, found, content_version(found),
                                evidence=(str(before_png), str(after_png)))

    @staticmethod
    def _cancel_quietly(page: SettingsPage) -> None:
        try:
            page.cancel()
        except Exception:  # the original error is the one to report; a failed Cancel leaves nothing saved either
            return

    def _labelled(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except PortalError as exc:
            text = str(exc)
            if not text.startswith("portal "):
                exc.args = (f"{self.label}: {text}",)
            raise

    def cancel(self) -> None:
        """Start no new write (Ctrl-C): a waiting write fails as interrupted; the ones running finish, and reads still
        run (apply reads back a write that was in flight, as the interface promises)."""
        self._cancelled.set()

    def close(self) -> None:
        """Close this portal's browser contexts (the browsers stay up for the process's next portal)."""
        with self._available:
            self._closed = True
            workers = list(self._workers)
            self._available.notify_all()
        for worker in workers:
            with contextlib.suppress(Exception):  # a host whose browser died has no context left to close
                worker.host.call(_closer(worker))


def _closer(worker: _Worker) -> Callable[[Browser], None]:
    def close(_browser: Browser) -> None:
        worker.close_context()

    return close


def log_in_interactively(env: Environment, *, headless: bool, wait_seconds: float = 600) -> Path:
    """`hbsdeploy login`: headed, a person logs in (any second factor) and hbsdeploy waits until the Service Type
    Settings link is reachable; headless, it logs in from the *_env variables. Saves the session; its path."""
    portal = WebPortal(env, load_session=False)
    keeper = portal.sessions
    try:
        if headless:
            def unattended(worker: _Worker) -> None:
                keeper.renew(keeper.generation, worker._log_in)
                worker.settings_page()

            portal._run(unattended)
            return keeper.path

        visible = _Worker(portal, host(env.browser, False, 0))

        def by_hand(browser: Browser) -> None:
            visible.browser = browser
            page = visible._new_context(None)
            try:
                settings = SettingsPage(page, portal.ui, wait_seconds * 1000)
                settings.goto(portal.start_url)
                settings.wait_for(("links", "administration"))
                settings.click("links", "administration")
                settings.find("links", "service_type_settings")
                assert visible.context is not None
                write_session(keeper.path, portal.start_url, dict(visible.context.storage_state()))
            finally:
                visible.close_context()

        visible.host.call(by_hand)
        return keeper.path
    finally:
        portal.close()


__all__ = ["FormValues", "WebPortal", "log_in_interactively"]
