"""The paged listing of every partner's service types: the HTTP client following pages, the embedded portal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from hbsdeploy.load.settings import DEFAULT_SETTINGS
from hbsdeploy.portal import PortalProtocolError, PortalUnavailable, http
from hbsdeploy.portal.contract import MAX_PAGE_SIZE, decode_page_token, encode_page_token
from hbsdeploy.portal.http import HttpPortal
from hbsdeploy.portal.local import LocalPortal
from hbsdeploy.portal.store import Store
from tests.portal.helpers import BASE, Sleeps, payload

PARTNERS = f"{BASE}/v1/partners"


def entry(partner_id: str, version: str = '"1"') -> dict[str, Any]:
    return {"partner_id": partner_id, "service_types": {
        "authorization": {"settings": payload(), "version": version},
        "reservation": {"settings": dict(DEFAULT_SETTINGS), "version": '"0"'}}}


def page_query(token: str | None) -> list[Any]:
    params = {"page_size": str(MAX_PAGE_SIZE)}
    if token is not None:
        params["page_token"] = token
    return [matchers.query_param_matcher(params)]


def test_every_page_is_fetched_in_order_with_the_largest_page_size(rsps: responses.RequestsMock,
                                                                   client: Callable[..., HttpPortal]) -> None:
    rsps.get(PARTNERS, json={"partners": [entry("DE*A36"), entry("DE*A37")], "next_page_token": "t1"},
             match=page_query(None))
    rsps.get(PARTNERS, json={"partners": [entry("DE*A38", '"4"')], "next_page_token": "t2"}, match=page_query("t1"))
    rsps.get(PARTNERS, json={"partners": []}, match=page_query("t2"))
    portal = client()
    found = portal.list_all_service_types()
    assert list(found) == ["DE*A36", "DE*A37", "DE*A38"]
    assert found["DE*A38"]["authorization"].version == '"4"'
    assert found["DE*A38"]["authorization"].partner_id == "DE*A38"
    assert found["DE*A36"]["reservation"].settings == DEFAULT_SETTINGS
    assert portal.request_count == 3


def test_a_page_that_fails_is_retried_like_any_read(rsps: responses.RequestsMock,
                                                    client: Callable[..., HttpPortal], sleeps: Sleeps) -> None:
    rsps.get(PARTNERS, status=503, json={"error": "unavailable", "message": "busy"},
             headers={"Retry-After": "2"}, match=page_query(None))
    rsps.get(PARTNERS, json={"partners": [entry("DE*A36")]}, match=page_query(None))
    portal = client()
    assert list(portal.list_all_service_types()) == ["DE*A36"]
    assert sleeps.calls == [2.0] and portal.request_count == 2


@pytest.mark.parametrize(("pages", "message"), [
    ([{"partners": {}}], "a `partners` list"),
    ([{"partners": [{"partner_id": 3, "service_types": {}}]}], "`partner_id` and a `service_types` object"),
    ([{"partners": [entry("DE*A36"), entry("DE*A36")]}], "came twice"),
    ([{"partners": [entry("DE*A36")], "next_page_token": "t"}, {"partners": [entry("DE*A37")],
                                                                "next_page_token": "t"}], "a new page token"),
    ([{"partners": [], "next_page_token": 7}], "a new page token"),
    ([{"partners": [], "next_page_token": "t1"}], "a page with partners before a next_page_token"),
    ([{"partners": [entry("DE*B01"), entry("DE*A36")]}], "ascending ID order ('DE*A36' came after 'DE*B01')"),
    ([{"partners": [entry("DE*B01")], "next_page_token": "t1"}, {"partners": [entry("DE*A36")]}],
     "ascending ID order"),
    ([{"partners": [{"partner_id": "DE*A36", "service_types": {"authorization": {"settings": {"x": 1},
                                                                                 "version": '"1"'}}}]}],
     "valid settings"),
])
def test_a_listing_outside_the_contract_is_one_clear_error(rsps: responses.RequestsMock,
                                                           client: Callable[..., HttpPortal],
                                                           pages: list[dict[str, Any]], message: str) -> None:
    for body in pages:
        rsps.get(PARTNERS, json=body)
    with pytest.raises(PortalProtocolError, match="schemas/portal-api.openapi.yaml") as error:
        client().list_all_service_types()
    assert message in str(error.value)


def test_a_gateway_without_the_listing_says_so(rsps: responses.RequestsMock,
                                               client: Callable[..., HttpPortal]) -> None:
    rsps.get(PARTNERS, status=404, json={"error": "not_found", "message": "no such resource"})
    with pytest.raises(PortalProtocolError, match=r"does not serve the partners listing \(GET /v1/partners, 404\)"):
        client().list_all_service_types()


def test_a_listing_that_never_answers_is_bounded(rsps: responses.RequestsMock,
                                                 client: Callable[..., HttpPortal]) -> None:
    for _ in range(2):
        rsps.get(PARTNERS, status=503, json={"error": "unavailable", "message": "busy"})
    with pytest.raises(PortalUnavailable, match="the partners listing, 2 attempts"):
        client(max_retries=1).list_all_service_types()


def test_page_tokens_round_trip_and_refuse_forgeries() -> None:
    for partner_id in ("DE*A36", "+49*536", "DE-8EO"):
        assert decode_page_token(encode_page_token(partner_id)) == partner_id
    for bad in ("", "garbage", "after.", "after.!!!", "after.REVBKkEzNg==", "after." + "A" * 300):
        with pytest.raises(ValueError):
            decode_page_token(bad)


def test_the_embedded_portal_pages_registered_partners_in_id_order(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3", auto_register=False)
    ids = [f"DE*A{n:02d}" for n in range(25)] + ["+49*536", "AT*B01"]
    for partner_id in reversed(ids):
        portal.register_partner(partner_id)
    portal.update_service_type("DE*A07", "authorization", payload(), '"0"')
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = portal.list_page(token, 10)
        pages += 1
        seen.extend(page)
        if token is None:
            break
    assert seen == sorted(ids) and pages == 3
    everything = portal.list_all_service_types()
    assert list(everything) == sorted(ids)
    assert everything["DE*A07"]["authorization"].version == '"1"'
    assert everything["DE*A07"] == portal.list_service_types("DE*A07")
    with pytest.raises(ValueError):
        portal.list_page("garbage", 10)
    whole, token = portal.list_page(None, len(ids))  # a page that ends exactly at the last partner is the last page
    assert len(whole) == len(ids) and token is None


def test_the_sandbox_lists_only_partners_it_has_stored(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3")  # auto_register: every partner reads as defaults
    portal.list_service_types("DE*A36")  # a read registers nothing
    assert portal.list_all_service_types() == {}
    portal.update_service_type("DE*A36", "reservation", payload(), '"0"')
    assert list(portal.list_all_service_types()) == ["DE*A36"]


def test_a_refused_write_registers_no_partner(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "s.sqlite3")
    with pytest.raises(Exception, match="changed since the plan"):
        portal.update_service_type("DE*A36", "authorization", payload(), '"3"')
    assert Store(tmp_path / "s.sqlite3").partners() == []


def test_the_environment_is_read_once_and_deadlines_share_one_thread(rsps: responses.RequestsMock,
                                                                     client: Callable[..., HttpPortal],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy and CA variables are looked up when the portal opens, as requests would per request (no_proxy too);
    every attempt's deadline is kept by one watchdog thread, not a timer thread each."""
    import threading

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    portal = client()
    assert portal._proxies == {"https": "http://proxy.example:3128"} and portal._verify == "/etc/ssl/bundle.pem"
    assert portal.session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "gateway.example")
    assert client(ca_bundle=None)._proxies == {}
    rsps.get(PARTNERS, json={"partners": [entry(f"DE*A{n:02d}") for n in range(3)]})
    for _ in range(5):
        rsps.get(f"{BASE}/v1/partners/DE%2AA36/service-types", json=entry("DE*A36"))
    portal.list_all_service_types()
    for _ in range(5):
        portal.list_service_types("DE*A36")
    assert [t.name for t in threading.enumerate()].count("hbsdeploy-deadlines") == 1


def test_a_listing_that_never_ends_is_refused_after_the_partner_cap(rsps: responses.RequestsMock,
                                                                     client: Callable[..., HttpPortal],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page new partners and a new token, forever (issue 16 review: plan looped until killed): refused once the
    listing passes MAX_LISTED_PARTNERS, with the requests made so far bounded by it."""
    monkeypatch.setattr(http, "MAX_LISTED_PARTNERS", 30)
    for page in range(3):
        rsps.get(PARTNERS, json={"partners": [entry(f"DE*{page}{n:02d}") for n in range(10)],
                                 "next_page_token": f"t{page}"})
    portal = client()
    with pytest.raises(PortalProtocolError, match="goes on past 30 partners") as error:
        portal.list_all_service_types()
    assert "schemas/portal-api.openapi.yaml" in str(error.value) and portal.request_count == 3



def test_the_next_page_is_requested_while_this_page_is_checked(rsps: responses.RequestsMock,
                                                                client: Callable[..., HttpPortal],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The checking of a page's entries overlaps the portal's work on the next page (issue 16): the request for page 2
    is under way before the first entry of page 1 is checked. The same requests, no more."""
    import threading

    second_page_asked = threading.Event()

    def second_page(_request: Any) -> tuple[int, dict[str, str], str]:
        second_page_asked.set()
        return 200, {}, json.dumps({"partners": [entry("DE*A38")]})

    rsps.get(PARTNERS, json={"partners": [entry("DE*A36"), entry("DE*A37")], "next_page_token": "t1"},
             match=page_query(None))
    rsps.add_callback(responses.GET, PARTNERS, callback=second_page, match=page_query("t1"))
    portal = client()
    checked_after_second_page_asked = []
    check = portal._states

    def states(partner_id: str, listed: dict[str, Any]) -> Any:
        checked_after_second_page_asked.append(second_page_asked.wait(timeout=10))
        return check(partner_id, listed)

    monkeypatch.setattr(portal, "_states", states)
    assert list(portal.list_all_service_types()) == ["DE*A36", "DE*A37", "DE*A38"]
    assert checked_after_second_page_asked == [True, True, True] and portal.request_count == 2
