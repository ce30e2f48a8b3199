"""`hbsdeploy import`: a partner file written from the portal's current state, so that it plans to no change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hbsdeploy.errors import HbsError
from hbsdeploy.load.config import Environment
from hbsdeploy.load.partner import ID_KEYS, canonical_id, roles_of_id
from hbsdeploy.load.schemacheck import show
from hbsdeploy.load.servicetypes import service_types
from hbsdeploy.load.settings import DEFAULT_SETTINGS, normalize_settings
from hbsdeploy.portal import ServiceTypeState, open_portal


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


def infer_role(partner_id: str, states: Mapping[str, ServiceTypeState], role: str | None) -> str:
    """`--role` if given; else what the ID's format or the configured service types say; else ask for --role."""
    if role:
        return role
    specs = service_types()
    implied = {role for name, state in states.items() if name in specs and len(specs[name].roles) == 1
               and normalize_settings(state.settings) != dict(DEFAULT_SETTINGS) for role in specs[name].roles}
    if len(implied) == 1:
        return implied.pop()  # a service type configured that only this role can have
    fits = roles_of_id(partner_id)
    if len(fits) == 1:
        return fits.pop()
    raise HbsError(f"{show(partner_id)} could be an OperatorID or a ProviderID; pass --role cpo or --role emp")


def import_partner(environment: Environment, partner_id: str, name: str | None = None, role: str | None = None
                   ) -> str:
    """`import`'s job: the partner file of what `environment`'s portal holds for `partner_id` (one listing request)."""
    check_partner_id(partner_id, role)
    fits = roles_of_id(partner_id)
    known_role = role or (next(iter(fits)) if len(fits) == 1 else None)
    # The portal holds each partner under its canonical ID (`dea36` as an operator is `DE*A36`).
    portal_id = canonical_id(known_role, partner_id) if known_role else partner_id
    portal = open_portal(environment)
    try:
        states = portal.list_service_types(portal_id)
    finally:
        portal.close()
    found_role = infer_role(portal_id, states, role)
    if canonical_id(found_role, portal_id) != portal_id:
        raise HbsError(f"--partner {show(partner_id)} is, as the {found_role.upper()} its settings show, "
                       f"{canonical_id(found_role, portal_id)!r}; run import again with --partner "
                       f"'{canonical_id(found_role, portal_id)}' --role {found_role}")
    return partner_yaml(portal_id, name or portal_id, found_role, environment.name, states)


def partner_yaml(partner_id: str, name: str, role: str, environment: str,
                 states: Mapping[str, ServiceTypeState]) -> str:
    """The partner file's text: every service type the portal holds away from its defaults."""
    id_key = ID_KEYS[role]
    lines = [
        "# yaml-language-server: $schema=../schemas/partner.schema.json",
        f"# Imported from the portal of environment {environment!r} by `hbsdeploy import`.",
        f"name: {_scalar(name)}",
        f"role: {role}",
        f"{id_key}: {_scalar(partner_id)}",
        "",
        "environments:",
        f"  {environment}:",
        "",
        "service_types:",
    ]
    managed = 0
    specs = service_types()
    for service_type, state in states.items():
        settings = normalize_settings(state.settings)
        spec = specs.get(service_type)
        required = spec is not None and role in spec.required_for
        if settings == dict(DEFAULT_SETTINGS) and not required:
            continue  # never configured in the portal and not required for the role: leave it unmanaged
        if spec is not None and role not in spec.roles:
            raise HbsError(f"{partner_id} has {service_type} configured in the portal, which only a "
                           f"{' or '.join(sorted(r.upper() for r in spec.roles))} can have; check --role")
        if settings["certificate"] == "user":
            raise HbsError(f"{partner_id} {service_type} uses a User certificate (SHA-256 "
                           f"{settings['certificate_sha256']}); the portal cannot hand back the file. Write this "
                           "partner file by hand with certificate_file pointing at that certificate")
        managed += 1
        lines.append(f"  {service_type}:")
        for field in ("online_request", "broadcast_request", "service_url", "client_certification", "certificate"):
            if field == "broadcast_request" and not settings["online_request"]:
                continue
            if field == "service_url" and settings[field] is None:
                continue
            lines.append(f"    {field}: {_scalar(settings[field])}")
    if managed == 0:
        lines[-1] = "service_types: {}"
    return "\n".join(lines) + "\n"


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
