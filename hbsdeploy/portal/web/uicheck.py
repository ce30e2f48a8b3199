"""`hbsdeploy doctor` on a web environment: every entry of the UI map looked for on the portal's pages, read-only.

The walk: the login page (a fresh context, no session), the log-in (the saved session, else the *_env credentials,
through the verification page when the portal asks for a code), home, Administration, Service Type Settings, the first
partner account with each service type in the read-only view, Edit, then Cancel. Update Service Type is looked for and
never clicked, so nothing is saved. A missing entry is named with its key, the name looked for and the page; the page
is saved as a screenshot in the evidence folder beside the audit log (`doctor-<UTC time>-<page>.png`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hbsdeploy.load.uimap import UiEntry
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.portal import PortalAuthError
from hbsdeploy.portal.web.forms import safe_name, shown_controls
from hbsdeploy.portal.web.pages import READ_FIELDS, LoginPage, PortalPage, SettingsPage, locate
from hbsdeploy.text import plural

if TYPE_CHECKING:
    from hbsdeploy.portal.web.driver import WebPortal, _Worker

# Pages the walk visits, in order, with how the findings name them.
PAGE_TITLES = {
    "login": "login page",
    "verification": "verification page",
    "home": "home page",
    "administration": "Administration page",
    "settings": "Service Type Settings page",
    "edit": "edit mode",
}
# Entries a read-only walk cannot see, and why.
NOT_READ_ONLY = {"saved": "shown only after a save", "any": "shown only when the portal refuses something"}


@dataclass(frozen=True)
class Finding:
    """One line of doctor's verdict: its name, whether it passed, and what was found."""

    name: str
    passed: bool
    detail: str


@dataclass
class _PageRecord:
    checked: set[str] = field(default_factory=set)
    missing: dict[str, tuple[UiEntry, list[str], int]] = field(default_factory=dict)
    screenshot: Path | None = None
    views: list[str] = field(default_factory=list)


class _Walk:
    """The pages in order, on one worker (the browser host's thread); records what each page shows."""

    def __init__(self, portal: WebPortal, worker: _Worker) -> None:
        self.portal = portal
        self.worker = worker
        self.ui = portal.ui
        self.timeout_ms = portal.env.page_timeout * 1000
        self.pages: dict[str, _PageRecord] = {}
        self.findings: list[Finding] = []
        self.stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.login_how = ""

    # -- looking ---------------------------------------------------------------------------------------------------

    def look(self, page: PortalPage, where: str, entries: list[UiEntry], view: str = "") -> bool:
        """Look for each entry on the page now; record the missing ones (with a screenshot); whether all were found."""
        record = self.pages.setdefault(where, _PageRecord())
        if view:
            record.views.append(view)
        all_found = True
        for entry in entries:
            record.checked.add(entry.dotted)
            count = locate(page.page, entry).count()
            if count == 1 or (count > 1 and entry.role in ("alert", "status")):
                continue
            all_found = False
            _entry, views, _count = record.missing.setdefault(entry.dotted, (entry, [], count))
            if view:
                views.append(view)
        if not all_found and record.screenshot is None:
            name = f"doctor-{self.stamp}-{safe_name(where)}{'-' + safe_name(view) if view else ''}.png"
            record.screenshot = self.portal.evidence_dir / name
            page.screenshot(record.screenshot)
        return all_found

    def present(self, page: PortalPage, group: str, key: str) -> bool:
        """Whether one entry is on the page exactly once (the walk goes on through it only then)."""
        return locate(page.page, self.ui.entry(group, key)).count() == 1

    def entries(self, page_name: str, *, skip: frozenset[str] = frozenset()) -> list[UiEntry]:
        """The map's entries on one page (options are checked in their list, not as elements)."""
        return [entry for entry in self.ui.on_page(page_name) if entry.group != "options" and entry.dotted not in skip]

    def stop(self, reason: str) -> None:
        """The walk cannot go on: the pages not reached are named, unchecked."""
        self.findings.append(Finding("ui pages", False, reason))

    # -- the walk --------------------------------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        self.walk()
        return self.findings_in_order()

    def walk(self) -> None:
        first = SettingsPage(self.worker._new_context(None), self.ui, self.timeout_ms)
        first.goto(self.portal.start_url)
        if not self.look(first, "login", self.entries("login")) and not self.portal.sessions.state:
            return self.stop("not logged in: the login form differs from the UI map (see above)")
        page = self.log_in()
        if page is None:
            return None
        if not self.look(page, "home", self.entries("home")):
            return self.stop("Administration and Service Type Settings not reached (their link is missing)")
        page.click("links", "administration")
        page.check_session()
        if not self.look(page, "administration", self.entries("administration")):
            return self.stop("Service Type Settings not reached (its link is missing)")
        page.click("links", "service_type_settings")
        page.check_session()
        self.settings(page)
        return None

    def log_in(self) -> SettingsPage | None:
        """The start page with a session: the saved one when the portal accepts it, else a new log-in."""
        keeper = self.portal.sessions
        if keeper.state is not None:
            page = SettingsPage(self.worker._new_context(keeper.state), self.ui, self.timeout_ms)
            page.goto(self.portal.start_url)
            if not page.on_login_page():
                self.login_how = f"the saved session {display_path(keeper.path)} was accepted"
                return page
        try:
            keeper.renew(keeper.generation, self._log_in)
        except PortalAuthError as exc:
            self.findings.append(Finding("ui log-in", False, str(exc)))
            return None
        page = SettingsPage(self.worker._new_context(keeper.state), self.ui, self.timeout_ms)
        page.goto(self.portal.start_url)
        page.check_session()
        return page

    def _log_in(self) -> dict[str, object]:
        """Log in from the *_env credentials, looking at the verification page on the way when there is one."""
        credentials = self.portal.sessions.credentials
        login = LoginPage(self.worker._new_context(None), self.ui, self.timeout_ms)
        SettingsPage(login.page, self.ui, self.timeout_ms).goto(self.portal.start_url)
        username, password = credentials.user_and_password()
        if not all(self.present(login, *key) for key in (("labels", "username"), ("labels", "password"),
                                                            ("buttons", "log_in"))):
            raise PortalAuthError("cannot log in: the login form differs from the UI map (see the login page)")
        login.find("labels", "username").fill(username)
        login.find("labels", "password").fill(password)
        login.click("buttons", "log_in")
        if self.present(login, "labels", "verification_code") or self.present(login, "buttons", "verify"):
            if not self.look(login, "verification", self.entries("verification")):
                raise PortalAuthError("cannot log in: the verification page differs from the UI map (see above)")
            code = credentials.totp_code()
            if code is None:
                raise PortalAuthError("the portal asks for a verification code and no totp_env is set; set it, or "
                                      f"log in with `hbsdeploy login --env {self.portal.env.name}`")
            login.find("labels", "verification_code").fill(code())
            login.click("buttons", "verify")
        if login.on_login_page():
            reason = login.alert_text()
            raise PortalAuthError(f"the portal refused the log-in: {reason}" if reason else
                                  "the portal showed its login page again after the log-in")
        assert self.worker.context is not None
        self.login_how = f"logged in as ${credentials.env.username_env}; session saved"
        return dict(self.worker.context.storage_state())

    def settings(self, page: SettingsPage) -> None:
        """The first partner account, each service type read-only, then Edit and Cancel."""
        lists = [self.ui.entry("headings", "service_type_settings"), self.ui.entry("labels", "partner_account"),
                 self.ui.entry("labels", "service_type")]
        if not self.look(page, "settings", lists):
            return self.stop("the settings of a partner account not reached (see the Service Type Settings page)")
        accounts = page.find("labels", "partner_account").evaluate(
            "select => Array.from(select.options).map(option => option.value).filter(value => value)")
        if not accounts:
            return self.stop("the Partner Account list is empty: this user administers no partner account")
        account = str(accounts[0])
        for name, spec in self.portal.service_types.items():
            option_text = self.portal._option_text(name)
            offered = page.find("labels", "service_type").evaluate(
                "select => Array.from(select.options).map(option => option.text.trim())")
            view = f"{account} {spec.label}"
            record = self.pages.setdefault("settings", _PageRecord())
            option = self.ui.entries["options"].get(name)
            if option is not None:
                record.checked.add(option.dotted)
            if option_text not in offered:
                if option is not None:
                    record.missing.setdefault(option.dotted, (option, [], 0))[1].append(view)
                continue
            page.select(account, name, option_text)
            self.look(page, "settings", self.entries("settings", skip=_not_shown(shown_controls(spec))), view)
            if not self.present(page, "buttons", "edit"):
                continue
            page.click("buttons", "edit")
            page.check_session()
            self.look(page, "edit", self.entries("edit", skip=_not_shown(spec.controls)), view)
            if self.present(page, "buttons", "cancel"):
                page.click("buttons", "cancel")
                page.check_session()
            else:  # leave edit mode without a word to the portal: nothing was posted, nothing is saved
                page.open(self.portal.start_url)
        return None

    # -- the verdict -----------------------------------------------------------------------------------------------

    def findings_in_order(self) -> list[Finding]:
        found: list[Finding] = []
        if self.login_how:
            found.append(Finding("ui log-in", True, self.login_how))
        for key, title in PAGE_TITLES.items():
            record = self.pages.get(key)
            if record is None:
                continue
            views = f" ({', '.join(dict.fromkeys(record.views))})" if record.views else ""
            if not record.missing:
                entries = plural(len(record.checked), 'UI map entry', 'UI map entries')
                found.append(Finding(f"ui {title}", True, f"{entries} found{views}"))
                continue
            for dotted, (entry, missing_in, count) in record.missing.items():
                how = "not found" if count == 0 else f"found {count} times (the map must name one element)"
                where = f" ({', '.join(missing_in)})" if missing_in else ""
                shot = f"; screenshot {display_path(record.screenshot)}" if record.screenshot else ""
                found.append(Finding(f"ui {title}", False,
                                     f'ui.{dotted}: the {entry.role} "{entry.name}" {how}{where}{shot}; if the portal '
                                     f"names it differently, set environments.{self.portal.env.name}.ui.{dotted} "
                                     "in hbsdeploy.yaml"))
        found.extend(self.findings)
        checked = set().union(*(record.checked for record in self.pages.values())) | {"pages.start"}
        unseen = [entry for entry in self.ui if entry.dotted not in checked]
        later = [entry for entry in unseen if entry.page in NOT_READ_ONLY]
        factor = [entry for entry in unseen if entry.page == "verification"]
        if factor and self.login_how:
            found.append(Finding("ui verification page", True, "not shown (no verification code was asked for in "
                                 "this log-in): " + ", ".join(f"ui.{entry.dotted}" for entry in factor)
                                 + " not checked"))
        if later and not self.findings:
            found.append(Finding("ui messages", True, "not checked read-only: " + "; ".join(
                f"ui.{entry.dotted} ({NOT_READ_ONLY[entry.page]})" for entry in later)))
        return found


def check_ui(portal: WebPortal) -> list[Finding]:
    """Walk the portal's pages read-only and say, page by page, which UI map entries were found."""
    return portal._run(lambda worker: _Walk(portal, worker).run())


def _not_shown(controls: tuple[str, ...]) -> frozenset[str]:
    """The UI map's entries of the controls a service type's page does not show (never looked for there)."""
    labels = {**READ_FIELDS, "certificate": (*READ_FIELDS["certificate"], "hubject_certificate")}
    return frozenset(f"labels.{key}" for control, keys in labels.items() if control not in controls for key in keys)
