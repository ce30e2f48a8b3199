"""JSON Schema validation of loaded YAML, turned into located problems with messages a person can act on.

The schemas are checked with hbsdeploy.load.schemasubset, which covers the keywords they use and loads in a
fraction of the time `jsonschema` takes; a schema edited to use anything else is checked with `jsonschema`
instead, with the same messages. Either way `pattern` has its ECMA 262 meaning (hbsdeploy.load.ecmaregex), and a
pattern without a faithful translation is refused when the schema is compiled.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hbsdeploy.errors import Problem
from hbsdeploy.load.ecmaregex import UntranslatablePattern, ecma_pattern
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

    def is_valid(self, instance: Any) -> bool: ...


def compile_schema(schema: dict[str, Any]) -> SchemaValidator:
    """A validator for `schema`: the fast subset validator, or `jsonschema` when the schema needs more."""
    try:
        return SubsetValidator(schema)
    except Unsupported:
        return _jsonschema_validator(schema)


def _jsonschema_validator(schema: dict[str, Any]) -> SchemaValidator:
    from jsonschema import Draft202012Validator, ValidationError, validators

    for _, text in pattern_places(schema):
        ecma_pattern(text)  # refuse an untranslatable pattern now, not in the middle of a validation

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Iterator[Any]:
        # ECMA 262 semantics, as in hbsdeploy.load.schemasubset and check-jsonschema.
        if isinstance(instance, str) and not ecma_pattern(value).search(instance):
            yield ValidationError(f"{instance!r} does not match {value!r}")

    def pattern_properties(validator: Any, value: dict[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for text, subschema in value.items():
                for key in instance:
                    if ecma_pattern(text).search(key):
                        yield from validator.descend(instance[key], subschema, path=key, schema_path=text)

    checker = validators.extend(Draft202012Validator, {"pattern": pattern, "patternProperties": pattern_properties})
    validator: SchemaValidator = checker(schema)
    return validator


_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # their values are instances, not schemas


def pattern_places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every `pattern` and `patternProperties` key in a schema, with where it is written (a JSON path)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from pattern_places(item, (*path, index))
    elif isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield (*path, "pattern"), node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            yield from (((*path, "patternProperties", key), key) for key in node["patternProperties"])
        for keyword, value in node.items():
            if keyword not in _DATA_KEYWORDS:
                yield from pattern_places(value, (*path, keyword))


def _shipped_validator(name: str) -> SchemaValidator:
    try:
        return compile_schema(load_schema(name))
    except UntranslatablePattern as exc:
        raise UntranslatablePattern(exc.pattern, f"schemas/{name}.schema.json: {exc}") from None


@functools.cache
def config_validator() -> SchemaValidator:
    """The compiled validator of schemas/config.schema.json."""
    return _shipped_validator("config")


@dataclass(frozen=True)
class Finding:
    """One schema problem and where in the data it is; what the portal rules may still check around it.

    `missing` marks a required key that is absent (the place named is the mapping that lacks it); `deferred`, a
    failure of a keyword marked `x-reported-by-rules` (editors show it; hbsdeploy's portal rules report the same
    mistake more precisely, and validate keeps this problem only where no rule reported at that place).
    """

    path: JsonPath
    problem: Problem
    missing: bool = False
    deferred: bool = False


def check(document: Document, validator: SchemaValidator) -> list[Problem]:
    """Every schema problem in the document, each located at its key or value."""
    return [finding.problem for finding in findings(document, validator)]


def findings(document: Document, validator: SchemaValidator) -> list[Finding]:
    """Every schema problem in the document with the place in the data it is about."""
    return [finding for error in validator.iter_errors(document.data)
            for finding in _problems(document, error, validator.schema)]


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


@dataclass(frozen=True)
class _Failure:
    """One schema error and what its message is built from: where it is, and the innermost x-rule and x-hint."""

    document: Document
    error: Any
    root: dict[str, Any]
    path: JsonPath
    rule: str | None
    hint: str | None
    deferred: bool

    def problem(self, path: JsonPath, rule: str, message: str, *, key: bool = False) -> Finding:
        return Finding(path, self.document.problem(path, rule, message, key=key), deferred=self.deferred)


def _problems(document: Document, error: Any, root: dict[str, Any]) -> list[Finding]:
    rule, hint, deferred = _annotations(root, list(error.absolute_schema_path))
    failure = _Failure(document, error, root, tuple(error.absolute_path), rule, hint, deferred)
    explain = _EXPLAIN.get(error.validator)
    found = explain(failure) if explain is not None else None
    return found if found is not None else [_hinted_or_generic(failure)]


def _unknown_keys(failure: _Failure) -> list[Finding] | None:
    instance = failure.error.instance
    if not isinstance(instance, dict):
        return None
    allowed = sorted(failure.error.schema.get("properties", {}))
    return [failure.problem((*failure.path, key), "unknown-key", _unknown_key_message(key, allowed), key=True)
            for key in sorted(set(instance) - set(allowed))]


def _missing_key(failure: _Failure) -> list[Finding]:
    message = failure.error.message
    missing = message.split("'")[1] if "'" in message else "?"
    text = f"missing required key {missing!r}" + (f"; {failure.hint}" if failure.hint else "")
    found = failure.problem(failure.path, failure.rule or "missing-key", text)
    return [Finding(found.path, found.problem, missing=True, deferred=found.deferred)]


def _forbidden(failure: _Failure) -> list[Finding] | None:
    """A property forbidden by a boolean `false` schema."""
    if failure.error.schema is not False:
        return None
    path, rule, hint = failure.path, failure.rule, failure.hint
    keys = _forbidden_keys(failure.root, list(failure.error.absolute_schema_path), _at(failure.document.data, path))
    if not keys:
        return [failure.problem(path, rule or "forbidden-value", hint or f"{_name(path)} is not allowed here")]
    return [failure.problem((*path, key), rule or "forbidden-key", hint or f"{key} is not allowed here", key=True)
            for key in keys]


def _wrong_type(failure: _Failure) -> list[Finding]:
    problem = _type_problem(failure.document, failure.path, failure.error.instance, failure.error.validator_value)
    return [Finding(failure.path, problem, deferred=failure.deferred)]


def _not_a_choice(failure: _Failure) -> list[Finding]:
    choices = ", ".join(show(c).strip("'") for c in failure.error.validator_value)
    return [failure.problem(failure.path, failure.rule or "invalid-value",
                            f"{show(failure.error.instance)} is not a valid {_name(failure.path)}; use one of: "
                            f"{choices}")]


def _bad_name(failure: _Failure) -> list[Finding] | None:
    """A key that does not match `propertyNames`; other patterns get the hinted or generic message."""
    if list(failure.error.absolute_schema_path)[-2:-1] != ["propertyNames"]:
        return None
    name = failure.error.instance
    return [failure.problem((*failure.path, name), failure.rule or "invalid-name",
                            f"name {show(name)} must start with a lower-case letter and hold only a-z, 0-9, - and _",
                            key=True)]


def _hinted_or_generic(failure: _Failure) -> Finding:
    error, path = failure.error, failure.path
    if failure.hint:
        return failure.problem(path, failure.rule or "invalid-value", f"{_name(path)}: {show(error.instance)} "
                               f"{failure.hint}")
    return failure.problem(path, failure.rule or _RULES.get(str(error.validator), "invalid-value"),
                           _generic_message(error, path))


# How each kind of error becomes problems; None from one means "not this case", and the hinted or generic message
# applies.
_EXPLAIN: dict[str | None, Callable[[_Failure], list[Finding] | None]] = {
    "additionalProperties": _unknown_keys,
    "required": _missing_key,
    None: _forbidden,
    "type": _wrong_type,
    "enum": _not_a_choice,
    "pattern": _bad_name,
}


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


def _entries(count: Any) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


# The message of an error without an x-hint, by keyword: (name of the key, the keyword's value, the instance).
_MESSAGES: dict[str, Callable[[str, Any, Any], str]] = {
    "maxLength": lambda name, value, _: f"{name} is longer than {value} characters",
    "minLength": lambda name, value, _: (f"{name} must not be empty" if value == 1
                                         else f"{name} is shorter than {value} characters"),
    "minProperties": lambda name, value, _: f"{name} needs at least {_entries(value)}",
    "maxProperties": lambda name, value, _: f"{name} has more than {_entries(value)}",
    "minimum": lambda name, value, instance: f"{name} {show(instance)} is too small; it must be at least {value}",
    "exclusiveMinimum": lambda name, value, instance: f"{name} {show(instance)} is too small; it must be over {value}",
    "maximum": lambda name, value, instance: f"{name} {show(instance)} is too large; it must be at most {value}",
    "exclusiveMaximum": lambda name, value, instance: f"{name} {show(instance)} is too large; it must be under "
                                                      f"{value}",
    "const": lambda name, value, _: f"{name} must be {show(value)}",
    "pattern": lambda name, value, instance: f"{name} {show(instance)} does not match the pattern {value}",
}


def _generic_message(error: Any, path: JsonPath) -> str:
    message = _MESSAGES.get(str(error.validator))
    if message is not None:
        return message(_name(path), error.validator_value, error.instance)
    return f"{_name(path)}: " + shorten(str(error.message), 200)


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


def _annotations(root: dict[str, Any], schema_path: list[Any]) -> tuple[str | None, str | None, bool]:
    """The innermost `x-rule` and `x-hint` along the schema path, from schemas that apply to the failing value, and
    whether the schema holding the failing keyword lists it in `x-reported-by-rules`."""
    rule: str | None = None
    hint: str | None = None
    by_rules: Any = ()
    for moved, node in _walk(root, schema_path):
        if moved:
            rule = hint = None
        if isinstance(node, dict):
            rule = node.get("x-rule", rule)
            hint = node.get("x-hint", hint)
            by_rules = node.get("x-reported-by-rules", ())
    keyword = schema_path[-1] if schema_path else None
    return rule, hint, isinstance(by_rules, list) and keyword in by_rules


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
