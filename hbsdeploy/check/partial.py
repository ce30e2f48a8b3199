"""What the portal rules may still check in a partner file the schema refused.

validate reports every problem of a file in one run: the schema's, and the rules' on every part of the file that is
well-formed. Each mistake is reported once: a value the schema refused is left out of what the rules read (a
misspelt `servce_url` is not also "Online Request needs a Service URL"), and a rule that combines several fields of a
service type runs only where none of them, and no unknown key beside them, was refused. A YAML 1.1 boolean (`yes`)
is read as the boolean its schema message tells the user to write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hbsdeploy.load.partner import ID_KEYS, SERVICE_TYPES_KEY, Partner, canonical_id
from hbsdeploy.load.schemacheck import YAML11_BOOLEANS, Finding
from hbsdeploy.load.yamlload import Document, JsonPath

_COERCED_RULE = "yaml11-boolean"


@dataclass(frozen=True)
class Refused:
    """The places in a partner file the schema refused (missing keys are simply absent)."""

    paths: frozenset[JsonPath] = frozenset()

    def touches(self, place: JsonPath) -> bool:
        """Whether something at `place`, below it or holding it was refused."""
        size = len(place)
        return any(path[:size] == place or place[:len(path)] == path for path in self.paths)

    def service_type_intact(self, environment: str, name: str) -> bool:
        """Whether every field of service type `name`, as resolved in `environment`, passed the schema."""
        return not (self.touches((SERVICE_TYPES_KEY, name))
                    or self.touches(("environments", environment, SERVICE_TYPES_KEY, name)))

    def service_types_intact(self, environment: str) -> bool:
        """Whether the service types named for `environment` are all known ones (no unknown, maybe misspelt, name)."""
        return not any(self._holds(place) for place in
                       ((SERVICE_TYPES_KEY,), ("environments", environment, SERVICE_TYPES_KEY)))

    def _holds(self, place: JsonPath) -> bool:
        size = len(place)
        return any(path[:size] == place and len(path) <= size + 1 or place[:len(path)] == path for path in self.paths)


NOTHING_REFUSED = Refused()


def partial_partner(document: Document, findings: Iterable[Finding]) -> tuple[Partner, Refused] | None:
    """The partner as far as it is well-formed, and what was refused; None when not even the environments it is
    deployed to are known (no rule can run)."""
    data = copy.deepcopy(document.data)
    refused: set[JsonPath] = set()
    for finding in findings:
        if finding.deferred or finding.missing or not finding.path:
            continue
        if finding.problem.rule == _COERCED_RULE and _replace(data, finding.path):
            continue
        refused.add(finding.path)
        _remove(data, finding.path)
    environments = data.get("environments")
    if not isinstance(environments, dict) or not environments:
        return None
    role = data.get("role")
    id_key = ID_KEYS.get(role, "") if isinstance(role, str) else ""
    written = data.get(id_key) if id_key else None
    written_id = written if isinstance(written, str) else ""
    name = data.get("name")
    partner = Partner(
        document=Document(document.path, data, document.values, document.keys),
        name=name if isinstance(name, str) else "",
        role=role if id_key else "",
        partner_id=canonical_id(role, written_id) if written_id else "",
        id_key=id_key,
        environments=tuple(environments),
        written_id=written_id,
    )
    return partner, Refused(frozenset(refused))


def _parent(data: Any, path: JsonPath) -> Any:
    for step in path[:-1]:
        in_mapping = isinstance(data, dict) and isinstance(step, str) and step in data
        if not (in_mapping or isinstance(data, list) and isinstance(step, int) and step < len(data)):
            return None
        data = data[step]
    return data


def _remove(data: Any, path: JsonPath) -> None:
    parent = _parent(data, path)
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _replace(data: Any, path: JsonPath) -> bool:
    parent = _parent(data, path)
    value = parent.get(path[-1]) if isinstance(parent, dict) else None
    if not isinstance(value, str) or value.lower() not in YAML11_BOOLEANS:
        return False
    parent[path[-1]] = YAML11_BOOLEANS[value.lower()]
    return True
