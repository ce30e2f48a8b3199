"""Service-type settings as the portal holds them: one canonical form shared by plan, portal and emulator."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The portal's controls hbsdeploy knows how to read and set (the web driver clicks each one): a service type's
# `x-hbsdeploy.fields` is a subset of them. A new kind of control needs code, not only a schema entry.
CONTROLS = (
    "online_request",
    "broadcast_request",
    "service_url",
    "client_certification",
    "certificate",
)

# Every field a payload may carry: the controls, and the chosen User certificate's fingerprint with `certificate`.
SETTING_FIELDS = (*CONTROLS, "certificate_sha256")

DEFAULT_SETTINGS: Mapping[str, Any] = {
    "online_request": False,
    "broadcast_request": False,
    "service_url": None,
    "client_certification": False,
    "certificate": "hubject",
    "certificate_sha256": None,
}


def setting_fields(controls: Iterable[str]) -> tuple[str, ...]:
    """The payload fields of a service type with these controls, in the portal's order: `certificate` brings
    `certificate_sha256`."""
    chosen = set(controls)
    if "certificate" in chosen:
        chosen.add("certificate_sha256")
    return tuple(name for name in SETTING_FIELDS if name in chosen)


def fields_in(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The known fields a payload or stored settings carry, in the portal's order (what a service type has)."""
    return tuple(name for name in SETTING_FIELDS if name in settings)


def normalize_settings(payload: Mapping[str, Any], fields: Iterable[str] = SETTING_FIELDS) -> dict[str, Any]:
    """The form the portal stores for a service type with these `fields` (a field it does not have is left out):
    absent fields take the portal's defaults, Online Request off clears Broadcast and the Service URL (the portal
    does not keep them), the Hubject certificate has no fingerprint, and the URL's scheme and host are lower case
    with no default port and no trailing slash."""
    settings = {name: payload.get(name, DEFAULT_SETTINGS[name]) for name in fields}
    if not settings.get("online_request"):
        for name in ("broadcast_request", "service_url"):
            if name in settings:
                settings[name] = DEFAULT_SETTINGS[name]
    if "certificate_sha256" in settings and settings.get("certificate") != "user":
        settings["certificate_sha256"] = None
    if isinstance(settings.get("service_url"), str):
        settings["service_url"] = normalize_url(settings["service_url"])
    return settings


def holds(settings: Mapping[str, Any], canonical: Mapping[str, Any]) -> bool:
    """Whether `settings` (as a portal answered) stand for `canonical` (a plan's `after`), on its fields."""
    return normalize_settings(settings, fields_in(canonical)) == dict(canonical)


# Already in the form normalize_url gives (what a portal answers): lower-case https scheme and host name, no port, user,
# query or fragment, no trailing slash. Checked first, because parsing costs 15 us a URL and a listing holds thousands.
_CANONICAL_URL = re.compile(r"https://[a-z0-9.-]+(?:/[^?#@\s]*[^/?#@\s])?")


def normalize_url(url: str) -> str:
    """`HTTPS://Example.COM:443/oicp/` -> `https://example.com/oicp`; a URL that does not parse is kept as it is."""
    if _CANONICAL_URL.fullmatch(url):
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and not (scheme == "https" and port == 443) and not (scheme == "http" and port == 80):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))
