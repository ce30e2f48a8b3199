"""The published schemas agree with hbsdeploy on schema-level errors: the real check-jsonschema CLI passes every valid
example (and every rule-level invalid one, which only the portal rules refuse) and fails every schema-level one.

check-jsonschema reads a local --schemafile and its own vendored metaschemas: no network."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hbsdeploy.load import schemacheck
from hbsdeploy.load.schemaset import package_schemas
from hbsdeploy.load.schemasubset import SubsetValidator
from hbsdeploy.load.yamlload import load_yaml
from tests.validate.helpers import DATA, INVALID, REPO, VALID

PARTNER_SCHEMA = REPO / "schemas" / "partner.schema.json"
CONFIG_SCHEMA = REPO / "schemas" / "config.schema.json"
SCHEMA_LEVEL = [p for p in INVALID if p.name.startswith("schema-")]
RULE_LEVEL = [p for p in INVALID if p.name.startswith("rule-")]
# Rule-level files whose Service URL is not https or holds a blank: the schema's `service_url` pattern shows editors
# these too, and hbsdeploy leaves them to its portal rules (`x-reported-by-rules`), which say more precisely what is
# wrong.
URL_PATTERN_LEVEL = [p for p in RULE_LEVEL if p.name in ("rule-url-https.yaml", "rule-url-whitespace.yaml")]
EXAMPLES = sorted((REPO / "partners").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def _check_jsonschema_installed() -> None:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.fail("check-jsonschema is not installed; it is in the test extras: pip install -e '.[test]'")


def check_jsonschema(schema: Path, files: list[Path]) -> dict[str, object]:
    """check-jsonschema's JSON report on `files`."""
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), "-o", "json",
                           *map(str, files)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_corpus_has_both_levels() -> None:
    assert len(SCHEMA_LEVEL) >= 10 and len(RULE_LEVEL) >= 10


def test_check_jsonschema_passes_valid_and_rule_level_files() -> None:
    others = [p for p in RULE_LEVEL if p not in URL_PATTERN_LEVEL]
    report = check_jsonschema(PARTNER_SCHEMA, [*VALID, *EXAMPLES, *others])
    assert report["status"] == "ok" and not report["errors"] and not report.get("parse_errors"), report


def test_check_jsonschema_fails_service_urls_the_pattern_refuses_and_hbsdeploy_reports_them_once() -> None:
    report = check_jsonschema(PARTNER_SCHEMA, URL_PATTERN_LEVEL)
    refused = {(Path(str(e["filename"])).name, e["path"]) for e in report["errors"]}  # type: ignore[attr-defined]
    assert {path for _, path in refused} <= {"$.service_types.authorization.service_url",
                                             "$.service_types.reservation.service_url",
                                             "$.environments.prod.service_types.authorization.service_url"}
    assert {name for name, _ in refused} == {p.name for p in URL_PATTERN_LEVEL}
    for path in URL_PATTERN_LEVEL:  # hbsdeploy: the rule's message at each place, never the pattern's as well
        lines = path.with_suffix(".expected").read_text().splitlines()
        assert lines and all("error[service-url-" in line for line in lines), lines
        assert not any("invalid-format" in line for line in lines)


def test_check_jsonschema_fails_every_schema_level_file() -> None:
    report = check_jsonschema(PARTNER_SCHEMA, SCHEMA_LEVEL)
    assert not report.get("parse_errors")
    failed = {Path(str(error["filename"])).name for error in report["errors"]}  # type: ignore[attr-defined]
    assert failed == {p.name for p in SCHEMA_LEVEL}


def test_hbsdeploy_schema_check_agrees_file_by_file() -> None:
    """Our side of the same line: the schema check alone passes the same files and fails the same files."""
    validator = package_schemas().validator
    for path in [*VALID, *EXAMPLES, *RULE_LEVEL]:
        found = schemacheck.findings(load_yaml(path), validator)
        if path in URL_PATTERN_LEVEL:  # refused by the pattern, left to the rules
            assert found and all(f.deferred and f.path[-1] == "service_url" for f in found), path.name
        else:
            assert found == [], path.name
    for path in SCHEMA_LEVEL:
        assert schemacheck.check(load_yaml(path), validator) != [], path.name


def test_check_jsonschema_passes_the_configs() -> None:
    report = check_jsonschema(CONFIG_SCHEMA, [REPO / "hbsdeploy.yaml", DATA / "hbsdeploy.yaml"])
    assert report["status"] == "ok", report


def test_schemas_use_only_what_the_subset_validator_implements() -> None:
    """Otherwise validate silently falls back to importing jsonschema, and is slow again."""
    assert isinstance(package_schemas().validator, SubsetValidator)
    assert isinstance(schemacheck.config_validator(), SubsetValidator)
