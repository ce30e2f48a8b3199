"""`hbsdeploy schema`, and the `$schema` lines that point editors at the schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hbsdeploy.load.resources import load_schema
from tests.ecosystem.helpers import RunHbs

REPO = Path(__file__).resolve().parents[2]
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@pytest.mark.parametrize(("name", "schema"), [("partner", "partner"), ("config", "config"),
                                              ("payload", "portal-payload"), ("plan", "plan"),
                                              ("validation", "validation-report")])
def test_schema_prints_the_json_schema(hbs: RunHbs, name: str, schema: str) -> None:
    code, out, _ = hbs("schema", name)
    assert code == 0
    assert json.loads(out) == load_schema(schema)


def test_schema_defaults_to_the_partner_schema(hbs: RunHbs) -> None:
    code, out, _ = hbs("schema")
    assert code == 0
    assert json.loads(out)["$id"] == load_schema("partner")["$id"]


def test_schema_rejects_an_unknown_name(hbs: RunHbs) -> None:
    code, _, err = hbs("schema", "partners")
    assert code == 2
    assert "'partners' is not one of" in err


def _schema_target(path: Path) -> Path:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = SCHEMA_LINE.match(first)
    assert match, f"{path}: the first line must be `# yaml-language-server: $schema=...`, not {first!r}"
    return (path.parent / match.group(1)).resolve()


@pytest.mark.parametrize("path", sorted((REPO / "partners").glob("*.y*ml")), ids=lambda p: p.name)
def test_every_example_partner_points_editors_at_the_partner_schema(path: Path) -> None:
    target = _schema_target(path)
    assert target.is_file(), f"{path}: $schema points at {target}, which does not exist"
    assert target == (REPO / "schemas" / "partner.schema.json").resolve()


def test_the_example_config_points_editors_at_the_config_schema() -> None:
    assert _schema_target(REPO / "hbsdeploy.yaml") == (REPO / "schemas" / "config.schema.json").resolve()
