"""Page objects of the HBS portal's web UI: every element found through the UI map by role and accessible name."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hbsdeploy.load.settings import CONTROLS
from hbsdeploy.load.uimap import UiEntry, UiMap
from hbsdeploy.portal import PartnerNotFound, PayloadRejected, PortalAuthError, PortalProtocolError, PortalUnavailable
from hbsdeploy.portal.web.forms import FormValues
from hbsdeploy.text import escape_line

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


T = TypeVar("T")
# How long an element that the loaded page should hold may take to be found before `find` looks closer: on a loaded
# page it is there at once, so this only bounds the wait before a missing element is reported.
QUICK_MS = 1000.0


class UiElementNotFound(PortalProtocolError):
    """An entry of the UI map is not on the page: the real portal differs from the map (the driver turns it into a
    refusal when it happens before saving)."""


class PageTimeout(PortalUnavailable):
    """A page or an element did not appear within timeouts.page."""


class SessionExpired(PortalAuthError):
    """The portal showed its login page instead of the page asked for."""


def locate(page: Page, entry: UiEntry) -> Locator:
    """The element of one UI map entry, by role and accessible name (labels for text boxes: a password box has no
    textbox role); alerts and status messages by role, filtered by their text when the map gives one."""
    if entry.role == "textbox":
        return page.get_by_label(entry.name, exact=True)
    if entry.role in ("alert", "status"):
        found = page.get_by_role(cast(Any, entry.role))
        return found.filter(has_text=entry.name) if entry.name else found
    return page.get_by_role(cast(Any, entry.role), name=entry.name, exact=True)


class PortalPage:
    """What every page object shares: the page, the UI map, the wait limit and the page's name for messages."""

    title = "portal"

    def __init__(self, page: Page, ui: UiMap, timeout_ms: float) -> None:
        self.page = page
        self.ui = ui
        self.timeout_ms = timeout_ms

    def find(self, group: str, key: str) -> Locator:
        """The one element of a UI map entry on this page, now (no waiting: the page has loaded)."""
        entry = self.ui.entry(group, key)
        found = locate(self.page, entry)
        count = found.count()
        if count == 0:
            raise UiElementNotFound(f"{entry.describe()} is not on the {self.title} page; check the UI map against "
                                    "the portal with `hbsdeploy doctor` and override it in hbsdeploy.yaml")
        if count > 1 and entry.role not in ("alert", "status"):
            raise UiElementNotFound(f"{entry.describe()} is on the {self.title} page {count} times; the UI map must "
                                    "name one element")
        return found.first

    def quick(self, group: str, key: str, action: Callable[[Locator, float], T]) -> T:
        """`action(element, timeout_ms)` on an entry's element in one round trip to the browser (the hot path of
        reads); when that fails (no such element, or more than one), `find` names the problem."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            return action(locate(self.page, self.ui.entry(group, key)), QUICK_MS)
        except PlaywrightError:
            return action(self.find(group, key), self.timeout_ms)

    def has(self, group: str, key: str) -> bool:
        """Whether a UI map entry is on the page now."""
        return locate(self.page, self.ui.entry(group, key)).count() > 0

    def wait_for(self, *entries: tuple[str, str]) -> tuple[str, str]:
        """Wait until one of these entries is visible (bounded by timeouts.page); the one found first."""
        locators = [locate(self.page, self.ui.entry(*key)) for key in entries]
        either = locators[0]
        for other in locators[1:]:
            either = either.or_(other)
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            either.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            names = " or ".join(self.ui.entry(*key).describe() for key in entries)
            raise PageTimeout(f"the portal did not show {names} within {self.timeout_ms / 1000:g} s "
                              f"(at {self._where()}); check the portal, or raise timeouts.page") from None
        for key, locator in zip(entries, locators, strict=True):
            if locator.count() > 0 and locator.first.is_visible():
                return key
        return entries[0]

    def navigate(self, action: Callable[[], object], what: str) -> None:
        """Do something that loads a new page (a click, a selection) and wait for that page, bounded."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            with self.page.expect_navigation(timeout=self.timeout_ms, wait_until="load"):
                action()
        except PlaywrightTimeout:
            raise PageTimeout(f"the portal did not load the page after {what} within {self.timeout_ms / 1000:g} s "
                              f"(at {self._where()}); check the portal, or raise timeouts.page") from None

    def click(self, group: str, key: str) -> None:
        """Click a link or button that loads a new page."""
        element = self.find(group, key)
        self.navigate(element.click, f"clicking {self.ui.entry(group, key).describe()}")

    def first_of(self, *entries: tuple[str, str]) -> tuple[str, str] | None:
        """The first of these entries on the page now (the page has loaded), or None."""
        for key in entries:
            if self.has(*key):
                return key
        return None

    def alert_text(self) -> str:
        """The portal's words in its alerts, on one line."""
        texts = locate(self.page, self.ui.entry("messages", "error")).all_inner_texts()
        return escape_line(" ".join(texts), 500)

    def on_login_page(self) -> bool:
        """Whether the portal shows its login form (a session that expired lands there)."""
        return self.has("buttons", "log_in") and self.has("labels", "password")

    def check_session(self) -> None:
        """SessionExpired when the portal sent us to its login page."""
        if self.on_login_page():
            raise SessionExpired("the portal session expired")

    def _where(self) -> str:
        url = self.page.url
        return url.split("?", 1)[0]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)


class LoginPage(PortalPage):
    """The login form and, for an account with a second factor, the verification form."""

    title = "login"

    def log_in(self, username: str, password: str, totp_code: Any | None) -> None:
        """Log in; PortalAuthError with the portal's words when it refuses. `totp_code` is a callable giving the
        current code (asked only when the portal shows the verification form)."""
        self.find("labels", "username").fill(username)
        self.find("labels", "password").fill(password)
        self.click("buttons", "log_in")
        shown = self.first_of(("links", "administration"), ("labels", "verification_code"))
        if shown == ("labels", "verification_code"):
            if totp_code is None:
                raise PortalAuthError("the portal asks for a verification code and no totp_env is set; set it, or "
                                      "log in with `hbsdeploy login` in a visible browser")
            self.find("labels", "verification_code").fill(totp_code())
            self.click("buttons", "verify")
            shown = self.first_of(("links", "administration"))
        if shown is None:
            reason = self.alert_text()
            if reason:
                raise PortalAuthError(f"the portal refused the log-in: {reason}")
            self.find("links", "administration")  # neither refused nor in: the map's link is missing


class SettingsPage(PortalPage):
    """Service Type Settings: the selection lists, the read-only view, the form in edit mode."""

    title = "Service Type Settings"

    def open(self, start_url: str) -> None:
        """Administration -> Service Type Settings, from the start page; SessionExpired on the login page."""
        self.goto(start_url)
        self.check_session()
        self.click("links", "administration")
        self._settle(("links", "service_type_settings"))
        self.click("links", "service_type_settings")
        self._settle(("headings", "service_type_settings"))

    def goto(self, url: str) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        shown = url.split("?", 1)[0]
        try:
            self.page.goto(url, timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise PageTimeout(f"the portal's page {shown} did not load within {self.timeout_ms / 1000:g} s; check "
                              "the portal, or raise timeouts.page") from None
        except PlaywrightError as exc:
            message = escape_line(str(exc), 200)
            raise PortalUnavailable(f"the portal's page {shown} did not load ({message})") from None

    def _settle(self, expected: tuple[str, str]) -> None:
        """After a navigation: SessionExpired on the login page, else the expected element must be there."""
        if locate(self.page, self.ui.entry(*expected)).count() == 1:
            return  # the page asked for (one round trip to the browser: the usual case, on the hot path of reads)
        self.check_session()
        self.find(*expected)

    def select(self, partner_id: str, service_type: str, option_text: str) -> None:
        """Show one partner account's service type (each selection reloads the view)."""
        account = locate(self.page, self.ui.entry("labels", "partner_account"))
        values, current = self.quick("labels", "partner_account", lambda found, wait: _options(found, "value", wait))
        if partner_id not in values:
            raise PartnerNotFound(f"the portal lists no partner account {partner_id!r} for this user; check the "
                                  "user's partner accounts in the portal")
        if current != partner_id:
            self._choose(account, value=partner_id)
        kind = locate(self.page, self.ui.entry("labels", "service_type"))
        labels, current = self.quick("labels", "service_type", lambda found, wait: _options(found, "text", wait))
        if option_text not in labels:
            entry = self.ui.entry("options", service_type) if service_type in self.ui.entries["options"] else None
            where = f" ({entry.describe()})" if entry else ""
            raise UiElementNotFound(f"the {self.ui.entry('labels', 'service_type').describe()} list has no option "
                                    f"{option_text!r}{where}; it offers: {', '.join(labels)}")
        if current != option_text:
            self._choose(kind, label=option_text)

    def accounts(self) -> list[str]:
        """Every partner account the Partner Account list offers this user (its options' values: the partner IDs)."""
        return self.quick("labels", "partner_account", lambda found, wait: _options(found, "value", wait))[0]

    def selected_text(self, group: str, key: str) -> str:
        """The text of the option a selection list shows now."""
        return self.quick(group, key, lambda found, wait: _options(found, "text", wait))[1]

    def _choose(self, select: Locator, *, value: str | None = None, label: str | None = None) -> None:
        if value is not None:
            self.navigate(lambda: select.select_option(value=value), f"choosing {value!r}")
        else:
            self.navigate(lambda: select.select_option(label=label), f"choosing {label!r}")
        self._settle(("headings", "service_type_settings"))

    def read(self, controls: Collection[str]) -> FormValues:
        """The values the form shows of these `controls` (read-only view or edit mode): every field in one round
        trip to the browser when each UI map entry names exactly one of the elements found; else field by field
        (which waits, and names the entry that is missing). A control not among them is never looked for."""
        keys = [key for control in CONTROLS if control in controls for key in READ_FIELDS[control]]
        entries = [self.ui.entry("labels", key) for key in keys]
        together = locate(self.page, entries[0])
        for entry in entries[1:]:
            together = together.or_(locate(self.page, entry))
        shown: list[dict[str, Any]] = together.evaluate_all(_READ_SCRIPT)
        found: dict[str, dict[str, Any]] = {}
        for entry in entries:
            matches = [one for one in shown if one["name"] == _squeeze(entry.name) and one["role"] == entry.role]
            if len(matches) != 1:
                return self._read_one_by_one(keys)
            found[entry.key] = matches[0]
        return _form_values({key: found[key]["value" if key in _VALUE_FIELDS else "checked"] for key in keys})

    def _read_one_by_one(self, keys: list[str]) -> FormValues:
        def checked(element: Locator, timeout: float) -> bool:
            return element.is_checked(timeout=timeout)

        def value(element: Locator, timeout: float) -> str:
            return element.input_value(timeout=timeout)

        return _form_values({key: self.quick("labels", key, value if key in _VALUE_FIELDS else checked)
                             for key in keys})

    def edit(self) -> None:
        """Click Edit and wait for the form in edit mode."""
        self.click("buttons", "edit")
        self._settle(("buttons", "update"))

    def fill(self, payload: Mapping[str, Any], controls: Collection[str]) -> None:
        """Enter the settings of these `controls` in the documented order: Online Request first (only then Service
        URL and Broadcast Request are enabled), then the others. A control not among them is never touched."""
        online = bool(payload.get("online_request"))
        self.find("labels", "online_request").set_checked(online)
        if online:
            if "service_url" in controls:
                self.find("labels", "service_url").fill(str(payload.get("service_url") or ""))
            if "broadcast_request" in controls:
                self.find("labels", "broadcast_request").set_checked(bool(payload.get("broadcast_request")))
        if "client_certification" in controls:
            self.find("labels", "client_certification").set_checked(bool(payload.get("client_certification")))
        if "certificate" not in controls:
            return
        if payload.get("certificate") == "user":
            self.find("labels", "user_certificate_choice").check()
            wanted = str(payload.get("certificate_sha256") or "")
            certificates = self.find("labels", "user_certificate")
            offered = certificates.evaluate("select => Array.from(select.options).map(option => option.value)")
            if wanted not in offered:
                raise PayloadRejected(f"the portal lists no user certificate {wanted[:64]!r} for this partner "
                                      "account; upload it in Certificate Management first")
            certificates.select_option(value=wanted)
        else:
            self.find("labels", "hubject_certificate").check()

    def update(self) -> None:
        """Click Update Service Type; PayloadRejected with the portal's words when it shows an alert."""
        self.click("buttons", "update")
        self.check_session()
        if self.has("messages", "updated"):
            return
        reason = self.alert_text()
        if reason:
            raise PayloadRejected(f"the portal refused the settings: {reason}")
        self.find("messages", "updated")  # neither saved nor refused: the map's status message is missing

    def cancel(self) -> None:
        """Click Cancel when the form is in edit mode (nothing half-edited is saved)."""
        if self.has("buttons", "cancel"):
            self.click("buttons", "cancel")


# The form's fields a read looks at for each control, by their UI map key (group labels).
READ_FIELDS: Mapping[str, tuple[str, ...]] = {
    "online_request": ("online_request",), "broadcast_request": ("broadcast_request",),
    "service_url": ("service_url",), "client_certification": ("client_certification",),
    "certificate": ("user_certificate_choice", "user_certificate"),
}
_VALUE_FIELDS = frozenset({"service_url", "user_certificate"})  # read as text; the others as checked or not


def _form_values(found: Mapping[str, Any]) -> FormValues:
    """FormValues from what a read found by UI map key (a key not found: a control the page does not show)."""
    def text(key: str) -> str | None:
        return str(found[key]) if key in found else None

    def flag(key: str) -> bool | None:
        return bool(found[key]) if key in found else None

    return FormValues(online_request=bool(found["online_request"]), broadcast_request=flag("broadcast_request"),
                      service_url=text("service_url"), client_certification=flag("client_certification"),
                      user_certificate=flag("user_certificate_choice"), certificate_sha256=text("user_certificate"))
# For each element the read's locator found (by role and accessible name): its role, its name as a label or ARIA
# gives it (only to tell the found elements apart; Playwright found them), whether it is checked, its value.
_READ_SCRIPT = """elements => elements.map(e => {
  const squeeze = s => (s || '').replace(/\\s+/g, ' ').trim();
  let name = e.getAttribute('aria-label') || '';
  const by = e.getAttribute('aria-labelledby');
  if (!name && by) name = by.split(/\\s+/).map(id => (document.getElementById(id) || {}).textContent || '').join(' ');
  if (!name && e.labels) name = Array.from(e.labels).map(l => l.textContent).join(' ');
  const tag = e.tagName.toLowerCase(), type = (e.getAttribute('type') || '').toLowerCase();
  const role = e.getAttribute('role') || (tag === 'select' ? (e.multiple || e.size > 1 ? 'listbox' : 'combobox')
    : tag === 'textarea' ? 'textbox' : type === 'checkbox' || type === 'radio' ? type : 'textbox');
  return {role: role, name: squeeze(name), checked: !!e.checked, value: e.value === undefined ? '' : String(e.value)};
})"""


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _options(select: Locator, what: str, timeout: float) -> tuple[list[str], str]:
    """A selection list's options (their values or texts) and the selected one's, in one round trip."""
    found = select.evaluate(
        "(s, what) => { const of = o => what === 'value' ? o.value : o.text.trim();"
        " const chosen = s.options[s.selectedIndex];"
        " return [Array.from(s.options).map(of), chosen ? of(chosen) : '']; }", what, timeout=timeout)
    return [str(option) for option in found[0]], str(found[1])
