"""The service types the portal knows, read from the partner schema so that adding one is a schema entry.

`specs_from_schema` reads `$defs.service_types.properties.*.x-hbsdeploy` of a partner schema (the project's own,
or hbsdeploy's copy: hbsdeploy.load.schemaset picks it) and refuses an entry it cannot use with `SpecError`, which
names the place in the schema and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hbsdeploy.load.settings import CONTROLS, SETTING_FIELDS, setting_fields
from hbsdeploy.text import escape

ROLES = ("cpo", "emp")
SERVICE_TYPES_PATH = ("$defs", "service_types", "properties")
# The IDs `doctor --probe` writes into a probe_path in place of the calling partner's: syntactically valid OICP 2.3
# IDs under the user-assigned country code XX, which no partner has, so a GET that reached a real operation names
# nobody.
PLACEHOLDER_IDS = {"{provider_id}": "XX-HBS", "{operator_id}": "XX*HBS"}


@dataclass(frozen=True)
class ServiceTypeSpec:
    """What the portal allows for one service type (from `x-hbsdeploy` in schemas/partner.schema.json)."""

    name: str
    label: str
    roles: frozenset[str]
    required_for: frozenset[str]
    broadcast: bool
    order: int
    missing_rule: str  # the rule id when a role in required_for switches it off
    recommended: dict[str, dict[str, object]]  # role -> field -> the value a public source recommends
    recommended_source: str  # that source, quoted in the warning
    # role -> the OICP operation path `doctor --probe` sends a GET to, one that cannot start anything
    probe_path: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = SETTING_FIELDS  # the payload fields: `x-hbsdeploy.fields` and certificate_sha256
    # Derived from `fields` once (validate asks for every service type of every file):
    controls: tuple[str, ...] = field(init=False)  # the portal's controls it shows (fields but certificate_sha256)
    file_keys: tuple[str, ...] = field(init=False)  # what a partner file may write: controls, certificate_file
    known_keys: frozenset[str] = field(init=False)  # fields and file keys together

    def __post_init__(self) -> None:
        controls = tuple(name for name in self.fields if name in CONTROLS)
        file_keys = (*controls, *(("certificate_file",) if "certificate" in self.fields else ()))
        object.__setattr__(self, "controls", controls)
        object.__setattr__(self, "file_keys", file_keys)
        object.__setattr__(self, "known_keys", frozenset((*self.fields, *file_keys)))


class SpecError(ValueError):
    """An `x-hbsdeploy` entry hbsdeploy cannot use: where it is (a path into the schema) and what to do."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        self.path = path
        super().__init__(message)


def specs_from_schema(schema: Mapping[str, Any]) -> dict[str, ServiceTypeSpec]:
    """Every service type of a partner schema by name, in the portal's order; SpecError for an unusable entry."""
    entries = _at(schema, SERVICE_TYPES_PATH)
    if not isinstance(entries, Mapping) or not entries:
        raise SpecError(SERVICE_TYPES_PATH[:2], "the schema has no service types under $defs.service_types."
                        "properties; restore that part from `hbsdeploy schema partner`")
    specs = [_spec(str(name), entry) for name, entry in entries.items()]
    specs.sort(key=lambda spec: (spec.order, spec.name))
    return {spec.name: spec for spec in specs}


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, Mapping) else None
    return node


def _spec(name: str, entry: Any) -> ServiceTypeSpec:
    where = (*SERVICE_TYPES_PATH, name)
    meta = entry.get("x-hbsdeploy") if isinstance(entry, Mapping) else None
    if not isinstance(meta, Mapping):
        raise SpecError(where, f"service type {name!r} has no x-hbsdeploy object (label, roles, fields); add one as "
                        "docs/config.md shows under 'Adding a service type'")
    meta_at = (*where, "x-hbsdeploy")
    label = _text(meta, "label", meta_at, name)
    roles = _roles(meta, "roles", meta_at, name, required=True)
    required_for = _roles(meta, "required_for", meta_at, name, required=False)
    if not required_for <= roles:
        raise SpecError((*meta_at, "required_for"), f"service type {name!r}: required_for names a role not in roles")
    fields = _fields(meta, meta_at, name)
    return ServiceTypeSpec(
        name=name,
        label=label,
        roles=roles,
        required_for=required_for,
        broadcast=_broadcast(meta, meta_at, name, fields),
        order=_whole_number(meta, "order", meta_at, name, 100),
        missing_rule=str(meta.get("missing_rule", "service-type-required")),
        recommended=_recommended(meta, meta_at, name, fields),
        recommended_source=str(meta.get("recommended_source", "")),
        probe_path=_probe_path(meta, meta_at, name),
        fields=fields,
    )


def _text(meta: Mapping[str, Any], key: str, at: tuple[str, ...], name: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(at, f"service type {name!r}: x-hbsdeploy.{key} must be the text the portal shows, e.g. "
                        f"{name.replace('_', ' ').title()!r}")
    return value


def _roles(meta: Mapping[str, Any], key: str, at: tuple[str, ...], name: str, *, required: bool) -> frozenset[str]:
    value = meta.get(key, None if required else [])
    if not isinstance(value, list) or not all(role in ROLES for role in value) or (required and not value):
        raise SpecError((*at, key) if key in meta else at,
                        f"service type {name!r}: x-hbsdeploy.{key} must be a list of {' and '.join(ROLES)}")
    return frozenset(value)


def _fields(meta: Mapping[str, Any], at: tuple[str, ...], name: str) -> tuple[str, ...]:
    """`fields`, a subset of the known controls (all of them when absent), as payload fields."""
    if "fields" not in meta:
        return SETTING_FIELDS
    value = meta["fields"]
    where = (*at, "fields")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(where, f"service type {name!r}: x-hbsdeploy.fields must be a list of the portal's controls "
                        f"({', '.join(CONTROLS)})")
    unknown = [item for item in value if item not in CONTROLS]
    if unknown:
        raise SpecError(where, f"service type {name!r}: x-hbsdeploy.fields names {', '.join(map(repr, unknown))}, "
                        f"not a portal control hbsdeploy knows ({', '.join(CONTROLS)}); a new kind of control needs "
                        "code (the web driver must know how to set it): see docs/config.md, 'Adding a service type'")
    if "online_request" not in value:
        raise SpecError(where, f"service type {name!r}: x-hbsdeploy.fields must include online_request (every "
                        "service type is switched on and off with it)")
    return setting_fields(value)


def _broadcast(meta: Mapping[str, Any], at: tuple[str, ...], name: str, fields: tuple[str, ...]) -> bool:
    """Whether the portal shows Broadcast Request: `broadcast`, or with `fields`, whether they hold it."""
    value = meta.get("broadcast", "broadcast_request" in fields if "fields" in meta else None)
    if not isinstance(value, bool):
        raise SpecError(at, f"service type {name!r}: x-hbsdeploy needs fields (the portal's controls it shows) or "
                        "broadcast: true or false")
    if value and "broadcast_request" not in fields:
        raise SpecError((*at, "broadcast"), f"service type {name!r}: broadcast is true but fields has no "
                        "broadcast_request; add it or set broadcast: false")
    return value


def _whole_number(meta: Mapping[str, Any], key: str, at: tuple[str, ...], name: str, default: int) -> int:
    value = meta.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError((*at, key), f"service type {name!r}: x-hbsdeploy.{key} must be a whole number")
    return value


def _recommended(meta: Mapping[str, Any], at: tuple[str, ...], name: str,
                 fields: tuple[str, ...]) -> dict[str, dict[str, object]]:
    value = meta.get("recommended") or {}
    if not isinstance(value, Mapping) or not all(role in ROLES and isinstance(settings, Mapping)
                                                   and set(settings) <= set(fields)
                                                   for role, settings in value.items()):
        raise SpecError((*at, "recommended"), f"service type {name!r}: x-hbsdeploy.recommended must map a role to "
                        "values of the service type's own fields")
    return {str(role): dict(settings) for role, settings in value.items()}


def operation_path(template: str) -> str | None:
    """The probe path with the placeholder IDs, or None when the template is not an OICP path that is safe to GET
    (under /api/oicp/, no `start` segment, printable ASCII): a schema edit cannot make the probe start a session.
    Checked when the schema's service types are loaded (`_probe_path`), and by doctor before it sends the GET."""
    path = template
    for name, value in PLACEHOLDER_IDS.items():
        path = path.replace(name, value)
    segments = path.split("/")
    if (not path.startswith("/api/oicp/") or not path.isascii() or not path.isprintable() or " " in path
            or "{" in path or any(s.lower().endswith("start") for s in segments)):
        return None
    return path


def _probe_path(meta: Mapping[str, Any], at: tuple[str, ...], name: str) -> dict[str, str]:
    value = meta.get("probe_path") or {}
    if not isinstance(value, Mapping) or not all(role in ROLES and isinstance(path, str) and path.startswith("/")
                                                   for role, path in value.items()):
        raise SpecError((*at, "probe_path"), f"service type {name!r}: x-hbsdeploy.probe_path must map a role to an "
                        "OICP operation path starting with /")
    for role, path in value.items():
        if operation_path(path) is None:
            raise SpecError((*at, "probe_path", role),
                            f"service type {name!r}: x-hbsdeploy.probe_path.{role} '{escape(path)}' is not an OICP "
                            "operation path under /api/oicp/ without a start operation (doctor --probe sends a GET to "
                            "it); write the service type's stop operation, e.g. "
                            "/api/oicp/charging/v21/providers/{provider_id}/authorize-remote/stop")
    return {str(role): str(path) for role, path in value.items()}
