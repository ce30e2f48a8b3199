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
           PACKAGE / "files.py", PACKAGE / "hosts.py",
           PACKAGE / "cli" / "main.py"]  # the validate command: a missing config in a machine format (config-not-found)
RULE_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+\Z")
# kebab-case strings in those modules that are not rule ids
NOT_RULES = {
    "charge-detail-record", "charging-notifications",  # OICP path segments the URL rules look for
    "x-hint", "x-rule",  # names of the schema annotations that carry a hint and a rule id
    "utf-8",  # an encoding's name (the YAML reader's rule for a file that is not UTF-8 is `encoding`)
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


def _rule_takers(trees: dict[Path, ast.Module]) -> tuple[dict[str, set[int]], dict[Path, dict[str, set[int]]]]:
    """Where a call passes a rule id: the position of the `rule` parameter (or dataclass field) of every class and
    method of the package (`Problem` is in errors.py), and of each module's own functions (a bare name is that
    module's: ecmaregex's `fail` takes a message, yamlload's a rule)."""
    shared: dict[str, set[int]] = {}
    local: dict[Path, dict[str, set[int]]] = {path: {} for path in trees}
    for path, tree in trees.items():
        methods: set[ast.AST] = set()
        for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            fields = [item.target.id for item in cls.body
                      if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)]
            if "rule" in fields:
                shared.setdefault(cls.name, set()).add(fields.index("rule"))
            for item in cls.body:
                if isinstance(item, ast.FunctionDef):
                    methods.add(item)
                    names = [arg.arg for arg in item.args.args]
                    if "rule" in names:  # self is not passed at the call
                        shared.setdefault(cls.name if item.name == "__init__" else item.name, set()).add(
                            names.index("rule") - 1)
        for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            names = [arg.arg for arg in function.args.args]
            if function not in methods and "rule" in names:
                local[path].setdefault(function.name, set()).add(names.index("rule"))
    return shared, local


def _passed_rules(trees: dict[Path, ast.Module]) -> set[str]:
    """The string constants passed as a rule id (`Problem(..., "encoding", ...)`, `fail("encoding", ...)`,
    `rule or "invalid-name"`) or compared with one (`exc.rule == "not-a-file"`): rule ids of any spelling, one word
    included, which the kebab-case scan alone would miss."""
    package = {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}
    shared, local = _rule_takers({**package, **trees})
    found: set[str] = set()

    def constants(node: ast.AST | None) -> set[str]:
        if not isinstance(node, (ast.Constant, ast.BoolOp, ast.IfExp)):
            return set()
        return {item.value for item in ast.walk(node) if isinstance(item, ast.Constant) and isinstance(item.value, str)}

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Attribute):
                    positions = shared.get(node.func.attr, set())
                elif isinstance(node.func, ast.Name):
                    positions = shared.get(node.func.id, set()) | local[path].get(node.func.id, set())
                else:
                    continue
                keyword = next((item.value for item in node.keywords if item.arg == "rule"), None)
                for position in positions:
                    plain = not any(isinstance(arg, ast.Starred) for arg in node.args[:position + 1])
                    found |= constants(node.args[position] if plain and position < len(node.args) else keyword)
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "rule":
                for comparator in node.comparators:
                    found |= constants(comparator)
    return found


def rule_ids() -> set[str]:
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in SOURCES}
    found = _passed_rules(trees)
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.match(node.value):
                found.add(node.value)
    for path in (REPO / "schemas").glob("*.json"):
        _schema_rules(json.loads(path.read_text(encoding="utf-8")), found)
    return found - NOT_RULES


def test_every_rule_id_is_documented_with_its_source_or_reason() -> None:
    docs = (REPO / "docs" / "decisions.md").read_text(encoding="utf-8") + (REPO / "docs" / "config.md").read_text(
        encoding="utf-8")
    found = rule_ids()
    # the scan works: kebab-case ids, a one-word id passed to a local helper, one the validate command makes itself
    assert {"service-url-oicp-path", "yaml11-boolean", "template-syntax", "unknown-key", "encoding",
            "config-not-found"} <= found
    assert sorted(rule for rule in found if f"`{rule}`" not in docs) == []
