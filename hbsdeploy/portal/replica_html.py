"""The replica's HTML: the portal's labels (its own copy, never the driver's UI map) and every page, escaped."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hbsdeploy.load.servicetypes import ServiceTypeSpec

# What the portal shows, from Hubject's support articles ("Service Type Settings (CPO)", "Service Type Settings
# online EMP", "2.7 Service type settings", "Certificate Management"); where they show nothing (login, menus, the
# messages) the wording of docs/replica.md. Tests may change one (Replica.relabel) to play a portal that differs.
DEFAULT_LABELS: Mapping[str, str] = {
    "portal": "Hubject Business Services",
    "login_heading": "Log in",
    "username": "Username",
    "password": "Password",
    "log_in": "Log in",
    "verification_heading": "Two-factor authentication",
    "verification_code": "Verification code",
    "verify": "Verify",
    "invalid_credentials": "Invalid username or password.",
    "invalid_code": "Invalid verification code.",
    "session_expired": "Your session has expired. Please log in again.",
    "main_navigation": "Main",
    "home": "Home",
    "administration": "Administration",
    "service_type_settings": "Service Type Settings",
    "log_out": "Log out",
    "partner_account": "Partner Account",
    "service_type": "Service Type",
    "show": "Show",
    "edit": "Edit",
    "online_request": "Online Request",
    "broadcast_request": "Broadcast Request",
    "service_url": "Service URL",
    "client_certification": "Client Certification",
    "server_certification": "Server certification",
    "hubject_certificate": "Hubject certificate",
    "user_certificate_choice": "User certificate",
    "user_certificate": "User Certificate",
    "no_certificate": "No certificate selected",
    "cancel": "Cancel",
    "update": "Update Service Type",
    "updated": "Service type updated.",
    "not_updated": "The service type was not updated:",
    "changed_meanwhile": "The settings were changed in the meantime and your changes were not saved. "
                         "Check the current settings and edit them again.",
    "not_allowed": "You are not allowed to administer this partner account.",
    "not_administrator": "Editing needs the Partner Account Administrator role.",
    "bad_form": "The form could not be verified. Reload the page and try again.",
    "unknown_certificate": "User Certificate: choose a certificate uploaded in Certificate Management for this "
                           "partner account.",
    "no_accounts": "No partner account is assigned to your user.",
    "not_found": "Page not found.",
    "unavailable": "The portal is temporarily unavailable. Please try again later.",
}

_STYLE = """
body { font-family: sans-serif; margin: 0; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1em; background: #0b3c5d; color: #fff; }
header a { color: #fff; }
header .logout { margin-left: auto; }
main { padding: 1em 2em; max-width: 48em; }
[role=alert] { border: 1px solid #b00; background: #fee; padding: .5em 1em; margin: 1em 0; }
[role=status] { border: 1px solid #070; background: #efe; padding: .5em 1em; margin: 1em 0; }
.selection { display: flex; gap: 1em; align-items: end; margin-bottom: 1em; }
.selection div, .field { display: flex; flex-direction: column; gap: .2em; margin: .5em 0; }
.check { margin: .5em 0; }
.settings-head { display: flex; justify-content: space-between; align-items: center; }
fieldset { margin: .5em 0; }
.actions { display: flex; gap: 1em; margin-top: 1em; }
"""

# Edit mode: Broadcast Request and Service URL follow Online Request; the selection lists reload the view.
_SCRIPT = """
(function () {
  var online = document.getElementById("online_request");
  var form = document.getElementById("settings-form");
  if (online && form && !online.disabled) {
    var dependents = ["broadcast_request", "service_url"].map(function (id) {
      return document.getElementById(id);
    }).filter(function (element) { return element !== null; });
    var sync = function () {
      dependents.forEach(function (element) { element.disabled = !online.checked; });
    };
    online.addEventListener("change", sync);
    sync();
  }
  var selection = document.getElementById("selection-form");
  if (selection) {
    selection.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { selection.submit(); });
    });
  }
})();
"""


def esc(value: object) -> str:
    """Any value as HTML text or a quoted attribute value."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Html:
    """A rendered page and the nonce its inline style and script carry (the Content-Security-Policy names it)."""

    text: str
    nonce: str


@dataclass(frozen=True)
class FormState:
    """The settings form's values as shown (a refused submission shows what the user typed)."""

    online_request: bool
    broadcast_request: bool
    service_url: str
    client_certification: bool
    certificate: str
    certificate_sha256: str

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> FormState:
        """The form showing stored settings."""
        return cls(bool(settings.get("online_request")), bool(settings.get("broadcast_request")),
                   str(settings.get("service_url") or ""), bool(settings.get("client_certification")),
                   str(settings.get("certificate") or "hubject"), str(settings.get("certificate_sha256") or ""))


@dataclass(frozen=True)
class SettingsView:
    """Everything the Service Type Settings page shows."""

    accounts: Sequence[tuple[str, str]]  # (ID, option text)
    account: str
    service_types: Sequence[ServiceTypeSpec]
    spec: ServiceTypeSpec
    version: str
    form: FormState
    certificates: Sequence[str]
    editing: bool
    may_edit: bool
    csrf: str


class Pages:
    """Renders the portal's pages with its labels."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = labels

    def label(self, key: str) -> str:
        return esc(self.labels[key])

    def page(self, title: str, body: str, nonce: str, *, logged_in: bool, messages: Iterable[str] = (),
             status: str | None = None, script: bool = False) -> Html:
        """A whole page: header (navigation and Log out when logged in), alert and status, then `body`."""
        label = self.label
        nav = ""
        if logged_in:
            nav = (f'<nav aria-label="{label("main_navigation")}"><a href="/">{label("home")}</a> '
                   f'<a href="/administration">{label("administration")}</a></nav>'
                   f'<a class="logout" href="/logout">{label("log_out")}</a>')
        shown = list(messages)
        alert = ""
        if len(shown) == 1:
            alert = f'<div role="alert">{esc(shown[0])}</div>'
        elif shown:
            alert = f'<div role="alert">{esc(shown[0])}<ul>' + "".join(f"<li>{esc(m)}</li>" for m in shown[1:])
            alert += "</ul></div>"
        notice = f'<div role="status">{esc(status)}</div>' if status else ""
        script_tag = f'<script nonce="{esc(nonce)}">{_SCRIPT}</script>' if script else ""
        text = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{esc(title)} - {label('portal')}</title>"
                f'<style nonce="{esc(nonce)}">{_STYLE}</style></head><body>'
                f'<header><strong>{label("portal")}</strong>{nav}</header>'
                f"<main>{alert}{notice}{body}</main>{script_tag}</body></html>")
        return Html(text, nonce)

    def login(self, nonce: str, messages: Iterable[str] = ()) -> Html:
        """The login form."""
        label = self.label
        body = (f'<h1>{label("login_heading")}</h1>'
                '<form method="post" action="/login">'
                f'<div class="field"><label for="username">{label("username")}</label>'
                '<input type="text" id="username" name="username" autocomplete="username" required></div>'
                f'<div class="field"><label for="password">{label("password")}</label>'
                '<input type="password" id="password" name="password" autocomplete="current-password" required>'
                f'</div><div class="actions"><button type="submit">{label("log_in")}</button></div></form>')
        return self.page(self.labels["login_heading"], body, nonce, logged_in=False, messages=messages)

    def verification(self, nonce: str, csrf: str, messages: Iterable[str] = ()) -> Html:
        """The second-factor form."""
        label = self.label
        body = (f'<h1>{label("verification_heading")}</h1>'
                '<form method="post" action="/login/verify">'
                f'<input type="hidden" name="csrf_token" value="{esc(csrf)}">'
                f'<div class="field"><label for="code">{label("verification_code")}</label>'
                '<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" '
                'maxlength="6" required></div>'
                f'<div class="actions"><button type="submit">{label("verify")}</button></div></form>')
        return self.page(self.labels["verification_heading"], body, nonce, logged_in=False, messages=messages)

    def home(self, nonce: str, username: str) -> Html:
        """The start page after logging in."""
        body = f'<h1>{self.label("portal")}</h1><p>{esc(username)}</p>'
        return self.page(self.labels["home"], body, nonce, logged_in=True)

    def administration(self, nonce: str) -> Html:
        """The Administration section: its entries."""
        label = self.label
        body = (f'<h1>{label("administration")}</h1><ul>'
                f'<li><a href="/administration/service-type-settings">{label("service_type_settings")}</a></li></ul>')
        return self.page(self.labels["administration"], body, nonce, logged_in=True)

    def message(self, nonce: str, title: str, messages: Iterable[str], *, logged_in: bool) -> Html:
        """A page that only says what went wrong."""
        return self.page(title, f"<h1>{esc(title)}</h1>", nonce, logged_in=logged_in, messages=messages)

    def settings(self, nonce: str, view: SettingsView | None, *, accounts: Sequence[tuple[str, str]] = (),
                 messages: Iterable[str] = (), status: str | None = None) -> Html:
        """The Service Type Settings page: selection lists, then the settings read-only or in edit mode."""
        label = self.label
        body = f'<h1>{label("service_type_settings")}</h1>'
        if view is None:
            body += f"<p>{label('no_accounts')}</p>"
            return self.page(self.labels["service_type_settings"], body, nonce, logged_in=True, messages=messages,
                             status=status)
        body += self._selection(view) + self._settings(view)
        return self.page(self.labels["service_type_settings"], body, nonce, logged_in=True, messages=messages,
                         status=status, script=True)

    def _selection(self, view: SettingsView) -> str:
        label = self.label
        accounts = "".join(f'<option value="{esc(account_id)}"{_selected(account_id == view.account)}>'
                           f"{esc(text)}</option>" for account_id, text in view.accounts)
        types = "".join(f'<option value="{esc(spec.name)}"{_selected(spec.name == view.spec.name)}>'
                        f"{esc(spec.label)}</option>" for spec in view.service_types)
        return ('<form id="selection-form" class="selection" method="get" '
                'action="/administration/service-type-settings">'
                f'<div><label for="account">{label("partner_account")}</label>'
                f'<select id="account" name="account">{accounts}</select></div>'
                f'<div><label for="service_type">{label("service_type")}</label>'
                f'<select id="service_type" name="service_type">{types}</select></div>'
                f'<noscript><button type="submit">{label("show")}</button></noscript></form>')

    def _settings(self, view: SettingsView) -> str:
        label = self.label
        form = view.form
        off = "" if view.editing else " disabled"
        follows = "" if view.editing and form.online_request else " disabled"
        edit = ""
        if not view.editing and view.may_edit:
            edit = ('<form method="get" action="/administration/service-type-settings">'
                    f'<input type="hidden" name="account" value="{esc(view.account)}">'
                    f'<input type="hidden" name="service_type" value="{esc(view.spec.name)}">'
                    '<input type="hidden" name="mode" value="edit">'
                    f'<button type="submit">{label("edit")}</button></form>')
        head = f'<div class="settings-head"><h2 id="settings-heading">{esc(view.spec.label)}</h2>{edit}</div>'
        fields = (f'<input type="hidden" name="csrf_token" value="{esc(view.csrf)}">'
                  f'<input type="hidden" name="account" value="{esc(view.account)}">'
                  f'<input type="hidden" name="service_type" value="{esc(view.spec.name)}">'
                  f'<input type="hidden" name="version" value="{esc(view.version)}">'
                  + _checkbox("online_request", label("online_request"), form.online_request, off))
        if view.spec.broadcast:
            fields += _checkbox("broadcast_request", label("broadcast_request"), form.broadcast_request, follows)
        if "service_url" in view.spec.fields:
            fields += (f'<div class="field"><label for="service_url">{label("service_url")}</label>'
                       f'<input type="text" id="service_url" name="service_url" value="{esc(form.service_url)}" '
                       f'inputmode="url" size="60"{follows}></div>')
        if "client_certification" in view.spec.fields:
            fields += _checkbox("client_certification", label("client_certification"), form.client_certification, off)
        if "certificate" in view.spec.fields:
            fields += self._certificate_fields(view, off)
        if view.editing:
            fields += ('<div class="actions">'
                       f'<button type="submit" name="action" value="update">{label("update")}</button>'
                       f'<button type="submit" name="action" value="cancel" formnovalidate>{label("cancel")}</button>'
                       "</div>")
        return (f'<section aria-labelledby="settings-heading">{head}'
                '<form id="settings-form" method="post" action="/administration/service-type-settings">'
                f"{fields}</form></section>")

    def _certificate_fields(self, view: SettingsView, off: str) -> str:
        """Server certification (Hubject or User certificate) and the list of uploaded certificates."""
        label = self.label
        form = view.form
        hubject = form.certificate != "user"
        fields = (f'<fieldset role="radiogroup"{off}><legend>{label("server_certification")}</legend>'
                   + _radio("certificate_hubject", "hubject", label("hubject_certificate"), hubject)
                   + _radio("certificate_user", "user", label("user_certificate_choice"), not hubject)
                   + "</fieldset>")
        fingerprints = list(view.certificates)
        if form.certificate_sha256 and form.certificate_sha256 not in fingerprints:
            fingerprints.append(form.certificate_sha256)
        options = f'<option value="">{label("no_certificate")}</option>' + "".join(
            f'<option value="{esc(f)}"{_selected(f == form.certificate_sha256)}>{esc(f)}</option>'
            for f in fingerprints)
        fields += (f'<div class="field"><label for="certificate_sha256">{label("user_certificate")}</label>'
                   f'<select id="certificate_sha256" name="certificate_sha256"{off}>{options}</select></div>')
        return fields


def _selected(flag: bool) -> str:
    return " selected" if flag else ""


def _checkbox(name: str, text: str, checked: bool, disabled: str) -> str:
    state = " checked" if checked else ""
    return (f'<div class="check"><input type="checkbox" id="{name}" name="{name}" value="on"{state}{disabled}>'
            f'<label for="{name}">{text}</label></div>')


def _radio(identifier: str, value: str, text: str, checked: bool) -> str:
    state = " checked" if checked else ""
    return (f'<div class="check"><input type="radio" id="{identifier}" name="certificate" value="{value}"{state}>'
            f'<label for="{identifier}">{text}</label></div>')
