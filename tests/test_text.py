"""hbsdeploy.text: the one escaper, redactor and one-line cutter."""

from __future__ import annotations

import pytest

from hbsdeploy.text import (
    escape,
    escape_controls,
    escape_line,
    one_line,
    plural,
    redact_headers,
    redact_url,
    redact_urls,
)


def test_escape_shows_each_invisible_character_one_unambiguous_way() -> None:
    assert escape("A\x1bB\u202eC") == "A\\x1bB\\u202eC"
    assert escape("\U000e0001x") == "\\U000e0001x"  # a tag character: 8 hex digits, never read as \ue000 + "01"
    assert escape("a\\x1b") == "a\\\\x1b"  # a typed backslash is doubled, so it never reads as an escape
    assert escape("plain text, ü and 日本") == "plain text, ü and 日本"


@pytest.mark.parametrize("text", ["A\x1bB\u202eC", "\\x1b", "\x1b", "\\\x1b", "\u200b\ufeff\u2028", "\x7f\x85",
                                  "\U000e0001", "\\U000e0001", "ok"])
def test_escape_is_printable_and_reversible(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable()
    assert shown.encode("latin-1", "backslashreplace").decode("unicode_escape") == text


def test_one_line_joins_lines_and_cuts_with_an_ellipsis() -> None:
    assert one_line("  a\n\tb   c \r\n") == "a b c"
    assert one_line("x" * 10, 10) == "x" * 10
    assert one_line("x" * 11, 10) == "x" * 7 + "..."


def test_escape_line_cuts_then_escapes() -> None:
    assert escape_line("bad\n\x1b[2J value", 100) == "bad \\x1b[2J value"


def test_redaction() -> None:
    assert redact_url("https://alice:hunter2@gateway.example/hbs?x=1#frag") == "https://***@gateway.example/hbs?x=1"
    assert redact_url("https://gateway.example/hbs") == "https://gateway.example/hbs"
    assert redact_url("http://[::1") == "<unparsable URL>"
    assert redact_urls("see https://u:p@a.example/x and ftp://b@c.example") == \
        "see https://***@a.example/x and ftp://***@c.example"
    headers = redact_headers({"Authorization": "Bearer t0k3n", "Cookie": "s=1", "Accept": "application/json"})
    assert headers == {"Authorization": "<redacted>", "Cookie": "<redacted>", "Accept": "application/json"}


@pytest.mark.parametrize(("count", "expected"), [(0, "0 service types"), (1, "1 service type"),
                                                 (2, "2 service types"), (-1, "-1 service types")])
def test_plural_agrees_with_the_count(count: int, expected: str) -> None:
    assert plural(count, "service type") == expected


def test_plural_takes_an_irregular_form() -> None:
    assert plural(1, "UI map entry", "UI map entries") == "1 UI map entry"
    assert plural(3, "UI map entry", "UI map entries") == "3 UI map entries"


def test_escape_controls_keeps_a_subjects_own_escapes_and_shows_control_characters() -> None:
    assert escape_controls("O=ACME\\, Inc.") == "O=ACME\\, Inc."  # RFC 4514's escape of the comma, once
    assert escape_controls("CN=a\x1b[31m\u202eb") == "CN=a\\x1b[31m\\u202eb"
