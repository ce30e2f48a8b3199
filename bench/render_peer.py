"""The render peer: what a reasonable script does without hbsdeploy, producing the bytes `hbsdeploy render` prints.

Each partner file loaded with PyYAML (its C loader when built), one Jinja environment with each template compiled
once, every payload parsed and checked with one compiled jsonschema validator, the whole printed as canonical JSON
(sorted keys, 2-space indent). No line numbers, no portal rules, no friendly errors: only the happy path.

    python bench/render_peer.py REPOSITORY
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
DEFAULTS = {"online_request": False, "broadcast_request": False, "service_url": None, "client_certification": False,
            "certificate": "hubject", "certificate_sha256": None}
LABELS = {"authorization": "Authorization", "reservation": "Reservation"}


def main(repo: Path) -> None:
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "portal-payload.schema.json").read_text()))
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(repo / "templates")),
                                     undefined=jinja2.StrictUndefined, autoescape=False)
    templates = {name: environment.get_template(f"{name}.json.j2") for name in LABELS}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted((repo / "partners").glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
        partner_id = data.get("operator_id") or data["provider_id"]
        for env_name, deployed in data["environments"].items():
            overrides = (deployed or {}).get("service_types") or {}
            for name, settings in data["service_types"].items():
                merged = {**DEFAULTS, **settings, **overrides.get(name, {})}
                text = templates[name].render(
                    partner={"id": partner_id, "name": data["name"], "role": data["role"]},
                    environment={"name": env_name, "protected": False},
                    service_type={"name": name, "label": LABELS[name]}, settings=merged)
                payload = json.loads(text)
                validator.validate(payload)
                out.setdefault(env_name, {}).setdefault(partner_id, {})[name] = payload
    sys.stdout.write(json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
