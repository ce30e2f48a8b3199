"""The whole `hbsdeploy apply` for one environment: which plan, the refusals, the confirmation, the run, the report.

The library decides; the caller's `ApplyHooks` show and ask (the CLI on a terminal, a test with a script): a plan
made now is shown before the question, a saved plan was reviewed already and is applied without one, a protected
environment is named explicitly, a `manual` portal gets its steps and a confirmation per service type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hbsdeploy.apply.audit import AuditLog
from hbsdeploy.apply.lock import apply_lock, current_holder
from hbsdeploy.apply.run import (
    ApplyResult,
    Status,
    apply_confirmed,
    apply_plan,
    check_disable_share,
    check_fresh,
)
from hbsdeploy.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, HbsError, UsageError
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.plan.build import PlanHooks, plan_environment
from hbsdeploy.plan.model import Change, Plan, parse_plan, read_plan_file
from hbsdeploy.portal import Portal, open_portal, portal_identity
from hbsdeploy.portal.recorded import RecordedPortal
from hbsdeploy.text import one_line
from hbsdeploy.who import in_ci


class ApplyCancelled(HbsError):
    """The person asked did not confirm: nothing was written."""


class ApplyHooks(PlanHooks, Protocol):
    """What apply shows and asks on the way, beyond planning's warnings and progress."""

    def note(self, message: str) -> None:
        """Tell the person something worth knowing that does not stop apply."""

    def show_plan(self, plan: Plan) -> None:
        """Show the plan apply just made, before asking to apply it."""

    def confirm_apply(self, environment: Environment, plan: Plan) -> bool:
        """Ask whether to apply `plan` to `environment` (a protected one by its name); True to go on."""

    def confirm_record(self, environment: Environment, plan: Plan) -> bool:
        """Ask whether to record `plan`'s changes as done outside hbsdeploy (`state record`); True to go on."""

    def show_steps(self, plan: Plan, environment: Environment) -> None:
        """Show a `manual` portal's steps: what the person does in the portal before confirming each service type."""

    def change_confirmer(self) -> Callable[[Change], bool]:
        """The question asked per service type of a `manual` portal: True once done in the portal (raise
        KeyboardInterrupt to stop asking); asked for once, before the first question."""


@dataclass(frozen=True)
class ApplyRequest:
    """What `apply` was asked: a saved plan or none, the --env named, and the options."""

    plan_file: Path | None = None  # `-`: the plan's bytes are `plan_input`, read from standard input
    environment: str | None = None
    partner_ids: tuple[str, ...] = ()
    checksum: str | None = None
    auto_approve: bool = False
    allow_disables: bool = False  # for a plan made by apply itself; a saved plan carries its own permission
    parallelism: int | None = None
    service_types: tuple[str, ...] = ()
    plan_input: bytes | None = None


@dataclass(frozen=True)
class ApplyReport:
    """What apply did: the plan and, unless a plan made now had nothing to change, every change's result."""

    environment: str
    plan: Plan
    result: ApplyResult | None
    recorded_in: str | None = None  # a manual environment: the state file written, to commit

    @property
    def ok(self) -> bool:
        """Everything applied (or nothing to do) and in the audit log."""
        return self.result is None or (self.result.ok and not self.result.audit_error)

    @property
    def interrupted(self) -> bool:
        return self.result is not None and self.result.interrupted

    @property
    def exit_code(self) -> int:
        """0 everything applied (or nothing to do), 130 interrupted, 1 otherwise."""
        if self.ok:
            return EXIT_OK
        return EXIT_INTERRUPTED if self.interrupted else EXIT_ERROR

    @property
    def status(self) -> str:
        """`no-changes`, `applied`, `interrupted` or `failed` (the apply report's `status`)."""
        if not self.plan.has_changes:
            return "no-changes"
        if self.interrupted:
            return "interrupted"
        return "applied" if self.ok else "failed"

    def lines(self) -> list[str]:
        """One line per change (`applied: DE*A36 / authorization (enable)`), then the summary; none if no result."""
        if self.result is None:
            return []
        lines = []
        for item in self.result.results:
            change = item.change
            line = f"{item.status.value:>13}: {change.partner_id} / {change.service_type} ({change.kind.value})"
            lines.append(line + (f": {item.message}" if item.message else ""))
            lines.extend(f"{'':>13}  evidence: {display_path(Path(shown))}" for shown in item.evidence)
        result = self.result
        recorded = f"{result.count(Status.RECORDED)} recorded, " if result.count(Status.RECORDED) else ""
        lines.append(f"Apply: {result.count(Status.APPLIED)} applied, {recorded}{result.count(Status.FAILED)} failed, "
                     f"{result.count(Status.NOT_ATTEMPTED)} not attempted.")
        if self.recorded_in and (result.count(Status.APPLIED) or result.count(Status.RECORDED)):
            lines.append(f"Recorded in {self.recorded_in}: commit it (git add {self.recorded_in}), so that every "
                         "clone and CI plan from what the portal now holds.")
        return lines

    def next_step(self) -> str | None:
        """What to run to finish an apply that did not apply everything."""
        if self.ok:
            return None
        return f"Run `hbsdeploy apply --env {self.environment}` again to finish: it plans what remains."


def resolve_target(config: Config, request: ApplyRequest) -> tuple[Environment, Plan | None]:
    """The environment to apply to and the saved plan (None: plan now), or the error that refuses the request."""
    if request.checksum is not None and not request.checksum.strip():  # "" would silently skip the reviewed check
        raise UsageError("--checksum is empty; give the reviewed plan's checksum (sha256:...), or leave --checksum out")
    if request.plan_file is not None:
        if request.allow_disables:
            raise UsageError("--allow-disables is given when the plan is made, so that reviewers see it: run "
                             "`hbsdeploy plan --allow-disables --out FILE`, have it reviewed, then apply that file")
        for given, option in ((request.partner_ids, "--partner"), (request.service_types, "--service-type")):
            if given:
                raise UsageError(f"{option} cannot narrow a saved plan; plan again with {option}")
        if request.plan_input is not None:
            saved = parse_plan(request.plan_input, str(request.plan_file), request.checksum)
        else:
            saved = read_plan_file(request.plan_file, request.checksum)
        if request.environment and request.environment != saved.environment:
            raise HbsError(f"{request.plan_file} is a plan for {saved.environment!r}, not {request.environment!r}")
        env = config.environment(saved.environment)
        check_same_portal(request.plan_file, saved, env, config.root)
    else:
        if request.checksum is not None:
            raise UsageError("--checksum needs a PLANFILE")
        saved = None
        env = config.environment(request.environment)
    if env.protected and request.environment != env.name:
        raise UsageError(f"{env.name!r} is a protected environment: name it with --env {env.name} to apply")
    return env, saved


def check_same_portal(plan_file: Path, plan: Plan, env: Environment, root: Path) -> None:
    """Refuse a plan file made against another portal than the one `env` reaches now (`portal:` was changed)."""
    now = portal_identity(env, root)
    if plan.portal != now:
        raise HbsError(f"{plan_file} was made against portal {plan.portal!r}, but environment {env.name!r} now "
                       f"reaches {now!r}; nothing was written. Run `hbsdeploy plan --env {env.name} --out FILE` "
                       "again and review it")


def apply_environment(config: Config, request: ApplyRequest, hooks: ApplyHooks) -> ApplyReport:
    """Apply a saved plan, or plan now, show it and ask; then write, verify and audit each change."""
    env, saved = resolve_target(config, request)
    if env.kind == "manual":
        refuse_unattended(env, "apply", auto_approve=request.auto_approve)
    audit = AuditLog(config.state_dir / "audit.jsonl")
    with apply_lock(config.state_dir, env.name, current_holder(audit.user)) as left_behind:
        if left_behind is not None:
            hooks.note(f"the last apply to {env.name!r} ({left_behind.describe()}) ended without finishing: its "
                       "report is missing, and the writes it had under way may be missing from the audit log; "
                       "this plan reads what the portal holds now")
        return _apply_locked(config, env, saved, audit, request, hooks)


def _apply_locked(config: Config, env: Environment, saved: Plan | None, audit: AuditLog, request: ApplyRequest,
                  hooks: ApplyHooks) -> ApplyReport:
    parallelism = request.parallelism or config.parallelism
    if saved is None:
        plan = plan_environment(config, env, request.partner_ids, parallelism=parallelism, hooks=hooks,
                                service_types=request.service_types, allow_disables=request.allow_disables)
        hooks.show_plan(plan)
        if not plan.has_changes:
            return ApplyReport(env.name, plan, None)
    else:
        plan = saved
    check_disable_share(plan, config.max_disable_fraction, config.disable_check_min_scope,
                        allowed_now=request.allow_disables)
    portal = open_portal(env, parallelism=parallelism)
    try:
        if saved is not None:
            check_fresh(plan, portal, parallelism)
        if env.kind == "manual":
            result = _apply_manual(env, plan, portal, audit, hooks)
            return ApplyReport(env.name, plan, result, _state_shown(portal))
        else:
            if saved is None and not request.auto_approve:
                _confirm(env, plan, hooks)
            with hooks.progress(f"applying to {env.name}") as progress:
                result = apply_plan(plan, portal, audit, parallelism=parallelism, progress=progress)
    finally:
        portal.close()
    return ApplyReport(env.name, plan, result)


def refuse_unattended(env: Environment, command: str, *, auto_approve: bool = False) -> None:
    """A manual environment's steps are done by a person in the portal: never recorded from CI or unattended."""
    if in_ci():
        raise HbsError(f"{env.name!r} is a manual environment: CI never runs `hbsdeploy {command}` on it (CI=true); "
                       "its steps are done in the portal by a person, then recorded at a terminal (docs/review.md)")
    if auto_approve:
        raise UsageError(f"{env.name!r} is a manual environment: --auto-approve never records a step as done; run "
                         f"apply at a terminal and confirm each step, or record steps done outside hbsdeploy with "
                         f"`hbsdeploy state record --env {env.name}`")


def _apply_manual(env: Environment, plan: Plan, portal: Portal, audit: AuditLog, hooks: ApplyHooks) -> ApplyResult:
    # Even a reviewed plan file asks on a protected environment: the person, not the file, makes these changes.
    if env.protected:
        _confirm(env, plan, hooks)
    hooks.show_steps(plan, env)
    return apply_confirmed(plan, portal, audit, hooks.change_confirmer())


@dataclass(frozen=True)
class RecordRequest:
    """What `state record` was asked: the environment, a saved plan or none, filters, and why."""

    environment: str
    reason: str
    plan_file: Path | None = None
    checksum: str | None = None
    partner_ids: tuple[str, ...] = ()
    service_types: tuple[str, ...] = ()


def record_environment(config: Config, request: RecordRequest, hooks: ApplyHooks) -> ApplyReport:
    """Record steps done outside hbsdeploy in a manual environment's state: the changes of a reviewed plan file, or
    of a plan made now (narrowed to partners and service types), shown, confirmed by a person, audited as
    `recorded` with the reason."""
    if not request.reason.strip():
        raise UsageError("--reason is empty; say what was done where, e.g. 'done in the portal by alice, OPS-123'")
    env, saved = resolve_target(config, ApplyRequest(request.plan_file, request.environment, request.partner_ids,
                                                     request.checksum))
    if env.kind != "manual":
        raise UsageError(f"{env.name!r} is not a manual environment: its portal is read, not recorded")
    refuse_unattended(env, "state record")
    plan = saved or plan_environment(config, env, request.partner_ids, parallelism=1, hooks=hooks)
    if request.service_types:
        chosen = tuple(c for c in plan.changes if c.service_type in request.service_types)
        plan = Plan(plan.environment, chosen, tuple(o for o in plan.observed if (o.partner_id, o.service_type) in
                                                    {c.key for c in chosen}), recorded=plan.recorded)
    hooks.show_plan(plan)
    if not plan.has_changes:
        return ApplyReport(env.name, plan, None)
    portal = open_portal(env, parallelism=1)
    try:
        if saved is not None:
            check_fresh(plan, portal, 1)
        if not hooks.confirm_record(env, plan):
            raise ApplyCancelled("state record cancelled: nothing was recorded")
        how = f"recorded as done outside hbsdeploy ({one_line(request.reason, 300)})"
        if isinstance(portal, RecordedPortal):
            portal.how = how
        result = apply_confirmed(plan, portal, AuditLog(config.state_dir / "audit.jsonl"), _all_done, how=how,
                                 status=Status.RECORDED)
    finally:
        portal.close()
    return ApplyReport(env.name, plan, result, _state_shown(portal))


def _state_shown(portal: Portal) -> str | None:
    return portal.shown if isinstance(portal, RecordedPortal) else None


def _all_done(_change: Change) -> bool:
    return True


def _confirm(env: Environment, plan: Plan, hooks: ApplyHooks) -> None:
    if not hooks.confirm_apply(env, plan):
        raise ApplyCancelled("apply cancelled: nothing was written")
