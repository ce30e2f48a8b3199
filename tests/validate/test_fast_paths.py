"""The fast paths taken for the common case (issue 16) say exactly what the general code says: each is compared with
the general code over a corpus of awkward inputs."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path

import pytest

from hbsdeploy.check import portalrules
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.load import settings
from hbsdeploy.portal.contract import loads_strict

_PIECES = ["https://", "HTTPS://", "hTTps://", "http://", "a", "B", "-", ".", "..", "/", "//", "api", "oicp",
           "/api/oicp",
           "/Api/OICP", "v23", "charging", "authorize-remote", "start", "?", "#", "@", ":443", ":0", ":99999", ":8443",
           "[::1]", "127.0.0.1", "10.0.0.1", "localhost", "xn--80ak6aa92e", "\u00e9", " ", "\t", "%20", "example.com",
           "partner.example.com", "charge-detail-record"]


def _corpus(count: int) -> list[str]:
    generator = random.Random(16)
    schemes = ["https://", "https://", "https://", "HTTPS://", "http://", ""]
    found = {generator.choice(schemes) + "".join(generator.choice(_PIECES) for _ in range(generator.randint(1, 6)))
             for _ in range(count)}
    return sorted(found)


def _violations(urls: list[str]) -> list[object]:
    portalrules._check_service_url.cache_clear()
    portalrules._url_shape.cache_clear()
    return [(url, allow, portalrules.check_service_url(url, allow_private_hosts=allow))
            for url, allow in itertools.product(urls, (False, True))]


def test_plain_service_urls_get_what_the_general_check_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = _corpus(20000)
    assert sum(1 for url in urls if portalrules._PLAIN_HTTPS_URL.fullmatch(url)) > 500  # the fast path is taken
    fast = _violations(urls)
    monkeypatch.setattr(portalrules, "_PLAIN_HTTPS_URL", re.compile(r"(?!)"))
    assert _violations(urls) == fast
    portalrules._check_service_url.cache_clear()
    portalrules._url_shape.cache_clear()


def test_a_canonical_url_is_kept_and_others_normalized_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = _corpus(20000) + ["https://host/x/", "https://Host/x", "https://host:443/x", "https://h/a?b", "https://h/a#"]
    fast = [settings.normalize_url(url) for url in urls]
    assert sum(1 for url in urls if settings._CANONICAL_URL.fullmatch(url)) > 200
    monkeypatch.setattr(settings, "_CANONICAL_URL", re.compile(r"(?!)"))
    assert [settings.normalize_url(url) for url in urls] == fast


@pytest.mark.parametrize("body", [b'"\\ud800"', b'"\\uDBFF"', b'{"a": ["\\udc00"]}', '"\\ud800"', '"\ud800"',
                                  b'"\xed\xa0\x80"', b'"\xff"'])
def test_a_lone_surrogate_or_bytes_that_are_not_utf8_are_refused(body: bytes | str) -> None:
    with pytest.raises(ValueError):
        loads_strict(body)


@pytest.mark.parametrize(("body", "expected"), [
    (b'"\\ud83d\\ude00"', "\U0001f600"),  # a pair is one character
    (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash: text, not an escape
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a byte order mark is dropped, as json.loads does
    ('{"a": "\u00e9"}', {"a": "\u00e9"}),
])
def test_valid_json_reads_as_before(body: bytes | str, expected: object) -> None:
    assert loads_strict(body) == expected
    if isinstance(body, bytes):
        assert loads_strict(body) == json.loads(body)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 65536, 65537, 200_000])
def test_read_bytes_reads_whole_files_of_any_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.yaml"
    data = os.urandom(size)
    path.write_bytes(data)
    assert read_bytes(path, 1 << 20) == data
    if size:
        with pytest.raises(FileRefused, match="larger than"):
            read_bytes(path, size - 1)
