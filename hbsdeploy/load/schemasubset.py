"""A small JSON Schema (draft 2020-12) validator for the keywords hbsdeploy's own schemas use.

`hbsdeploy validate` runs on every commit, and importing `jsonschema` alone takes longer than checking a partner file
(docs/performance.md has the figures, and those of jsonschema-rs). This validator covers the subset of draft 2020-12
that schemas/partner.schema.json and schemas/config.schema.json use (see SUPPORTED), and reports errors with the
same attributes as `jsonschema.ValidationError` (`validator`, `validator_value`, `instance`, `schema`,
`absolute_path`, `absolute_schema_path`, `message`), so that the code that turns errors into messages works with
either. A schema that uses anything else is refused with `Unsupported`, and hbsdeploy.load.schemacheck then falls back
to `jsonschema`. tests/validate/test_schemasubset.py checks that the errors agree with jsonschema's on thousands of
documents, tests/validate/test_compat.py that the verdicts agree with check-jsonschema.

Each keyword is implemented once, in _KEYWORDS: compiling a schema turns every keyword into one check
`(instance, report) -> bool`. Most files are valid, so a document is first checked with `report=None` (a yes/no
answer that stops at the first failure); only a failing one is checked again with a _Report, which collects every
error with where it happened. `pattern` follows ECMA 262 (hbsdeploy.load.ecmaregex).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hbsdeploy.load.ecmaregex import ecma_pattern

# Keywords that never fail by themselves.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default",
                          "deprecated", "readOnly", "writeOnly"})

_Loc = tuple[str | int, ...]


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


class _Report:
    """Where the errors of the place being checked go: its instance and schema paths, and where a `false` subschema
    reports (at the keyword holding it, as jsonschema does)."""

    __slots__ = ("errors", "path", "schema_path", "false_path", "false_schema_path")

    def __init__(self, errors: list[SchemaError], path: _Loc = (), schema_path: _Loc = (),
                 false_at: tuple[_Loc, _Loc] = ((), ())) -> None:
        self.errors = errors
        self.path, self.schema_path = path, schema_path
        self.false_path, self.false_schema_path = false_at

    def into(self, keyword: _Loc, step: _Loc = (), schema_step: _Loc = ()) -> _Report:
        """The report of a subschema under `keyword`, applied at `step` of the instance."""
        at_keyword = self.schema_path + keyword
        return _Report(self.errors, self.path + step, at_keyword + schema_step, (self.path, at_keyword))

    def fail(self, message: str, keyword: str, value: Any, instance: Any, schema: Any) -> SchemaError:
        error = SchemaError(message, keyword, value, instance, schema, self.path, (*self.schema_path, keyword))
        self.errors.append(error)
        return error

    def fail_false(self, instance: Any) -> None:
        self.errors.append(SchemaError(f"False schema does not allow {instance!r}", None, None, instance, False,
                                       self.false_path, self.false_schema_path))


# A compiled keyword or schema: whether the instance passes; with a report, every error is added to it on the way.
_Check = Callable[[Any, "_Report | None"], bool]
# Compiles one keyword: (compiler, the keyword's value, the schema holding it) -> its check, or None if it has none.
_Keyword = Callable[["SubsetValidator", Any, dict[str, Any]], "_Check | None"]
_Assertion = Callable[["SubsetValidator", Any, dict[str, Any]], _Check]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
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
    if isinstance(one, dict):
        return isinstance(two, dict) and one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, list):
        return isinstance(two, list) and len(one) == len(two) and all(map(_equal, one, two))
    return not isinstance(two, (dict, list)) and bool(one == two)


def _always(instance: Any, report: _Report | None) -> bool:
    return True


def _never(instance: Any, report: _Report | None) -> bool:
    if report is not None:
        report.fail_false(instance)
    return False


class SubsetValidator:
    """Validates instances against one schema; `iter_errors` yields every failed keyword."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._compiled: dict[int, _Check] = {}
        self._root = self.compile(schema)

    def is_valid(self, instance: Any) -> bool:
        """True when the instance has no error."""
        return self._root(instance, None)

    def iter_errors(self, instance: Any) -> Iterator[SchemaError]:
        """Every failed keyword, outermost first."""
        if self._root(instance, None):
            return iter(())
        errors: list[SchemaError] = []
        self._root(instance, _Report(errors))
        return iter(errors)

    def compile(self, schema: Any) -> _Check:
        """The check of a (sub)schema; each one is compiled once, and a reference cycle through `$ref` is fine."""
        if schema is True or schema is False:
            return _always if schema else _never
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r} is neither an object nor a boolean")
        key = id(schema)
        if key not in self._compiled:
            self._compiled[key] = _always  # a `$ref` back to this schema looks its check up when it runs
            self._compiled[key] = _all(self._keywords(schema))
        return self._compiled[key]

    def _keywords(self, schema: dict[str, Any]) -> list[_Check]:
        checks = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword.startswith("x-"):
                continue
            compile_keyword = _KEYWORDS.get(keyword)
            if compile_keyword is None:
                raise Unsupported(f"keyword {keyword!r}")
            check = compile_keyword(self, value, schema)
            if check is not None:
                checks.append(check)
        return checks

    def reference(self, ref: str) -> _Check:
        """The check of the schema that a local `$ref` names, looked up when it runs (it may still be compiling)."""
        target = self._resolve(ref)
        check = self.compile(target)
        if isinstance(target, bool) or check is not _always:
            return check  # compiled already: called directly
        compiled, key = self._compiled, id(target)  # still compiling (a cycle): looked up when it runs
        return lambda instance, report: compiled[key](instance, report)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise Unsupported(f"$ref {ref!r} (only references within the schema)")
        try:
            return resolve_reference(self.schema, ref)
        except LookupError:
            raise Unsupported(f"$ref {ref!r} does not resolve") from None


def resolve_reference(root: Any, ref: str) -> Any:
    """The part of `root` a local `$ref` (`#/$defs/x`) names; LookupError when it names none (or another file)."""
    if not ref.startswith("#"):
        raise LookupError(ref)
    node: Any = root
    for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise LookupError(ref)
    return node


def _all(checks: list[_Check]) -> _Check:
    """One check for a schema's keywords: without a report it stops at the first failure, with one it runs them all."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def check(instance: Any, report: _Report | None) -> bool:
        valid = True
        for keyword in checks:
            if not keyword(instance, report):
                if report is None:
                    return False
                valid = False
        return valid
    return check


# -- the keywords: each compiles its value once and returns its check -----------------------------------------------


def _assertion(keyword: str, fails: Callable[[Any, Any], bool], message: Callable[[Any, Any], str]) -> _Assertion:
    """A keyword that checks the instance itself (no subschema): `fails(instance, value)`, explained by
    `message(instance, value)`."""
    def compile_keyword(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
        def check(instance: Any, report: _Report | None) -> bool:
            if not fails(instance, value):
                return True
            if report is not None:
                report.fail(message(instance, value), keyword, value, instance, schema)
            return False
        return check
    return compile_keyword


# The types one isinstance tells (bool is no int here: "boolean" is bool, and "integer" and "number" need more).
_PYTHON_TYPES: dict[str, type] = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def _type(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    names = value if isinstance(value, list) else [value]
    if any(name not in _TYPES for name in names):
        raise Unsupported(f"type {value!r}")
    shown = ", ".join(repr(name) for name in names)
    if all(name in _PYTHON_TYPES for name in names):  # the usual case, checked in one call: it runs for every value
        python_types = tuple(_PYTHON_TYPES[name] for name in names)

        def check(instance: Any, report: _Report | None) -> bool:
            if isinstance(instance, python_types):
                return True
            if report is not None:
                report.fail(f"{instance!r} is not of type {shown}", "type", value, instance, schema)
            return False
        return check
    tests = [_TYPES[name] for name in names]
    test = tests[0] if len(tests) == 1 else lambda i: any(test(i) for test in tests)
    return _assertion("type", lambda i, _: not test(i), lambda i, _: f"{i!r} is not of type {shown}")(v, value, schema)


def _enum(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    if all(isinstance(choice, str) for choice in value):
        choices = frozenset(value)
        fails: Callable[[Any, Any], bool] = lambda i, _: not isinstance(i, str) or i not in choices  # noqa: E731
    else:
        fails = lambda i, _: not any(_equal(i, choice) for choice in value)  # noqa: E731
    return _assertion("enum", fails, lambda i, _: f"{i!r} is not one of {value!r}")(v, value, schema)


def _pattern(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    search = ecma_pattern(value).search
    return _assertion("pattern", lambda i, _: isinstance(i, str) and search(i) is None,
                      lambda i, _: f"{i!r} does not match {value!r}")(v, value, schema)


_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda i, v: bool(i < v),
    "maximum": lambda i, v: bool(i > v),
    "exclusiveMinimum": lambda i, v: bool(i <= v),
    "exclusiveMaximum": lambda i, v: bool(i >= v),
}


def _bound(keyword: str) -> _Assertion:
    out_of_range = _BOUNDS[keyword]
    return _assertion(keyword, lambda i, value: _is_number(i) and out_of_range(i, value),
                      lambda i, value: f"{i!r} is out of range ({keyword} {value!r})")


def _min_properties_message(instance: Any, value: Any) -> str:
    return f"{instance!r} should be non-empty" if value == 1 else f"{instance!r} does not have enough properties"


def _properties(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    properties = [(name, v.compile(sub)) for name, sub in value.items()]

    def check(instance: Any, report: _Report | None) -> bool:
        if not isinstance(instance, dict):
            return True
        valid = True
        for name, sub in properties:
            if name in instance and not sub(instance[name], report and report.into(("properties",), (name,),
                                                                                     (name,))):
                if report is None:
                    return False
                valid = False
        return valid
    return check


def _additional_properties(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    known = frozenset(schema.get("properties", {}))
    if value is False:
        return _assertion("additionalProperties", lambda i, _: isinstance(i, dict) and not known.issuperset(i),
                          lambda i, _: _unexpected(i, known))(v, value, schema)
    extra = v.compile(value)
    return _each_key(lambda i: [(name, i[name]) for name in i if name not in known], extra,
                     ("additionalProperties",), with_step=True)


def _unexpected(instance: dict[str, Any], known: frozenset[str]) -> str:
    extras = sorted((name for name in instance if name not in known), key=str)
    return (f"Additional properties are not allowed ({', '.join(repr(name) for name in extras)} "
            f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _property_names(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    # jsonschema reports a bad name at the mapping's path, with the name as the instance.
    return _each_key(lambda i: [(name, name) for name in i], v.compile(value), ("propertyNames",), with_step=False)


def _each_key(pairs: Callable[[dict[str, Any]], list[tuple[str, Any]]], sub: _Check, keyword: _Loc,
              with_step: bool) -> _Check:
    """A check applying `sub` to each (key, value) of `pairs(mapping)`, at the key's path when `with_step`."""
    def check(instance: Any, report: _Report | None) -> bool:
        if not isinstance(instance, dict):
            return True
        valid = True
        for name, item in pairs(instance):
            if not sub(item, report and report.into(keyword, (name,) if with_step else ())):
                if report is None:
                    return False
                valid = False
        return valid
    return check


def _required(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    def check(instance: Any, report: _Report | None) -> bool:
        if not isinstance(instance, dict):
            return True
        missing = [name for name in value if name not in instance]
        if missing and report is not None:
            for name in missing:
                report.fail(f"{name!r} is a required property", "required", value, instance, schema)
        return not missing
    return check


def _ref(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    # Like jsonschema, the schema path does not name `$ref`: it continues inside the referenced schema.
    target = v.reference(value)
    return lambda instance, report: target(instance, None if report is None else report.into(()))


def _all_of(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    subs = [v.compile(sub) for sub in value]

    def check(instance: Any, report: _Report | None) -> bool:
        valid = True
        for index, sub in enumerate(subs):
            if not sub(instance, report and report.into(("allOf",), (), (index,))):
                if report is None:
                    return False
                valid = False
        return valid
    return check


def _any_of(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    subs = [v.compile(sub) for sub in value]

    def check(instance: Any, report: _Report | None) -> bool:
        if any(sub(instance, None) for sub in subs):
            return True
        if report is not None:
            context: list[SchemaError] = []
            for index, sub in enumerate(subs):
                sub(instance, _Report(context, report.path, report.schema_path).into(("anyOf",), (), (index,)))
            error = report.fail(f"{instance!r} is not valid under any of the given schemas", "anyOf", value,
                                instance, schema)
            error.context = context
        return False
    return check


def _one_of(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    subs = [v.compile(sub) for sub in value]

    def check(instance: Any, report: _Report | None) -> bool:
        matches = [index for index, sub in enumerate(subs) if sub(instance, None)]
        if len(matches) == 1:
            return True
        if report is not None:
            message = ("is not valid under any of the given schemas" if not matches
                       else f"is valid under each of {', '.join(str(i) for i in matches)}")
            report.fail(f"{instance!r} {message}", "oneOf", value, instance, schema)
        return False
    return check


def _not(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    negated = v.compile(value)
    return _assertion("not", lambda i, _: negated(i, None),
                      lambda i, _: f"{i!r} should not be valid under {value!r}")(v, value, schema)


def _if(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> _Check:
    # Like jsonschema, errors of `then` and `else` sit under those names, not under `if`.
    condition = v.compile(value)
    branches = {name: v.compile(schema[name]) for name in ("then", "else") if name in schema}
    then, otherwise = branches.get("then", _always), branches.get("else", _always)

    def check(instance: Any, report: _Report | None) -> bool:
        name, branch = ("then", then) if condition(instance, None) else ("else", otherwise)
        return branch(instance, report and report.into((), (), (name,)))
    return check


def _branch(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> None:
    """`then` and `else` are checked through `if`; compiled here too, so that what they hold is refused if it is
    unsupported even without an `if`."""
    v.compile(value)


def _defs(v: SubsetValidator, value: Any, schema: dict[str, Any]) -> None:
    """`$defs` are checked through `$ref`; compiled here too, to refuse what is unsupported up front."""
    for sub in value.values():
        v.compile(sub)


_KEYWORDS: dict[str, _Keyword] = {
    "type": _type,
    "enum": _enum,
    "const": _assertion("const", lambda i, value: not _equal(i, value), lambda i, value: f"{value!r} was expected"),
    "pattern": _pattern,
    "minLength": _assertion("minLength", lambda i, value: isinstance(i, str) and len(i) < value,
                            lambda i, _: f"{i!r} is too short"),
    "maxLength": _assertion("maxLength", lambda i, value: isinstance(i, str) and len(i) > value,
                            lambda i, _: f"{i!r} is too long"),
    **{keyword: _bound(keyword) for keyword in _BOUNDS},
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "propertyNames": _property_names,
    "minProperties": _assertion("minProperties", lambda i, value: isinstance(i, dict) and len(i) < value,
                                _min_properties_message),
    "maxProperties": _assertion("maxProperties", lambda i, value: isinstance(i, dict) and len(i) > value,
                                lambda i, _: f"{i!r} has too many properties"),
    "$ref": _ref,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
    "if": _if,
    "then": _branch,
    "else": _branch,
    "$defs": _defs,
}
SUPPORTED = frozenset(_KEYWORDS)
