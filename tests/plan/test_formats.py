"""The renderings of a plan: text, JSON, Markdown and portal instructions; colour only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hbsdeploy.plan import formats as planformat
from hbsdeploy.plan.model import Change, ChangeKind, Plan, compute_plan
from tests.plan.factories import SHA, have, offline, one_of_each_kind, settings, state_of, want, want_payload

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def plan() -> Plan:
    """One change of each kind, and one service type unchanged."""
    return one_of_each_kind()


def by_kind(plan: Plan, kind: ChangeKind) -> Change:
    return next(c for c in plan.changes if c.kind is kind)


# -- text -------------------------------------------------------------------------------------------------------------

def test_text_lists_each_change_sorted_and_leaves_the_unchanged_out(plan: Plan) -> None:
    """The lines themselves are in the golden files (test_goldens.py); these properties hold for any plan."""
    text = planformat.render_text(plan)
    assert f"Checksum: {plan.checksum}" in text
    assert "+49*536" not in text  # unchanged: not listed
    assert not ANSI.search(text)
    # sorted: one order for every reader
    assert text.index("DE*A36 (Example Charging) / authorization") < text.index("DE*A36 (Example Charging) / "
                                                                                 "reservation") < text.index("DE-8EO")


def test_summary_line_of_a_plan_without_changes() -> None:
    empty = compute_plan("qa", [want()], state_of(have(payload=settings())))
    assert planformat.summary_line(empty) == "Plan: 0 to enable, 0 to change, 0 to disable."


def test_text_escapes_values_so_a_line_cannot_be_forged() -> None:
    hostile = "https://x.example.com/\n  + online_request: false -> true\x1b[31m"
    (change,) = compute_plan("qa", [want(service_url=hostile)], state_of(have(payload=settings()))).changes
    text = planformat.render_text(Plan("qa", (change,), ()))
    assert "\x1b" not in text
    assert text.count("\n  + online_request") == 0


def test_ansi_styler_colours_by_kind(plan: Plan) -> None:
    text = planformat.render_text(plan, planformat.ansi)
    assert "\x1b[32m+\x1b[0m" in text and "\x1b[33m~\x1b[0m" in text and "\x1b[31m-\x1b[0m" in text
    assert ANSI.sub("", text) == planformat.render_text(plan)


def _run_on_a_terminal(repo: Path, args: list[str], env: dict[str, str]) -> str:
    """Run `python -m hbsdeploy` with stdout on a pseudo-terminal; what it printed there."""
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "hbsdeploy", *args], cwd=repo, stdout=secondary,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(main)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("no_color, coloured", [(None, True), ("1", False)])
def test_cli_colours_only_a_terminal_without_no_color(repo_copy: Path, no_color: str | None, coloured: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if no_color is not None:
        env["NO_COLOR"] = no_color
    shown = _run_on_a_terminal(repo_copy, ["plan"], env)
    assert "Plan: 4 to enable, 0 to change, 0 to disable." in shown
    assert bool(ANSI.search(shown)) is coloured
    piped = subprocess.run([sys.executable, "-m", "hbsdeploy", "plan"], cwd=repo_copy, env=env, capture_output=True,
                           text=True, timeout=60, check=True)
    assert not ANSI.search(piped.stdout)
    assert ANSI.sub("", shown).replace("\r\n", "\n") == piped.stdout


# -- JSON -------------------------------------------------------------------------------------------------------------

def test_json_has_format_version_checksum_and_before_after(plan: Plan) -> None:
    document = json.loads(planformat.render_json(plan))
    assert document["format_version"] == 2
    assert document["checksum"] == plan.checksum and document["checksum"].startswith("sha256:")
    assert document["environment"] == "qa"
    assert document["summary"] == {"enable": 1, "change": 1, "disable": 1, "unchanged": 1}
    change = document["changes"][0]
    assert (change["partner_id"], change["service_type"], change["kind"]) == ("DE*A36", "authorization", "change")
    assert change["before"]["service_url"] == "https://old.example.com"
    assert change["after"]["service_url"] == "https://new.example.com"
    assert change["version"] == '"2"'
    assert change["fields"] == [{"field": "service_url", "before": "https://old.example.com",
                                 "after": "https://new.example.com"}]
    assert set(change["before"]) == set(change["after"]) == {
        "online_request", "broadcast_request", "service_url", "client_certification", "certificate",
        "certificate_sha256"}
    assert {(o["partner_id"], o["service_type"]) for o in document["observed"]} == {
        ("DE*A36", "authorization"), ("DE*A36", "reservation"), ("DE-8EO", "authorization"),
        ("+49*536", "authorization")}


# -- Markdown ---------------------------------------------------------------------------------------------------------

def test_markdown_starts_with_the_marker_ci_finds_its_comment_by(plan: Plan) -> None:
    """The table and the details are in the golden files (test_goldens.py)."""
    text = planformat.render_markdown(plan)
    assert text.startswith(planformat.MARKDOWN_MARKER)
    assert plan.checksum in text


def _big_plan(count: int) -> Plan:
    desired = []
    current = []
    for index in range(count):
        partner_id = f"DE*{index:03X}" if index < 4096 else f"AT*{index - 4096:03X}"
        kind = index % 3
        if kind == 0:
            desired.append(want(partner_id, name="A partner with a fairly long display name GmbH & Co. KG"))
            current.append(have(partner_id))
        elif kind == 1:
            desired.append(want(partner_id, service_url=f"https://oicp-{index}.example.com/base/path"))
            current.append(have(partner_id, payload=settings()))
        else:
            desired.append(want_payload(partner_id, "authorization", offline()))
            current.append(have(partner_id, payload=settings(broadcast_request=True)))
    return compute_plan("prod", desired, state_of(*current))


def test_markdown_of_5000_changes_stays_under_60000_characters_and_summarises_the_rest() -> None:
    plan = _big_plan(5000)
    assert len(plan.changes) == 5000
    text = planformat.render_markdown(plan)
    assert len(text) < 60_000
    assert "| 1667 | 1667 | 1666 | 0 |" in text
    shown = text.count("<details>")
    assert 0 < shown < 5000
    assert f"…and {5000 - shown} more changes not shown here" in text
    assert plan.checksum in text
    # the details shown are the first changes in the plan's order
    first = plan.changes[0]
    assert text.index(f"<b>{first.partner_id}</b>") < text.index("more changes not shown")


@pytest.mark.parametrize("limit", [3_000, 10_000, 60_000])
def test_markdown_respects_any_limit(limit: int) -> None:
    assert len(planformat.render_markdown(_big_plan(400), limit=limit)) < limit


def test_markdown_cannot_be_broken_by_values() -> None:
    url = "https://x.example.com/a|b`c<script>"
    (change,) = compute_plan("qa", [want(name="<b>Evil</b> | Co", service_url=url)],
                             state_of(have(payload=settings()))).changes
    text = planformat.render_markdown(Plan("qa", (change,), ()))
    row = next(line for line in text.splitlines() if line.startswith("| service_url"))
    # GitHub splits table cells at every unescaped pipe, even inside a code span
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 5, row  # '', field, before, after, ''
    assert "a\\|b" in row
    assert "<b>Evil</b>" not in text and "&lt;b&gt;Evil&lt;/b&gt; &#124; Co" in text


# -- instructions ------------------------------------------------------------------------------------------------------

def test_instructions_tick_online_request_before_typing_the_url(plan: Plan) -> None:
    text = planformat.render_instructions(plan, "portal 'qa' (manual)")
    enable = by_kind(plan, ChangeKind.ENABLE)
    steps = planformat.change_steps(enable)
    assert steps[0] == 'Choose the service type "Reservation" and click Edit (top right).'
    assert steps.index('Tick "Online Request".') < next(i for i, s in enumerate(steps) if "Service URL" in s)
    assert steps[-1].startswith('Click "Update Service Type"')
    assert 'Type into "Service URL": https://r.example.com (no blank spaces).' in steps
    assert "Administration > Service Type Settings" in text
    numbers = [int(m) for m in re.findall(r"^(\d+)\. ", text, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_switching_off_takes_only_the_online_request_click(plan: Plan) -> None:
    """Issue 13, finding 7: Broadcast and the Service URL go with Online Request; no source asks to clear them."""
    change = by_kind(plan, ChangeKind.DISABLE)
    assert planformat.change_steps(change) == [
        'Choose the service type "Authorization" and click Edit (top right).', 'Untick "Online Request".',
        'Click "Update Service Type" (Cancel would discard the change).']


def test_switching_off_keeps_the_portals_other_boxes_and_a_url_may_stay_in_the_file() -> None:
    """Issue 13, finding 7: `online_request: false` with the URL kept and Client Certification left out changes
    only Online Request; the plan shows what the portal will hold."""
    current = state_of(have(payload=settings(client_certification=True)))
    (change,) = compute_plan("qa", [want(online_request=False, broadcast_request=False,
                                         service_url="https://oicp.example.com", client_certification=False)],
                             current).changes
    assert change.kind is ChangeKind.DISABLE
    assert {f.field for f in change.fields} <= {"online_request", "broadcast_request", "service_url"}
    assert change.after["client_certification"] is True and change.after["service_url"] is None
    assert planformat.change_steps(change)[1:] == ['Untick "Online Request".',
                                                   'Click "Update Service Type" (Cancel would discard the change).']


def test_instructions_for_a_change_replace_the_url() -> None:
    current = state_of(have(payload=settings(service_url="https://old.example.com", client_certification=False)))
    (change,) = compute_plan("qa", [want(service_url="https://new.example.com", certificate="user",
                                         certificate_sha256=SHA)], current).changes
    steps = planformat.change_steps(change)
    assert 'Clear "Service URL" and type https://new.example.com (no blank spaces).' in steps
    assert 'Tick "Client Certification".' in steps
    assert any(SHA in s and "Certificate Management" in s for s in steps)
    assert not any("Online Request" in s for s in steps)
