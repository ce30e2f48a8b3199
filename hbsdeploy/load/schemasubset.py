"""A small JSON Schema (draft 2020-12) validator for the keywords hbsdeploy's own schemas use.

`hbsdeploy validate` runs on every commit, and importing `jsonschema` alone takes longer than checking a partner file.
This validator covers the subset of draft 2020-12 that schemas/partner.schema.json and schemas/config.schema.json use
(see SUPPORTED), and reports errors with the same attributes as `jsonschema.ValidationError` (`validator`,
`validator_value`, `instance`, `schema`, `absolute_path`, `absolute_schema_path`, `message`), so that the code that
turns errors into messages works with either. A schema that uses anything else is refused with `Unsupported`, and
hbsdeploy.load.schemacheck then falls back to `jsonschema`. tests/validate/test_compat.py checks that the results agree
with check-jsonschema on every example file.

`pattern` follows ECMA 262, as the JSON Schema specification asks: `$` matches at the very end of the string only
(Python's `$` also matches before a final newline, which would let "DE*A36\\n" pass as an OperatorID).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Keywords that never fail by themselves.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
                          "deprecated", "readOnly", "writeOnly"})
SUPPORTED = frozenset({"type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
                       "exclusiveMinimum", "exclusiveMaximum", "properties", "additionalProperties", "required",
                       "propertyNames", "minProperties", "maxProperties", "$ref", "allOf", "anyOf", "oneOf", "not",
                       "if", "then", "else"})


_Loc = tuple[str | int, ...]
_Check = Callable[[Any], bool]


class Unsupported(ValueError):
    """The schema uses a keyword or reference this validator does not implement."""


@dataclass
class SchemaError:
    """One failed keyword, shaped like `jsonschema.ValidationError` (the attributes hbsdeploy reads)."""

    message: str
    validator: str | None
    validator_value: Any
    instance: Any
    schema: Any
    absolute_path: _Loc
    absolute_schema_path: _Loc
    context: list[SchemaError] = field(default_factory=list)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def _equal(one: Any, two: Any) -> bool:
    """JSON equality: true is not 1, 1.0 is 1, and containers compare element by element."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    return bool(one == two)


def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema pattern for `re.search` with ECMA 262's `$` (end of string, not before a last newline)."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("]", index + 1) or pattern.startswith("^]", index + 1):
                out.append(pattern[index:pattern.index("]", index + 1) + 1])
                index = pattern.index("]", index + 1) + 1
                continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out))


class SubsetValidator:
    """Validates instances against one schema; `iter_errors` yields every failed keyword."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._refs: dict[str, Any] = {}
        self._check(schema)
        self._compiled: dict[int, _Check] = {}
        self._valid_root = self._compile(schema)

    # -- set-up: refuse what we do not implement, compile patterns, resolve references once ----------------------

    def _check(self, schema: Any) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r} is neither an object nor a boolean")
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword.startswith("x-"):
                continue
            if keyword not in SUPPORTED:
                raise Unsupported(f"keyword {keyword!r}")
            if keyword == "pattern":
                self._patterns[value] = ecma_pattern(value)
            elif keyword == "$ref":
                self._refs[value] = self._resolve(value)
            elif keyword == "type":
                names = value if isinstance(value, list) else [value]
                if any(name not in _TYPES for name in names):
                    raise Unsupported(f"type {value!r}")
            elif keyword in ("properties",):
                for sub in value.values():
                    self._check(sub)
            elif keyword in ("allOf", "anyOf", "oneOf"):
                for sub in value:
                    self._check(sub)
            elif keyword in ("additionalProperties", "propertyNames", "not", "if", "then", "else"):
                self._check(value)
        for sub in schema.get("$defs", {}).values():
            self._check(sub)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise Unsupported(f"$ref {ref!r} (only references within the schema)")
        node: Any = self.schema
        for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise Unsupported(f"$ref {ref!r} does not resolve")
        return node

    # -- validation --------------------------------------------------------------------------------------------------

    # -- a compiled yes/no check: most files are valid, and then nothing needs to say where or why ------------------

    def _compile(self, schema: Any) -> _Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        key = id(schema)
        if key not in self._compiled:
            self._compiled[key] = _never  # replaced below; a reference cycle compiles lazily through _ref_check
            self._compiled[key] = self._compile_object(schema)
        return self._compiled[key]

    def _ref_check(self, ref: str) -> _Check:
        target = self._refs[ref]
        return lambda instance: self._compile(target)(instance)

    def _compile_object(self, schema: dict[str, Any]) -> _Check:
        checks = [check for keyword, value in schema.items()
                  if (check := _compile_keyword(self, keyword, value, schema)) is not None]
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return lambda instance: all(check(instance) for check in checks)

    def iter_errors(self, instance: Any) -> Iterator[SchemaError]:
        """Every failed keyword, outermost first."""
        if self._valid_root(instance):
            return iter(())
        return self._errors(instance, self.schema, (), ())

    def is_valid(self, instance: Any) -> bool:
        """True when the instance has no error."""
        return self._valid_root(instance)

    def _valid(self, instance: Any, schema: Any) -> bool:
        return self._compile(schema)(instance)

    def _errors(self, instance: Any, schema: Any, path: _Loc, spath: _Loc) -> Iterator[SchemaError]:
        if schema is True:
            return
        if schema is False:
            yield SchemaError(f"False schema does not allow {instance!r}", None, None, instance, False, path, spath)
            return
        for keyword, value in schema.items():
            check = _KEYWORDS.get(keyword)
            if check is not None:
                yield from check(self, value, instance, schema, path, spath)

    def _descend(self, instance: Any, schema: Any, path: _Loc, spath: _Loc, step: _Loc = (),
                 schema_step: _Loc = ()) -> Iterator[SchemaError]:
        """Errors of a subschema at `path + step`, `spath + schema_step`; a `false` one fails where its keyword is,
        as jsonschema reports it."""
        if schema is False:
            yield SchemaError(f"False schema does not allow {instance!r}", None, None, instance, False, path, spath)
            return
        yield from self._errors(instance, schema, path + step, spath + schema_step)



def _error(message: str, keyword: str, value: Any, instance: Any, schema: Any, path: _Loc,
           spath: _Loc) -> SchemaError:
    return SchemaError(message, keyword, value, instance, schema, path, (*spath, keyword))


def _type(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
          spath: _Loc) -> Iterator[SchemaError]:
    names = value if isinstance(value, list) else [value]
    if not any(_TYPES[name](instance) for name in names):
        yield _error(f"{instance!r} is not of type {', '.join(repr(n) for n in names)}", "type", value, instance,
                     schema, path, spath)


def _enum(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
          spath: _Loc) -> Iterator[SchemaError]:
    if not any(_equal(instance, choice) for choice in value):
        yield _error(f"{instance!r} is not one of {value!r}", "enum", value, instance, schema, path, spath)


def _const(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
           spath: _Loc) -> Iterator[SchemaError]:
    if not _equal(instance, value):
        yield _error(f"{value!r} was expected", "const", value, instance, schema, path, spath)


def _pattern(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
             spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, str) and not v._patterns[value].search(instance):
        yield _error(f"{instance!r} does not match {value!r}", "pattern", value, instance, schema, path, spath)


def _min_length(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, str) and len(instance) < value:
        yield _error(f"{instance!r} is too short", "minLength", value, instance, schema, path, spath)


def _max_length(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, str) and len(instance) > value:
        yield _error(f"{instance!r} is too long", "maxLength", value, instance, schema, path, spath)


_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda i, v: bool(i < v),
    "maximum": lambda i, v: bool(i > v),
    "exclusiveMinimum": lambda i, v: bool(i <= v),
    "exclusiveMaximum": lambda i, v: bool(i >= v),
}


def _bound(keyword: str) -> Any:
    fails = _BOUNDS[keyword]

    def check(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
              spath: _Loc) -> Iterator[SchemaError]:
        if _is_number(instance) and fails(instance, value):
            yield _error(f"{instance!r} is out of range ({keyword} {value!r})", keyword, value, instance, schema,
                         path, spath)
    return check


def _properties(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, dict):
        for name, sub in value.items():
            if name in instance:
                yield from v._descend(instance[name], sub, path, (*spath, "properties"), (name,), (name,))


def _additional_properties(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                           spath: _Loc) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    known = schema.get("properties", {})
    extras = [name for name in instance if name not in known]
    if not extras or value is True:
        return
    if value is False:
        listed = ", ".join(repr(name) for name in sorted(extras, key=str))
        verb = "was" if len(extras) == 1 else "were"
        yield _error(f"Additional properties are not allowed ({listed} {verb} unexpected)", "additionalProperties",
                     value, instance, schema, path, spath)
        return
    for name in extras:
        yield from v._descend(instance[name], value, path, (*spath, "additionalProperties"), (name,))


def _required(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
              spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, dict):
        for name in value:
            if name not in instance:
                yield _error(f"{name!r} is a required property", "required", value, instance, schema, path, spath)


def _property_names(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                    spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, dict):
        for name in instance:
            yield from v._descend(name, value, path, (*spath, "propertyNames"))


def _min_properties(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                    spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, dict) and len(instance) < value:
        yield _error(f"{instance!r} should be non-empty" if value == 1 else f"{instance!r} does not have enough "
                     "properties", "minProperties", value, instance, schema, path, spath)


def _max_properties(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
                    spath: _Loc) -> Iterator[SchemaError]:
    if isinstance(instance, dict) and len(instance) > value:
        yield _error(f"{instance!r} has too many properties", "maxProperties", value, instance, schema, path, spath)


def _ref(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
         spath: _Loc) -> Iterator[SchemaError]:
    # Like jsonschema, the schema path does not name `$ref`: it continues inside the referenced schema.
    yield from v._descend(instance, v._refs[value], path, spath)


def _all_of(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
            spath: _Loc) -> Iterator[SchemaError]:
    for index, sub in enumerate(value):
        yield from v._descend(instance, sub, path, (*spath, "allOf"), (), (index,))


def _any_of(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
            spath: _Loc) -> Iterator[SchemaError]:
    context: list[SchemaError] = []
    for index, sub in enumerate(value):
        errors = list(v._descend(instance, sub, path, (*spath, "anyOf"), (), (index,)))
        if not errors:
            return
        context += errors
    error = _error(f"{instance!r} is not valid under any of the given schemas", "anyOf", value, instance, schema,
                   path, spath)
    error.context = context
    yield error


def _one_of(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
            spath: _Loc) -> Iterator[SchemaError]:
    matches = [index for index, sub in enumerate(value) if v._valid(instance, sub)]
    if len(matches) != 1:
        message = ("is not valid under any of the given schemas" if not matches
                   else f"is valid under each of {', '.join(str(i) for i in matches)}")
        yield _error(f"{instance!r} {message}", "oneOf", value, instance, schema, path, spath)


def _not(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
         spath: _Loc) -> Iterator[SchemaError]:
    if v._valid(instance, value):
        yield _error(f"{instance!r} should not be valid under {value!r}", "not", value, instance, schema, path, spath)


def _if(v: SubsetValidator, value: Any, instance: Any, schema: Any, path: _Loc,
        spath: _Loc) -> Iterator[SchemaError]:
    # Like jsonschema, errors of `then` and `else` sit under those names, not under `if`.
    branch = "then" if v._valid(instance, value) else "else"
    if branch in schema:
        yield from v._descend(instance, schema[branch], path, spath, (), (branch,))


_KEYWORDS: dict[str, Any] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "minLength": _min_length,
    "maxLength": _max_length,
    "minimum": _bound("minimum"),
    "maximum": _bound("maximum"),
    "exclusiveMinimum": _bound("exclusiveMinimum"),
    "exclusiveMaximum": _bound("exclusiveMaximum"),
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "propertyNames": _property_names,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "$ref": _ref,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
    "if": _if,
}


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _compile_keyword(v: SubsetValidator, keyword: str, value: Any, schema: dict[str, Any]) -> _Check | None:
    """A yes/no check of one keyword, with the semantics of its error function above; None for annotations."""
    if keyword == "type":
        types = [_TYPES[name] for name in (value if isinstance(value, list) else [value])]
        if len(types) == 1:
            return types[0]  # type: ignore[no-any-return]
        return lambda i: any(t(i) for t in types)
    if keyword == "enum":
        if all(isinstance(choice, str) for choice in value):
            choices = frozenset(value)
            return lambda i: isinstance(i, str) and i in choices
        return lambda i: any(_equal(i, choice) for choice in value)
    if keyword == "const":
        return lambda i: _equal(i, value)
    if keyword == "pattern":
        search = v._patterns[value].search
        return lambda i: not isinstance(i, str) or search(i) is not None
    if keyword == "minLength":
        return lambda i: not isinstance(i, str) or len(i) >= value
    if keyword == "maxLength":
        return lambda i: not isinstance(i, str) or len(i) <= value
    if keyword in _BOUNDS:
        fails = _BOUNDS[keyword]
        return lambda i: not _is_number(i) or not fails(i, value)
    if keyword == "properties":
        properties = [(name, v._compile(sub)) for name, sub in value.items()]
        return lambda i: not isinstance(i, dict) or all(check(i[name]) for name, check in properties if name in i)
    if keyword == "additionalProperties":
        known = frozenset(schema.get("properties", {}))
        if value is False:
            return lambda i: not isinstance(i, dict) or known.issuperset(i)
        extra = v._compile(value)
        return lambda i: not isinstance(i, dict) or all(extra(i[name]) for name in i if name not in known)
    if keyword == "required":
        return lambda i: not isinstance(i, dict) or all(name in i for name in value)
    if keyword == "propertyNames":
        names = v._compile(value)
        return lambda i: not isinstance(i, dict) or all(names(name) for name in i)
    if keyword == "minProperties":
        return lambda i: not isinstance(i, dict) or len(i) >= value
    if keyword == "maxProperties":
        return lambda i: not isinstance(i, dict) or len(i) <= value
    if keyword == "$ref":
        return v._ref_check(value)
    if keyword in ("allOf", "anyOf", "oneOf"):
        subs = [v._compile(sub) for sub in value]
        if keyword == "allOf":
            return lambda i: all(check(i) for check in subs)
        if keyword == "anyOf":
            return lambda i: any(check(i) for check in subs)
        return lambda i: sum(1 for check in subs if check(i)) == 1
    if keyword == "not":
        negated = v._compile(value)
        return lambda i: not negated(i)
    if keyword == "if":
        condition = v._compile(value)
        then = v._compile(schema.get("then", True))
        otherwise = v._compile(schema.get("else", True))
        return lambda i: then(i) if condition(i) else otherwise(i)
    return None  # annotations, and `then`/`else` (checked through `if`)
