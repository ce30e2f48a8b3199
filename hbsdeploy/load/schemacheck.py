"""JSON Schema validation of loaded YAML, turned into located problems with messages a person can act on.

The schemas are checked with hbsdeploy.load.schemasubset, which covers the keywords they use and loads in a
fraction of the time `jsonschema` takes; a schema edited to use anything else is checked with `jsonschema`
instead, with the same messages.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from hbsdeploy.errors import Problem
from hbsdeploy.load.ecmaregex import ecma_pattern
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.schemasubset import SubsetValidator, Unsupported
from hbsdeploy.load.yamlload import Document, JsonPath
from hbsdeploy.text import redact_urls, shorten

YAML11_BOOLEANS = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}
_TYPE_NAMES = {"boolean": "true or false", "string": "a string", "object": "a mapping", "array": "a list",
               "integer": "a whole number", "number": "a number", "null": "null"}



class SchemaValidator(Protocol):
    """What hbsdeploy needs of a validator: hbsdeploy.load.schemasubset's, or a `jsonschema` one."""

    schema: Any

    def iter_errors(self, instance: Any) -> Iterable[Any]: ...


def compile_schema(schema: dict[str, Any]) -> SchemaValidator:
    """A validator for `schema`: the fast subset validator, or `jsonschema` when the schema needs more."""
    try:
        return SubsetValidator(schema)
    except Unsupported:
        return _jsonschema_validator(schema)


def _jsonschema_validator(schema: dict[str, Any]) -> SchemaValidator:
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Iterator[Any]:
        # ECMA 262 `$`, as in hbsdeploy.load.schemasubset and check-jsonschema.
        if isinstance(instance, str) and not ecma_pattern(value).search(instance):
            yield ValidationError(f"{instance!r} does not match {value!r}")

    validator: SchemaValidator = validators.extend(Draft202012Validator, {"pattern": pattern})(schema)
    return validator


@functools.cache
def partner_validator() -> SchemaValidator:
    """The compiled validator of schemas/partner.schema.json."""
    return compile_schema(load_schema("partner"))


@functools.cache
def config_validator() -> SchemaValidator:
    """The compiled validator of schemas/config.schema.json."""
    return compile_schema(load_schema("config"))


def check(document: Document, validator: SchemaValidator) -> list[Problem]:
    """Every schema problem in the document, each located at its key or value."""
    return [problem for error in validator.iter_errors(document.data)
            for problem in _problems(document, error, validator.schema)]


def show(value: Any, limit: int = 60) -> str:
    """A value for a message, as YAML would write it where that is unambiguous (true, null, 5); strings in quotes,
    with invisible and bidirectional characters escaped, URL passwords hidden; long values cut."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    return shorten(redact_urls(repr(value)), limit)  # a password in a URL stays out of messages and CI logs


def _name(path: JsonPath) -> str:
    """The key a message is about: the last name in the path, or the file itself."""
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "the file"


_RULES = {"minLength": "value-too-short", "maxLength": "value-too-long", "minProperties": "too-few-entries",
          "maxProperties": "too-many-entries", "minimum": "out-of-range", "maximum": "out-of-range",
          "exclusiveMinimum": "out-of-range", "exclusiveMaximum": "out-of-range", "pattern": "invalid-format"}


def _problems(document: Document, error: Any, root: dict[str, Any]) -> Iterator[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    rule, hint = _annotations(root, list(error.absolute_schema_path))
    kind = error.validator
    instance = error.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            yield document.problem((*path, key), "unknown-key", _unknown_key_message(key, allowed), key=True)
        return
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        message = f"missing required key {missing!r}" + (f"; {hint}" if hint else "")
        yield document.problem(path, rule or "missing-key", message)
        return
    if kind is None and error.schema is False:  # a property forbidden by a boolean `false` schema
        keys = _forbidden_keys(root, list(error.absolute_schema_path), _at(document.data, path))
        for key in keys:
            yield document.problem((*path, key), rule or "forbidden-key", hint or f"{key} is not allowed here",
                                   key=True)
        if not keys:
            yield document.problem(path, rule or "forbidden-value", hint or f"{_name(path)} is not allowed here")
        return
    if kind == "type":
        yield _type_problem(document, path, instance, error.validator_value)
        return
    if kind == "enum":
        choices = ", ".join(show(c).strip("'") for c in error.validator_value)
        yield document.problem(path, rule or "invalid-value",
                               f"{show(instance)} is not a valid {_name(path)}; use one of: {choices}")
        return
    if kind == "pattern" and list(error.absolute_schema_path)[-2:-1] == ["propertyNames"]:
        yield document.problem((*path, instance), rule or "invalid-name",
                               f"name {show(instance)} must start with a lower-case letter and hold only a-z, 0-9, "
                               "- and _", key=True)
        return
    if hint:
        yield document.problem(path, rule or "invalid-value", f"{_name(path)}: {show(instance)} {hint}")
        return
    yield document.problem(path, rule or _RULES.get(str(kind), "invalid-value"), _generic_message(error, path))


def _type_problem(document: Document, path: JsonPath, instance: Any, expected: Any) -> Problem:
    expected_types = expected if isinstance(expected, list) else [expected]
    if "boolean" in expected_types and isinstance(instance, str) and instance.lower() in YAML11_BOOLEANS:
        word = "true" if YAML11_BOOLEANS[instance.lower()] else "false"
        return document.problem(path, "yaml11-boolean",
                                f"{_name(path)}: {instance!r} is not a boolean in hbsdeploy files (YAML 1.2 reads it "
                                f"as text); write {word}")
    wanted = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected_types)
    got = "null" if instance is None else f"{_type_name(instance)} {show(instance)}"
    return document.problem(path, "wrong-type", f"{_name(path)} must be {wanted}, not {got}")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "number", float: "number", str: "string", list: "list", dict: "mapping"}.get(type(value), "value")


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {show(key)}; did you mean {close[0]}?"
    return f"unknown key {show(key)}; expected one of: {', '.join(allowed)}"


def _generic_message(error: Any, path: JsonPath) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    name = _name(path)
    if kind == "maxLength":
        return f"{name} is longer than {value} characters"
    if kind == "minLength":
        return f"{name} must not be empty" if value == 1 else f"{name} is shorter than {value} characters"
    if kind == "minProperties":
        return f"{name} needs at least {value} entr{'y' if value == 1 else 'ies'}"
    if kind == "maxProperties":
        return f"{name} has more than {value} entr{'y' if value == 1 else 'ies'}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{name} {show(instance)} is too small; it must be {'at least' if kind == 'minimum' else 'over'} {value}"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{name} {show(instance)} is too large; it must be {'at most' if kind == 'maximum' else 'under'} {value}"
    if kind == "const":
        return f"{name} must be {show(value)}"
    if kind == "pattern":
        return f"{name} {show(instance)} does not match the pattern {value}"
    message = str(error.message)
    return f"{name}: " + shorten(message, 200)


# Keywords whose subschemas apply to another place in the document: annotations above them do not reach below.
_ELSEWHERE = frozenset({"additionalProperties", "propertyNames", "items", "prefixItems", "contains",
                        "unevaluatedProperties", "unevaluatedItems"})
_NAMED_ELSEWHERE = frozenset({"properties", "patternProperties", "dependentSchemas"})


def _walk(root: dict[str, Any], schema_path: list[Any]) -> Iterator[tuple[bool, Any]]:
    """Each schema node along an error's schema path (following local `$ref`s, which the path does not name), and
    whether the step to it moved to another place in the document."""
    node: Any = root
    previous: Any = None
    for step in schema_path:
        while isinstance(node, dict) and step not in node and isinstance(node.get("$ref"), str):
            node = _resolve_local(root, node["$ref"])
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return
        yield (step in _ELSEWHERE or previous in _NAMED_ELSEWHERE), node
        previous = step


def _annotations(root: dict[str, Any], schema_path: list[Any]) -> tuple[str | None, str | None]:
    """The innermost `x-rule` and `x-hint` along the schema path, from schemas that apply to the failing value."""
    rule: str | None = None
    hint: str | None = None
    for moved, node in _walk(root, schema_path):
        if moved:
            rule = hint = None
        if isinstance(node, dict):
            rule = node.get("x-rule", rule)
            hint = node.get("x-hint", hint)
    return rule, hint


def _resolve_local(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def _at(data: Any, path: JsonPath) -> Any:
    for step in path:
        data = data[step]
    return data


def _forbidden_keys(root: dict[str, Any], schema_path: list[Any], instance: Any) -> list[str]:
    """The keys of `instance` (the mapping checked) that the `properties` at the end of `schema_path` maps to false."""
    properties: Any = None
    for _, node in _walk(root, schema_path):
        properties = node
    if schema_path[-1:] != ["properties"] or not isinstance(properties, dict) or not isinstance(instance, dict):
        return []
    return sorted(key for key, sub in properties.items() if sub is False and key in instance)
