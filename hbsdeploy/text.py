"""Text for people: escaped for a terminal, secrets redacted, cut to one line. The one home of these helpers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
SECRET_HEADERS = frozenset(name.lower() for name in ("Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
                                                     "X-Api-Key"))
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


def escape(text: str) -> str:
    """`text` safe and unambiguous on a terminal: each control, bidirectional or invisible character as Python
    writes it in a string literal (`\\x1b`, `\\u202e`, `\\U000e0001`), a backslash as `\\\\`; the rest as it is."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(char) for char in text)


def escape_controls(text: str) -> str:
    """Like `escape`, but a backslash stays one: for text that carries escapes of its own, such as a certificate
    subject in RFC 4514 form (`O=ACME\\, Inc.`), which a person compares with what a portal shows."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    return char if char.isprintable() else ascii(char)[1:-1]


def shorten(text: str, limit: int | None) -> str:
    """`text` if it has at most `limit` characters, else cut to `limit` with `...` at the end."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."


def one_line(text: str, limit: int | None = None) -> str:
    """`text` on one line (every run of blanks and line breaks one space), shortened to `limit` characters."""
    return shorten(" ".join(text.split()), limit)


def escape_line(text: str, limit: int | None = None) -> str:
    """Outside text (an exception, a server's message, a request line) for a message or a log: one line, escaped."""
    return escape(one_line(text, limit))


def redact_url(url: str) -> str:
    """The URL without any user name or password (nor its fragment), for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))


def redact_urls(text: str) -> str:
    """`text` with the user name and password of every URL in it replaced: `https://***@host/...`."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit for a log: Authorization, cookies and API keys replaced by `<redacted>`."""
    return {name: REDACTED if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`count` and the noun that agrees with it: `1 service type`, `0 service types`, `2 entries` (with
    `plural_form` where adding an `s` is wrong). Every message counting something uses it."""
    noun = singular if count == 1 else plural_form or singular + "s"
    return f"{count} {noun}"
