"""The partner schema in effect for a project, and what hbsdeploy derives from it.

A project's own `partner.schema.json` (in the folder `schemas:` of hbsdeploy.yaml names, `schemas` by default) is
the one validate, plan, apply, render, import and the emulator use: its service types, their `x-hbsdeploy` data and
the rules of every field. A project without one uses hbsdeploy's copy. There is no process-wide "current schema":
each loaded project carries its `SchemaSet` (Config.schemas, Environment.schemas), so one process may load many
projects. What is derived from a schema (the parsed JSON, the compiled validator, the service types) is cached by
the schema's text: an unchanged copy of hbsdeploy's schema costs one file read and a comparison, no parse.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hbsdeploy.errors import HbsError
from hbsdeploy.load.resources import schemas_dir
from hbsdeploy.load.servicetypes import ServiceTypeSpec, SpecError, specs_from_schema

if TYPE_CHECKING:
    from hbsdeploy.load.schemacheck import SchemaValidator

PARTNER_SCHEMA_FILE = "partner.schema.json"
DEFAULT_SCHEMAS_FOLDER = "schemas"


class SchemaFileError(HbsError):
    """A project's partner schema hbsdeploy cannot use: one line naming file:line and what to do."""


@dataclass(eq=False)
class SchemaSet:
    """One partner schema file, its text, and whether it is the project's (else hbsdeploy's copy). What is derived
    from the text is computed once per SchemaSet (validate asks for it for every file); an error is not kept."""

    path: Path
    text: str = field(repr=False)
    project: bool

    @property
    def shown(self) -> str:
        """The file as the user sees its path."""
        from hbsdeploy.load.yamlload import display_path

        return display_path(self.path)

    @functools.cached_property
    def same_as_package(self) -> bool:
        """The file holds exactly hbsdeploy's copy."""
        return self.text == _package_text()

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        """The schema as JSON; SchemaFileError for a file that is not a JSON object."""
        try:
            return _parsed(self.text)
        except json.JSONDecodeError as exc:
            raise self._error(exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
        except TypeError:
            raise self._error(1, "not a JSON Schema (the file must hold one JSON object)") from None

    @functools.cached_property
    def validator(self) -> SchemaValidator:
        """The compiled validator of partner files; SchemaFileError for a schema that is not usable."""
        self.document  # noqa: B018  (a parse error first, with its line)
        try:
            return _compiled(self.text, check=not self.same_as_package)
        except _Unusable as exc:
            raise self._error(line_of(self.text, exc.path), f"not a usable JSON Schema ({exc})") from None

    @functools.cached_property
    def service_types(self) -> dict[str, ServiceTypeSpec]:
        """Every service type by name, in the portal's order; SchemaFileError when `x-hbsdeploy` is unusable."""
        self.document  # noqa: B018  (a parse error first, with its line)
        try:
            return _specs(self.text)
        except SpecError as exc:
            raise self._error(line_of(self.text, exc.path), str(exc)) from None

    def labels(self) -> dict[str, str]:
        """Service type -> the label the portal shows."""
        return {name: spec.label for name, spec in self.service_types.items()}

    def check(self) -> None:
        """Raise SchemaFileError now for anything that would make the schema unusable later."""
        self.service_types  # noqa: B018
        self.validator  # noqa: B018

    def _error(self, line: int, what: str) -> SchemaFileError:
        from hbsdeploy import __version__

        fix = ("fix it, or delete it to use hbsdeploy's own copy (`hbsdeploy schema partner` prints hbsdeploy "
               f"{__version__}'s)") if self.project else "reinstall hbsdeploy"
        return SchemaFileError(f"{self.shown}:{line}: {what}; {fix}")


class _Unusable(ValueError):
    def __init__(self, path: Iterable[Any], message: str) -> None:
        self.path = tuple(str(step) for step in path)
        super().__init__(message)


@functools.lru_cache(maxsize=1)
def _package_text() -> str:
    return (schemas_dir() / PARTNER_SCHEMA_FILE).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=16)
def _parsed(text: str) -> dict[str, Any]:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise TypeError("not an object")
    return document  # shared: callers never change it


@functools.lru_cache(maxsize=16)
def _compiled(text: str, *, check: bool) -> SchemaValidator:
    from hbsdeploy.load.ecmaregex import UntranslatablePattern
    from hbsdeploy.load.schemacheck import compile_schema, pattern_places

    document = _parsed(text)
    if check:  # a schema edited in a project: checked against the JSON Schema metaschema once per text
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        # No format checks: `pattern` is ECMA 262 (hbsdeploy.load.ecmaregex judges it below), not Python's re.
        error = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(document))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "top"
            raise _Unusable(error.absolute_path, f"{where}: {error.message}")
        _check_references(document, document, ())
    try:
        return compile_schema(document)
    except UntranslatablePattern as exc:
        place = next((path for path, text in pattern_places(document) if text == exc.pattern), ())
        raise _Unusable(place, str(exc)) from None


def _check_references(root: dict[str, Any], node: Any, path: tuple[Any, ...]) -> None:
    """_Unusable at the first `$ref` that does not lead to a part of this schema (another file, or nowhere): a
    validator would only find out when it reaches that part of a partner file."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_references(root, item, (*path, index))
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and not _resolves(root, ref):
        where = "/".join(map(str, (*path, "$ref")))
        raise _Unusable((*path, "$ref"), f"{where}: {ref!r} does not point at a part of this schema; "
                                         "refer within the file, e.g. #/$defs/service_type")
    for key, value in node.items():
        _check_references(root, value, (*path, key))


def _resolves(root: dict[str, Any], ref: str) -> bool:
    from hbsdeploy.load.schemasubset import resolve_reference

    try:
        resolve_reference(root, ref)
    except LookupError:
        return False
    return True


@functools.lru_cache(maxsize=16)
def _specs(text: str) -> dict[str, ServiceTypeSpec]:
    return specs_from_schema(_parsed(text))


def line_of(text: str, path: Iterable[str]) -> int:
    """The line of the key a JSON path ends at, found key after key in the text (the first line when the path
    is empty or not found)."""
    position = 0
    for step in path:
        if step.isdigit():
            continue
        found = text.find(json.dumps(step), position)
        if found < 0:
            break
        position = found
    return text.count("\n", 0, position) + 1


@functools.lru_cache(maxsize=1)
def package_schemas() -> SchemaSet:
    """hbsdeploy's own copy of the partner schema."""
    return SchemaSet(schemas_dir() / PARTNER_SCHEMA_FILE, _package_text(), project=False)


def project_schemas(folder: Path) -> SchemaSet:
    """The partner schema in `folder` (a project's `schemas:`) when it holds one, else hbsdeploy's copy."""
    path = folder / PARTNER_SCHEMA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return package_schemas()
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(f"{path}:1: cannot be read ({exc}); fix the file or delete it to use hbsdeploy's own "
                              "copy") from None
    return SchemaSet(path, text, project=True)


def schema_differences(schemas: SchemaSet) -> list[str]:
    """What the project's partner schema changes against hbsdeploy's copy: service types added and removed, and
    other changes; empty when they are the same (or it is hbsdeploy's copy)."""
    if not schemas.project or schemas.same_as_package:
        return []
    package = package_schemas()
    ours, theirs = _service_type_entries(schemas.document), _service_type_entries(package.document)
    parts = []
    added, removed = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if added:
        parts.append(f"service types added: {', '.join(added)}")
    if removed:
        parts.append(f"removed: {', '.join(removed)}")
    changed = sorted(name for name in set(ours) & set(theirs) if ours[name] != theirs[name])
    if changed:
        parts.append(f"changed: {', '.join(changed)}")
    if _without_service_types(schemas.document) != _without_service_types(package.document):
        parts.append("other changes (field rules, IDs or descriptions)")
    return parts or ["formatting only"]


def _service_type_entries(document: Mapping[str, Any]) -> dict[str, Any]:
    entries = document.get("$defs", {}).get("service_types", {}).get("properties", {})
    return dict(entries) if isinstance(entries, Mapping) else {}


def _without_service_types(document: Mapping[str, Any]) -> Any:
    copy = json.loads(json.dumps(document))
    copy.get("$defs", {}).get("service_types", {}).pop("properties", None)
    return copy


def stale_package_copies(folder: Path | None) -> list[Path]:
    """The project's copies of hbsdeploy's other schemas (config, plan, payload, contract...) that differ from
    hbsdeploy's: only the partner schema is the project's to change; the others are copies for editors and CI
    checks, which hbsdeploy itself never reads, so an edit there would change nothing, silently."""
    if folder is None or not folder.is_dir():
        return []
    stale = []
    for shipped in sorted(schemas_dir().iterdir()):
        copy = folder / shipped.name
        if shipped.name == PARTNER_SCHEMA_FILE or not copy.is_file():
            continue
        try:
            differs = copy.read_bytes() != shipped.read_bytes()
        except OSError:
            continue  # unreadable: nothing hbsdeploy reads, and the editor says so
        if differs:
            stale.append(copy)
    return stale
