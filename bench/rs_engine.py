"""jsonschema-rs behind hbsdeploy.load.schemacheck, for bench/bench_schema_engines.py only: an adapter from its
errors to the `jsonschema.ValidationError` shape schemacheck reads, and `install()`, which makes schemacheck compile
the schemas with jsonschema-rs instead of the subset (jsonschema_rs imported then, as a real switch would do)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RsError:
    """A jsonschema-rs error in the shape of `jsonschema.ValidationError`, as far as it can be rebuilt."""

    _KEYWORDS = {"Constant": "const", "OneOfNotValid": "oneOf", "OneOfMultipleValid": "oneOf", "FalseSchema": None}

    def __init__(self, error: Any, root: dict[str, Any]) -> None:
        kind = type(error.kind).__name__
        if kind == "PropertyNames":  # jsonschema-rs wraps the error of the name; jsonschema reports it directly
            error = error.kind.error
            kind = type(error.kind).__name__
        self.validator = self._KEYWORDS.get(kind, kind[:1].lower() + kind[1:])
        self.absolute_path = tuple(error.instance_path)
        schema_path = tuple(step for step in error.evaluation_path if step != "$ref")
        fragment = [int(s) if s.isdigit() else s for s in error.absolute_keyword_location.split("#/", 1)[1].split("/")]
        node = _at(root, fragment[:-1])
        self.instance = error.instance
        if self.validator is None:  # jsonschema reports a false subschema at the keyword that holds it
            self.absolute_path, schema_path, self.schema = self.absolute_path[:-1], schema_path[:-1], False
            self.validator_value = None
        else:
            self.schema, self.validator_value = node, node.get(fragment[-1]) if isinstance(node, dict) else None
        self.absolute_schema_path = schema_path
        required = error.kind.as_dict().get("property") if kind == "Required" else None
        self.message = f"{required!r} is a required property" if required else error.message


def _at(node: Any, steps: Iterable[Any]) -> Any:
    for step in steps:
        node = node[step]
    return node


class RsValidator:
    """A jsonschema-rs validator with the `schema` and `iter_errors` schemacheck uses."""

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema_rs

        self.schema = schema
        self._validator = jsonschema_rs.validator_for(schema)

    def iter_errors(self, instance: Any) -> list[RsError]:
        if self._validator.is_valid(instance):
            return []
        return [RsError(error, self.schema) for error in self._validator.iter_errors(instance)]


def install() -> None:
    """Make hbsdeploy.load.schemacheck compile every schema with jsonschema-rs."""
    from hbsdeploy.load import schemacheck

    schemacheck.compile_schema = RsValidator  # type: ignore[assignment]
