"""`apply --format json`: the apply report as a stable JSON document (schemas/apply-report.schema.json).

format_version 1. Within a version, fields may be added, never removed or changed in meaning; anything else is a new
version (docs/ci.md, "Machine-readable outputs").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hbsdeploy.apply.orchestrate import ApplyReport
from hbsdeploy.apply.run import ChangeResult, Status
from hbsdeploy.load.yamlload import display_path

APPLY_REPORT_FORMAT_VERSION = 1

_RESULT = {Status.APPLIED: "applied", Status.FAILED: "failed", Status.NOT_ATTEMPTED: "not_attempted"}


def _change(item: ChangeResult) -> dict[str, Any]:
    change = item.change
    return {
        "partner_id": change.partner_id,
        "partner_name": change.partner_name,
        "service_type": change.service_type,
        "kind": change.kind.value,
        "result": _RESULT[item.status],
        "message": item.message,
        "fields": [{"field": f.field, "before": f.before, "after": f.after} for f in change.fields],
        "evidence": [display_path(Path(shown)) for shown in item.evidence],
    }


def apply_report_document(report: ApplyReport) -> dict[str, Any]:
    """What apply did, change by change, with the status and exit code the command ends with."""
    result = report.result
    items = result.results if result is not None else ()
    return {
        "format_version": APPLY_REPORT_FORMAT_VERSION,
        "environment": report.environment,
        "status": report.status,
        "exit_code": report.exit_code,
        "plan_checksum": report.plan.checksum,
        "summary": {
            "applied": sum(1 for item in items if item.status is Status.APPLIED),
            "failed": sum(1 for item in items if item.status is Status.FAILED),
            "not_attempted": sum(1 for item in items if item.status is Status.NOT_ATTEMPTED),
            "unchanged": report.plan.unchanged,
        },
        "changes": [_change(item) for item in items],
        "audit_error": result.audit_error if result is not None else None,
        "error": None,
        "next_step": report.next_step(),
    }


def refused_document(error: str, exit_code: int) -> dict[str, Any]:
    """The report of an apply refused before anything was written (the message is the one printed on stderr)."""
    return {
        "format_version": APPLY_REPORT_FORMAT_VERSION,
        "environment": None,
        "status": "refused",
        "exit_code": exit_code,
        "plan_checksum": None,
        "summary": {"applied": 0, "failed": 0, "not_attempted": 0, "unchanged": 0},
        "changes": [],
        "audit_error": None,
        "error": error,
        "next_step": None,
    }


def report_json(document: dict[str, Any]) -> str:
    """Sorted keys, 2-space indent, trailing newline, like the plan file."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
