"""Every rendering of a plan, byte for byte, against the golden files in tests/data/plan/.

One file per representative plan and format: `<plan>.<format>` (enable.text, enable.json, enable.md, ...).
`HBSDEPLOY_UPDATE_EXPECTED=1 python -m pytest tests/plan/test_goldens.py` rewrites them from what the code now
renders: review the diff before committing it. A golden file whose plan or format is gone fails the orphan check.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from hbsdeploy.plan import formats
from hbsdeploy.plan.model import Plan, compute_plan
from tests.helpers import REPO, check_golden
from tests.plan.factories import SHA, have, offline, one_of_each_kind, settings, state_of, want, want_payload
from tests.security.helpers import unsafe_characters

GOLDEN = REPO / "tests" / "data" / "plan"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of render_text's ansi style

# A name a partner file could hold: ESC (a terminal colour), a right-to-left override, a zero-width space, HTML and a
# table pipe, and a newline followed by what would look like one more change.
HOSTILE_NAME = "Evil\x1b[31m Co\u202egpj.exe\u200b <b>&</b> | x\n  + DE*A36 (Fake) / authorization [enable]"


def _enable() -> Plan:
    """A CPO's Authorization switched on, another already as wanted."""
    current = state_of(have("DE*A36", "authorization", version='"0"'),
                       have("DE*A36", "reservation", version='"3"', payload=settings()))
    desired = [want("DE*A36", "authorization", name="Example Charging GmbH",
                    service_url="https://oicp.example-charging.com"),
               want("DE*A36", "reservation", name="Example Charging GmbH")]
    return compute_plan("qa", desired, current)


def _change() -> Plan:
    """A new Service URL, client certification on, and a user certificate instead of Hubject's."""
    current = state_of(have("DE*A36", "authorization", version='"7"',
                            payload=settings(service_url="https://old.example-charging.com",
                                             client_certification=False)))
    desired = [want("DE*A36", "authorization", name="Example Charging GmbH",
                    service_url="https://oicp.example-charging.com/v2", certificate="user",
                    certificate_sha256=SHA)]
    return compute_plan("prod", desired, current)


def _disable() -> Plan:
    """An EMP's broadcasting Authorization switched off."""
    current = state_of(have("DE-8EO", "authorization", version='"5"', payload=settings(broadcast_request=True)))
    desired = [want_payload("DE-8EO", "authorization", offline())]
    return compute_plan("qa", desired, current)


def _no_changes() -> Plan:
    current = state_of(have("DE*A36", "authorization", payload=settings()),
                       have("+49*536", "authorization", version='"4"', payload=settings()))
    return compute_plan("qa", [want("DE*A36"), want("+49*536")], current)


def _hostile_name() -> Plan:
    """A control, bidirectional and zero-width name, and a Service URL with a pipe and a backtick."""
    current = state_of(have("DE*A36", "authorization", version='"0"'))
    desired = [want("DE*A36", "authorization", name=HOSTILE_NAME, service_url="https://x.example.com/a|b`c")]
    return compute_plan("qa", desired, current)


def _manual_portal(plan: Plan) -> str:
    return f"portal '{plan.environment}' (manual)"


PLANS: dict[str, Callable[[], Plan]] = {
    "enable": _enable,
    "change": _change,
    "disable": _disable,
    "no-changes": _no_changes,
    "hostile-name": _hostile_name,
    "mixed": one_of_each_kind,
}

FORMATS: dict[str, Callable[[Plan], str]] = {
    "text": formats.render_text,
    "text-coloured": lambda plan: formats.render_text(plan, formats.ansi),
    "json": formats.render_json,
    "md": formats.render_markdown,
    "instructions": lambda plan: formats.render_instructions(plan, _manual_portal(plan)),
    "instructions-during-apply": lambda plan: formats.render_instructions(plan, _manual_portal(plan),
                                                                           during_apply=True),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", PLANS)
def test_rendering_matches_its_golden_file(name: str, fmt: str) -> None:
    check_golden(GOLDEN / f"{name}.{fmt}", FORMATS[fmt](PLANS[name]()))


def test_the_markdown_cut_to_a_limit_matches_its_golden_file() -> None:
    """The mixed plan in a comment too small for all of it: the first change, then a count of the rest."""
    check_golden(GOLDEN / "mixed-cut.md", formats.render_markdown(one_of_each_kind(), limit=850))


def test_every_golden_file_belongs_to_a_plan_and_a_format() -> None:
    """A plan or a format renamed or removed must not leave its golden files behind, untested."""
    expected = {f"{name}.{fmt}" for name in PLANS for fmt in FORMATS} | {"mixed-cut.md"}
    assert sorted(p.name for p in GOLDEN.iterdir() if p.name not in expected) == []


@pytest.mark.parametrize("fmt", [fmt for fmt in FORMATS if fmt != "json"])
def test_no_rendering_for_people_carries_the_names_control_or_invisible_characters(fmt: str) -> None:
    """JSON keeps the name as it is (escaped by JSON where JSON escapes); every other rendering shows it escaped."""
    shown = ANSI.sub("", FORMATS[fmt](_hostile_name()))
    assert unsafe_characters(shown) == []
    assert "\n  + DE*A36 (Fake)" not in shown  # the name cannot forge a line


def test_the_golden_plans_cover_every_kind_and_the_empty_plan() -> None:
    kinds = {change.kind for build in PLANS.values() for change in build().changes}
    assert {kind.value for kind in kinds} == {"enable", "change", "disable"}
    assert not _no_changes().has_changes and _no_changes().unchanged == 2

