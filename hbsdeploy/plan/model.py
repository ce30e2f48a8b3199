"""The plan: a pure, sorted, immutable diff between desired payloads and the portal's current state.

`compute_plan` does no I/O. Comparison happens on the portal's canonical form (`normalize_settings`), so a plan never
shows a change that applying cannot remove. The plan's canonical JSON and its checksum tie the plan a person reviewed
to the apply that runs.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hbsdeploy.errors import HbsError
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.load.settings import DEFAULT_SETTINGS, SETTING_FIELDS, fields_in, normalize_settings
from hbsdeploy.portal.interface import RecordedSource, ServiceTypeState
from hbsdeploy.text import one_line

MAX_PLAN_BYTES = 256 * 1024 * 1024  # a plan of every partner and service type is megabytes

PLAN_FORMAT_VERSION = 2  # 2: the portal the plan was made against (`portal`)


class ChangeKind(str, enum.Enum):
    ENABLE = "enable"  # Online Request goes on
    CHANGE = "change"  # on before and after, something else differs
    DISABLE = "disable"  # Online Request goes off


_KIND_ORDER = {ChangeKind.DISABLE: 0, ChangeKind.ENABLE: 1, ChangeKind.CHANGE: 2}


@dataclass(frozen=True)
class Desired:
    """What the partner files want for one service type: a rendered payload (render.payloads.RenderedPayload)
    reduced to what the plan shows, with the partner's name for the reviewer."""

    partner_id: str
    partner_name: str
    service_type: str
    payload: Mapping[str, Any]
    certificate: Mapping[str, str] | None = None  # a User certificate: file, subject, not_after (for people)
    fields: tuple[str, ...] = SETTING_FIELDS  # the service type's fields (ServiceTypeSpec.fields): no other is shown


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One service type of one partner that apply will update, with the version it must still have."""

    partner_id: str
    partner_name: str
    service_type: str
    kind: ChangeKind
    version: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    payload: Mapping[str, Any]
    fields: tuple[FieldChange, ...]
    certificate: Mapping[str, str] | None = None  # the User certificate chosen: file, subject, not_after

    @property
    def key(self) -> tuple[str, str]:
        return (self.partner_id, self.service_type)

    def as_json(self) -> dict[str, Any]:
        return {
            "partner_id": self.partner_id,
            "partner_name": self.partner_name,
            "service_type": self.service_type,
            "kind": self.kind.value,
            "version": self.version,
            "before": dict(self.before),
            "after": dict(self.after),
            "payload": dict(self.payload),
            "fields": [{"field": f.field, "before": f.before, "after": f.after} for f in self.fields],
            **({"certificate": dict(self.certificate)} if self.certificate else {}),
        }


@dataclass(frozen=True)
class Observed:
    """A service type in scope and the version the plan saw."""

    partner_id: str
    service_type: str
    version: str


@dataclass(frozen=True)
class Unmanaged:
    """A service type the portal holds switched on or set, that no partner file manages (any more) in this
    environment: plan and apply leave it as it is, and every plan format says so."""

    partner_id: str
    service_type: str
    reason: str  # "not-in-partner-file" | "no-partner-file"
    settings: Mapping[str, Any]  # what the portal keeps (canonical)

    def as_json(self) -> dict[str, Any]:
        return {"partner_id": self.partner_id, "service_type": self.service_type, "reason": self.reason,
                "settings": dict(self.settings)}


NOT_IN_PARTNER_FILE = "not-in-partner-file"
NO_PARTNER_FILE = "no-partner-file"


def find_unmanaged(managed: Iterable[tuple[str, str]], listing: Mapping[str, Mapping[str, ServiceTypeState]],
                   partners_in_scope: Iterable[str]) -> tuple[Unmanaged, ...]:
    """What `listing` (partner -> service type -> state) holds away from the defaults that is not `managed`
    ((partner, service type) keys): a service type left out of a partner file in scope, or a partner no file in
    scope deploys."""
    managed = set(managed)
    in_scope = set(partners_in_scope)
    found = []
    for partner_id, states in listing.items():
        for name, state in states.items():
            fields = fields_in(state.settings)  # the portal holds a service type's own fields only
            settings = normalize_settings(state.settings, fields)
            if (partner_id, name) in managed or settings == normalize_settings(DEFAULT_SETTINGS, fields):
                continue
            reason = NOT_IN_PARTNER_FILE if partner_id in in_scope else NO_PARTNER_FILE
            found.append(Unmanaged(partner_id, name, reason, MappingProxyType(settings)))
    return tuple(sorted(found, key=lambda u: (u.partner_id, u.service_type)))


DEFAULT_MAX_DISABLE_FRACTION = 0.25
DEFAULT_DISABLE_CHECK_MIN_SCOPE = 10  # octoDNS's MIN_EXISTING_RECORDS: below it, a share says little


@dataclass(frozen=True)
class DisableCheck:
    """How many service types a plan switches off, out of how many in scope, against the thresholds in force when
    it was made; and whether the person who made it allowed that (`plan --allow-disables`), under the checksum."""

    disables: int
    scope: int
    max_fraction: float
    min_scope: int
    allowed: bool = False

    @property
    def needs_permission(self) -> bool:
        """More than max_fraction of at least min_scope service types in scope are switched off."""
        return needs_disable_permission(self.disables, self.scope, self.max_fraction, self.min_scope)

    def describe(self) -> str:
        """`disables 1 of 2 service types in scope (50%, more than apply.max_disable_fraction 25%)`."""
        share = self.disables / self.scope if self.scope else 0.0
        return (f"disables {self.disables} of {self.scope} service types in scope ({share:.0%}, more than "
                f"apply.max_disable_fraction {self.max_fraction:.0%}, with at least "
                f"apply.disable_check_min_scope {self.min_scope} in scope)")

    def as_json(self) -> dict[str, Any]:
        return {"disables": self.disables, "scope": self.scope, "max_fraction": self.max_fraction,
                "min_scope": self.min_scope, "needs_permission": self.needs_permission, "allowed": self.allowed}


def needs_disable_permission(disables: int, scope: int, max_fraction: float, min_scope: int) -> bool:
    """Whether switching off `disables` of `scope` service types needs explicit permission."""
    return disables > 0 and scope >= min_scope and disables / scope > max_fraction


@dataclass(frozen=True)
class Plan:
    """Every change for one environment, sorted; with the versions observed and a checksum of the whole."""

    environment: str
    changes: tuple[Change, ...]
    observed: tuple[Observed, ...]
    disable_check: DisableCheck | None = None  # set by plan_environment when the plan switches something off
    recorded: RecordedSource | None = None  # a manual environment: "before" is the recorded state, not the portal
    unmanaged: tuple[Unmanaged, ...] = ()  # what the portal keeps that no partner file manages (not changed)
    portal: str = ""  # the portal read (portal_identity); apply refuses a plan file made against another
    checksum: str = field(init=False)  # computed from the rest

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", tuple(sorted(self.changes, key=lambda c: (c.partner_id, c.service_type))))
        object.__setattr__(self, "observed", tuple(sorted(self.observed, key=lambda o: (o.partner_id,
                                                                                         o.service_type))))
        object.__setattr__(self, "checksum", plan_checksum(self.body()))

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.changes if change.kind is kind)

    @property
    def unchanged(self) -> int:
        return len(self.observed) - len(self.changes)

    def summary(self) -> dict[str, int]:
        return {
            "enable": self.count(ChangeKind.ENABLE),
            "change": self.count(ChangeKind.CHANGE),
            "disable": self.count(ChangeKind.DISABLE),
            "unchanged": self.unchanged,
        }

    def body(self) -> dict[str, Any]:
        """The canonical content the checksum covers."""
        body: dict[str, Any] = {
            "format_version": PLAN_FORMAT_VERSION,
            "environment": self.environment,
            "portal": self.portal,
            "summary": self.summary(),
            "changes": [change.as_json() for change in self.changes],
            "observed": [{"partner_id": o.partner_id, "service_type": o.service_type, "version": o.version}
                         for o in self.observed],
        }
        if self.disable_check is not None:
            body["disable_check"] = self.disable_check.as_json()
        if self.recorded is not None:
            body["recorded_state"] = self.recorded.as_json()
        if self.unmanaged:
            body["unmanaged"] = [u.as_json() for u in self.unmanaged]
        return body

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "checksum": self.checksum}

    def to_json(self) -> str:
        """The canonical JSON text: sorted keys, 2-space indent, trailing newline."""
        return json.dumps(self.as_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def plan_checksum(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def compute_plan(environment: str, desired: Iterable[Desired],
                 current: Mapping[tuple[str, str], ServiceTypeState], *, portal: str = "") -> Plan:
    """The changes that turn `current` into `desired`. Service types not desired are not managed: left alone."""
    changes = []
    observed = []
    for want in desired:
        have = current.get((want.partner_id, want.service_type))
        if have is None:
            raise HbsError(f"the portal returned no state for {want.partner_id} {want.service_type}; "
                           "is the service type known to this portal?")
        observed.append(Observed(want.partner_id, want.service_type, have.version))
        change = diff_service_type(want, have)
        if change is not None:
            changes.append(change)
    return Plan(environment, tuple(changes), tuple(observed), portal=portal)


KEPT_WHILE_OFF = ("client_certification", "certificate", "certificate_sha256")


def diff_service_type(want: Desired, have: ServiceTypeState) -> Change | None:
    """The change from `have` to `want`, or None when they agree in the portal's canonical form."""
    before = normalize_settings(have.settings, want.fields)
    payload = dict(want.payload)
    if not payload.get("online_request"):
        # Switching off takes one click, on Online Request: the portal keeps its other boxes as they are, so the
        # plan shows what it will hold and asks for no other click (Broadcast and the URL go with Online Request).
        payload.update((name, before[name]) for name in KEPT_WHILE_OFF if name in before)
    after = normalize_settings(payload, want.fields)
    fields = tuple(FieldChange(name, before[name], after[name]) for name in want.fields
                   if before[name] != after[name])
    if not fields:
        return None
    if after["online_request"] and not before["online_request"]:
        kind = ChangeKind.ENABLE
    elif before["online_request"] and not after["online_request"]:
        kind = ChangeKind.DISABLE
    else:
        kind = ChangeKind.CHANGE
    chosen = after.get("certificate") == "user" and want.payload.get("certificate_sha256") == after[
        "certificate_sha256"]
    certificate = want.certificate if chosen else None
    return Change(want.partner_id, want.partner_name, want.service_type, kind, have.version,
                  MappingProxyType(before), MappingProxyType(after), MappingProxyType(payload), fields,
                  MappingProxyType(dict(certificate)) if certificate else None)


def plan_from_json(document: Mapping[str, Any]) -> Plan:
    """Rebuild a Plan from its JSON form; HbsError when the file was altered (checksum) or is not a plan."""
    try:
        if document.get("format_version") != PLAN_FORMAT_VERSION:
            raise HbsError(f"plan format_version {document.get('format_version')!r} is not "
                           f"{PLAN_FORMAT_VERSION}; re-run `hbsdeploy plan --out` with this version")
        changes = tuple(
            Change(c["partner_id"], c["partner_name"], c["service_type"], ChangeKind(c["kind"]), c["version"],
                   MappingProxyType(c["before"]), MappingProxyType(c["after"]), MappingProxyType(c["payload"]),
                   tuple(FieldChange(f["field"], f["before"], f["after"]) for f in c["fields"]),
                   _certificate_of(c))
            for c in document["changes"]
        )
        observed = tuple(Observed(o["partner_id"], o["service_type"], o["version"]) for o in document["observed"])
        unmanaged = tuple(Unmanaged(u["partner_id"], u["service_type"], u["reason"],
                                    MappingProxyType(dict(u["settings"]))) for u in document.get("unmanaged", ()))
        portal = document["portal"]
        if not isinstance(portal, str):
            raise TypeError("portal is not a string")
        plan = Plan(document["environment"], changes, observed, _disable_check_from_json(document),
                    _recorded_from_json(document), unmanaged, portal)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HbsError(f"not a valid hbsdeploy plan ({type(exc).__name__}: {exc}); re-run `hbsdeploy plan --out`"
                       ) from None
    check = plan.disable_check
    if check is not None and (check.disables, check.scope) != (plan.count(ChangeKind.DISABLE), len(plan.observed)):
        raise HbsError("not a valid hbsdeploy plan (disable_check counts disagree with its changes); re-run "
                       "`hbsdeploy plan --out`")
    if plan.checksum != document.get("checksum"):
        raise HbsError("the plan file was altered after it was written (checksum mismatch); "
                       "re-run `hbsdeploy plan --out` and review it again")
    for change in plan.changes:
        _check_consistent(change)
    return plan


def _recorded_from_json(document: Mapping[str, Any]) -> RecordedSource | None:
    found = document.get("recorded_state")
    if found is None:
        return None
    values = (found["file"], found["as_of"], found["by"])
    if not isinstance(values[0], str) or not all(v is None or isinstance(v, str) for v in values[1:]):
        raise ValueError("recorded_state holds a value that is not text")
    return RecordedSource(*values)


def _disable_check_from_json(document: Mapping[str, Any]) -> DisableCheck | None:
    found = document.get("disable_check")
    if found is None:
        return None
    check = DisableCheck(int(found["disables"]), int(found["scope"]), float(found["max_fraction"]),
                         int(found["min_scope"]), found["allowed"] is True)
    if found.get("needs_permission") is not check.needs_permission:
        raise ValueError("disable_check.needs_permission disagrees with its counts")
    return check


def _certificate_of(change: Mapping[str, Any]) -> Mapping[str, str] | None:
    info = change.get("certificate")
    if info is None:
        return None
    if not isinstance(info, Mapping) or set(info) != {"file", "subject", "not_after"} or not all(
            isinstance(v, str) for v in info.values()):
        raise ValueError("certificate must hold file, subject and not_after")
    return MappingProxyType(dict(info))


def _check_consistent(change: Change) -> None:
    """What apply sends (`payload`) is what reviewers saw (`after`, `fields`): a plan whose parts disagree was not
    written by `hbsdeploy plan`, even when its checksum was recomputed."""
    try:
        after = dict(change.after)
        kept = fields_in(after)  # the service type's fields, as the plan shows them
        sent = normalize_settings(change.payload, kept)
        fields = {f.field: (f.before, f.after) for f in change.fields}
        shown = {name: (change.before[name], after[name]) for name in kept if change.before[name] != after[name]}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HbsError(f"not a valid hbsdeploy plan ({type(exc).__name__} in {change.partner_id} "
                       f"{change.service_type}); re-run `hbsdeploy plan --out`") from None
    extra = sorted(set(change.payload) - set(kept))
    if len(kept) != len(after) or set(change.before) != set(after) or "online_request" not in after:
        raise HbsError(f"not a valid hbsdeploy plan (the fields of {change.partner_id} {change.service_type} "
                       "disagree); re-run `hbsdeploy plan --out`")
    if extra:
        raise HbsError(f"the payload of {change.partner_id} {change.service_type} carries {', '.join(extra)}, which "
                       "no plan shows; apply sends only what was reviewed: re-run `hbsdeploy plan --out`")
    if sent != after or fields != shown:
        raise HbsError(f"the payload of {change.partner_id} {change.service_type} disagrees with the `after` values "
                       "the plan shows; apply sends only what was reviewed: re-run `hbsdeploy plan --out`")


def narrow_plan(plan: Plan, partner_ids: Iterable[str] = (), service_types: Iterable[str] = ()) -> Plan:
    """The part of `plan` about these partners (any way of writing their IDs) and service types (none: all); itself
    when nothing narrows it. A narrowed plan is a plan of its own, with its own checksum."""
    from hbsdeploy.load.partner import canonical_ids

    wanted_ids = {form for pid in partner_ids for form in (pid, *canonical_ids(pid).values())}
    wanted_types = set(service_types)
    if not wanted_ids and not wanted_types:
        return plan

    def keep(partner_id: str, service_type: str) -> bool:
        return (not wanted_ids or partner_id in wanted_ids) and (not wanted_types or service_type in wanted_types)

    return dataclasses.replace(plan, changes=tuple(c for c in plan.changes if keep(*c.key)),
                               observed=tuple(o for o in plan.observed if keep(o.partner_id, o.service_type)))


def read_plan_file(path: Path, checksum: str | None = None) -> Plan:
    """Load a plan written by `plan --out`; HbsError naming the file when it is unreadable, not a plan, altered, or
    not the reviewed one (`checksum`, with or without its `sha256:` prefix)."""
    try:
        data = read_bytes(path, MAX_PLAN_BYTES, what="plan file")
    except FileRefused as exc:
        raise HbsError(f"{path}: cannot read the plan file: {exc}") from None
    return parse_plan(data, str(path), checksum)


def parse_plan(data: bytes, shown: str, checksum: str | None = None) -> Plan:
    """A plan from the bytes of a plan file (`shown` names it in errors: a path, or `-` for standard input)."""
    if len(data) > MAX_PLAN_BYTES:
        raise HbsError(f"{shown}: cannot read the plan file: larger than {MAX_PLAN_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise HbsError(f"{shown}: empty, not a plan file; write one with `hbsdeploy plan --out` (did it fail?)")
    try:
        document = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise HbsError(f"{shown}: not a plan file (JSON nested too deeply); write one with `hbsdeploy plan --out`"
                       ) from None
    except UnicodeDecodeError:
        raise HbsError(f"{shown}: not a plan file (not UTF-8 text); write one with `hbsdeploy plan --out`") from None
    except ValueError as exc:  # invalid JSON, or an integer of more than 4,300 digits
        raise HbsError(f"{shown}: not a plan file (invalid JSON: {one_line(str(exc), 200)}); write one with "
                       "`hbsdeploy plan --out`") from None
    if not isinstance(document, dict):
        raise HbsError(f"{shown}: not a plan file; write one with `hbsdeploy plan --out`")
    try:
        plan = plan_from_json(document)
    except HbsError as exc:
        raise HbsError(f"{shown}: {exc}") from None
    if checksum is not None and checksum not in (plan.checksum, plan.checksum.removeprefix("sha256:")):
        raise HbsError(f"{shown}: checksum {plan.checksum} is not the reviewed {checksum}; "
                       "apply only the plan that was reviewed")
    return plan
