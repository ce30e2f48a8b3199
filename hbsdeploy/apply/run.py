"""Applying a plan: exactly its changes, each written with If-Match, verified from the write's answer, audited, then
read back together (one paged listing, or one listing per partner written when they are few).

Partners are applied in parallel (bounded); the changes of one partner one after another. A failed change does not
stop the others; an interruption stops new writes and lets the ones in flight finish. Every change ends applied,
failed or not attempted, so a re-run (which plans again) finishes the job.
"""

from __future__ import annotations

import enum
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

from hbsdeploy.apply.audit import AuditError, AuditLog
from hbsdeploy.errors import HbsError
from hbsdeploy.load.settings import holds
from hbsdeploy.plan.build import Progress, read_current
from hbsdeploy.plan.model import Change, ChangeKind, Plan, needs_disable_permission
from hbsdeploy.portal import (
    PartnerNotFound,
    PayloadRejected,
    Portal,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalRefused,
    PortalStateError,
    ServiceTypeState,
    VersionConflict,
)
from hbsdeploy.text import one_line, plural

# The portal refused the write or could not start it: nothing was written, so there is nothing to look for.
NOTHING_WRITTEN = (VersionConflict, PayloadRejected, PartnerNotFound, PortalAuthError, PortalRefused,
                   PortalStateError, PortalConfigError)

# How a failed change says that the portal may hold it after all (the write's answer was lost, and so was the look).
UNKNOWN_OUTCOME = "the update may or may not have been made: run plan to see what the portal holds"


class StalePlan(HbsError):
    """The portal changed since the plan was made: nothing was written."""


class Status(str, enum.Enum):
    APPLIED = "applied"
    RECORDED = "recorded"  # a manual environment's step done outside hbsdeploy, recorded (`state record`)
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    status: Status
    message: str | None = None
    evidence: tuple[str, ...] = ()  # screenshots of the write (web portal), as the portal saved them
    written: ServiceTypeState | None = field(default=None, compare=False)  # the write's answer, when applied


@dataclass(frozen=True)
class ApplyResult:
    """What happened to every change of the plan, in the plan's order."""

    results: tuple[ChangeResult, ...]
    interrupted: bool = False
    audit_error: str | None = None  # the audit log failed mid-apply: no write was started after that

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return all(r.status in (Status.APPLIED, Status.RECORDED) for r in self.results)


def check_fresh(plan: Plan, portal: Portal, parallelism: int) -> None:
    """Refuse, writing nothing, when any service type the plan changes has a new version since the plan was made."""
    if not plan.changes:
        return
    current = read_current(portal, {c.partner_id for c in plan.changes}, parallelism)
    stale = []
    for change in plan.changes:
        now = current.get(change.key)
        if now is None or now.version != change.version:
            stale.append(f"{change.partner_id}/{change.service_type} (planned at version {change.version}, "
                         f"now {now.version if now else 'gone'})")
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise StalePlan(f"the portal changed since the plan was made: {shown}; nothing was written. "
                        f"Run `hbsdeploy plan --env {plan.environment} --out FILE` again and review it")


def check_disable_share(plan: Plan, max_fraction: float, min_scope: int, *, allowed_now: bool = False) -> None:
    """Refuse a plan that switches off more than `max_fraction` of the service types in scope (when at least
    `min_scope` are in scope), unless that was allowed when the plan was made (`plan --allow-disables`, recorded in
    the plan under its checksum) or, for a plan made by apply itself, now (`allowed_now`)."""
    disables = plan.count(ChangeKind.DISABLE)
    scope = len(plan.observed)  # every service type the plan covers, changed or not
    if not needs_disable_permission(disables, scope, max_fraction, min_scope):
        return
    if allowed_now or (plan.disable_check is not None and plan.disable_check.allowed):
        return
    raise HbsError(f"the plan disables {disables} of {plural(scope, 'service type')} in scope ({disables / scope:.0%}, "
                   f"more than apply.max_disable_fraction {max_fraction:.0%}) and was not allowed to when it was made; "
                   "check the partner files, or, if this is intended, run `hbsdeploy plan --allow-disables --out "
                   "FILE`, have it reviewed and apply that file")


def apply_plan(plan: Plan, portal: Portal, audit: AuditLog, *, parallelism: int = 8,
               progress: Progress | None = None, stop: threading.Event | None = None,
               read_back: bool = True) -> ApplyResult:
    """Make the plan's changes, each verified from the write's answer; stop new writes when `stop` is set or on
    KeyboardInterrupt. Then, unless interrupted and when `read_back`, read the partners written back together."""
    stop = stop or threading.Event()
    by_partner: dict[str, list[Change]] = defaultdict(list)
    for change in plan.changes:
        by_partner[change.partner_id].append(change)
    results: dict[tuple[str, str], ChangeResult] = {}
    lock = threading.Lock()
    done = 0

    audit_errors: list[str] = []

    def record(result: ChangeResult) -> None:
        nonlocal done
        change = result.change
        try:
            audit.record(environment=plan.environment, partner_id=change.partner_id,
                         service_type=change.service_type, kind=change.kind.value, before=change.before,
                         after=change.after, result=result.status.value, message=result.message,
                         plan_checksum=plan.checksum, evidence=result.evidence)
        except AuditError as exc:
            stop.set()  # no other worker starts a write the log could not record
            result = ChangeResult(change, result.status, ((result.message + "; ") if result.message else "")
                                  + "not in the audit log", result.evidence)
            with lock:
                audit_errors.append(str(exc))
        with lock:
            results[change.key] = result
            done += 1
            if progress:
                progress(done, len(plan.changes))

    def run_partner(changes: list[Change]) -> None:
        for change in changes:
            if stop.is_set():
                return
            try:
                record(_apply_change(portal, change))
            except BaseException:
                stop.set()
                raise

    audit.check_writable()

    interrupted = False
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    try:
        futures = [pool.submit(run_partner, by_partner[pid]) for pid in partners_of_changes(plan)]
        for future in as_completed(futures):
            future.result()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        portal.cancel()  # workers waiting to retry give up instead of sleeping on
    except BaseException:
        stop.set()
        raise
    finally:
        interrupted = _finish_writes_in_flight(pool, stop, portal) or interrupted
    if read_back and not (interrupted or stop.is_set()):
        try:
            looked = _read_back(portal, [r for r in results.values() if r.written is not None], parallelism)
        except KeyboardInterrupt:  # only the second look is missing: each write's answer stands, and is reported
            interrupted, looked = True, []
        for result in looked:
            results[result.change.key] = result
            _audit_read_back(audit, plan, result, audit_errors)
    ordered = tuple(results.get(change.key, ChangeResult(change, Status.NOT_ATTEMPTED,
                                                         "interrupted before this change" if interrupted or
                                                         stop.is_set() else None))
                    for change in plan.changes)
    return ApplyResult(ordered, interrupted or stop.is_set(), audit_errors[0] if audit_errors else None)


def _finish_writes_in_flight(pool: ThreadPoolExecutor, stop: threading.Event, portal: Portal) -> bool:
    """Wait for the writes under way to end and be audited, whatever further interrupts arrive: each ends within its
    request deadline (cancel abandons reads, never a write whose outcome must be known). True if interrupted here."""
    interrupted = False
    while True:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
            return interrupted
        except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM: still report and audit every write the portal took
            interrupted = True
            stop.set()
            portal.cancel()


def _read_back(portal: Portal, applied: list[ChangeResult], parallelism: int) -> list[ChangeResult]:
    """The second look, batched: the partners written, read once after all the writes (the paged listing when they
    are many, read_current decides); the changes whose read disagrees with their write's answer, now failed."""
    if not applied:
        return []
    try:
        current = read_current(portal, {r.change.partner_id for r in applied}, parallelism)
    except Exception as exc:  # the writes' answers proved them; only the second look is missing
        reason = str(exc) if isinstance(exc, PortalError) else f"{type(exc).__name__}: {exc}"
        return [replace(r, message=f"applied as the write's answer shows, but reading the partners back after the "
                        f"writes failed ({one_line(reason, 300)}); run plan to look again") for r in applied]
    failed = []
    for result in applied:
        assert result.written is not None
        now = current.get(result.change.key)
        if now is None:
            problem = "the portal no longer lists it"
        elif now.version == result.written.version and not holds(now.settings, result.change.after):
            problem = f"it reads back different settings under the version the write answered ({now.version})"
        elif now.version == result.change.version:  # a stale replica or cache, or a write the portal did not keep
            problem = f"it reads back the version from before the write ({now.version}), without the change"
        else:  # as written, or written over since by someone else (the write's answer stands; plan shows the rest)
            continue
        failed.append(replace(result, status=Status.FAILED, message=f"the portal accepted the update, but {problem} "
                              "when read back after the writes; check the portal"))
    return failed


def _audit_read_back(audit: AuditLog, plan: Plan, result: ChangeResult, errors: list[str]) -> None:
    """A second audit entry for a change its read-back changed (failed, or applied without the second look)."""
    change = result.change
    try:
        audit.record(environment=plan.environment, partner_id=change.partner_id, service_type=change.service_type,
                     kind=change.kind.value, before=change.before, after=change.after, result=result.status.value,
                     message=result.message, plan_checksum=plan.checksum)
    except AuditError as exc:
        errors.append(str(exc))


def partners_of_changes(plan: Plan) -> list[str]:
    return sorted({c.partner_id for c in plan.changes})


def _apply_change(portal: Portal, change: Change) -> ChangeResult:
    # Anything a write raises is this change's failure, reported with the others; never an end to the whole apply
    # that leaves the changes made so far unreported.
    try:
        written = portal.update_service_type(change.partner_id, change.service_type, dict(change.payload),
                                             change.version)
    except NOTHING_WRITTEN as exc:
        return ChangeResult(change, Status.FAILED, str(exc), exc.evidence)
    except PortalError as exc:
        # No answer, or one that cannot be read (timeout, closed connection, 5xx, a body outside the contract):
        # the write may have been made. Look before calling it failed.
        looked = _after_unclear_write(portal, change, str(exc))
        return ChangeResult(looked.change, looked.status, looked.message, exc.evidence)
    except Exception as exc:  # e.g. a transport error the portal client did not classify
        return _after_unclear_write(portal, change, f"unexpected error while writing ({type(exc).__name__}: "
                                                    f"{one_line(str(exc), 300)}); check the portal")
    # The contract's answer to a write is the stored settings and their new version: it proves the write, no GET.
    if not holds(written.settings, change.after):
        return ChangeResult(change, Status.FAILED, "the portal accepted the update but answered with different "
                                                   "settings; check the portal", written.evidence)
    if written.version == change.version:
        return ChangeResult(change, Status.FAILED, f"the portal accepted the update but answered with the version the "
                                                   f"plan saw ({one_line(written.version, 64)}), not a new one; "
                                                   "run plan to see whether it holds", written.evidence)
    return ChangeResult(change, Status.APPLIED, None, written.evidence, written)


def _after_unclear_write(portal: Portal, change: Change, reason: str) -> ChangeResult:
    """A write whose answer was lost or unusable: applied if the portal now holds it under a new version."""
    try:
        stored = portal.get_service_type(change.partner_id, change.service_type)
    except Exception:
        return ChangeResult(change, Status.FAILED, f"{reason}; {UNKNOWN_OUTCOME}")
    if stored.version != change.version and holds(stored.settings, change.after):
        return ChangeResult(change, Status.APPLIED, f"the answer to the update was lost or unusable ({reason}); "
                                                    "reading it back shows the update was made")
    return ChangeResult(change, Status.FAILED, f"{reason}; the portal does not hold the update: run plan to see "
                                               "what remains")


def apply_confirmed(plan: Plan, portal: Portal, audit: AuditLog, confirm: Callable[[Change], bool], *,
                    how: str = "confirmed at a terminal as done in the portal",
                    status: Status = Status.APPLIED) -> ApplyResult:
    """For a `manual` portal: record each change the operator confirms as done in the real portal (`how` goes to
    the audit log; `status` is APPLIED for a step confirmed during apply, RECORDED for `state record`). An
    interruption (KeyboardInterrupt from `confirm`) leaves the rest not attempted and still returns the report."""
    audit.check_writable()
    results: dict[tuple[str, str], ChangeResult] = {}
    interrupted = False
    for change in plan.changes:
        try:
            confirmed = confirm(change)
        except KeyboardInterrupt:
            interrupted = True
            break
        if confirmed:
            result = _apply_change(portal, change)
            if result.status is Status.APPLIED:
                result = ChangeResult(change, status, None, result.evidence)
        else:
            result = ChangeResult(change, Status.NOT_ATTEMPTED, "not confirmed as done in the portal")
        audit.record(environment=plan.environment, partner_id=change.partner_id, service_type=change.service_type,
                     kind=change.kind.value, before=change.before, after=change.after,
                     result=result.status.value, message=result.message or f"{how} by {audit.user}",
                     plan_checksum=plan.checksum)
        results[change.key] = result
    not_reached = "interrupted before this change"
    ordered = tuple(results.get(c.key, ChangeResult(c, Status.NOT_ATTEMPTED, not_reached)) for c in plan.changes)
    return ApplyResult(ordered, interrupted)
