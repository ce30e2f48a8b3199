"""Service-type settings as the portal holds them: one canonical form shared by plan, portal and emulator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SETTING_FIELDS = (
    "online_request",
    "broadcast_request",
    "service_url",
    "client_certification",
    "certificate",
    "certificate_sha256",
)

DEFAULT_SETTINGS: Mapping[str, Any] = {
    "online_request": False,
    "broadcast_request": False,
    "service_url": None,
    "client_certification": False,
    "certificate": "hubject",
    "certificate_sha256": None,
}


def normalize_settings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The form the portal stores: absent fields take the portal's defaults, Online Request off clears Broadcast
    and the Service URL (the portal does not keep them), the Hubject certificate has no fingerprint, and the URL's
    scheme and host are lower case with no default port and no trailing slash."""
    settings = {name: payload.get(name, DEFAULT_SETTINGS[name]) for name in SETTING_FIELDS}
    if not settings["online_request"]:
        settings["broadcast_request"] = False
        settings["service_url"] = None
    if settings["certificate"] != "user":
        settings["certificate_sha256"] = None
    if isinstance(settings["service_url"], str):
        settings["service_url"] = normalize_url(settings["service_url"])
    return settings


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
