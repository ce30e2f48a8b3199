"""The service types the portal knows, read from the partner schema so that adding one is a schema entry."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hbsdeploy.load.resources import load_schema


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


@functools.cache
def service_types() -> dict[str, ServiceTypeSpec]:
    """Every service type by name, in the portal's order."""
    entries = load_schema("partner")["$defs"]["service_types"]["properties"]
    specs = []
    for name, entry in entries.items():
        meta = entry["x-hbsdeploy"]
        specs.append(ServiceTypeSpec(
            name=name,
            label=meta["label"],
            roles=frozenset(meta["roles"]),
            required_for=frozenset(meta.get("required_for", ())),
            broadcast=bool(meta["broadcast"]),
            order=int(meta.get("order", 100)),
            missing_rule=str(meta.get("missing_rule", "service-type-required")),
            recommended={str(role): dict(fields) for role, fields in (meta.get("recommended") or {}).items()},
            recommended_source=str(meta.get("recommended_source", "")),
            probe_path={str(role): str(path) for role, path in (meta.get("probe_path") or {}).items()},
        ))
    specs.sort(key=lambda spec: (spec.order, spec.name))
    return {spec.name: spec for spec in specs}
