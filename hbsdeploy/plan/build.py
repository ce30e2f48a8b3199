"""Making a plan: desired payloads from the templates, current state from the portal (in parallel), the diff.

`plan_environment` is the whole job of `hbsdeploy plan` (and of the planning half of `apply`); what it has to tell a
person (warnings, progress) it hands to the caller's `PlanHooks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from hbsdeploy.check.certs import CertificateError, read_certificate
from hbsdeploy.check.project import Project, load_project
from hbsdeploy.errors import Problem, UsageError
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner
from hbsdeploy.paths import resolve_within
from hbsdeploy.plan.model import ChangeKind, Desired, DisableCheck, Plan, compute_plan, find_unmanaged
from hbsdeploy.portal import Portal, ServiceTypeState, open_portal, portal_identity
from hbsdeploy.render.payloads import Renderer

Progress = Callable[[int, int], None]


class PlanHooks(Protocol):
    """How planning reaches the person running it; the CLI implements it on a terminal."""

    def warn(self, problems: list[Problem]) -> None:
        """Show the warnings validation found (planning goes on)."""

    def progress(self, what: str) -> AbstractContextManager[Progress]:
        """A progress counter for `what` (`reading qa`), open while the work runs."""


def check_service_types(names: Sequence[str], known: Iterable[str]) -> tuple[str, ...]:
    """The service types named by --service-type, once each; UsageError naming the `known` ones for any other."""
    known = list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(f"--service-type {', '.join(map(repr, unknown))}: no such service type; choose from "
                         f"{', '.join(known)}")
    return tuple(dict.fromkeys(names))


def desired_payloads(project: Project, environment: Environment, renderer: Renderer,
                     service_types: Sequence[str] = ()) -> list[Desired]:
    """The rendered payload of every managed service type of the partners deployed to `environment` (of
    `service_types` only, when any are named)."""
    partners = project.in_environment(environment)
    names = {p.partner_id: p.name for p in partners}
    if not service_types:
        rendered = renderer.render_all(partners, [environment])
    else:  # what is out of scope is not even rendered
        rendered = [renderer.render(partner, environment, resolved) for partner in partners
                    for resolved in partner.resolve(environment.name).values() if resolved.name in service_types]
    by_id = {p.partner_id: p for p in partners}
    specs = project.config.schemas.service_types
    return [Desired(r.partner_id, names[r.partner_id], r.service_type, r.payload,
                    _user_certificate(project.config, by_id[r.partner_id], environment, r.service_type, r.payload),
                    specs[r.service_type].fields)
            for r in rendered]


def _user_certificate(config: Config, partner: Partner, environment: Environment, service_type: str,
                      payload: Mapping[str, Any]) -> dict[str, str] | None:
    """How a person finds the chosen User certificate: its file, subject and expiry (validate read it already)."""
    if payload.get("certificate") != "user":
        return None
    value = partner.resolve(environment.name)[service_type].values.get("certificate_file")
    if not isinstance(value, str):
        return None
    path = resolve_within(config.root, value)
    if path is None:
        return None
    try:
        info = read_certificate(path)
    except CertificateError:
        return None
    return {"file": value, "subject": info.subject, "not_after": info.not_after.date().isoformat()}


# Beyond this many partners a targeted read (a saved plan's freshness check, apply's read-back) takes the paged listing
# of the whole account: a few pages cost less than several rounds of one listing per partner at `parallelism`.
BULK_MIN_PARTNERS = 32


@dataclass(frozen=True)
class PortalRead:
    """What a read of the portal found: the state of each partner asked for (by partner and service type), and
    every other partner the paged listing named (None when the partners were read one by one)."""

    current: dict[tuple[str, str], ServiceTypeState]
    others: dict[str, dict[str, ServiceTypeState]] | None = None


def read_portal(portal: Portal, partner_ids: Iterable[str], parallelism: int, progress: Progress | None = None, *,
                bulk: bool | None = None) -> PortalRead:
    """The portal's state of `partner_ids`: from the paged listing of the whole account (`bulk`; by default when
    more than BULK_MIN_PARTNERS are asked for and the portal lists cheaply), then one listing each for a partner it
    did not name (the portal does not know it yet: 404, or the defaults on one that registers partners on their first
    write); else one listing per partner, `parallelism` at a time."""
    ids = sorted(set(partner_ids))
    if bulk is None:
        bulk = portal.listing_is_cheap and len(ids) > BULK_MIN_PARTNERS
    if not bulk:
        return PortalRead(_read_each(portal, ids, parallelism, progress))
    try:
        listed = portal.list_all_service_types()
    except BaseException:
        portal.cancel()
        raise
    current = {(partner_id, name): state for partner_id in ids if partner_id in listed
               for name, state in listed[partner_id].items()}
    missing = [partner_id for partner_id in ids if partner_id not in listed]
    found = len(ids) - len(missing)
    if progress and found:
        progress(found, len(ids))

    def shifted(done: int, _total: int) -> None:
        if progress:
            progress(found + done, len(ids))

    current.update(_read_each(portal, missing, parallelism, shifted))
    wanted = set(ids)
    return PortalRead(current, {partner_id: states for partner_id, states in listed.items()
                                if partner_id not in wanted})


def read_current(portal: Portal, partner_ids: Iterable[str], parallelism: int, progress: Progress | None = None, *,
                 bulk: bool | None = None) -> dict[tuple[str, str], ServiceTypeState]:
    """The state of every service type of `partner_ids` (read_portal without the other partners)."""
    return read_portal(portal, partner_ids, parallelism, progress, bulk=bulk).current


def _read_each(portal: Portal, ids: list[str], parallelism: int,
               progress: Progress | None) -> dict[tuple[str, str], ServiceTypeState]:
    """One listing request per partner, `parallelism` at a time."""
    current: dict[tuple[str, str], ServiceTypeState] = {}
    if not ids:
        return current

    def one(partner_id: str) -> dict[str, ServiceTypeState]:
        return portal.list_service_types(partner_id)

    pool = ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(ids))))
    try:
        for done, (partner_id, states) in enumerate(zip(ids, pool.map(one, ids), strict=True), start=1):
            current.update(((partner_id, name), state) for name, state in states.items())
            if progress:
                progress(done, len(ids))
    except BaseException:  # Ctrl-C or a failed read: abandon the reads under way, start no other
        portal.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return current


def make_plan(project: Project, environment: Environment, portal: Portal, parallelism: int,
              progress: Progress | None = None, renderer: Renderer | None = None,
              service_types: Sequence[str] = (), *, bulk: bool | None = None,
              others_out: dict[str, dict[str, ServiceTypeState]] | None = None) -> Plan:
    """Render, read the portal (only the partners with a service type in scope; the paged listing when `bulk`, by
    default for more than BULK_MIN_PARTNERS partners), and diff: the plan for one environment. The partners the
    listing named besides go into `others_out`."""
    desired = desired_payloads(project, environment, renderer or Renderer(project.config), service_types)
    read = read_portal(portal, (d.partner_id for d in desired), parallelism, progress, bulk=bulk)
    current = read.current
    if others_out is not None and read.others is not None:
        others_out.update(read.others)
    plan = compute_plan(environment.name, desired, current, portal=portal_identity(environment, project.config.root))
    listing: dict[str, dict[str, ServiceTypeState]] = {}
    for (partner_id, name), state in current.items():
        if not service_types or name in service_types:  # a plan narrowed to service types says nothing of others
            listing.setdefault(partner_id, {})[name] = state
    unmanaged = find_unmanaged(((o.partner_id, o.service_type) for o in plan.observed), listing, listing)
    return dataclasses.replace(plan, unmanaged=unmanaged) if unmanaged else plan


def with_partners_without_file(plan: Plan, portal: Portal, environment: Environment,
                               listed: dict[str, dict[str, ServiceTypeState]] | None = None) -> Plan:
    """The plan with what the portal keeps for partners no partner file deploys to `environment` (a deleted file),
    from the portal's listing of every partner (`listed`, when the plan read it already; for a manual environment,
    the recorded state). Not for a web portal, where that listing opens every partner account's page:
    docs/review.md."""
    if environment.kind == "web":
        return plan
    in_scope = {o.partner_id for o in plan.observed}
    if listed is None:
        listed = portal.list_all_service_types()
    others = {pid: states for pid, states in listed.items() if pid not in in_scope}
    found = find_unmanaged((), others, in_scope)
    if not found:
        return plan
    merged = tuple(sorted((*plan.unmanaged, *found), key=lambda u: (u.partner_id, u.service_type)))
    return dataclasses.replace(plan, unmanaged=merged)


def plan_environment(config: Config, environment: Environment, partner_ids: Sequence[str] = (), *,
                     parallelism: int, hooks: PlanHooks, service_types: Sequence[str] = (),
                     allow_disables: bool = False) -> Plan:
    """Validate the partner files (refusing on errors), render, read the environment's portal, diff: `plan`'s job
    (narrowed to `partner_ids` and `service_types` when given). `allow_disables` records in the plan (under its
    checksum) that its disables were allowed when it was made."""
    service_types = check_service_types(service_types, config.schemas.service_types)
    project = load_project(config, environment, partner_ids)
    hooks.warn(project.warnings)
    portal = open_portal(environment, parallelism=parallelism)
    try:
        with hooks.progress(f"reading {environment.name}") as progress:
            # The whole repository: the paged listing (read once, for the plan and for the partners without a file);
            # --partner, or a web portal (whose listing opens every account's page): each partner's own listing.
            bulk = not partner_ids and portal.listing_is_cheap
            listed: dict[str, dict[str, ServiceTypeState]] = {}
            plan = make_plan(project, environment, portal, parallelism, progress, service_types=service_types,
                             bulk=bulk, others_out=listed)
        if not partner_ids and not service_types:  # a plan of everything also says what no partner file manages
            plan = with_partners_without_file(plan, portal, environment, listed if bulk else None)
    finally:
        portal.close()
    return with_disable_check(with_source(plan, portal), config, allow_disables)


def with_source(plan: Plan, portal: Portal) -> Plan:
    """The plan with where its "before" came from, when that is a manual environment's recorded state."""
    from hbsdeploy.portal.recorded import RecordedPortal

    if isinstance(portal, RecordedPortal):
        return dataclasses.replace(plan, recorded=portal.source())
    return plan


def with_disable_check(plan: Plan, config: Config, allowed: bool) -> Plan:
    """The plan with its disables counted against the config's thresholds (unchanged when it disables nothing)."""
    disables = plan.count(ChangeKind.DISABLE)
    if not disables:
        return plan
    check = DisableCheck(disables, len(plan.observed), config.max_disable_fraction, config.disable_check_min_scope,
                         allowed)
    return dataclasses.replace(plan, disable_check=check)
