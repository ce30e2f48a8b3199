"""Schema patterns mean what ECMA 262 says, as check-jsonschema (regress, Unicode mode) runs them: a differential test
over patterns and strings where Python's `re` reads the same text differently; and the patterns that cannot be
translated faithfully are refused when the schema is compiled, with a message that names the pattern."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hbsdeploy.load import resources, schemacheck
from hbsdeploy.load.ecmaregex import UntranslatablePattern, ecma_pattern
from hbsdeploy.load.schemaset import SchemaFileError, project_schemas
from hbsdeploy.load.schemasubset import SubsetValidator

PATTERNS = [
    r"^\d+$", r"^\D$", r"^\w+$", r"^\W$", r"\bx", r"x\B", r"^\s$", r"^\S$", r"[^\s]", r"^[\s]+$", r"^[\S]$",
    r"^[^\S]$", r"^[a\S]$", r"^[^a\S]$", r"^[\d\s]$", r"^[^\d]$", r"^[\w-]$", r"^.$", r"^.+$", r"a$", r"^$",
    r"^[]$", r"^[^]$", r"^[^]+$", r"^\cJ$", r"^\u{1F600}$", r"^\ud83d\ude00$", r"^\0$", r"^[\b]$", r"^[[]$",
    r"^[a&&b]+$", r"^\/$", r"(?<n>a)b", r"(?=a)\w", r"(?<=a)b", r"(?<!a)b", r"^a{2}$", r"^a{1,}?$",
    r"^https?://[^\s]+$", r"^HBSDEPLOY_[A-Z0-9_]{1,100}$", r"^[a-z][a-z0-9_-]{0,62}$",
    r"^(([A-Za-z]{2}\*?[A-Za-z0-9]{3})|(\+?[0-9]{1,3}\*[0-9]{3}))$",
]
STRINGS = ["\u0663", "123", "\x1c", "\x1f", "\ufeff", "\u00a0", "\x85", "\u3000", "\u1680", "\u2028", "\r", "\n",
           "\t", " ", "a\n", "a", "b", "ab", "x", "xy", "\u00e9", " \u00e9", "_", "-", "\x08", "\x00", "\U0001f600",
           "[", "&", "/", "aa", "", "https://a.example/\x1cb", "https://a.example\n", "HBSDEPLOY_X\n", "DE*A36",
           "DE*A36\n", "\u0663\u0663"]

# Patterns refused: ECMA 262 reads them otherwise than Python can run (backreferences, \p{...}, a variable-length
# lookbehind), or ECMA 262's Unicode mode refuses them itself (the rest).
REFUSED = [r"(a)\1", r"\p{L}", r"\P{L}", r"(?<=a+)b", r"\k<n>(?<n>a)", r"\Z", r"\A", r"\-", r"\a", r"a{", r"a{,3}",
           r"]", r"}", r"a)", r"(?i)a", r"(?P<n>a)", r"(?#c)", r"(?>a)", r"a**", r"a*+", r"(?=a)*", r"[\d-z]",
           r"[a-\s]", r"\012", r"\x4", r"\u12", "\\", "[a", r"\N{DIGIT ONE}"]


def _check_jsonschema(schema: dict[str, object], instance: dict[str, str], tmp_path: Path) -> set[str]:
    """The instance keys check-jsonschema reports as failing."""
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "instance.json").write_text(json.dumps(instance))
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(tmp_path / "schema.json"),
                           "-o", "json", str(tmp_path / "instance.json")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert not report.get("parse_errors"), report
    return {str(error["path"]).removeprefix("$.") for error in report["errors"]}


def test_patterns_match_as_check_jsonschema_matches(tmp_path: Path) -> None:
    keys = {f"p{p}s{s}": (pattern, text) for p, pattern in enumerate(PATTERNS) for s, text in enumerate(STRINGS)}
    schema: dict[str, object] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "properties": {key: {"pattern": pattern} for key, (pattern, _) in keys.items()}}
    failing = _check_jsonschema(schema, {key: text for key, (_, text) in keys.items()}, tmp_path)
    assert len(failing) > 100  # the cases disagree often enough to prove something
    disagreements = [(pattern, text) for key, (pattern, text) in keys.items()
                     if (ecma_pattern(pattern).search(text) is None) != (key in failing)]
    assert disagreements == []
    validator = SubsetValidator(schema)
    assert {str(error.absolute_path[0]) for error in validator.iter_errors({k: t for k, (_, t) in keys.items()})} \
        == failing


@pytest.mark.parametrize("text", ["\u0663", "\u0663\u0663", "12\u0663"])
def test_digits_are_ascii(text: str) -> None:
    assert ecma_pattern(r"^\d+$").search(text) is None


@pytest.mark.parametrize("pattern", REFUSED)
def test_untranslatable_patterns_are_refused_at_compile_time(pattern: str) -> None:
    with pytest.raises(UntranslatablePattern) as refused:
        SubsetValidator({"properties": {"id": {"pattern": pattern}}})
    message = str(refused.value)
    assert repr(pattern) in message and "\n" not in message and "ECMA 262" in message


def test_the_jsonschema_fallback_refuses_them_too_when_compiling() -> None:
    schema = {"properties": {"id": {"pattern": r"\p{Lu}"}}, "unevaluatedProperties": False}
    with pytest.raises(UntranslatablePattern, match=r"\\\\p\{Lu\}"):
        schemacheck.compile_schema(schema)
    schema = {"patternProperties": {r"(?i)^x": True}, "unevaluatedProperties": False}
    with pytest.raises(UntranslatablePattern):
        schemacheck.compile_schema(schema)


def test_the_jsonschema_fallback_matches_pattern_properties_as_ecma() -> None:
    validator = schemacheck.compile_schema({"patternProperties": {r"^\d$": False}, "unevaluatedProperties": True})
    assert [error.instance for error in validator.iter_errors({"1": "one", "\u0663": "three"})] == ["one"]


def test_a_project_schema_with_such_a_pattern_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    schema = json.loads((resources.schemas_dir() / "partner.schema.json").read_text(encoding="utf-8"))
    schema["properties"]["name"]["pattern"] = r"^\p{L}"
    (folder / "partner.schema.json").write_text(json.dumps(schema, indent=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SchemaFileError, match=r"^schemas/partner\.schema\.json:\d+: not a usable JSON Schema "
                                              r"\(pattern '\^\\\\p\{L\}'"):
        project_schemas(folder).validator  # noqa: B018
