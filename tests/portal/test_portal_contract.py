"""The emulator answers as schemas/portal-api.openapi.yaml says: documented statuses, bodies that match."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from hbsdeploy.load.resources import load_schema, schemas_dir
from hbsdeploy.load.settings import SETTING_FIELDS
from hbsdeploy.portal.emulator import ServerHandle
from tests.portal.helpers import TOKEN, payload

LIST_PATH = "/v1/partners/{partner_id}/service-types"
ITEM_PATH = "/v1/partners/{partner_id}/service-types/{service_type}"
DOC_URI = (schemas_dir() / "portal-api.openapi.yaml").as_uri()
PAYLOAD_URI = (schemas_dir() / "portal-payload.schema.json").as_uri()


def _document() -> dict[str, Any]:
    with (schemas_dir() / "portal-api.openapi.yaml").open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


DOCUMENT = _document()
REGISTRY: Registry[Any] = Registry().with_resources([
    (DOC_URI, DRAFT202012.create_resource(DOCUMENT)),
    (PAYLOAD_URI, DRAFT202012.create_resource(load_schema("portal-payload"))),
])


def _pointer(*parts: str) -> str:
    return "#" + "".join("/" + quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


def check(template: str, method: str, response: requests.Response) -> None:
    """The status is documented for the operation and the JSON body matches its schema."""
    responses = DOCUMENT["paths"][template][method.lower()]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {template} answered undocumented {status}: {response.text}"
    entry = responses[status]
    if "$ref" in entry:
        name = entry["$ref"].rsplit("/", 1)[1]
        pointer = _pointer("components", "responses", name, "content", "application/json", "schema")
    else:
        pointer = _pointer("paths", template, method.lower(), "responses", status, "content", "application/json",
                           "schema")
    validator = Draft202012Validator({"$ref": DOC_URI + pointer}, registry=REGISTRY)
    errors = [e.message for e in validator.iter_errors(response.json())]
    assert not errors, f"{method} {template} {status}: {errors}"
    assert response.headers["Content-Type"] == "application/json"
    if template == ITEM_PATH and status == "200":
        assert response.headers["ETag"] == response.json()["version"]


@pytest.fixture
def server(emulator: Callable[..., ServerHandle]) -> ServerHandle:
    return emulator(partners=["DE*A36", "+49*536"], token=TOKEN)


def call(server: ServerHandle, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
         token: str | None = TOKEN, if_match: str | None = None) -> requests.Response:
    headers = {} if if_match is None else {"If-Match": if_match}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    return requests.request(method, server.url + path, data=data, headers=headers, timeout=5)


def test_the_contract_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    schema = load_schema("portal-payload")
    assert schema["$id"] == "urn:hbsdeploy:schema:portal-payload:v1"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["online_request"]  # the rest: each service type's own fields (contract.py)
    assert list(schema["properties"]) == list(SETTING_FIELDS)
    assert all("title" in p and "description" in p for p in schema["properties"].values())
    from openapi_spec_validator import validate  # in the test extras: a missing install fails, it does not skip
    validate(DOCUMENT, base_uri=DOC_URI)


def test_every_answer_matches_the_contract(server: ServerHandle) -> None:
    item = "/v1/partners/DE%2AA36/service-types/authorization"
    check(LIST_PATH, "GET", call(server, "GET", "/v1/partners/%2B49%2A536/service-types"))
    check(ITEM_PATH, "GET", call(server, "GET", item))
    check(ITEM_PATH, "PUT", call(server, "PUT", item, body=payload(), if_match='"0"'))
    check(ITEM_PATH, "PUT", call(server, "PUT", item, body=payload(), if_match='"0"'))  # 412
    check(ITEM_PATH, "PUT", call(server, "PUT", item, body=payload()))  # 428
    check(ITEM_PATH, "PUT", call(server, "PUT", item, body=payload(online_request=False), if_match='"1"'))
    check(ITEM_PATH, "PUT", call(server, "PUT", item, raw=b"{", if_match='"1"'))  # 400
    check(ITEM_PATH, "PUT", call(server, "PUT", item, raw=b" " * 70_000, if_match='"1"'))  # 413
    check(ITEM_PATH, "GET", call(server, "GET", item, token=None))  # 401
    check(ITEM_PATH, "GET", call(server, "GET", item, token="wrong"))  # 401
    check(ITEM_PATH, "GET", call(server, "GET", "/v1/partners/DE%2AB99/service-types/authorization"))  # 404
    check(ITEM_PATH, "GET", call(server, "GET", "/v1/partners/DE%2AA36/service-types/unknown"))  # 404
    check(LIST_PATH, "GET", call(server, "DELETE", "/v1/partners/DE%2AA36/service-types"))  # 405
    assert server.stats.statuses.get(500) is None


def test_injected_faults_match_the_contract(emulator: Callable[..., ServerHandle]) -> None:
    server = emulator(partners=["DE*A36"], fail_rate=1.0, seed=3)
    seen: set[object] = set()
    for _ in range(30):
        try:
            response = call(server, "GET", "/v1/partners/DE%2AA36/service-types/authorization", token=None)
        except requests.ConnectionError:
            seen.add("dropped")
            continue
        check(ITEM_PATH, "GET", response)
        seen.add(response.status_code)
        if response.status_code in (429, 503):
            assert response.headers["Retry-After"] == "1"
    assert {500, 503, 429, "dropped"} <= seen


_segment = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
_bodies = st.one_of(
    _json.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries({}, optional={k: _json for k in payload()}).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(partner=_segment, service_type=st.sampled_from(["authorization", "reservation", "x"]) | _segment,
       body=_bodies, if_match=st.sampled_from([None, '"0"', '"1"', "*", 'W/"0"', "junk"]),
       method=st.sampled_from(["GET", "PUT"]))
def test_no_request_gets_a_5xx(server: ServerHandle, partner: str, service_type: str, body: bytes,
                               if_match: str | None, method: str) -> None:
    path = f"/v1/partners/{quote(partner, safe='')}/service-types/{quote(service_type, safe='')}"
    response = call(server, method, path, raw=body if method == "PUT" else None, if_match=if_match)
    assert response.status_code < 500, response.text
    if partner and service_type:
        check(ITEM_PATH, method, response)
    else:
        assert response.status_code == 404 and response.json()["error"] == "not_found"


PARTNERS_PATH = "/v1/partners"


def test_the_partners_listing_matches_the_contract_and_pages_in_a_stable_order(
        emulator: Callable[..., ServerHandle]) -> None:
    ids = ["DE*A36", "+49*536", "DE-8EO", "AT*B01", "DE*A37"]
    server = emulator(partners=ids, token=TOKEN)
    call(server, "PUT", "/v1/partners/DE%2AA37/service-types/authorization", body=payload(), if_match='"0"')
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = "?page_size=2" + (f"&page_token={quote(token)}" if token else "")
        response = call(server, "GET", PARTNERS_PATH + query)
        check(PARTNERS_PATH, "GET", response)
        body = response.json()
        assert len(body["partners"]) <= 2
        seen.extend(item["partner_id"] for item in body["partners"])
        pages += 1
        token = body.get("next_page_token")
        if token is None:
            break
    assert seen == sorted(ids) and pages == 3
    whole = call(server, "GET", PARTNERS_PATH).json()  # default page size: all five in one page, no token
    assert [item["partner_id"] for item in whole["partners"]] == sorted(ids) and "next_page_token" not in whole
    written = next(item for item in whole["partners"] if item["partner_id"] == "DE*A37")
    assert written["service_types"]["authorization"]["version"] == '"1"'
    assert written["service_types"]["reservation"]["version"] == '"0"'
    check(PARTNERS_PATH, "GET", call(server, "GET", PARTNERS_PATH + "?page_size=5000"))  # served as at most 1000
    for bad in ("?page_size=0", "?page_size=-1", "?page_size=x", "?page_size=1&page_size=2",
                "?page_token=garbage", "?page_token=after.%2F%2F%2F", "?page_token=", "?page_size=2&page_token="):
        response = call(server, "GET", PARTNERS_PATH + bad)
        assert response.status_code == 400, bad
        check(PARTNERS_PATH, "GET", response)
    check(PARTNERS_PATH, "GET", call(server, "GET", PARTNERS_PATH, token=None))  # 401
    check(PARTNERS_PATH, "GET", call(server, "PUT", PARTNERS_PATH, body={}))  # 405
    assert server.stats.statuses.get(500) is None


def test_a_partner_registered_between_pages_neither_repeats_nor_skips_another(
        emulator: Callable[..., ServerHandle]) -> None:
    server = emulator(partners=["DE*A01", "DE*A03", "DE*A05"], token=TOKEN)
    first = call(server, "GET", PARTNERS_PATH + "?page_size=2").json()
    server.portal.register_partner("DE*A02")  # sorts inside the first page: not served again
    server.portal.register_partner("DE*A04")  # sorts after the cursor: served on the next page
    rest = call(server, "GET", PARTNERS_PATH + "?page_size=2&page_token=" + quote(first["next_page_token"])).json()
    assert [p["partner_id"] for p in first["partners"] + rest["partners"]] == ["DE*A01", "DE*A03", "DE*A04",
                                                                                "DE*A05"]
