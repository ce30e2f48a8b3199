"""docs/config.md documents every field of both schemas, and nothing they lack: the page cannot drift."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hbsdeploy.load.resources import load_schema

REPO = Path(__file__).resolve().parents[2]
CONFIG_MD = REPO / "docs" / "config.md"
ROW = re.compile(r"^\| `([^`]+)` \|")
SECTIONS = {"config": "## hbsdeploy.yaml", "partner": "## Partner files"}


def _deref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def property_names(node: Any) -> Iterator[str]:
    """Every key of every `properties` anywhere in the schema, $defs included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from property_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from property_names(item)


def resolve(path: str, root: dict[str, Any]) -> bool:
    """True when a documented dotted path names a property; `<...>` stands for a key of additionalProperties, or
    (as `<type>`) any of the properties at that level."""
    schema = _deref(root, root)
    for part in path.split("."):
        properties = schema.get("properties", {})
        if part in properties:
            schema = _deref(properties[part], root)
        elif part.startswith("<") and isinstance(schema.get("additionalProperties"), dict):
            schema = _deref(schema["additionalProperties"], root)
        elif part.startswith("<") and properties:
            schema = _deref(next(iter(properties.values())), root)
        else:
            return False
    return True


def documented(section: str) -> list[str]:
    text = CONFIG_MD.read_text(encoding="utf-8")
    start = text.index(SECTIONS[section] + "\n")
    end = text.find("\n## ", start + 1)
    return [m.group(1) for line in text[start:end if end > 0 else None].splitlines() if (m := ROW.match(line))]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_every_schema_property_is_documented_and_nothing_else(name: str) -> None:
    schema = load_schema(name)
    paths = documented(name)
    assert len(paths) == len(set(paths)), "a field is documented twice"
    in_schema = set(property_names(schema))
    in_docs = {path.rsplit(".", 1)[-1] for path in paths} - {"<name>"}
    assert in_schema - in_docs == set(), f"fields of the {name} schema missing from docs/config.md"
    assert in_docs - in_schema == set(), f"docs/config.md documents fields the {name} schema does not have"
    unknown = [path for path in paths if not resolve(path, schema)]
    assert unknown == [], f"documented paths that do not exist in the {name} schema"


def test_the_resolver_rejects_a_wrong_path() -> None:
    schema = load_schema("config")
    assert resolve("environments.<name>.timeouts.read", schema)
    assert not resolve("environments.timeouts.read", schema)
    assert not resolve("environments.<name>.timeout", schema)
