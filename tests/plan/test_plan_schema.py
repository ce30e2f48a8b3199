"""schemas/plan.schema.json describes what `plan --format json` and `plan --out` write: every golden plan and every
generated one is valid against it, and names no field the schema does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

from hbsdeploy.load.settings import normalize_settings
from hbsdeploy.plan.formats import render_plan
from hbsdeploy.plan.model import (
    NO_PARTNER_FILE,
    NOT_IN_PARTNER_FILE,
    PLAN_FORMAT_VERSION,
    Desired,
    DisableCheck,
    Plan,
    Unmanaged,
    compute_plan,
)
from hbsdeploy.portal import ServiceTypeState
from hbsdeploy.portal.interface import RecordedSource
from tests.plan.factories import desired_and_current, offline, one_of_each_kind
from tests.validate.test_formats import _undeclared

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
GOLDENS = sorted((REPO / "tests" / "data" / "plan").glob("*.json"))


def check(document: Any) -> None:
    assert list(VALIDATOR.iter_errors(document)) == []
    assert _undeclared(SCHEMA, document, SCHEMA) == []


def test_the_schema_is_of_this_format_version() -> None:
    assert SCHEMA["properties"]["format_version"]["const"] == PLAN_FORMAT_VERSION


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_every_golden_plan_matches_the_schema(path: Path) -> None:
    check(json.loads(path.read_text()))


def test_the_json_format_matches_the_schema() -> None:
    check(json.loads(render_plan(one_of_each_kind(), "json")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desired_and_current())
def test_generated_plans_match_the_schema(
        case: tuple[list[Desired], dict[tuple[str, str], ServiceTypeState]]) -> None:
    desired, current = case
    check(json.loads(compute_plan("qa", desired, current).to_json()))


def test_a_plan_with_every_optional_part_matches_the_schema() -> None:
    """A manual environment's recorded state, a disable check, and what the portal keeps unmanaged."""
    base = one_of_each_kind()
    kept = {**offline(), "online_request": True, "service_url": "https://oicp.kept.example.com"}
    plan = Plan(base.environment, base.changes, base.observed,
                disable_check=DisableCheck(disables=1, scope=3, max_fraction=0.25, min_scope=2, allowed=True),
                recorded=RecordedSource("state/qa.yaml", "2026-11-26T12:00:00+00:00", "alice"),
                unmanaged=(Unmanaged("DE*K01", "authorization", NO_PARTNER_FILE, normalize_settings(kept)),
                           Unmanaged("DE*A36", "reservation", NOT_IN_PARTNER_FILE, normalize_settings(offline()))))
    document = json.loads(plan.to_json())
    assert {"disable_check", "recorded_state", "unmanaged"} <= set(document)
    check(document)
    never_recorded = Plan(base.environment, base.changes, base.observed, recorded=RecordedSource("s.yaml", None, None))
    check(json.loads(never_recorded.to_json()))


def test_the_schema_refuses_what_is_not_a_plan() -> None:
    document = json.loads(GOLDENS[0].read_text())
    document["changes"] = [{"kind": "rename"}]
    assert list(VALIDATOR.iter_errors(document))
