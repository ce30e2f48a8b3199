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
