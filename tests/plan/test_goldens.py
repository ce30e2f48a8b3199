"""Every rendering of a plan, byte for byte, against the golden files in tests/data/plan/.

One file per representative plan and way of showing it: `<plan>.<format>` (enable.text, enable.json,
enable.markdown, ...), every format of the registry PLAN_FORMATS, and what apply reports after the mixed plan.
`HBSDEPLOY_UPDATE_EXPECTED=1 python -m pytest tests/plan/test_goldens.py` rewrites them from what the code now
renders: review the diff before committing it. A golden file whose plan or format is gone fails the orphan check.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from hbsdeploy.apply.orchestrate import ApplyReport
from hbsdeploy.apply.run import ApplyResult, ChangeResult, Status
from hbsdeploy.plan.formats import PLAN_FORMATS, FormatOptions, render_markdown, render_plan
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


PLANS: dict[str, Callable[[], Plan]] = {
    "enable": _enable,
    "change": _change,
    "disable": _disable,
    "no-changes": _no_changes,
    "hostile-name": _hostile_name,
    "mixed": one_of_each_kind,
}


def _manual(during_apply: bool = False) -> Callable[[Plan], FormatOptions]:
    return lambda plan: FormatOptions(portal_label=f"portal '{plan.environment}' (manual)", during_apply=during_apply)


# Golden file suffix -> (the format's name in PLAN_FORMATS, its options for a plan): every way a plan is shown.
FORMATS: dict[str, tuple[str, Callable[[Plan], FormatOptions]]] = {
    "text": ("text", lambda plan: FormatOptions()),
    "text-coloured": ("text", lambda plan: FormatOptions(colour=True)),
    "json": ("json", lambda plan: FormatOptions()),
    "markdown": ("markdown", lambda plan: FormatOptions()),
    "instructions": ("instructions", _manual()),
    "instructions-during-apply": ("instructions", _manual(during_apply=True)),
}


def rendered(name: str, fmt: str) -> str:
    plan = PLANS[name]()
    format_name, options = FORMATS[fmt]
    return render_plan(plan, format_name, options(plan))


def apply_report() -> str:
    """What apply prints after the mixed plan: one change applied, one failed, one not attempted."""
    plan = one_of_each_kind()
    change, enable, disable = plan.changes
    result = ApplyResult((ChangeResult(change, Status.APPLIED),
                          ChangeResult(enable, Status.FAILED, "the portal refused the payload (422): Service URL "
                                                              "must use https"),
                          ChangeResult(disable, Status.NOT_ATTEMPTED, "interrupted before this change")),
                         interrupted=True)
    report = ApplyReport("qa", plan, result)
    return "\n".join([*report.lines(), str(report.next_step())]) + "\n"


GOLDEN_FILES = {f"{name}.{fmt}" for name in PLANS for fmt in FORMATS} | {"mixed-cut.markdown", "mixed.apply-report"}


def test_every_registered_format_has_golden_files() -> None:
    assert {format_name for format_name, _ in FORMATS.values()} == set(PLAN_FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", PLANS)
def test_rendering_matches_its_golden_file(name: str, fmt: str) -> None:
    check_golden(GOLDEN / f"{name}.{fmt}", rendered(name, fmt))


def test_the_markdown_cut_to_a_limit_matches_its_golden_file() -> None:
    """The mixed plan in a comment too small for all of it: the first change, then a count of the rest."""
    check_golden(GOLDEN / "mixed-cut.markdown", render_markdown(one_of_each_kind(), limit=850))


def test_the_apply_report_matches_its_golden_file() -> None:
    check_golden(GOLDEN / "mixed.apply-report", apply_report())


def test_every_golden_file_belongs_to_a_plan_and_a_format() -> None:
    """A plan or a format renamed or removed must not leave its golden files behind, untested."""
    assert sorted(p.name for p in GOLDEN.iterdir() if p.name not in GOLDEN_FILES) == []


@pytest.mark.parametrize("fmt", [fmt for fmt in FORMATS if fmt != "json"])
def test_no_rendering_for_people_carries_the_names_control_or_invisible_characters(fmt: str) -> None:
    """JSON keeps the name as it is (escaped by JSON where JSON escapes); every other rendering shows it escaped."""
    shown = ANSI.sub("", rendered("hostile-name", fmt))
    assert unsafe_characters(shown) == []
    assert "\n  + DE*A36 (Fake)" not in shown  # the name cannot forge a line


def test_the_golden_plans_cover_every_kind_and_the_empty_plan() -> None:
    kinds = {change.kind for build in PLANS.values() for change in build().changes}
    assert {kind.value for kind in kinds} == {"enable", "change", "disable"}
    assert not _no_changes().has_changes and _no_changes().unchanged == 2

