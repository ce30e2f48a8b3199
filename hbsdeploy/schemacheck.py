"""JSON Schema validation of loaded YAML, turned into located problems with messages a person can act on."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hbsdeploy.errors import Problem
from hbsdeploy.resources import load_schema
from hbsdeploy.yamlload import Document, JsonPath

YAML11_BOOLEANS = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}
_TYPE_NAMES = {"boolean": "true or false", "string": "a string", "object": "a mapping", "array": "a list",
               "integer": "a whole number", "number": "a number", "null": "null"}


@functools.cache
def partner_validator() -> Draft202012Validator:
    """The compiled validator of schemas/partner.schema.json."""
    return Draft202012Validator(load_schema("partner"))


@functools.cache
def config_validator() -> Draft202012Validator:
    """The compiled validator of schemas/config.schema.json."""
    return Draft202012Validator(load_schema("config"))


def check(document: Document, validator: Draft202012Validator) -> list[Problem]:
    """Every schema problem in the document, each located at its key or value."""
    return [problem for error in validator.iter_errors(document.data)
            for problem in _problems(document, error, validator.schema)]


def show(value: Any, limit: int = 60) -> str:
    """A value for a message: repr escapes invisible and bidirectional characters, and long values are cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problems(document: Document, error: ValidationError, root: dict[str, Any]) -> Iterator[Problem]:
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
        parent = tuple(error.absolute_path)
        for key in _forbidden_keys(root, list(error.absolute_schema_path), document, parent):
            yield document.problem((*parent, key), rule or "forbidden-key", hint or f"{key} is not allowed here",
                                   key=True)
        return
    if kind == "type":
        yield _type_problem(document, path, instance, error.validator_value)
        return
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        yield document.problem(path, rule or "invalid-value", f"{show(instance)} is not one of: {choices}")
        return
    if kind == "pattern" and list(error.absolute_schema_path)[-2:-1] == ["propertyNames"]:
        yield document.problem((*path, instance), rule or "invalid-name",
                               f"name {show(instance)} must start with a lower-case letter and hold only a-z, 0-9, "
                               "- and _", key=True)
        return
    if hint:
        yield document.problem(path, rule or "invalid-value", f"{show(instance)} {hint}")
        return
    yield document.problem(path, rule or f"schema-{kind}", _generic_message(error))


def _type_problem(document: Document, path: JsonPath, instance: Any, expected: Any) -> Problem:
    expected_types = expected if isinstance(expected, list) else [expected]
    if "boolean" in expected_types and isinstance(instance, str) and instance.lower() in YAML11_BOOLEANS:
        word = "true" if YAML11_BOOLEANS[instance.lower()] else "false"
        return document.problem(path, "yaml11-boolean",
                                f"{instance!r} is not a boolean in hbsdeploy files; write {word}")
    wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected_types)
    return document.problem(path, "wrong-type", f"expected {wanted}, got {_type_name(instance)} {show(instance)}")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {int: "number", float: "number", str: "string", list: "list", dict: "mapping"}.get(type(value), "value")


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {show(key)}; did you mean {close[0]}?"
    return f"unknown key {show(key)}; expected one of: {', '.join(allowed)}"


def _generic_message(error: ValidationError) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "maxLength":
        return f"is longer than {value} characters"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minProperties":
        return f"needs at least {value} entr{'y' if value == 1 else 'ies'}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{show(instance)} is out of range ({kind} {value})"
    if kind == "const":
        return f"must be {show(value)}"
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."


def _annotations(root: dict[str, Any], schema_path: list[Any]) -> tuple[str | None, str | None]:
    """The innermost `x-rule` and `x-hint` along the schema path (following local `$ref`s)."""
    rule: str | None = None
    hint: str | None = None
    node: Any = root
    for step in schema_path:
        while isinstance(node, dict) and step not in node and "$ref" in node:
            node = _resolve_local(root, node["$ref"])
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            break
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


def _forbidden_keys(root: dict[str, Any], schema_path: list[Any], document: Document, parent: JsonPath) -> list[str]:
    properties = _resolve_local(root, "#/" + "/".join(str(s) for s in schema_path))
    instance: Any = document.data
    for step in parent:
        instance = instance[step]
    if not isinstance(properties, dict) or not isinstance(instance, dict):
        return []
    return sorted(key for key, sub in properties.items() if sub is False and key in instance)
