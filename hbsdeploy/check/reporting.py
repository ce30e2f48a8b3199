"""Renderings of validation reports: text for people and editors; JSON for scripts; GitHub workflow commands, SARIF
2.1.0 and GitLab Code Quality for CI annotations on the lines.

`VALIDATION_FORMATS` is the one registry (name -> renderer) that `validate --format` offers. The JSON report's shape
is schemas/validation-report.schema.json; docs/ci.md has the format_version policy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import PurePath
from urllib.parse import quote

from hbsdeploy import __version__
from hbsdeploy.check.validate import ValidationReport
from hbsdeploy.errors import Problem, Severity
from hbsdeploy.text import plural

VALIDATION_FORMAT_VERSION = 1
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_GITLAB_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor"}


def summary_line(report: ValidationReport) -> str:
    """`checked 4 files: 1 error, 2 warnings`."""
    return (f"checked {plural(report.files, 'file')}: {plural(len(report.errors), 'error')}, "
            f"{plural(len(report.warnings), 'warning')}")


def validation_text(report: ValidationReport) -> str:
    """`path:line:col: error[rule]: message` lines, sorted, then one summary line."""
    lines = [problem.format() for problem in report.problems]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def validation_json(report: ValidationReport) -> str:
    """The report as a stable JSON document (`format_version` 1, schemas/validation-report.schema.json)."""
    document = {
        "format_version": VALIDATION_FORMAT_VERSION,
        "files": report.files,
        "errors": [p.as_json() for p in report.errors],
        "warnings": [p.as_json() for p in report.warnings],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _github_data(text: str) -> str:
    # The escapes of GitHub's actions/toolkit (command.ts): a message may not break the command's line.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def validation_github(report: ValidationReport) -> str:
    """GitHub Actions workflow commands, `::error file=...,line=...,col=...,title=rule::message`: annotations on the
    pull request's lines; then the summary as a plain log line."""
    lines = [f"::{p.severity.value} file={_github_property(p.path)},line={p.line},col={p.column},"
             f"title={_github_property(p.rule)}::{_github_data(p.message)}" for p in report.problems]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def _uri(path: str) -> str:
    """A SARIF artifact URI: relative paths as relative references (GitHub resolves them against the checkout),
    absolute ones as file: URIs."""
    if os.path.isabs(path):
        return PurePath(path).as_uri()
    return quote(path.replace(os.sep, "/"), safe="/")


def validation_sarif(report: ValidationReport) -> str:
    """A SARIF 2.1.0 log with one run of hbsdeploy, for code scanning (github/codeql-action/upload-sarif)."""
    rule_ids = sorted({p.rule for p in report.problems})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    results = [{
        "ruleId": p.rule,
        "ruleIndex": index[p.rule],
        "level": p.severity.value,
        "message": {"text": p.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(p.path)},
            "region": {"startLine": p.line, "startColumn": p.column},
        }}],
        "partialFingerprints": {"hbsdeploy/v1": _stable_id(p)},
    } for p in report.problems]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hbsdeploy",
                "version": __version__,
                "rules": [{"id": rule, "name": rule} for rule in rule_ids],
            }},
            "columnKind": "unicodeCodePoints",  # columns count characters, as the YAML parser does
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _stable_id(problem: Problem) -> str:
    """Stable for the same problem at the same place, different for any two problems of one report."""
    import hashlib  # only the CI formats need it

    key = "\0".join((problem.path, str(problem.line), str(problem.column), problem.rule, problem.message))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validation_gitlab(report: ValidationReport) -> str:
    """A GitLab Code Quality report (artifacts:reports:codequality): one issue per problem, with description,
    check_name, fingerprint, severity and location.path and lines.begin, as GitLab documents it."""
    issues = [{
        "description": p.message,
        "check_name": p.rule,
        "fingerprint": _stable_id(p),
        "severity": _GITLAB_SEVERITY[p.severity],
        "location": {"path": p.path.replace(os.sep, "/"), "lines": {"begin": p.line}},
    } for p in report.problems]
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


VALIDATION_FORMATS: dict[str, Callable[[ValidationReport], str]] = {
    "text": validation_text,
    "json": validation_json,
    "github": validation_github,
    "sarif": validation_sarif,
    "gitlab": validation_gitlab,
}
# Formats that scripts parse: a problem that stops validate before it reads a file is still a problem in the report.
MACHINE_FORMATS = frozenset({"json", "sarif", "gitlab", "github"})
