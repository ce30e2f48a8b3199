"""hbsdeploy.load.schemasubset reports exactly what jsonschema reports on hbsdeploy's schemas (differential test on
thousands of mutated documents), patterns follow ECMA 262, and unsupported schemas fall back to jsonschema."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from hbsdeploy.load import schemacheck
from hbsdeploy.load.ecmaregex import ecma_pattern
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.schemasubset import SubsetValidator, Unsupported
from hbsdeploy.load.yamlload import load_yaml, parse_yaml
from tests.validate.helpers import DATA, REPO, VALID

ODD_VALUES: list[Any] = [None, True, False, 0, 1, 1.0, 2.5, -1, 65, 601, "", "x", "yes", "DE*A36", "DE|8EO", "DE-8EO",
                         "+49*536", "https://a b", "local", "ftp://x", "Sandbox", "hubject", "user", "emp", "cpo", [],
                         [1], {}, {"a": 1}]
ODD_KEYS = ["servce_url", "Foo", "provider_id", "operator_id", "protected", "verify_tls", "role", "qa", "X"]


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict) and value:
        value = dict(value)
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.3:
            del value[key]
        elif roll < 0.6:
            value[key] = rng.choice(ODD_VALUES)
        elif roll < 0.7:
            value[rng.choice(ODD_KEYS)] = rng.choice(ODD_VALUES)
        else:
            value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value:
        return [_mutate(item, rng) for item in value]
    return rng.choice(ODD_VALUES) if rng.random() < 0.5 else value


def _summary(error: Any) -> tuple[str, tuple[Any, ...], tuple[Any, ...], str, bool]:
    return (str(error.validator), tuple(error.absolute_path), tuple(error.absolute_schema_path),
            json.dumps(error.instance, sort_keys=True), error.schema is False)


@pytest.mark.parametrize(("schema_name", "seeds"), [
    ("partner", [*VALID, *sorted((REPO / "partners").glob("*.yaml"))]),
    ("config", [DATA / "hbsdeploy.yaml", REPO / "hbsdeploy.yaml"]),
])
def test_same_errors_as_jsonschema(schema_name: str, seeds: list[Any]) -> None:
    schema = load_schema(schema_name)
    reference, subset = Draft202012Validator(schema), SubsetValidator(schema)
    rng = random.Random(20_24)
    for seed in seeds:
        base = load_yaml(seed).data
        for _ in range(300):
            instance = base
            for _ in range(rng.randint(1, 4)):
                instance = _mutate(instance, rng)
            expected = sorted(map(_summary, reference.iter_errors(instance)))
            assert sorted(map(_summary, subset.iter_errors(instance))) == expected, instance
            assert subset.is_valid(instance) == (not expected)


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    ("^DE$", "DE", True),
    ("^DE$", "DE\n", False),  # Python's $ would match before the newline
    ("^[$]$", "$", True),
    (r"^\$$", "$", True),
    ("^a|b$", "b\n", False),
])
def test_ecma_dollar(pattern: str, text: str, matches: bool) -> None:
    assert (ecma_pattern(pattern).search(text) is not None) is matches


def test_unsupported_keyword_falls_back_to_jsonschema_with_ecma_patterns() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[A-Z]{2}$"}},
              "unevaluatedProperties": False}
    with pytest.raises(Unsupported):
        SubsetValidator(schema)
    validator = schemacheck.compile_schema(schema)
    assert not isinstance(validator, SubsetValidator)
    document = parse_yaml('id: "DE\\n"\nother: 1\n', "t.yaml")
    assert sorted(p.rule for p in schemacheck.check(document, validator)) == ["invalid-format", "invalid-value"]


def test_remote_ref_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        SubsetValidator({"$ref": "https://example.com/schema.json"})
