"""Fuzzing the loader, the validator and the renderer with hypothesis, for a bounded number of examples (no timing).

Arbitrary text and bytes give a Document or an InputError from the loader, and a report from validate: never another
exception. Documents generated from schemas/partner.schema.json (hypothesis-jsonschema) load back exactly, have no
schema problem, validate without raising, and render to payloads that are valid against the payload schema.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from hbsdeploy.check.validate import validate
from hbsdeploy.errors import HbsError, InputError
from hbsdeploy.load import schemacheck
from hbsdeploy.load.config import Config, Environment, load_config
from hbsdeploy.load.partner import partner_from_document
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.schemaset import package_schemas
from hbsdeploy.load.yamlload import Document, load_yaml, parse_yaml
from hbsdeploy.render.payloads import Renderer
from tests.security.helpers import REPO

hypothesis_jsonschema = pytest.importorskip("hypothesis_jsonschema")

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONFIG = """\
environments:
  sandbox:
    portal: local
  qa:
    portal: https://hbs-gateway.example.com/qa
  prod:
    portal: https://hbs-gateway.example.com/prod
    protected: true
"""

VALID_PARTNER: dict[str, Any] = {
    "name": "Example Charging GmbH", "role": "cpo", "operator_id": "DE*A36",
    "environments": {"sandbox": None, "qa": {"service_types": {"authorization": {
        "service_url": "https://oicp-qa.example.com"}}}, "prod": None},
    "service_types": {
        "authorization": {"online_request": True, "broadcast_request": False,
                          "service_url": "https://oicp.example.com", "client_certification": True,
                          "certificate": "hubject"},
        "reservation": {"online_request": False}},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "hbsdeploy.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "partners").mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    yield root


@pytest.fixture(scope="module")
def config(repo: Path) -> Config:
    return load_config(repo / "hbsdeploy.yaml")


# Characters YAML does not take raw in a double-quoted scalar, or reads as line breaks: escaped as \uXXXX.
_YAML_UNSAFE = {*range(0x7F, 0xA0), 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF}


def to_yaml(data: Any) -> str:
    """`data` as YAML (JSON flow style, a subset of YAML) that reads back exactly."""
    text = json.dumps(data, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if ord(c) in _YAML_UNSAFE else c for c in text)


def load_or_input_error(text: str) -> Document | None:
    try:
        return parse_yaml(text, "fuzz.yaml")
    except InputError as exc:
        assert exc.problems and all(p.line >= 1 and p.column >= 1 for p in exc.problems)
        return None


def validate_file(config: Config, repo: Path, content: bytes) -> None:
    """validate one file with this content: it reports, it never raises; every problem names a line."""
    path = repo / "partners" / "fuzz.yaml"
    path.write_bytes(content)
    report = validate(config, [path])
    assert all(p.line >= 1 and p.column >= 1 and p.message for p in report.problems)


# YAML-shaped text: fragments of syntax, tags, anchors, keys and awkward characters, joined at random.
_YAMLISH = st.lists(st.sampled_from(list("abnoy01:-?&*!|>'\"#%@`,.[]{}<=~\\ \t\n\r\x00\x1b\u0085\u2028\ufeff")
                                    + ["true", "null", "<<", "!!python/name:os.system", "&a ", "*a", "\n  ", "- ",
                                       "name: ", "role: ", "service_types:", "---", "...", "%YAML 1.1\n"]),
                    max_size=60).map("".join)


@FUZZ
@given(text=st.text(max_size=200) | _YAMLISH)
def test_arbitrary_text_gives_a_document_or_an_input_error(text: str) -> None:
    load_or_input_error(text)


@FUZZ
@given(content=st.binary(max_size=200) | _YAMLISH.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_are_validated_without_raising(repo: Path, config: Config, content: bytes) -> None:
    path = repo / "partners" / "fuzz.yaml"
    path.write_bytes(content)
    with contextlib.suppress(InputError):  # InputError or a Document: anything else fails the test
        load_yaml(path)
    validate_file(config, repo, content)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    return found


@FUZZ
@given(data=st.data())
def test_mutated_partner_files_are_validated_without_raising(repo: Path, config: Config, data: st.DataObject) -> None:
    """A valid partner file with a value replaced, removed or added anywhere: problems, never an exception."""
    document = copy.deepcopy(VALID_PARTNER)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        parent: Any = document
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "remove", "add"]))
        if not path or action == "add":
            target = parent[path[-1]] if path else document
            if isinstance(target, dict):
                target[data.draw(st.text(max_size=8))] = data.draw(_json_values)
        elif action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_json_values)
    validate_file(config, repo, to_yaml(document).encode("utf-8"))


def _inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """The schema with every local $ref replaced by its target (hypothesis-jsonschema resolves none under a urn $id)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline_refs({**target, **{k: v for k, v in node.items() if k != "$ref"}}, root)
        return {k: _inline_refs(v, root) for k, v in node.items() if k not in ("$defs", "$id", "$schema")}
    if isinstance(node, list):
        return [_inline_refs(v, root) for v in node]
    return node


PARTNER_SCHEMA = _inline_refs(load_schema("partner"), load_schema("partner"))
PAYLOAD_VALIDATOR = Draft202012Validator(load_schema("portal-payload"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(document=hypothesis_jsonschema.from_schema(PARTNER_SCHEMA))
def test_schema_generated_partners_validate_and_render(repo: Path, config: Config, document: dict[str, Any]) -> None:
    text = to_yaml(document)
    loaded = parse_yaml(text, "generated.yaml")
    assert loaded.data == document
    assert schemacheck.check(loaded, package_schemas().validator) == []
    validate_file(config, repo, text.encode("utf-8"))

    partner = partner_from_document(loaded)
    renderer = Renderer(config)
    for name in partner.environments:
        environment = Environment(name=name, portal="local")
        for service_type in partner.resolve(name).values():
            try:
                rendered = renderer.render(partner, environment, service_type)
            except HbsError as exc:  # a User certificate needs its file: the one error a schema-valid file can give
                assert service_type.values.get("certificate") == "user", str(exc)
                assert "certificate_file" in str(exc)
                continue
            assert list(PAYLOAD_VALIDATOR.iter_errors(dict(rendered.payload))) == []
            if "service_url" in service_type.values:  # the one free text of a payload stands in it verbatim
                assert rendered.payload["service_url"] == service_type.values["service_url"]
