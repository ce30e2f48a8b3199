"""Faults: a portal that fails 30% of its requests, answers too slowly, hangs up, or answers outside the contract.

Apply either succeeds or says which changes did not apply; it never reports a change applied that the portal does
not hold; a failed change whose write may have landed says so; re-running finishes the job; the audit log accounts
for every write the portal took.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.apply.audit import AuditLog, read_audit
from hbsdeploy.apply.run import UNKNOWN_OUTCOME, Status, apply_plan
from hbsdeploy.check.project import Project, load_project
from hbsdeploy.load.config import Config, Environment, find_config, load_config
from hbsdeploy.load.settings import normalize_settings
from hbsdeploy.plan.build import desired_payloads, make_plan
from hbsdeploy.portal import PortalError
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.http import HttpPortal
from hbsdeploy.render.payloads import Renderer
from tests.helpers import run_cli
from tests.reliability.helpers import FakePortal, held, make_repo, parse_report, partner_ids, wait_for

Start = Callable[..., ServerHandle]
# A failed change whose write may have landed says so in one of these ways.
MAY_HAVE_LANDED = (UNKNOWN_OUTCOME, "run plan to see whether it holds")


def no_sleep(seconds: float) -> None:
    pass


def qa() -> tuple[Config, Environment, Project]:
    config = load_config(find_config())
    env = config.environment("qa")
    return config, env, load_project(config, env)


def wanted(config: Config, env: Environment, project: Project) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d.partner_id, d.service_type): normalize_settings(d.payload)
            for d in desired_payloads(project, env, Renderer(config))}


def version_number(version: str) -> int:
    return int(version.strip('"'))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_under_injected_faults_apply_reports_only_what_the_portal_holds_and_reruns_converge(
        work: Path, emulator: Start, seed: int) -> None:
    # 500, 503, 429, dropped connections, answers lost after the write
    handle = emulator(auto_register=True, fail_rate=0.3, seed=seed)
    make_repo(work, 12, url=handle.url, max_retries=4)
    config, env, project = qa()
    audit = AuditLog(config.state_dir / "audit.jsonl")
    truth = handle.portal  # the emulator's own store, read without faults
    applied_reported = retries = 0
    for _ in range(40):
        portal = HttpPortal(env, sleep=no_sleep, rng=random.Random(seed))
        try:
            try:
                plan = make_plan(project, env, portal, 4)
            except PortalError as exc:  # planning met a fault it could not retry away: an error, nothing written
                assert str(exc).startswith(f"portal 'qa' ({handle.url}): ")
                continue
            if not plan.has_changes:
                break
            result = apply_plan(plan, portal, audit, parallelism=4)
        finally:
            retries += portal.retry_count
            portal.close()
        assert not result.interrupted
        for item in result.results:
            state = truth.get_service_type(*item.change.key)
            holds = dict(state.settings) == dict(item.change.after)
            if item.status is Status.APPLIED:
                applied_reported += 1
                assert holds, item  # never a change reported applied that the portal does not hold
            else:
                assert item.status is Status.FAILED and item.message, item
                assert item.message.startswith(("portal 'qa'", "the portal accepted", "the answer")), item.message
                if holds:  # reported failed, yet the portal holds it: only when the report says it may have landed
                    assert any(phrase in item.message for phrase in MAY_HAVE_LANDED), item.message
    else:
        pytest.fail("apply did not converge in 40 runs")
    assert sum(handle.stats.faults.values()) > 10 and retries > 0 and applied_reported > 0

    # converged: the portal holds exactly what the partner files want
    want = wanted(config, env, project)
    assert not make_plan(project, env, truth, 4).has_changes
    # the audit log agrees with the portal: every write the portal took is an entry that says applied, or failed
    # with "may have been made"; every applied entry is what the portal holds now.
    entries = read_audit(config.state_dir / "audit.jsonl")
    for key, settings in want.items():
        state = truth.get_service_type(*key)
        mine = [e for e in entries if (e["partner_id"], e["service_type"]) == key]
        applied = sum(1 for e in mine if e["result"] == "applied")
        unclear = sum(1 for e in mine if e["result"] == "failed" and any(p in e["message"] for p in MAY_HAVE_LANDED))
        assert applied <= version_number(state.version) <= applied + unclear, (key, mine, state.version)
        assert dict(state.settings) == settings
        assert all(e["after"] == settings for e in mine if e["result"] == "applied")


def test_cli_under_faults_reports_each_change_and_finishes_on_rerun(work: Path, emulator: Start) -> None:
    """No retries at all (max_retries 0): every fault reaches the report or the one-line error."""
    handle = emulator(auto_register=True, fail_rate=0.3, seed=11)
    # One request at a time: the emulator's seeded faults land on the same requests in every run.
    make_repo(work, 4, url=handle.url, max_retries=0, parallelism=1)
    state_file = handle.portal.store.path
    reports = errors = 0
    for _ in range(60):
        ran = run_cli("apply", "--auto-approve")
        assert ran.code in (0, 1) and "Traceback" not in ran.output, ran.output
        if "Apply:" not in ran.stdout:
            if ran.code == 0:
                break  # "No changes."
            errors += 1
            assert len(ran.stderr.splitlines()) == 1 and ran.stderr.startswith(f"error: portal 'qa' ({handle.url}): ")
            continue
        reports += 1
        report = parse_report(ran.stdout)
        holds = held(state_file)
        for key, outcome in report.items():
            if outcome.status == "applied":
                assert holds[key][1] >= 1  # written
            else:
                assert outcome.status == "failed" and outcome.message, (key, outcome)
        counts = {s: sum(1 for o in report.values() if o.status == s) for s in ("applied", "failed")}
        assert f"Apply: {counts['applied']} applied, {counts['failed']} failed, 0 not attempted." in ran.stdout
        assert (ran.code == 1) == (counts["failed"] > 0)
        if ran.code == 1:
            assert "Run `hbsdeploy apply --env qa` again to finish: it plans what remains." in ran.stderr
    else:
        pytest.fail("apply did not converge in 60 runs")
    assert reports >= 1 and errors >= 1
    assert {key for key, (_, version) in held(state_file).items() if version >= 1} == \
        {(p, t) for p in partner_ids(4) for t in ("authorization", "reservation")}


def test_a_portal_slower_than_the_read_timeout_is_one_clear_error_after_bounded_attempts(work: Path,
                                                                                        emulator: Start) -> None:
    handle = emulator(auto_register=True, latency_ms=800)
    make_repo(work, 1, url=handle.url, read_timeout=0.2, max_retries=1)
    ran = run_cli("plan")
    assert ran.code == 1 and ran.stdout == "" and "Traceback" not in ran.stderr
    assert ran.stderr.splitlines() == [
        f"error: portal 'qa' ({handle.url}): the portal did not answer within the read timeout while reading/writing "
        "the partners listing, after 2 attempts; check the URL, the network and the timeouts, then try again"]


def test_writes_whose_answers_time_out_are_reported_as_may_have_landed(work: Path, emulator: Start) -> None:
    """The PUT reaches the portal and lands after the client gave up: the report must not say it did not happen."""
    fast = emulator(auto_register=True)
    slow = emulator(auto_register=True, latency_ms=600)  # the same store
    make_repo(work, 2, url=slow.url, read_timeout=0.2, max_retries=1)
    config, env, project = qa()
    plan = make_plan(project, env, fast.portal, 4)
    portal = HttpPortal(env, sleep=no_sleep)
    try:
        result = apply_plan(plan, portal, AuditLog(config.state_dir / "audit.jsonl"), parallelism=4)
    finally:
        portal.close()
    assert [r.status for r in result.results] == [Status.FAILED] * 4
    for item in result.results:
        assert item.message is not None and "did not answer within the read timeout" in item.message
        assert item.message.endswith(UNKNOWN_OUTCOME)
    # every request sent reaches the (slow) portal in the end: 2 PUT and 2 GET attempts per change
    wait_for(lambda: slow.stats.requests >= 16, "the slow portal to finish the requests in flight")
    assert not make_plan(project, env, fast.portal, 4).has_changes  # they did land, exactly once each
    assert all(version_number(fast.portal.get_service_type(*r.change.key).version) == 1 for r in result.results)
    assert [e["result"] for e in read_audit(config.state_dir / "audit.jsonl")] == ["failed"] * 4


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Callable[..., FakePortal]]:
    fakes: list[FakePortal] = []

    def start(modes: dict[str, str], **options: Any) -> FakePortal:
        portal = FakePortal(tmp_path / f"fake-{len(fakes)}.sqlite3", modes, **options)
        fakes.append(portal)
        return portal

    yield start
    for portal in fakes:
        portal.stop()


@pytest.mark.parametrize("targeted, mode, wrong_body, reason, attempts", [
    (True, "close", None, "the portal closed the connection while reading/writing the service types of DE*R00, "
                          "after 3 attempts", 3),
    (False, "close", None, "the portal closed the connection while reading/writing the partners listing, after 3 "
                           "attempts", 3),
    (False, "not-json", None, "the portal answered 200 with a body that is not JSON (text/html); is portal: the API's "
                              "base URL?", 1),
    (True, "wrong-body", {"items": []}, "the list of service types in the portal's answer is not an object with a "
                                        "`service_types` object; the portal does not follow "
                                        "schemas/portal-api.openapi.yaml", 1),
    (False, "wrong-body", {"items": []}, "the partners listing in the portal's answer is not an object with a "
                                         "`partners` list; the portal does not follow "
                                         "schemas/portal-api.openapi.yaml", 1),
    (True, "wrong-body", {"partner_id": "DE*X99", "service_types": {}}, "partner_id in the portal's answer is not "
                                                                        "'DE*R00' (the partner asked for)", 1),
    (False, "retry-after", None, "the portal answered 429 and asks to wait 3600 s (Retry-After), more than the 60 s "
                                 "hbsdeploy waits; try again later", 1),
])
def test_a_misbehaving_portal_while_planning_is_one_line_naming_it(work: Path, fake: Callable[..., FakePortal],
                                                                   targeted: bool, mode: str,
                                                                   wrong_body: dict[str, Any] | None,
                                                                   reason: str, attempts: int) -> None:
    """The whole repository is read through the partners listing; --partner through that partner's own listing."""
    portal = fake({"GET": mode}, wrong_body=wrong_body)
    make_repo(work, 1, url=portal.url, max_retries=2)
    narrow = ["--partner", "DE*R00"] if targeted else []
    for command in (["plan", *narrow], ["apply", "--auto-approve", *narrow]):
        before = portal.requests.get("GET", 0)
        ran = run_cli(*command)
        assert ran.code == 1 and ran.stdout == "" and "Traceback" not in ran.stderr, ran.output
        assert len(ran.stderr.splitlines()) == 1, ran.stderr
        assert ran.stderr.startswith(f"error: portal 'qa' ({portal.url}): ") and reason in ran.stderr, ran.stderr
        assert portal.requests.get("GET", 0) - before == attempts  # bounded; a long Retry-After is not slept
    assert "PUT" not in portal.requests


def test_a_read_answered_500_is_retried(work: Path, fake: Callable[..., FakePortal]) -> None:
    """A GET changes nothing, so a 500 on one is retried like a 503; without that, a portal failing 1 request in 50
    would fail nearly every plan over 100 partners (see bench/bench_faults.py)."""
    portal = fake({"GET": "500-once"})
    make_repo(work, 1, url=portal.url, max_retries=2)
    ran = run_cli("plan")
    assert ran.code == 0 and "Plan: 2 to enable" in ran.stdout, ran.output
    # the listing (500, then again), then the partner's own listing: a new partner is not listed before its first write
    assert portal.requests["GET"] == 3


@pytest.mark.parametrize("mode", ["close", "not-json", "wrong-body", "retry-after"])
def test_a_write_answered_badly_without_landing_is_failed_and_the_rerun_applies_it(
        work: Path, fake: Callable[..., FakePortal], mode: str) -> None:
    portal = fake({"PUT": mode})
    make_repo(work, 2, url=portal.url, max_retries=1)
    ran = run_cli("apply", "--auto-approve")
    assert ran.code == 1 and "Traceback" not in ran.output, ran.output
    report = parse_report(ran.stdout)
    assert len(report) == 4 and {o.status for o in report.values()} == {"failed"}
    for outcome in report.values():
        assert outcome.message is not None and outcome.message.startswith(f"portal 'qa' ({portal.url}): ")
        assert outcome.message.endswith("the portal does not hold the update: run plan to see what remains")
    assert "Apply: 0 applied, 4 failed, 0 not attempted." in ran.stdout
    assert all(version == 0 for _, version in held(portal.portal.store.path).values())
    portal.modes.clear()  # the portal recovers
    assert "Plan: 4 to enable" in run_cli("plan").stdout
    assert run_cli("apply", "--auto-approve").code == 0
    assert run_cli("plan", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("mode", ["close", "not-json", "wrong-body"])
def test_a_write_that_landed_but_was_answered_badly_is_read_back_and_reported_applied(
        work: Path, fake: Callable[..., FakePortal], mode: str) -> None:
    portal = fake({"PUT": mode}, write_first=True)
    make_repo(work, 2, url=portal.url, max_retries=1)
    ran = run_cli("apply", "--auto-approve")
    assert ran.code == 0 and "Apply: 4 applied, 0 failed, 0 not attempted." in ran.stdout, ran.output
    assert all(version == 1 for _, version in held(portal.portal.store.path).values())  # exactly one write each
    entries = read_audit(work / ".hbsdeploy" / "audit.jsonl")
    assert [e["result"] for e in entries] == ["applied"] * 4
    if mode != "close":  # a closed connection is retried, and the retry's 412 shows the first attempt landed
        assert all("reading it back shows the update was made" in e["message"] for e in entries)
    portal.modes.clear()
    assert run_cli("plan", "--detailed-exitcode").code == 0
