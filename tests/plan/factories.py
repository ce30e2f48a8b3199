"""Small factories and hypothesis strategies for the planning tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from hbsdeploy.load.settings import DEFAULT_SETTINGS, normalize_settings
from hbsdeploy.plan.model import Desired, Plan, compute_plan
from hbsdeploy.portal import ServiceTypeState
from tests.helpers import online_payload

SHA = "ab" * 32
PARTNERS = ("DE*A36", "DE*B12", "+49*536", "DE-8EO", "AT*X01")
SERVICE_TYPES = ("authorization", "reservation")


settings = online_payload


def offline() -> dict[str, Any]:
    """What the portal holds for a service type never configured."""
    return dict(DEFAULT_SETTINGS)


def want(partner_id: str = "DE*A36", service_type: str = "authorization", name: str | None = None,
         **overrides: Any) -> Desired:
    return Desired(partner_id, name or f"Partner {partner_id}", service_type, settings(**overrides))


def want_payload(partner_id: str, service_type: str, payload: dict[str, Any]) -> Desired:
    return Desired(partner_id, f"Partner {partner_id}", service_type, payload)


def have(partner_id: str = "DE*A36", service_type: str = "authorization", version: str = '"1"',
         payload: dict[str, Any] | None = None) -> ServiceTypeState:
    settings = normalize_settings(offline() if payload is None else payload)
    return ServiceTypeState(partner_id, service_type, settings, version)


def state_of(*items: ServiceTypeState) -> dict[tuple[str, str], ServiceTypeState]:
    return {(c.partner_id, c.service_type): c for c in items}


def one_of_each_kind() -> Plan:
    """A plan for qa with one change of each kind over three partners, and one service type unchanged."""
    current = state_of(
        have("DE*A36", "authorization", version='"2"', payload=settings(service_url="https://old.example.com")),
        have("DE*A36", "reservation", version='"0"'),
        have("DE-8EO", "authorization", version='"5"', payload=settings(broadcast_request=True)),
        have("+49*536", "authorization", version='"1"', payload=settings()),
    )
    desired = [
        want("DE*A36", "authorization", name="Example Charging", service_url="https://new.example.com"),
        want("DE*A36", "reservation", name="Example Charging", service_url="https://r.example.com"),
        want_payload("DE-8EO", "authorization", {"online_request": False, "client_certification": True}),
        want("+49*536", "authorization"),
    ]
    return compute_plan("qa", desired, current)


# -- strategies ------------------------------------------------------------------------------------------------------

_HOSTS = ("oicp.example.com", "emp.example-mobility.com", "api.charge.example.org")


@st.composite
def urls(draw: st.DrawFn) -> str:
    """Service URLs in the forms people write: any case in scheme and host, default port or not, trailing slash."""
    host = draw(st.sampled_from(_HOSTS))
    host = "".join(c.upper() if draw(st.booleans()) else c for c in host) if draw(st.booleans()) else host
    scheme = draw(st.sampled_from(("https", "HTTPS", "Https")))
    port = draw(st.sampled_from(("", ":443", ":8443")))
    path = draw(st.sampled_from(("", "/", "/oicp", "/oicp/", "/a/b", "/a/b/")))
    return f"{scheme}://{host}{port}{path}"


@st.composite
def payloads(draw: st.DrawFn, service_type: str = "authorization", complete: bool = True) -> dict[str, Any]:
    """A payload the portal accepts for `service_type`; with complete=False some fields are left out (absent means
    the portal's default)."""
    online = draw(st.booleans())
    value: dict[str, Any] = {
        "online_request": online,
        "broadcast_request": online and service_type == "authorization" and draw(st.booleans()),
        "service_url": draw(urls()) if online else None,
        "client_certification": draw(st.booleans()),
        "certificate": draw(st.sampled_from(("hubject", "user"))),
    }
    value["certificate_sha256"] = draw(st.sampled_from((SHA, "cd" * 32))) if value["certificate"] == "user" else None
    if not complete:
        for name in list(value):
            default = DEFAULT_SETTINGS[name]
            if value[name] == default and draw(st.booleans()):
                del value[name]
    return value


@st.composite
def desired_and_current(draw: st.DrawFn) -> tuple[list[Desired], dict[tuple[str, str], ServiceTypeState]]:
    """A desired state for some service types of some partners, and a current state for every service type of
    those partners (the portal lists them all, configured or not)."""
    partners = draw(st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=4, unique=True))
    desired: list[Desired] = []
    current: dict[tuple[str, str], ServiceTypeState] = {}
    for partner_id in partners:
        for service_type in SERVICE_TYPES:
            held = draw(st.one_of(st.just(offline()), payloads(service_type)))
            version = f'"{draw(st.integers(0, 50))}"'
            current[(partner_id, service_type)] = ServiceTypeState(partner_id, service_type, normalize_settings(held),
                                                                   version)
            if draw(st.booleans()):
                desired.append(want_payload(partner_id, service_type, draw(payloads(service_type, complete=False))))
    return desired, current
