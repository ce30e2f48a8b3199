"""Helpers for the end-to-end tests: the example repository's partners, configs, and what a store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hbsdeploy.portal.store import Store

TOKEN = "e2e-t0ken-that-must-never-be-printed"
TOKEN_ENV = "HBSDEPLOY_E2E_TOKEN"

# The example partners' service types (partners/ in the repository): 3 partners, 4 service types.
EXAMPLE_KEYS = [("+49*536", "authorization"), ("DE*A36", "authorization"), ("DE*A36", "reservation"),
                ("DE-8EO", "authorization")]
EXAMPLE_PARTNERS = ["+49*536", "DE*A36", "DE-8EO"]

LOCAL_CONFIG = """\
default_environment: {default}
environments:
  sandbox:
    portal: local
  qa:
    portal: manual
  prod:
    portal: local
    protected: true
apply:
  max_disable_fraction: 0.25
  parallelism: 8
"""


def write_config(repo: Path, text: str) -> None:
    (repo / "hbsdeploy.yaml").write_text(text, encoding="utf-8")


def snapshot(state_file: Path) -> dict[tuple[str, str], tuple[dict[str, Any] | None, int]]:
    """Everything a store holds: (partner, service type) -> (settings, version)."""
    if not state_file.exists():
        return {}
    store = Store(state_file)
    held = {}
    for partner_id in store.partners():
        for name, stored in store.read_all(partner_id).items():
            held[(partner_id, name)] = (stored.settings, stored.version)
    return held


def read_audit_lines(repo: Path) -> list[dict[str, Any]]:
    path = repo / ".hbsdeploy" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


OFFLINE_CPO = """\
name: Example Charging GmbH
role: cpo
operator_id: "DE*A36"
environments:
  sandbox:
  qa:
  prod:
service_types:
  authorization:
    online_request: false
  reservation:
    online_request: false
"""

