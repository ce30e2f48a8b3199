"""Issue 13, finding 9: the Service URL rules replayed: the OICP path as whole segments, a warning for other OICP
operation paths, host names by RFC 1123, every non-global IPv6 form refused."""

from __future__ import annotations

import ipaddress

import pytest

from hbsdeploy.check.portalrules import check_service_url
from hbsdeploy.hosts import is_public


def _rules(url: str) -> list[tuple[str, str]]:
    return [(v.rule, v.severity) for v in check_service_url(url)]


def test_api_oicp_is_matched_as_whole_path_segments() -> None:
    assert _rules("https://gw.example.com/api/oicpgw") == []
    assert _rules("https://gw.example.com/apis/oicp") == []
    assert _rules("https://gw.example.com/base/API/OICP/charging/v21") == [("service-url-oicp-path", "error")]
    (violation,) = check_service_url("https://gw.example.com/base/api/oicp")
    assert "use 'https://gw.example.com/base'" in violation.message


def test_a_percent_encoded_oicp_path_is_the_same_path() -> None:
    """RFC 3986 2.3: %6F is an o to the server; the check compares what the server compares (issue 13 review)."""
    for path in ("/api/%6Ficp", "/%61pi/oicp/charging", "/api/%4F%49%43%50"):
        assert _rules(f"https://gw.example.com{path}") == [("service-url-oicp-path", "error")], path
    assert _rules("https://gw.example.com/api/oicp%2Fgw") == [], "an encoded slash is part of the segment"


@pytest.mark.parametrize("path", ["/oicp/reservation/v11", "/charging/v21/providers/DE-8EO/authorize-remote/start",
                                  "/x/authorize/stop", "/cdr/charge-detail-record", "/evsepull/v23"])
def test_other_oicp_operation_paths_are_a_warning(path: str) -> None:
    assert _rules(f"https://oicp.example.com{path}") == [("service-url-oicp-operation", "warning")]


@pytest.mark.parametrize("path", ["/oicp", "/reservation", "/api/v1", "/charging", "/emp/authorize"])
def test_ordinary_base_paths_pass(path: str) -> None:
    assert _rules(f"https://oicp.example.com{path}") == []


@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..example.com", ".example.com", "-a.example.com",
                                  "a-.example.com", ("a" * 60 + ".") * 7 + "com", "under_score.example.com"])
def test_host_names_follow_rfc_1123(host: str) -> None:
    assert _rules(f"https://{host}/") == [("service-url-host", "error")]


def test_a_63_character_label_and_a_253_character_name_pass() -> None:
    assert _rules(f"https://{'a' * 63}.example.com/") == []
    name = ".".join(["a" * 62] * 4) + ".c"
    assert len(name) == 253 and _rules(f"https://{name}/") == []


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[::8.8.8.8]", "[fec0::1]", "[ff02::1]", "[ff0e::1]",
                                  "224.0.0.1", "239.1.2.3", "[::ffff:10.0.0.1]", "[fe80::1]", "[fd00::1]"])
def test_every_non_global_address_is_refused(host: str) -> None:
    assert _rules(f"https://{host}/") == [("service-url-private-host", "error")]


def test_global_addresses_stay_public() -> None:
    assert is_public(ipaddress.ip_address("8.8.8.8")) and is_public(ipaddress.ip_address("2a00:1450:4001::1"))
    assert not is_public(ipaddress.ip_address("ff0e::1")) and not is_public(ipaddress.ip_address("fec0::1"))


@pytest.mark.parametrize("host", ["[64:ff9b:1::1]", "[3fff::1]", "[5f00::1]", "[::ffff:0:a9fe:a9fe]", "[100:0:0:1::1]",
                                  "[4000::1]", "[e000::1]"])
def test_ipv6_outside_global_unicast_or_in_newer_special_blocks_is_refused(host: str) -> None:
    """Was accepted on Python 3.11, whose ipaddress counts them global (issue 13 review): local-use NAT64
    64:ff9b:1::/48 (RFC 8215), documentation 3fff::/20 (RFC 9637), SRv6 SIDs 5f00::/16 (RFC 9602), SIIT
    ::ffff:0:0:0/96 (here embedding 169.254.169.254), 100:0:0:1::/64 (special-purpose, next to discard-only
    100::/64) and the rest outside 2000::/3 (IANA's global unicast assignments). doctor --probe judges addresses with
    the same is_public."""
    assert _rules(f"https://{host}/") == [("service-url-private-host", "error")]
    assert not is_public(ipaddress.ip_address(host.strip("[]")))


@pytest.mark.parametrize("address", ["2a00:1450:4001::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
                                     "2002:808:808::1", "2001:4860:4860::8888"])
def test_global_ipv6_forms_stay_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
