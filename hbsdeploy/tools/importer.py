"""`hbsdeploy import`: one partner file written from what the portals hold, so that it plans to no change anywhere.

One file covers every environment read: a value every environment read agrees on is the base, the rest is written
under each environment. A partner the repository already manages is recognised (never a second file).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hbsdeploy.errors import HbsError, UsageError
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import ID_KEYS, canonical_id, identities_named, roles_of_id, written_identities
from hbsdeploy.load.schemacheck import show
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import DEFAULT_SETTINGS, fields_in, normalize_settings
from hbsdeploy.portal import PartnerNotFound, ServiceTypeState, open_portal

_FIELDS = ("online_request", "broadcast_request", "service_url", "client_certification", "certificate",
           "certificate_file")
PARTNER_SCHEMA = Path("schemas") / "partner.schema.json"


def check_partner_id(partner_id: str, role: str | None) -> None:
    """HbsError, before the portal is asked, when the ID fits no OICP format or not the `--role` given."""
    fits = roles_of_id(partner_id)
    shown = show(partner_id)
    if not fits:
        raise HbsError(f"--partner {shown} is neither an OperatorID (e.g. DE*A36) nor a ProviderID (e.g. DE8EO); "
                       "check the ID")
    if role and role not in fits:
        kind = "an OperatorID (e.g. DE*A36)" if role == "cpo" else "a ProviderID (e.g. DE8EO)"
        raise HbsError(f"--partner {shown} is not {kind}, which --role {role} needs; check the ID or the role")


def infer_role(partner_id: str, states: Mapping[str, ServiceTypeState], role: str | None, *,
               specs: Mapping[str, ServiceTypeSpec]) -> str:
    """`--role` if given; else what the ID's format or the configured service types (`specs`, the project's) say;
    else ask for --role."""
    if role:
        return role
    implied = {role for name, state in states.items() if name in specs and len(specs[name].roles) == 1
               and not _is_default(state.settings) for role in specs[name].roles}
    if len(implied) == 1:
        return implied.pop()  # a service type configured that only this role can have
    written = written_identities(partner_id)  # `DE*DUA` is an operator, `DE-DUA` a provider; `DEDUA` either
    if len(written) == 1:
        return written[0][0]
    raise HbsError(f"{show(partner_id)} could be an OperatorID or a ProviderID; pass --role cpo or --role emp")


@dataclass(frozen=True)
class ManagedPartner:
    """A partner file of the repository: where it is, and who it describes."""

    path: Path
    role: str
    partner_id: str  # canonical
    name: str
    environments: tuple[str, ...]


def managed_partners(config: Config) -> list[ManagedPartner]:
    """Every partner file's identity, read as plain YAML (a file that does not load is validate's business)."""
    from hbsdeploy.load.yamlload import load_yaml

    found = []
    for path in config.partner_files():
        try:
            data = load_yaml(path).data
        except (HbsError, OSError, ValueError):
            continue
        role = data.get("role") if isinstance(data, dict) else None
        written = data.get(ID_KEYS[role]) if role in ID_KEYS else None
        if not isinstance(written, str) or role not in roles_of_id(written):
            continue
        environments = data.get("environments")
        found.append(ManagedPartner(path, role, canonical_id(role, written), str(data.get("name") or written),
                                    tuple(environments) if isinstance(environments, dict) else ()))
    return found


def find_managed(config: Config, partner_id: str, role: str | None) -> ManagedPartner | None:
    """The partner file already describing `partner_id` (as `role`, if given), else None; UsageError when a CPO and
    an EMP of that ID are both managed and no --role says which; HbsError when two files describe one partner
    (validate's duplicate-partner-id), which no --role settles."""
    managed = [p for p in managed_partners(config) if role is None or p.role == role]
    named = set(identities_named(partner_id, ((p.role, p.partner_id) for p in managed)))  # as plan --partner
    matches = [p for p in managed if (p.role, p.partner_id) in named]
    if len({p.role for p in matches}) > 1:
        files = ", ".join(_display(p.path) for p in sorted(matches, key=lambda p: p.role))
        raise UsageError(f"--partner {show(partner_id)} is managed both as a CPO and as an EMP ({files}); pass "
                         "--role cpo or --role emp")
    if len(matches) > 1:  # one role, two files: validate's duplicate-partner-id, which --role cannot settle
        files = ", ".join(sorted(_display(p.path) for p in matches))
        what = "operator" if matches[0].role == "cpo" else "provider"
        raise HbsError(f"--partner {show(partner_id)} names the {what} {matches[0].partner_id}, written in "
                       f"{len(matches)} partner files ({files}): one file per partner and role; keep one "
                       "(`hbsdeploy validate` reports the other: duplicate-partner-id)")
    return matches[0] if matches else None


@dataclass(frozen=True)
class ImportRequest:
    """What `import` was asked: the partner, the environments to read (none: every one), where the file goes."""

    partner_id: str
    environments: tuple[str, ...] = ()
    role: str | None = None
    name: str | None = None
    out_file: Path | None = None  # None: standard output


@dataclass(frozen=True)
class ImportResult:
    """The partner file's text and what the person must know about it (a certificate to add, a managed file)."""

    text: str
    partner_id: str
    environments: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def import_partner(config: Config, request: ImportRequest) -> ImportResult:
    """`import`'s job: one partner file from what each environment's portal holds (one listing request each)."""
    check_partner_id(request.partner_id, request.role)
    managed = find_managed(config, request.partner_id, request.role)
    notes = []
    if managed is not None:
        shown = _display(managed.path)
        if request.out_file is not None:
            raise HbsError(f"{managed.partner_id} is already managed in {shown}; import writes no second file for "
                           f"it: `hbsdeploy plan --partner '{managed.partner_id}'` shows how that file differs from "
                           "the portal (import without --out prints the portal's view to compare)")
        notes.append(f"note: {managed.partner_id} is already managed in {shown}; this is the portal's view, to "
                     "compare, not a second file")
    role = request.role or (managed.role if managed else None)
    names = request.environments or tuple(config.environments)
    environments = [config.environment(name) for name in dict.fromkeys(names)]
    portal_id = _portal_id(request.partner_id, role)
    read = _read_environments(environments, portal_id)
    if not read:
        raise HbsError(f"no portal of {', '.join(e.name for e in environments)} knows {show(portal_id)}; check the "
                       "ID, or register the partner in the portal first")
    combined = {name: state for states in read.values() for name, state in states.items()
                if not _is_default(state.settings)}
    specs = config.schemas.service_types
    found_role = infer_role(portal_id, combined or next(iter(read.values())), role, specs=specs)
    if canonical_id(found_role, portal_id) != portal_id:
        raise HbsError(f"--partner {show(request.partner_id)} is, as the {found_role.upper()} its settings show, "
                       f"{canonical_id(found_role, portal_id)!r}; run import again with --partner "
                       f"'{canonical_id(found_role, portal_id)}' --role {found_role}")
    missing = [e.name for e in environments if e.name not in read]
    if missing:
        notes.append(f"note: {', '.join(missing)}: the portal does not know {portal_id}; left out of the file")
    name = request.name or (managed.name if managed else portal_id)
    schema = schema_reference(config, request.out_file)
    text, certificates = partner_yaml(portal_id, name, found_role, read, schema, specs=specs)
    notes += [f"note: {', '.join(used)} {'uses' if len(used) == 1 else 'use'} a User certificate (SHA-256 {sha}); "
              f"the portal cannot hand the file back: save that certificate (PEM) as {path}, next to "
              f"{config.shown} (validate reports it missing until then)" for path, (sha, used) in certificates.items()]
    return ImportResult(text, portal_id, tuple(read), notes)


def _portal_id(partner_id: str, role: str | None) -> str:
    # The portal holds each partner under its canonical ID (`dea36` as an operator is `DE*A36`).
    written = written_identities(partner_id)
    known_role = role or (written[0][0] if len(written) == 1 else None)
    return canonical_id(known_role, partner_id) if known_role else partner_id


def _read_environments(environments: Sequence[Environment], partner_id: str
                       ) -> dict[str, dict[str, ServiceTypeState]]:
    read: dict[str, dict[str, ServiceTypeState]] = {}
    for environment in environments:
        portal = open_portal(environment)
        try:
            read[environment.name] = portal.list_service_types(partner_id)
        except PartnerNotFound:
            continue
        except HbsError as exc:
            raise HbsError(f"environment {environment.name!r}: {exc} (choose the environments to read with --env)"
                           ) from None
        finally:
            portal.close()
    return read


def _certificate_file(partner_id: str, sha256: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", partner_id.lower()).strip("-")
    return f"certs/{slug}-{sha256.replace(':', '').lower()[:12]}.pem"


def _is_default(settings: Mapping[str, Any]) -> bool:
    """Whether a service type's settings (its own fields) are the portal's defaults: never configured."""
    fields = fields_in(settings)
    return normalize_settings(settings, fields) == normalize_settings(DEFAULT_SETTINGS, fields)


def _managed_settings(partner_id: str, role: str, states: Mapping[str, ServiceTypeState],
                      specs: Mapping[str, ServiceTypeSpec]) -> dict[str, dict[str, Any]]:
    """service type -> the fields a partner file writes for it, for every service type managed in one environment."""
    managed: dict[str, dict[str, Any]] = {}
    for service_type, state in states.items():
        settings = normalize_settings(state.settings, fields_in(state.settings))
        spec = specs.get(service_type)
        required = spec is not None and role in spec.required_for
        if _is_default(settings) and not required:
            continue  # never configured in the portal and not required for the role: leave it unmanaged
        if spec is not None and role not in spec.roles:
            raise HbsError(f"{partner_id} has {service_type} configured in the portal, which only a "
                           f"{' or '.join(sorted(r.upper() for r in spec.roles))} can have; check --role")
        values: dict[str, Any] = {}
        for name in _FIELDS[:-1]:
            if (name == "broadcast_request" and not settings["online_request"]) or settings.get(name) is None:
                continue
            values[name] = settings[name]
        if settings.get("certificate") == "user":
            values["certificate_file"] = _certificate_file(partner_id, str(settings["certificate_sha256"]))
            values["certificate_sha256"] = settings["certificate_sha256"]  # for the note; not written as a field
        managed[service_type] = values
    return managed


def schema_reference(config: Config, out_file: Path | None) -> str:
    """The `$schema` of the modeline, relative to where the file is written (the partners folder for stdout)."""
    folder = (out_file.parent if out_file is not None else config.partners_dir).resolve()
    schemas = config.schemas_dir or config.root / PARTNER_SCHEMA.parent
    return Path(os.path.relpath(schemas / PARTNER_SCHEMA.name, folder)).as_posix()


def partner_yaml(partner_id: str, name: str, role: str, states: Mapping[str, Mapping[str, ServiceTypeState]],
                 schema: str = f"../{PARTNER_SCHEMA.as_posix()}", *, specs: Mapping[str, ServiceTypeSpec]
                 ) -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """The partner file of what each environment's portal holds (environment -> service type -> state): values every
    environment read agrees on as the base, when two or more were read, the rest under each environment; and the User
    certificates it names: file -> (SHA-256, `env service type`s)."""
    settings = {env: _managed_settings(partner_id, role, held, specs) for env, held in states.items()}
    environments = list(settings)
    base = _common(settings) if len(environments) > 1 else {}
    lines = [
        f"# yaml-language-server: $schema={schema}",
        f"# Imported by `hbsdeploy import` from the portal of {_listing(environments)}."
        + (" What every environment read agrees on is the base; the rest is under each environment."
           if len(environments) > 1 else
           " Its settings are under that environment only: import an environment (--env) before adding it here."),
        f"name: {_scalar(name)}",
        f"role: {role}",
        f"{ID_KEYS[role]}: {_scalar(partner_id)}",
        "",
        "environments:",
    ]
    certificates: dict[str, tuple[str, list[str]]] = {}  # file -> (SHA-256, where it is used)
    for env in environments:
        overrides = {st: {k: v for k, v in values.items()
                          if k != "certificate_sha256" and base.get(st, {}).get(k, _MISSING) != v}
                     for st, values in settings[env].items()}
        overrides = {st: values for st, values in overrides.items() if values or st not in base}
        lines.append(f"  {env}:")
        if overrides:
            lines.append("    service_types:")
            lines += _service_types(overrides, "      ")
        for st, values in settings[env].items():
            if values.get("certificate") == "user":
                sha, used = certificates.setdefault(str(values["certificate_file"]),
                                                    (str(values["certificate_sha256"]), []))
                used.append(f"{env} {st}")
    lines.append("")
    if base:
        lines.append("service_types:")
        lines += _service_types(base, "  ")
    else:
        lines.append("service_types: {}")
    return "\n".join(lines) + "\n", certificates


_MISSING = object()


def _common(settings: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The service types managed in every environment, with the fields whose value is the same in all of them."""
    per_env = list(settings.values())
    names = [st for st in per_env[0] if all(st in env for env in per_env)]
    common = {}
    for st in names:
        first = per_env[0][st]
        common[st] = {k: v for k, v in first.items()
                      if k != "certificate_sha256" and all(env[st].get(k, _MISSING) == v for env in per_env)}
    return common


def _service_types(values: Mapping[str, Mapping[str, Any]], indent: str) -> list[str]:
    lines = []
    for st, fields in values.items():
        lines.append(f"{indent}{st}:" + ("" if any(k in _FIELDS for k in fields) else " {}"))
        lines += [f"{indent}  {k}: {_scalar(fields[k])}" for k in _FIELDS if k in fields]
    return lines


def _listing(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    if len(quoted) == 1:
        return f"environment {quoted[0]}"
    return "environments " + ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def _display(path: Path) -> str:
    from hbsdeploy.load.yamlload import display_path

    return display_path(path)


def _scalar(value: Any) -> str:
    """A YAML scalar that reads back as exactly `value` (JSON strings are valid YAML double-quoted strings, once the
    characters YAML refuses or reads as line breaks, such as DEL, C1 controls, NEL and U+2028, are escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "".join(_escape_yaml(char) for char in json.dumps(value, ensure_ascii=False))


def _escape_yaml(char: str) -> str:
    code = ord(char)
    if 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF) or 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char
