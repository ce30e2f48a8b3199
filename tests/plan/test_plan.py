"""Planning without mocks: compute_plan is pure, so these tests hand it values and look at the plan."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hbsdeploy.check.project import Project
from hbsdeploy.check.validate import validate
from hbsdeploy.errors import HbsError
from hbsdeploy.load.config import load_config
from hbsdeploy.load.schemaset import package_schemas
from hbsdeploy.load.settings import normalize_settings, normalize_url
from hbsdeploy.load.yamlload import parse_yaml
from hbsdeploy.plan.build import desired_payloads
from hbsdeploy.plan.model import (
    KEPT_WHILE_OFF,
    PLAN_FORMAT_VERSION,
    ChangeKind,
    Desired,
    Plan,
    compute_plan,
    plan_from_json,
)
from hbsdeploy.portal import ServiceTypeState
from hbsdeploy.render.payloads import Renderer
from hbsdeploy.tools.importer import _scalar, infer_role, partner_yaml
from tests.plan.factories import (
    SHA,
    desired_and_current,
    have,
    offline,
    payloads,
    settings,
    state_of,
    urls,
    want,
    want_payload,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = package_schemas().service_types


def kinds(plan: Plan) -> list[tuple[str, str, ChangeKind]]:
    return [(c.partner_id, c.service_type, c.kind) for c in plan.changes]


# -- kinds of change --------------------------------------------------------------------------------------------------

def test_first_time_on_is_an_enable_with_every_field_that_differs() -> None:
    plan = compute_plan("sandbox", [want()], state_of(have()))
    (change,) = plan.changes
    assert change.kind is ChangeKind.ENABLE
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("online_request", False, True),
        ("service_url", None, "https://oicp.example.com/base"),
        ("client_certification", False, True),
    ]
    assert change.version == '"1"'
    assert plan.summary() == {"enable": 1, "change": 0, "disable": 0, "unchanged": 0}


def test_on_before_and_after_is_a_change_of_only_the_differing_fields() -> None:
    current = state_of(have(payload=settings(service_url="https://old.example.com")))
    (change,) = compute_plan("qa", [want(service_url="https://new.example.com")], current).changes
    assert change.kind is ChangeKind.CHANGE
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("service_url", "https://old.example.com", "https://new.example.com")]


def test_switching_online_request_off_is_a_disable_that_clears_url_and_broadcast() -> None:
    current = state_of(have(payload=settings(broadcast_request=True)))
    plan = compute_plan("qa", [want(online_request=False, broadcast_request=False, service_url=None)], current)
    (change,) = plan.changes
    assert change.kind is ChangeKind.DISABLE
    assert {f.field: (f.before, f.after) for f in change.fields} == {
        "online_request": (True, False),
        "broadcast_request": (True, False),
        "service_url": ("https://oicp.example.com/base", None),
    }
    assert plan.summary()["disable"] == 1


def test_while_offline_the_portals_other_boxes_are_kept() -> None:
    """Issue 13, finding 7: with Online Request off the file's other boxes wait for it; the plan keeps what the
    portal holds, so switching off is one click and staying off is no change."""
    plan = compute_plan("qa", [want_payload("DE*A36", "authorization", {"client_certification": True})],
                        state_of(have()))
    assert not plan.has_changes


def test_user_certificate_fingerprint_is_compared_and_hubject_has_none() -> None:
    current = state_of(have(payload=settings(certificate="user", certificate_sha256=SHA)))
    same = compute_plan("qa", [want(certificate="user", certificate_sha256=SHA)], current)
    assert not same.has_changes
    (change,) = compute_plan("qa", [want(certificate="user", certificate_sha256="cd" * 32)], current).changes
    assert [f.field for f in change.fields] == ["certificate_sha256"]
    # a stray fingerprint beside the Hubject certificate is not something the portal keeps: no change
    assert not compute_plan("qa", [want(certificate_sha256=SHA)], state_of(have(payload=settings()))).has_changes


# -- semantic comparison ----------------------------------------------------------------------------------------------

def test_absent_fields_equal_the_portals_defaults() -> None:
    current = state_of(have(payload=settings()))
    sparse = {"online_request": True, "service_url": "https://oicp.example.com/base", "client_certification": True}
    assert not compute_plan("qa", [want_payload("DE*A36", "authorization", sparse)], current).has_changes
    assert not compute_plan("qa", [want_payload("DE*A36", "authorization", {})], state_of(have())).has_changes
    explicit_off = {"online_request": False, "broadcast_request": False, "service_url": None,
                    "client_certification": False, "certificate": "hubject", "certificate_sha256": None}
    assert not compute_plan("qa", [want_payload("DE*A36", "authorization", explicit_off)],
                            state_of(have())).has_changes


def test_values_the_portal_drops_while_offline_are_no_change() -> None:
    # With Online Request off the portal keeps neither the Service URL nor Broadcast Request.
    payload = {"online_request": False, "broadcast_request": True, "service_url": "https://x.example.com"}
    assert not compute_plan("qa", [want_payload("DE*A36", "authorization", payload)], state_of(have())).has_changes


@pytest.mark.parametrize("written", [
    "HTTPS://Host.Example.COM:443/x/",
    "https://host.example.com/x",
    "https://HOST.example.com/x//",
    "Https://host.example.com:443/x",
])
def test_url_forms_the_portal_treats_as_one_are_no_change(written: str) -> None:
    current = state_of(have(payload=settings(service_url="https://host.example.com/x")))
    assert not compute_plan("qa", [want(service_url=written)], current).has_changes


@pytest.mark.parametrize("written", [
    "https://host.example.com:8443/x",  # a port that is not the default
    "https://host.example.com/X",  # the path is case-sensitive
    "https://host.example.com/x/y",
    "http://host.example.com/x",  # another scheme
])
def test_url_forms_that_differ_are_a_change(written: str) -> None:
    current = state_of(have(payload=settings(service_url="https://host.example.com/x")))
    (change,) = compute_plan("qa", [want(service_url=written)], current).changes
    assert [f.field for f in change.fields] == ["service_url"]


def test_url_normalisation_examples() -> None:
    assert normalize_url("HTTPS://Host:443/x/") == "https://host/x"
    assert normalize_url("https://host/") == "https://host"
    assert normalize_url("https://[2001:DB8::1]:443/a/") == "https://[2001:db8::1]/a"
    assert normalize_url("not a url") == "not a url"


@given(urls())
def test_url_normalisation_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert once == once.strip() and not once.endswith("/")


@given(st.text(max_size=60))
def test_url_normalisation_is_idempotent_on_any_text(text: str) -> None:
    once = normalize_url(text)
    assert normalize_url(once) == once


# -- scope and order --------------------------------------------------------------------------------------------------

def test_service_types_not_in_the_partner_files_are_left_alone() -> None:
    current = state_of(have("DE*A36", "authorization"),
                       have("DE*A36", "reservation", payload=settings(service_url="https://r.example.com")),
                       have("DE*B12", "authorization", payload=settings()))
    plan = compute_plan("qa", [want("DE*A36", "authorization")], current)
    assert kinds(plan) == [("DE*A36", "authorization", ChangeKind.ENABLE)]
    assert [(o.partner_id, o.service_type) for o in plan.observed] == [("DE*A36", "authorization")]
    assert plan.unchanged == 0


def test_a_service_type_the_portal_does_not_list_is_an_error_naming_it() -> None:
    with pytest.raises(HbsError, match=r"DE\*A36 reservation"):
        compute_plan("qa", [want("DE*A36", "reservation")], state_of(have("DE*A36", "authorization")))


def test_changes_are_sorted_and_the_plan_does_not_depend_on_input_order() -> None:
    desired = [want(pid, st_, service_url=f"https://{i}.example.com")
               for i, (pid, st_) in enumerate([("DE*B12", "reservation"), ("+49*536", "authorization"),
                                               ("DE*A36", "reservation"), ("DE*A36", "authorization"),
                                               ("DE-8EO", "authorization")])]
    current = state_of(*(have(d.partner_id, d.service_type) for d in desired))
    first = compute_plan("qa", desired, current)
    keys = [c.key for c in first.changes]
    assert keys == sorted(keys)
    for seed in range(5):
        shuffled = list(desired)
        random.Random(seed).shuffle(shuffled)
        items = list(current.items())
        random.Random(seed + 1).shuffle(items)
        again = compute_plan("qa", shuffled, dict(items))
        assert again == first
        assert again.to_json() == first.to_json()


# -- checksum and the plan file ---------------------------------------------------------------------------------------

def _sample_plan() -> Plan:
    current = state_of(have("DE*A36", "authorization", version='"4"'),
                       have("DE*A36", "reservation", version='"2"', payload=settings()),
                       have("DE-8EO", "authorization", version='"7"', payload=settings(broadcast_request=True)))
    desired = [want("DE*A36", "authorization"), want("DE*A36", "reservation"),
               want("DE-8EO", "authorization", online_request=False, service_url=None)]
    return compute_plan("qa", desired, current)


def test_checksum_is_stable_and_is_the_sha256_of_the_canonical_body() -> None:
    import hashlib

    plan = _sample_plan()
    assert plan.checksum == _sample_plan().checksum
    body = json.dumps(plan.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan.checksum == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert plan.as_json()["checksum"] == plan.checksum


@pytest.mark.parametrize("alter", [
    pytest.param(lambda d, c: (d, {**c, ('DE*A36', 'authorization'): dataclasses.replace(
        c[('DE*A36', 'authorization')], version='"5"')}), id="a version"),
    pytest.param(lambda d, c: ([dataclasses.replace(d[0], payload=settings(service_url="https://y.example.com")),
                                *d[1:]], c), id="a desired URL"),
    pytest.param(lambda d, c: ([dataclasses.replace(d[0], partner_name="Other"), *d[1:]], c), id="a name"),
    pytest.param(lambda d, c: (d[:2], c), id="the scope"),
    pytest.param(lambda d, c: (d, {**c, ('DE*A36', 'reservation'): dataclasses.replace(
        c[('DE*A36', 'reservation')], version='"3"')}), id="an unchanged service type's version"),
])
def test_checksum_changes_when_anything_changes(alter: Any) -> None:
    current = state_of(have("DE*A36", "authorization", version='"4"'),
                       have("DE*A36", "reservation", version='"2"', payload=settings()),
                       have("DE-8EO", "authorization", version='"7"'))
    desired = [want("DE*A36", "authorization"), want("DE*A36", "reservation"), want("DE-8EO", "authorization")]
    base = compute_plan("qa", desired, current)
    new_desired, new_current = alter(desired, current)
    assert compute_plan("qa", new_desired, new_current).checksum != base.checksum
    assert compute_plan("prod", desired, current).checksum != base.checksum


def test_plan_json_round_trip() -> None:
    plan = _sample_plan()
    text = plan.to_json()
    document = json.loads(text)
    assert document["format_version"] == PLAN_FORMAT_VERSION
    again = plan_from_json(document)
    assert again == plan
    assert again.to_json() == text
    assert text.endswith("\n") and json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


@hsettings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # generation is slow on a loaded machine
@given(desired_and_current())
def test_plan_json_round_trip_for_any_plan(case: tuple[list[Desired], dict[tuple[str, str], ServiceTypeState]]) -> None:
    plan = compute_plan("qa", *case)
    assert plan_from_json(json.loads(plan.to_json())) == plan


@pytest.mark.parametrize("edit", [
    pytest.param(lambda d: d["changes"][0]["payload"].update(service_url="https://evil.example.com"), id="payload"),
    pytest.param(lambda d: d["changes"][0]["after"].update(service_url="https://evil.example.com"), id="after"),
    pytest.param(lambda d: d["changes"][0].update(version='"99"'), id="version"),
    pytest.param(lambda d: d["changes"].pop(), id="a change removed"),
    pytest.param(lambda d: d["observed"][0].update(version='"0"'), id="observed"),
    pytest.param(lambda d: d.update(environment="prod"), id="environment"),
    pytest.param(lambda d: d.update(portal="https://elsewhere.example.com"), id="portal"),
    pytest.param(lambda d: d.update(checksum="sha256:" + "0" * 64), id="checksum"),
])
def test_an_altered_plan_file_is_refused(edit: Any) -> None:
    document = json.loads(_sample_plan().to_json())
    edit(document)
    with pytest.raises(HbsError, match="altered.*re-run `hbsdeploy plan --out`"):
        plan_from_json(document)


@pytest.mark.parametrize("document, message", [
    ({}, "format_version None"),
    ({"format_version": 1}, "format_version 1"),
    ({"format_version": 2}, "not a valid hbsdeploy plan"),
    ({"format_version": 2, "environment": "qa", "portal": "local", "changes": [{"kind": "explode"}],
      "observed": []}, "not a valid hbsdeploy plan"),
    ({"format_version": 2, "environment": "qa", "portal": "local", "changes": "nope", "observed": []},
     "not a valid hbsdeploy plan"),
    ({"format_version": 2, "environment": "qa", "portal": 7, "changes": [], "observed": []},
     "not a valid hbsdeploy plan"),
])
def test_something_that_is_not_a_plan_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(HbsError, match=message):
        plan_from_json(document)


# -- properties: apply gives the desired state; a plan after apply is empty -------------------------------------------

def apply_payloads(plan: Plan, current: dict[tuple[str, str], ServiceTypeState]
                   ) -> dict[tuple[str, str], ServiceTypeState]:
    """What a portal holds after storing each change's payload (normalised, one version up)."""
    after = dict(current)
    for change in plan.changes:
        old = after[change.key]
        after[change.key] = ServiceTypeState(old.partner_id, old.service_type, normalize_settings(change.payload),
                                    f'"{int(old.version.strip(chr(34))) + 1}"')
    return after


@given(desired_and_current())
def test_applying_a_plan_gives_the_desired_state_and_then_plans_nothing(
        case: tuple[list[Desired], dict[tuple[str, str], ServiceTypeState]]) -> None:
    desired, current = case
    plan = compute_plan("qa", desired, current)
    after = apply_payloads(plan, current)
    for item in desired:
        expected = dict(item.payload)
        if not expected.get("online_request"):  # switched off: the portal keeps its other boxes (KEPT_WHILE_OFF)
            kept = normalize_settings(current[(item.partner_id, item.service_type)].settings)
            expected.update((name, kept[name]) for name in KEPT_WHILE_OFF)
        assert after[(item.partner_id, item.service_type)].settings == normalize_settings(expected)
    # unmanaged service types are untouched
    managed = {(d.partner_id, d.service_type) for d in desired}
    assert {k: v for k, v in after.items() if k not in managed} == {k: v for k, v in current.items()
                                                                   if k not in managed}
    again = compute_plan("qa", desired, after)
    assert not again.has_changes
    assert again.summary() == {"enable": 0, "change": 0, "disable": 0, "unchanged": len(desired)}
    # each change's after is what the portal then holds, and every listed field really differs
    for change in plan.changes:
        assert dict(change.after) == dict(after[change.key].settings)
        assert all(f.before != f.after for f in change.fields)
        assert {f.field for f in change.fields} == {k for k in change.after if change.after[k] != change.before[k]}


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=desired_and_current())
def test_applying_through_the_embedded_portal_gives_the_desired_state(
        tmp_path_factory: pytest.TempPathFactory,
        case: tuple[list[Desired], dict[tuple[str, str], ServiceTypeState]]) -> None:
    """The same property through LocalPortal and apply_plan: real versions, If-Match, read-back verification."""
    from hbsdeploy.apply.audit import AuditLog
    from hbsdeploy.apply.run import Status, apply_plan
    from hbsdeploy.plan.build import read_current
    from hbsdeploy.portal.local import LocalPortal

    desired, start = case
    # the templates always render all six fields (the payload schema requires them); fill in the defaults
    desired = [dataclasses.replace(d, payload={**offline(), **d.payload}) for d in desired]
    folder = tmp_path_factory.mktemp("portal")
    portal = LocalPortal(folder / "state.sqlite3", allow_private_hosts=False)
    for (partner_id, service_type), held in start.items():
        if held.settings != offline():
            portal.update_service_type(partner_id, service_type, held.settings, '"0"')
    current = read_current(portal, {p for p, _ in start}, 4)
    plan = compute_plan("qa", desired, current)
    result = apply_plan(plan, portal, AuditLog(folder / "audit.jsonl"), parallelism=3)
    assert [r.status for r in result.results] == [Status.APPLIED] * len(plan.changes)
    after = read_current(portal, {p for p, _ in start}, 4)
    for item in desired:
        expected = dict(item.payload)
        if not expected.get("online_request"):  # switched off: the portal keeps its other boxes (KEPT_WHILE_OFF)
            kept = normalize_settings(current[(item.partner_id, item.service_type)].settings)
            expected.update((name, kept[name]) for name in KEPT_WHILE_OFF)
        assert after[(item.partner_id, item.service_type)].settings == normalize_settings(expected)
    assert not compute_plan("qa", desired, after).has_changes


# -- import then plan is a no-op ---------------------------------------------------------------------------------------

IMPORT_CONFIG = """\
default_environment: sandbox
environments:
  sandbox:
    portal: local
  qa:
    portal: local
  prod:
    portal: local
"""
IMPORT_ENVIRONMENTS = ("sandbox", "qa", "prod")


@pytest.fixture(scope="module")
def import_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    root = tmp_path_factory.mktemp("import-repo")
    (root / "hbsdeploy.yaml").write_text(IMPORT_CONFIG, encoding="utf-8")
    (root / "partners").mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    return root


names = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda s: s.strip() != "")


def _held(draw: st.DrawFn, role: str, partner_id: str) -> dict[str, ServiceTypeState]:
    states = {}
    for service_type in ("authorization", "reservation"):
        if service_type == "reservation" and role == "emp":
            value = offline()
        else:
            value = draw(st.one_of(st.just(offline()), payloads(service_type)))
            value = {**value, "certificate": "hubject", "certificate_sha256": None}
        states[service_type] = ServiceTypeState(partner_id, service_type, normalize_settings(value), '"3"')
    return states


@st.composite
def portal_states(draw: st.DrawFn) -> tuple[str, str, str, dict[str, dict[str, ServiceTypeState]]]:
    """What 1 to 3 environments' portals hold for one partner; often the same in two of them."""
    role, partner_id = draw(st.sampled_from((("cpo", "DE*A36"), ("cpo", "+49*536"), ("emp", "DE-8EO"))))
    environments = draw(st.lists(st.sampled_from(IMPORT_ENVIRONMENTS), min_size=1, max_size=3, unique=True))
    first = _held(draw, role, partner_id)
    held = {env: first if draw(st.booleans()) else _held(draw, role, partner_id) for env in environments}
    return role, partner_id, draw(names), held


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=portal_states())
def test_import_then_plan_is_a_no_op(import_repo: Path, case: tuple[str, str, str,
                                                                     dict[str, dict[str, ServiceTypeState]]]) -> None:
    role, partner_id, name, held = case
    text, certificates = partner_yaml(partner_id, name, role, held, specs=SPECS)
    assert certificates == {}
    path = import_repo / "partners" / "imported.yaml"
    path.write_text(text, encoding="utf-8")
    # parse with hbsdeploy's loader, validate, render, plan
    assert parse_yaml(text, "imported.yaml").data["name"] == name
    config = load_config(import_repo / "hbsdeploy.yaml")
    report = validate(config)
    assert report.errors == [], text
    (partner,) = report.partners
    assert (partner.partner_id, partner.name, partner.role) == (partner_id, name, role)
    assert partner.environments == tuple(held)  # only the environments read
    for environment, states in held.items():  # no change in any environment read
        env = config.environment(environment)
        desired = desired_payloads(Project(config, report.partners), env, Renderer(config))
        current = {(partner_id, n): s for n, s in states.items()}
        plan = compute_plan(environment, desired, current)
        assert not plan.has_changes, text
        # every service type away from the defaults is managed; so is one the role must configure
        configured = {n for n, s in states.items() if dict(s.settings) != offline()}
        managed = {d.service_type for d in desired}
        assert configured <= managed
        if role == "cpo":
            assert "authorization" in managed
    if len(held) == 1:  # one environment read: nothing in the base, so an environment added later manages nothing
        assert parse_yaml(text, "imported.yaml").data["service_types"] == {}


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30))
def test_import_scalars_read_back_exactly(value: str) -> None:
    assert parse_yaml(f"name: {_scalar(value)}\n", "x.yaml").data["name"] == value


def test_import_names_the_user_certificate_file_to_add() -> None:
    state = ServiceTypeState("DE*A36", "authorization",
                             normalize_settings(settings(certificate="user", certificate_sha256=SHA)), '"1"')
    text, certificates = partner_yaml("DE*A36", "X", "cpo", {"qa": {"authorization": state},
                                                             "prod": {"authorization": state}}, specs=SPECS)
    assert certificates == {"certs/de-a36-abababababab.pem": (SHA, ["qa authorization", "prod authorization"])}
    data = parse_yaml(text, "x.yaml").data
    assert data["service_types"]["authorization"]["certificate"] == "user"
    assert data["service_types"]["authorization"]["certificate_file"] == "certs/de-a36-abababababab.pem"
    assert "certificate_sha256" not in text


def test_import_infers_the_role_or_asks_for_it() -> None:
    blank = {n: ServiceTypeState("DE*A36", n, offline(), '"0"') for n in ("authorization", "reservation")}
    with pytest.raises(HbsError, match="--role"):
        infer_role("DEA36", blank, None, specs=SPECS)  # no separator: an operator or a provider
    assert infer_role("DE*A36", blank, None, specs=SPECS) == "cpo"  # `*`: an OperatorID
    assert infer_role("+49*536", blank, None, specs=SPECS) == "cpo"
    assert infer_role("DE-8EO", blank, None, specs=SPECS) == "emp"
    reserved = {**blank, "reservation": ServiceTypeState("DE*A36", "reservation", normalize_settings(settings()),
                                                         '"1"')}
    assert infer_role("DE*A36", reserved, None, specs=SPECS) == "cpo"
    assert infer_role("DE*A36", blank, "emp", specs=SPECS) == "emp"


def test_import_refuses_a_service_type_the_role_cannot_have() -> None:
    states = {"reservation": ServiceTypeState("DE*A36", "reservation", normalize_settings(settings()), '"1"')}
    with pytest.raises(HbsError, match="reservation.*--role"):
        partner_yaml("DE*A36", "X", "emp", {"qa": states}, specs=SPECS)

