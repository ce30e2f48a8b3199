"""apply_plan and its safety checks on the embedded portal, with portals that misbehave in one precise way."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.apply.audit import AuditLog, read_audit
from hbsdeploy.apply.run import StalePlan, Status, apply_plan, check_disable_share, check_fresh
from hbsdeploy.errors import HbsError
from hbsdeploy.plan.build import read_current
from hbsdeploy.plan.model import DisableCheck, Plan, compute_plan, plan_from_json
from hbsdeploy.portal import PortalError, PortalRefused, PortalStateError, PortalUnavailable, ServiceTypeState
from hbsdeploy.portal.local import LocalPortal
from tests.plan.factories import offline, settings, want, want_payload

PARTNERS = ("DE*A36", "DE*B12", "DE*C34")
REFUSALS: dict[str, type[PortalError]] = {"refused": PortalRefused, "state-file": PortalStateError,
                                          "unavailable": PortalUnavailable}


class Misbehaving(LocalPortal):
    """A LocalPortal that fails one way for one partner."""

    def __init__(self, path: Path, partner: str, fault: str) -> None:
        super().__init__(path)
        self.partner = partner
        self.fault = fault
        self.reads: list[str] = []
        self.listings: list[str] = []
        self.cancelled = 0
        self.written = False

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        if partner_id == self.partner and self.fault == "write-crashes":
            raise ConnectionResetError("peer reset the connection")
        if partner_id == self.partner and self.fault == "write-ignored":
            return self.get_service_type(partner_id, service_type)
        if partner_id == self.partner and self.fault in REFUSALS:
            raise REFUSALS[self.fault](f"portal 'x': {self.fault}")
        if partner_id == self.partner and self.fault == "interrupt":
            raise KeyboardInterrupt
        if partner_id == self.partner and self.fault == "answer-without-new-version":
            super().update_service_type(partner_id, service_type, payload, if_match)
            return ServiceTypeState(partner_id, service_type, payload, if_match)
        self.written = True
        return super().update_service_type(partner_id, service_type, payload, if_match)

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        self.listings.append(partner_id)
        states = super().list_service_types(partner_id)
        if partner_id == self.partner and self.written and self.fault == "read-back-fails":
            raise PortalUnavailable("portal 'x': read timed out")
        if partner_id == self.partner and self.written and self.fault == "read-back-interrupted":
            raise KeyboardInterrupt
        if partner_id == self.partner and self.written and self.fault == "read-back-differs":
            state = states["authorization"]
            states["authorization"] = ServiceTypeState(partner_id, "authorization",
                                                       {**state.settings, "online_request": False}, state.version)
        if partner_id == self.partner and self.written and self.fault == "read-back-stale":
            state = states["authorization"]  # what a lagging replica answers: the state the plan saw
            states["authorization"] = ServiceTypeState(partner_id, "authorization",
                                                       {**state.settings, "online_request": False}, '"0"')
        return states

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        self.reads.append(partner_id)
        return super().get_service_type(partner_id, service_type)

    def cancel(self) -> None:
        self.cancelled += 1


def plan_for(portal: LocalPortal, desired: list[Any]) -> Plan:
    return compute_plan("qa", desired, read_current(portal, {d.partner_id for d in desired}, 4))


def all_on() -> list[Any]:
    return [want(pid, service_url=f"https://{i}.example.com") for i, pid in enumerate(PARTNERS)]


@pytest.mark.parametrize("fault, message", [
    ("write-crashes", "unexpected error while writing (ConnectionResetError: peer reset the connection)"),
    ("write-ignored", "the portal accepted the update but answered with different settings"),
    ("answer-without-new-version", "answered with the version the plan saw (\"0\"), not a new one"),
    ("read-back-differs", "the portal accepted the update, but it reads back different settings under the version "
                          "the write answered (\"1\") when read back after the writes"),
    ("read-back-stale", "the portal accepted the update, but it reads back the version from before the write "
                        "(\"0\"), without the change"),
])
def test_a_failing_change_is_reported_and_the_others_are_applied(tmp_path: Path, fault: str, message: str) -> None:
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*B12", fault)
    plan = plan_for(portal, all_on())
    result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=2)
    statuses = {r.change.partner_id: (r.status, r.message) for r in result.results}
    assert statuses["DE*A36"] == (Status.APPLIED, None) and statuses["DE*C34"] == (Status.APPLIED, None)
    status, text = statuses["DE*B12"]
    assert status is Status.FAILED and text is not None and message in text
    assert not result.ok and not result.interrupted
    audit = {e["partner_id"]: e["result"] for e in read_audit(tmp_path / "audit.jsonl")}
    assert audit == {"DE*A36": "applied", "DE*B12": "failed", "DE*C34": "applied"}
    # a re-run against a portal that works again finishes the job
    healthy = LocalPortal(tmp_path / "state.sqlite3")
    rerun = apply_plan(plan_for(healthy, all_on()), healthy, AuditLog(tmp_path / "audit.jsonl"))
    assert rerun.ok and not plan_for(healthy, all_on()).has_changes


def test_writes_are_verified_from_their_answers_and_read_back_once_per_partner(tmp_path: Path) -> None:
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*B12", "none")
    plan = plan_for(portal, all_on())
    portal.listings.clear()
    result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=2)
    assert result.ok and len(plan.changes) == 3
    assert portal.reads == []  # no GET per write
    assert sorted(portal.listings) == sorted(PARTNERS)  # one listing per partner written, after the writes
    portal.listings.clear()
    assert apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), read_back=False).count(Status.FAILED) == 3
    assert portal.listings == []  # stale versions: nothing written, nothing to read back


def test_a_failed_read_back_leaves_the_writes_applied_and_says_so(tmp_path: Path) -> None:
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*B12", "read-back-fails")
    result = apply_plan(plan_for(portal, all_on()), portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=2)
    assert result.count(Status.APPLIED) == 3
    assert all("applied as the write's answer shows, but reading the partners back after the writes failed "
               "(portal 'x': read timed out)" in str(r.message) for r in result.results)
    entries = read_audit(tmp_path / "audit.jsonl")
    assert [e["result"] for e in entries] == ["applied"] * 6 and sum(1 for e in entries if e["message"]) == 3


def test_an_interrupt_during_the_read_back_still_reports_every_write(tmp_path: Path) -> None:
    """Ctrl-C after the writes, while reading back: the writes' answers stand; the report comes, marked interrupted."""
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*B12", "read-back-interrupted")
    result = apply_plan(plan_for(portal, all_on()), portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=2)
    assert result.interrupted and result.count(Status.APPLIED) == 3
    assert [e["result"] for e in read_audit(tmp_path / "audit.jsonl")] == ["applied"] * 3


@pytest.mark.parametrize("fault, looked", [("refused", False), ("state-file", False), ("unavailable", True)])
def test_a_refused_write_fails_without_a_look_and_an_unclear_one_is_looked_at(tmp_path: Path, fault: str,
                                                                             looked: bool) -> None:
    """A refusal (any 4xx, an unusable state file) wrote nothing; only a write without a usable answer is read back."""
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*B12", fault)
    plan = plan_for(portal, all_on())
    portal.reads.clear()
    result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=1)
    failed = {r.change.partner_id: r.message for r in result.results if r.status is Status.FAILED}
    assert list(failed) == ["DE*B12"] and f"portal 'x': {fault}" in str(failed["DE*B12"])
    assert ("DE*B12" in portal.reads) is looked
    assert ("the portal does not hold the update" in str(failed["DE*B12"])) is looked


def test_an_interrupted_apply_cancels_the_portal_and_reports_the_rest(tmp_path: Path) -> None:
    portal = Misbehaving(tmp_path / "state.sqlite3", "DE*A36", "interrupt")
    result = apply_plan(plan_for(portal, all_on()), portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=1)
    assert result.interrupted and portal.cancelled == 1
    assert {r.status for r in result.results} == {Status.NOT_ATTEMPTED}


def test_check_fresh_names_what_changed_and_allows_an_unchanged_portal(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "state.sqlite3")
    plan = plan_for(portal, all_on())
    check_fresh(plan, portal, 4)  # nothing changed
    portal.update_service_type("DE*C34", "authorization", settings(), '"0"')
    with pytest.raises(StalePlan, match=r"DE\*C34/authorization \(planned at version \"0\", now \"1\"\); nothing "
                                        r"was written\. Run `hbsdeploy plan --env qa --out FILE` again"):
        check_fresh(plan, portal, 4)


def test_check_fresh_ignores_service_types_the_plan_does_not_change(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "state.sqlite3")
    plan = plan_for(portal, all_on())
    portal.update_service_type("DE*A36", "reservation", settings(), '"0"')  # not in the plan
    check_fresh(plan, portal, 4)


@pytest.mark.parametrize("disabled, allowed", [(1, True), (2, False)])
def test_disable_share(tmp_path: Path, disabled: int, allowed: bool) -> None:
    portal = LocalPortal(tmp_path / "state.sqlite3")
    for pid in ("DE*A36", "DE*B12", "DE*C34", "DE*D56"):
        portal.update_service_type(pid, "authorization", settings(), '"0"')
    desired = [want_payload(pid, "authorization", offline()) if i < disabled else want(pid)
               for i, pid in enumerate(("DE*A36", "DE*B12", "DE*C34", "DE*D56"))]
    plan = plan_for(portal, desired)
    assert plan.summary()["disable"] == disabled
    check_disable_share(plan, 0.5, 0)  # 2 of 4 is not more than half
    check_disable_share(plan, 0.0, 5)  # 4 in scope: below the floor of 5, the share does not apply
    if allowed:
        check_disable_share(plan, 0.25, 4)  # exactly the share: allowed
    else:
        with pytest.raises(HbsError, match=r"disables 2 of 4 service types in scope \(50%.*plan --allow-disables"):
            check_disable_share(plan, 0.25, 4)
    check_disable_share(plan, 0.0, 0, allowed_now=True)
    permitted = dataclasses.replace(plan, disable_check=DisableCheck(disabled, 4, 0.25, 4, allowed=True))
    check_disable_share(permitted, 0.0, 0)  # allowed when the plan was made
    assert permitted.checksum != plan.checksum  # the permission is under the checksum


def test_a_permission_to_disable_survives_the_plan_file_and_cannot_be_edited_in(tmp_path: Path) -> None:
    portal = LocalPortal(tmp_path / "state.sqlite3")
    portal.update_service_type("DE*A36", "authorization", settings(), '"0"')
    plan = plan_for(portal, [want_payload("DE*A36", "authorization", offline())])
    allowed = dataclasses.replace(plan, disable_check=DisableCheck(1, 1, 0.25, 1, allowed=True))
    assert plan_from_json(json.loads(allowed.to_json())) == allowed
    refused = dataclasses.replace(plan, disable_check=DisableCheck(1, 1, 0.25, 1, allowed=False))
    edited = json.loads(refused.to_json())
    edited["disable_check"]["allowed"] = True  # a permission added after review: the checksum no longer matches
    with pytest.raises(HbsError, match="checksum mismatch"):
        plan_from_json(edited)


def test_an_audit_log_that_cannot_be_written_refuses_apply_before_any_write(tmp_path: Path) -> None:
    from hbsdeploy.apply.audit import AuditError

    portal = LocalPortal(tmp_path / "state.sqlite3")
    plan = plan_for(portal, all_on())
    (tmp_path / "audit.jsonl").mkdir()  # a folder where the log should be: every append fails
    with pytest.raises(AuditError, match=r"cannot append to the audit log .*audit\.jsonl.*nothing was written"):
        apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=1)
    assert plan_for(portal, all_on()).changes == plan.changes  # the portal is untouched


def test_an_audit_log_failing_mid_apply_stops_new_writes_and_still_reports(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from hbsdeploy.apply.audit import AuditError

    portal = LocalPortal(tmp_path / "state.sqlite3")
    plan = plan_for(portal, all_on())
    assert len(plan.changes) == 3

    def full_disk(self: AuditLog, **entry: object) -> None:
        raise AuditError("cannot append to the audit log (No space left on device)")

    monkeypatch.setattr(AuditLog, "record", full_disk)
    result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=1)
    assert result.audit_error is not None and "No space left" in result.audit_error
    first, *rest = result.results
    assert first.status is Status.APPLIED and first.message == "not in the audit log"
    assert [r.status for r in rest] == [Status.NOT_ATTEMPTED, Status.NOT_ATTEMPTED]
    assert len(plan_for(portal, all_on()).changes) == 2  # the one write made is kept and reported


class ListsEveryAccount(LocalPortal):
    """A portal whose listing opens every account's page (as the web UI's does): counted, never wanted."""

    listing_is_cheap = False

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.listings_of_all = 0

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        self.listings_of_all += 1
        return super().list_all_service_types()


def test_many_partners_are_read_one_by_one_where_the_listing_opens_every_account(tmp_path: Path) -> None:
    """A saved plan's freshness check and apply's read-back of more than 32 partners: the paged listing only where
    it is cheap; a web portal's would open the page of every account the user holds."""
    portal = ListsEveryAccount(tmp_path / "state.sqlite3")
    desired = [want(f"DE*{i:03d}", service_url=f"https://{i}.example.com") for i in range(40)]
    plan = plan_for(portal, desired)
    check_fresh(plan, portal, 4)
    result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=4)
    assert result.ok and result.count(Status.APPLIED) == 40
    assert portal.listings_of_all == 0
    cheap = LocalPortal(tmp_path / "state.sqlite3")
    assert read_current(cheap, [d.partner_id for d in desired], 4) == read_current(portal, [d.partner_id
                                                                                           for d in desired], 4)

