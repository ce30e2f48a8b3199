"""The partner model: one partner file, and its service types as they stand in one environment."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hbsdeploy.load.ecmaregex import ecma_pattern
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.yamlload import Document, JsonPath

SERVICE_TYPES_KEY = "service_types"
ID_KEYS = {"cpo": "operator_id", "emp": "provider_id"}  # the key that holds each role's OICP ID


@functools.cache
def _id_patterns() -> dict[str, re.Pattern[str]]:
    properties = load_schema("partner")["properties"]
    return {role: ecma_pattern(properties[key]["pattern"]) for role, key in ID_KEYS.items()}


def roles_of_id(partner_id: str) -> set[str]:
    """The roles whose OICP ID format (the partner schema's pattern) `partner_id` fits: {"cpo"} for an OperatorID,
    {"emp"} for a ProviderID, both, or none."""
    return {role for role, pattern in _id_patterns().items() if pattern.search(partner_id)}


_SEPARATORS = {"cpo": "*", "emp": "-"}  # OICP 2.3's own examples: OperatorID DE*A36, ProviderID DE-8EO


def canonical_id(role: str, partner_id: str) -> str:
    """The one form of an ID of `role` (which it must fit): upper case, the role's separator after the country
    code (`DEA36` -> `DE*A36` as an OperatorID, `de8eo` -> `DE-8EO` as a ProviderID), and a numeric OperatorID with
    its optional `+` (`49*536` -> `+49*536`). Plans, the portal and `--partner` use it; the file keeps its own."""
    text = partner_id.upper()
    if role == "cpo" and text[:1] in "+0123456789":
        candidate = "+" + text.lstrip("+")
    else:
        code = text.replace("*", "").replace("-", "")
        candidate = f"{code[:2]}{_SEPARATORS[role]}{code[2:]}"
    # A schema whose pattern has another shape keeps the ID as written, upper case.
    return candidate if _id_patterns()[role].search(candidate) else text


def is_canonical_id(partner_id: str) -> bool:
    """Whether `partner_id` is the canonical form of an ID of some role (what the portal holds)."""
    return partner_id in canonical_ids(partner_id).values()


def canonical_ids(partner_id: str) -> dict[str, str]:
    """The canonical form of `partner_id` in each role whose format it fits."""
    return {role: canonical_id(role, partner_id) for role in sorted(roles_of_id(partner_id))}


Identity = tuple[str, str]  # (role, canonical ID): one partner


def identities_named(partner_id: str, known: Iterable[Identity]) -> list[Identity]:
    """The partners among `known` that an ID written without its role names, compared as validate compares IDs: the
    one whose canonical ID it is exactly, in any case (`DE*DUA` is the operator, `DE-DUA` the provider, `+49*536` the
    operator), else each whose canonical ID it has in its role (`dea36`, `49*536`; `DEDUA` names an operator and a
    provider). `--partner` of plan, apply, audit and import resolve their IDs here."""
    candidates = sorted(set(known))
    exact = [identity for identity in candidates if identity[1] == partner_id.upper()]
    forms = canonical_ids(partner_id)
    return exact or [identity for identity in candidates if forms.get(identity[0]) == identity[1]]


def written_identities(partner_id: str) -> list[Identity]:
    """The partners an ID can be by its written form alone: one when it is a role's canonical form (`DE*DUA`,
    `DE-DUA`, `+49*536`) or fits one role's format only, both when it is ambiguous (`DEDUA`), none when it fits
    neither."""
    return identities_named(partner_id, canonical_ids(partner_id).items())


@dataclass(frozen=True)
class ResolvedServiceType:
    """A service type's fields in one environment: the file's values with that environment's overrides applied."""

    name: str
    values: Mapping[str, Any]  # only what the file sets; the portal's defaults fill the rest
    sources: Mapping[str, JsonPath]  # where in the file each value was written
    path: JsonPath  # where the service type itself is written


@dataclass(frozen=True)
class Partner:
    """One schema-valid partner file."""

    document: Document
    name: str
    role: str
    partner_id: str  # canonical_id(role, written_id): the ID the portal, plans and --partner use
    id_key: str  # "operator_id" or "provider_id"
    environments: tuple[str, ...]
    written_id: str = ""  # the ID as the file writes it

    @property
    def path(self) -> str:
        return self.document.path

    @property
    def identity(self) -> tuple[str, str]:
        """(role, canonical ID): a CPO `DE*DUA` and an EMP `DE-DUA` of one company are two partners."""
        return (self.role, self.partner_id)

    def resolve(self, environment: str) -> dict[str, ResolvedServiceType]:
        """The service types this file manages in `environment`, overrides applied field by field."""
        data = self.document.data
        base: Mapping[str, Any] = data.get(SERVICE_TYPES_KEY) or {}
        overrides_at: JsonPath = ("environments", environment, SERVICE_TYPES_KEY)
        overrides: Mapping[str, Any] = ((data["environments"].get(environment) or {}).get(SERVICE_TYPES_KEY) or {})
        resolved = {}
        for name in (*base, *(n for n in overrides if n not in base)):
            values: dict[str, Any] = {}
            sources: dict[str, JsonPath] = {}
            for origin, layer in (((SERVICE_TYPES_KEY, name), base.get(name)), ((*overrides_at, name),
                                                                                  overrides.get(name))):
                for field, value in (layer or {}).items():
                    values[field] = value
                    sources[field] = (*origin, field)
            if values.get("online_request") is False:
                # Switched off: the portal keeps no Service URL or Broadcast Request then, so switching off is the one
                # edit `online_request: false`; the URLs stay in the file for switching back on (docs/review.md).
                for ignored in SWITCHED_OFF_IGNORES:
                    values.pop(ignored, None)
                    sources.pop(ignored, None)
            path = (SERVICE_TYPES_KEY, name) if name in base else (*overrides_at, name)
            resolved[name] = ResolvedServiceType(name, MappingProxyType(values), MappingProxyType(sources), path)
        return resolved


SWITCHED_OFF_IGNORES = ("service_url", "broadcast_request")


def partner_from_document(document: Document) -> Partner:
    """Build a Partner from a document that passed the partner schema."""
    data = document.data
    id_key = ID_KEYS[data["role"]]
    return Partner(
        document=document,
        name=data["name"],
        role=data["role"],
        partner_id=canonical_id(data["role"], data[id_key]),
        id_key=id_key,
        environments=tuple(data["environments"]),
        written_id=data[id_key],
    )
