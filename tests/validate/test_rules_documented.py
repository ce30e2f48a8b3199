"""Every rule `hbsdeploy validate` can report is documented with its source or reason (issue 13: "every rule in
`hbsdeploy validate` is listed in docs/decisions.md (or docs/config.md)")."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Where validate's problems come from: the loaders (YAML, config, schema), the checks, the template check, files.
PACKAGE = REPO / "hbsdeploy"
SOURCES = [*(PACKAGE / "load").glob("*.py"), *(PACKAGE / "check").glob("*.py"), *(PACKAGE / "render").glob("*.py"),
           PACKAGE / "files.py", PACKAGE / "hosts.py"]
RULE_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+\Z")
# kebab-case strings in those modules that are not rule ids
NOT_RULES = {
    "charge-detail-record", "charging-notifications",  # OICP path segments the URL rules look for
    "x-hint", "x-rule",  # names of the schema annotations that carry a hint and a rule id
}


def _schema_rules(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("x-rule", "missing_rule") and isinstance(value, str):
                found.add(value)
            _schema_rules(value, found)
    elif isinstance(node, list):
        for value in node:
            _schema_rules(value, found)


def rule_ids() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.match(node.value):
                found.add(node.value)
    for path in (REPO / "schemas").glob("*.json"):
        _schema_rules(json.loads(path.read_text(encoding="utf-8")), found)
    return found - NOT_RULES


def test_every_rule_id_is_documented_with_its_source_or_reason() -> None:
    docs = (REPO / "docs" / "decisions.md").read_text(encoding="utf-8") + (REPO / "docs" / "config.md").read_text(
        encoding="utf-8")
    found = rule_ids()
    assert {"service-url-oicp-path", "yaml11-boolean", "template-syntax", "unknown-key"} <= found  # the scan works
    assert sorted(rule for rule in found if f"`{rule}`" not in docs) == []
