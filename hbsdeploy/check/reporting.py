"""Renderings of validation reports: text for people, editors and CI annotations; JSON for scripts."""

from __future__ import annotations

import json

from hbsdeploy.check.validate import ValidationReport
from hbsdeploy.text import plural

VALIDATION_FORMAT_VERSION = 1


def validation_text(report: ValidationReport) -> str:
    """`path:line:col: error[rule]: message` lines, sorted, then one summary line."""
    lines = [problem.format() for problem in report.problems]
    lines.append(f"checked {plural(report.files, 'file')}: {plural(len(report.errors), 'error')}, "
                 f"{plural(len(report.warnings), 'warning')}")
    return "\n".join(lines) + "\n"


def validation_json(report: ValidationReport) -> str:
    """The report as a stable JSON document (`format_version` 1)."""
    document = {
        "format_version": VALIDATION_FORMAT_VERSION,
        "files": report.files,
        "errors": [p.as_json() for p in report.errors],
        "warnings": [p.as_json() for p in report.warnings],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
