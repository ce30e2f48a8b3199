"""The portal's own rules for one service type's settings.

One source for both sides: `hbsdeploy validate` reports these against the partner file's lines, and the emulator
answers 422 with them, as the portal does when a setting cannot be saved.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from hbsdeploy.hosts import host_problem, ip_literal, is_public
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.text import redact_urls

_PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".localdomain", ".home.arpa", ".lan")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn"})
# What urlsplit leaves of a host that a resolver can take: an LDH name (RFC 1123) or an IP
# literal (IPv6 without brackets, a zone after %25). Anything else, e.g. `%31%32%37.0.0.1`, which URL parsers
# percent-decode to 127.0.0.1, is refused.
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:")


@dataclass(frozen=True)
class Violation:
    """A setting the portal refuses (`error`) or advises against (`warning`)."""

    field: str
    rule: str
    message: str
    severity: str = "error"


def check_settings(spec: ServiceTypeSpec, settings: Mapping[str, Any], *,
                   allow_private_hosts: bool = False) -> list[Violation]:
    """What the portal says about these settings of one service type (fields absent take the portal's defaults)."""
    online = bool(settings.get("online_request", False))
    broadcast = bool(settings.get("broadcast_request", False))
    url = settings.get("service_url")
    found = _foreign_fields(spec, settings)
    if broadcast and not spec.broadcast and "broadcast_request" in spec.fields:
        found.append(Violation("broadcast_request", "broadcast-not-supported",
                               f"{spec.label} has no Broadcast Request in the portal; remove broadcast_request"))
    elif broadcast and not online:
        found.append(Violation("broadcast_request", "broadcast-needs-online-request",
                               "Broadcast Request needs Online Request; set online_request: true or untick broadcast"))
    if online and not url and "service_url" in spec.fields:
        found.append(Violation("online_request", "online-request-needs-url",
                               "Online Request needs a Service URL; add service_url (the base https:// URL of your "
                               "OICP endpoint)"))
    if isinstance(url, str):
        found.extend(check_service_url(url, allow_private_hosts=allow_private_hosts))
    if settings.get("certificate") == "user" and not (settings.get("certificate_sha256")
                                                      or settings.get("certificate_file")):
        found.append(Violation("certificate", "certificate-file-required",
                               "certificate: user needs the uploaded certificate; add certificate_file"))
    return found


_FIELD_LABELS = {"online_request": "Online Request", "broadcast_request": "Broadcast Request",
                 "service_url": "Service URL", "client_certification": "Client Certification",
                 "certificate": "Server certification", "certificate_sha256": "Server certification",
                 "certificate_file": "Server certification"}


def _foreign_fields(spec: ServiceTypeSpec, settings: Mapping[str, Any]) -> list[Violation]:
    """A field the service type does not have (its schema entry's `x-hbsdeploy.fields`): the portal shows no such
    control for it."""
    return [Violation(name, "field-not-for-service-type",
                      f"{spec.label} has no {_FIELD_LABELS[name]} in the portal (its fields: "
                      f"{', '.join(spec.file_keys)}); remove {name}")
            for name in settings if name not in spec.known_keys and name in _FIELD_LABELS]


def check_service_url(url: str, *, allow_private_hosts: bool = False) -> list[Violation]:
    """The Service URL rules: absolute https, nothing invisible, no credentials, fragment or query, a valid port,
    no OICP path (the platform appends it), and a host the platform can reach from the internet."""
    return list(_check_service_url(url, allow_private_hosts))


@functools.lru_cache(maxsize=4096)  # a partner's URL is checked once per environment, often the same one
def _check_service_url(url: str, allow_private_hosts: bool) -> tuple[Violation, ...]:
    found, host = _url_shape(url)
    if host is None:
        return found
    return found + _check_host(host, allow_private_hosts)


@functools.lru_cache(maxsize=4096)
def _url_shape(url: str) -> tuple[tuple[Violation, ...], str | None]:
    """The violations of the URL apart from its host's, and the host to check next (None: the URL is too broken to
    say more). Kept apart from the host, which a partner's URLs share and a sandbox judges by other rules."""
    # Printable ASCII without a blank holds nothing invisible: only other URLs need the character by character look.
    clean = url.isascii() and url.isprintable() and " " not in url
    plain = _PLAIN_HTTPS_URL.fullmatch(url) if clean else None
    if plain:  # what urlsplit would say of it, at a third of the cost: a listing or a repository holds thousands
        found: list[Violation] = []
        host, path = plain.group(1).lower(), plain.group(2) or ""
    else:
        parsed = _parse_url(url, clean)
        if isinstance(parsed, Violation):
            return (parsed,), None
        host, path, found = parsed
    segments = path.split("/")
    # what a server compares: %6F is an o (RFC 3986 2.3: percent-encoded unreserved characters are the same URI)
    lowered = [unquote(segment).lower() if "%" in segment else segment.lower() for segment in segments]
    oicp = next((i for i in range(len(lowered) - 1) if lowered[i:i + 2] == ["api", "oicp"]), None)
    if oicp is not None:
        base = url[: url.find(path)] + "/".join(segments[:oicp])
        found.append(Violation("service_url", "service-url-oicp-path",
                               "Service URL must not contain the OICP path (the platform appends /api/oicp/...); "
                               f"use {base!r}"))
    elif _oicp_operation(lowered):
        found.append(Violation("service_url", "service-url-oicp-operation",
                               f"Service URL path {path!r} looks like an OICP operation path; the platform "
                               "appends /api/oicp/<service>/<version>/... to the base URL, so give only the base",
                               "warning"))
    return tuple(found), host


# https://, a host of letters, digits, dots and hyphens without a port, and a path: no user, query or fragment.
_PLAIN_HTTPS_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]://([A-Za-z0-9.-]+)(/[^?#]*)?")


def _parse_url(url: str, clean: bool) -> Violation | tuple[str, str, list[Violation]]:
    """Host, path and the violations found on the way, or the one violation that ends the look at the URL."""
    def bad(rule: str, message: str) -> Violation:
        return Violation("service_url", rule, message)

    for index, char in enumerate(() if clean else url):
        if char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            name = unicodedata.name(char, "control character")
            return bad("service-url-whitespace",
                       f"Service URL contains U+{ord(char):04X} ({name}) at position {index + 1}; "
                       "remove blanks and invisible characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return bad("service-url-invalid", f"Service URL does not parse ({exc}); write https://host/path")
    if parts.scheme.lower() != "https" or not parts.netloc:
        return bad("service-url-https", f"Service URL {redact_urls(repr(url))} must be an absolute https:// URL")
    if "@" in parts.netloc:
        return bad("service-url-credentials",
                   "Service URL must not carry a user name or password; the platform authenticates with certificates")
    try:
        port = parts.port
    except ValueError:
        return bad("service-url-port", "Service URL has an invalid port; use a number from 1 to 65535 or none")
    if port == 0:
        return bad("service-url-port", "Service URL has port 0; use a number from 1 to 65535 or none")
    found: list[Violation] = []
    if parts.fragment or url.endswith("#"):
        found.append(bad("service-url-fragment", "Service URL must not have a #fragment; remove it"))
    if parts.query or "?" in url:
        found.append(bad("service-url-query",
                         "Service URL must not have a ?query; the platform appends the OICP path after it"))
    return parts.hostname or "", parts.path, found


# OICP 2.3's paths are /api/oicp/<service>/v<NN>/... (charging/v21, evsepull/v23, cdrmgmt/v22...), and the calls the
# platform makes to a partner end in authorize.../start or /stop: a base URL holding them would have the operation
# path twice once the platform appends its own.
_OICP_RECORDS = frozenset({"charge-detail-record", "charging-notifications"})


def _oicp_operation(segments: list[str]) -> bool:
    for before, after in zip(segments, segments[1:], strict=False):
        if (before.isalpha() and before != "api" and len(after) == 3 and after[0] == "v"
                and after[1:].isdigit()):
            return True
        if before.startswith("authorize") and after in ("start", "stop"):
            return True
    return any(segment in _OICP_RECORDS for segment in segments)


@functools.lru_cache(maxsize=4096)  # a partner's service types usually share one host
def _check_host(host: str, allow_private_hosts: bool) -> tuple[Violation, ...]:
    return tuple(_host_violations(host, allow_private_hosts))


def _host_violations(host: str, allow_private_hosts: bool) -> list[Violation]:
    if not host:
        return [Violation("service_url", "service-url-https", "Service URL has no host")]
    if not host.isascii():
        return [Violation("service_url", "service-url-host",
                          f"Service URL host {host!r} has non-ASCII characters (a look-alike?); "
                          "write the intended host in ASCII (punycode xn--... for an international name)")]
    if not _HOST_CHARACTERS.issuperset(host.partition("%")[0] if ":" in host else host):
        return [Violation("service_url", "service-url-host",
                          f"Service URL host {host!r} is not a host name (letters, digits, - and . only) or an IP "
                          "address; write the host as the platform must call it, without %-escapes")]
    problem = host_problem(host) if ip_literal(host) is None else None  # RFC 1123: labels, lengths, hyphens
    if problem:
        return [Violation("service_url", "service-url-host", f"Service URL {problem}")]
    found = _check_international(host)
    if allow_private_hosts or found and found[0].severity == "error":
        return found
    address = ip_literal(host)  # `127.0.0.1.` is 127.0.0.1 to URL parsers and resolvers
    if address is not None:
        if not is_public(address):
            return [Violation("service_url", "service-url-private-host",
                              f"Service URL host {host} is not a public unicast address (loopback, private, "
                              "link-local, site-local, multicast or reserved): the platform cannot reach it; use "
                              "your public host name")]
        return found
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(_PRIVATE_SUFFIXES) or "." not in lowered:
        return [Violation("service_url", "service-url-private-host",
                          f"Service URL host {host!r} is a local name the platform cannot reach from the internet; "
                          "use your public host name")]
    return found


def _check_international(host: str) -> list[Violation]:
    """A punycode (xn--) label must decode; one that decodes to a look-alike of a Latin name (scripts mixed in one
    label, or only Cyrillic letters that look Latin, as in xn--80ak6aa92e = аррӏе) is a warning showing the name
    with every non-ASCII character escaped, for the reviewer."""
    if "xn--" not in host.lower():
        return []
    try:
        decoded = host.encode("ascii").decode("idna")
    except UnicodeError:
        return [Violation("service_url", "service-url-host",
                          f"Service URL host {host!r} holds an invalid punycode (xn--) label; write the host as "
                          "registered")]
    if not any(_looks_latin(label) for label in decoded.split(".")):
        return []
    return [Violation("service_url", "service-url-international-host",
                      f"Service URL host {host!r} stands for {ascii(decoded)}, which mixes scripts or imitates Latin "
                      "letters (a look-alike host?); check that it is the intended host", "warning")]


_LATIN_LOOKING_CYRILLIC = frozenset("аеорсухіјӏѕһԁԛԝҽ")


def _looks_latin(label: str) -> bool:
    letters = [char for char in label if char.isalpha()]
    scripts = {unicodedata.name(char, "?").split(" ")[0] for char in letters}
    if len(scripts) > 1:
        return True
    return bool(letters) and not label.isascii() and all(char in _LATIN_LOOKING_CYRILLIC for char in letters)

