"""What a portal URL and its host may be, and which addresses are public: the one rule shared by the config check,
the portal client, the Service URL rules and `doctor --probe`."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_IP_CHARACTERS = frozenset("0123456789abcdefxABCDEFX.:")
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IANA's "IPv6 Global Unicast Address Assignments": every unicast address assigned for the internet is in 2000::/3;
# the rest of the space is reserved or special-purpose (RFC 4291 section 2.4). Inside 2000::/3, the blocks IANA's
# "IPv6 Special-Purpose Address Registry" marks not globally reachable that Python's ipaddress learnt only in later
# releases (Python 3.11 counts them global): 3fff::/20, documentation (RFC 9637). Outside it, 64:ff9b:1::/48
# (local-use NAT64, RFC 8215), 5f00::/16 (SRv6 SIDs, RFC 9602) and ::ffff:0:0:0/96 (SIIT) are refused by the first.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_IN_UNICAST = (ipaddress.IPv6Network("3fff::/20"),)


@dataclass(frozen=True)
class PortalURL:
    """A portal API base URL that passed `parse_portal_url`."""

    scheme: str
    host: str
    port: int | None

    @property
    def loopback(self) -> bool:
        """The host is this machine: `localhost`, 127.0.0.0/8 or ::1."""
        return is_loopback_host(self.host)


class HostError(ValueError):
    """A URL or host that breaks the rule; the message says what to write instead, `rule` names the rule."""

    def __init__(self, message: str, rule: str = "portal-setting") -> None:
        super().__init__(message)
        self.rule = rule


def parse_portal_url(url: str, *, protected: bool, secret: str = "the token") -> PortalURL:
    """The parts of a portal URL, or HostError: http(s) only, no user name or password, a valid host and port,
    `http://` only for a loopback host and never for a protected environment (the token would travel in clear)."""
    if not url.isascii() or not url.isprintable() or " " in url:
        raise HostError("holds a blank, control, invisible or non-ASCII character; write the URL in plain ASCII "
                        "(punycode xn--... for an international host)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise HostError(f"does not parse ({exc}); write https://host/path") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise HostError("is not an absolute https:// URL; write https://host/path")
    if "@" in parts.netloc:
        raise HostError("carries a user name or password, a secret in a file that goes to git; remove it and give "
                        "the token in token_env", "portal-credentials")
    host = parts.hostname or ""
    problem = host_problem(host)
    if problem:
        raise HostError(problem)
    port = port_of(parts.netloc)
    if scheme == "http":
        if protected:
            raise HostError(f"is http:// in a protected environment, which would send {secret} in clear text; "
                            "use https://", "portal-insecure")
        if not is_loopback_host(host):
            raise HostError(f"is http:// to {host}, which is not this machine: {secret} would travel in clear "
                            "text; use https:// (http:// is for loopback test portals only)", "portal-insecure")
    return PortalURL(scheme, host, port)


def port_of(netloc: str) -> int | None:
    """The port written after the host, or None; HostError for anything but a number from 1 to 65535."""
    after_host = netloc.rpartition("]")[2] if netloc.startswith("[") else netloc
    if ":" not in after_host:
        return None
    text = after_host.rpartition(":")[2]
    if not text:
        raise HostError("has a `:` without a port; remove it or give a port from 1 to 65535")
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise HostError(f"has the invalid port {text[:20]!r}; give a port from 1 to 65535")
    return int(text)


def host_problem(host: str) -> str | None:
    """Why `host` is not a host a client can connect to (a DNS name of 1-63 character labels, letters, digits and
    hyphens, at most 253 characters, or an IP address), or None."""
    if not host:
        return "has no host; write https://host/path"
    if ":" in host:  # urlsplit leaves IPv6 literals without their brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"has the host {host!r}, which is not a valid IPv6 address"
        return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        return "has a host name longer than 253 characters"
    for label in name.split("."):
        if not label:
            return f"has the host {host!r} with an empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"has a host name label of {len(label)} characters; a label has at most 63"
        if not _LABEL_CHARACTERS.issuperset(label) or label.startswith("-") or label.endswith("-"):
            return (f"has the host {host!r}, which is not a host name (letters, digits and inner hyphens) or an IP "
                    "address")
    return None


def ip_literal(host: str) -> Address | None:
    """The IP address `host` stands for when it is one, in any form a resolver accepts (2130706433, 0x7f.1 and
    017700000001 all mean 127.0.0.1), else None."""
    host = host.removesuffix(".")
    if not host or not _IP_CHARACTERS.issuperset(host):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    address = ip_literal(host)
    return address is not None and address.is_loopback


_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated by RFC 4291 (`::127.0.0.1`); never a real host

# The cloud platform's own services at fixed addresses (instance metadata with its credentials, DNS, NTP): never a
# Service URL, so never reached, whatever a file or a switch says. Their IPv4 forms are link-local (not public, and
# not private either); AWS Nitro instances also answer at IPv6 unique local addresses, which fc00::/7 would otherwise
# count as private: IMDS fd00:ec2::254, DNS fd00:ec2::253, NTP fd00:ec2::123 (AWS whitepaper "IPv6 on AWS",
# "Supporting Amazon VPC services"). The one list: `doctor --probe` (tools/probe.py) asks `is_cloud_service`.
CLOUD_SERVICE_ADDRESSES: frozenset[Address] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.169.253", "169.254.169.123", "169.254.170.2",
    "fd00:ec2::254", "fd00:ec2::253", "fd00:ec2::123"))


def is_cloud_service(address: Address) -> bool:
    """A cloud metadata, DNS or time service address (`CLOUD_SERVICE_ADDRESSES`), also written IPv4-mapped."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in CLOUD_SERVICE_ADDRESSES


def is_public(address: Address) -> bool:
    """Reachable from the internet as one host: global itself, and so is any IPv4 address it embeds (IPv4-mapped,
    6to4, NAT64). Loopback, private, link-local (169.254.169.254, the cloud metadata address), shared, reserved,
    multicast, IPv6 site-local (fec0::/10), IPv4-compatible IPv6 (::/96), IPv6 outside the global unicast space
    2000::/3 (other than IPv4-mapped and NAT64 64:ff9b::/96), IPv6 documentation (2001:db8::/32, 3fff::/20) and the
    cloud's service addresses (`CLOUD_SERVICE_ADDRESSES`) are not, whatever the Python version's ipaddress says."""
    if not address.is_global or address.is_multicast or is_cloud_service(address):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or address in _IPV4_COMPATIBLE:
            return False
        if address.ipv4_mapped is None and address not in _NAT64 and (
                address not in _GLOBAL_UNICAST or any(address in block for block in _NOT_GLOBAL_IN_UNICAST)):
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return True
