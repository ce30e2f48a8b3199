"""`hbsdeploy init`: the files of a new hbsdeploy repository, and writing them without overwriting anything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hbsdeploy import __version__
from hbsdeploy.errors import HbsError
from hbsdeploy.load.resources import default_templates_dir, schemas_dir
from hbsdeploy.load.servicetypes import service_types
from hbsdeploy.text import plural

HOOK_ID = "hbsdeploy-validate"
HOOK_FILES = r"^(partners/.*\.ya?ml|hbsdeploy\.yaml)$"

CONFIG_TEXT = """\
# yaml-language-server: $schema=schemas/config.schema.json
# hbsdeploy repository config. Every field is described in hbsdeploy's docs/config.md.
partners: partners
templates: templates
state_dir: .hbsdeploy
default_environment: sandbox

environments:
  # The embedded portal: a local store under .hbsdeploy/, so `hbsdeploy plan` and `apply` work at once.
  sandbox:
    portal: local
    description: Embedded sandbox portal (local state store)

  # The real HBS portal has no API: `manual` plans against the last recorded state, and apply prints
  # step-by-step instructions for Administration > Service Type Settings and records what you confirm.
  # With a portal API (e.g. your organisation's gateway), set `portal: https://...` and add token_env,
  # client_cert, client_key and ca_bundle (see docs/config.md).
  qa:
    portal: manual
    description: Hubject QA (portal-qa.hubject.com)

  prod:
    portal: manual
    description: Hubject PROD (portal.hubject.com)
    protected: true

apply:
  max_disable_fraction: 0.25
  parallelism: 8
"""

def partner_text() -> str:
    """The example CPO: every service type the schema's annotations require of a CPO, with the recommended
    settings."""
    required = [spec for spec in service_types().values() if "cpo" in spec.required_for]
    labels = " and ".join(spec.label for spec in required) or "no"
    qa_overrides = "".join(f"      {spec.name}:\n        service_url: https://oicp-qa.example.com\n"
                           for spec in required)
    settings = "".join(
        f"  {spec.name}:\n    online_request: true\n"
        + ("    broadcast_request: false\n" if spec.broadcast else "")
        + "    service_url: https://oicp.example.com\n    client_certification: true\n    certificate: hubject\n"
        for spec in required)
    return f"""\
# yaml-language-server: $schema=../schemas/partner.schema.json
# A charge point operator with the recommended {labels} settings. Replace the name, ID and URLs with yours;
# add one file per partner (CPO: role cpo and operator_id; EMP: role emp and provider_id).
name: Example Operator
role: cpo
operator_id: "DE*X01"

# The environments this partner is deployed to, each with what differs there (QA and PROD URLs usually differ).
environments:
  sandbox:
  qa:
{"    service_types:" if required else "    service_types: {}"}
{qa_overrides}  prod:

{"service_types:" if required else "service_types: {}"}
{settings}"""

GITIGNORE_TEXT = """\
# hbsdeploy: embedded portal stores, audit log, evidence and locks; never commit private keys or web sessions.
.hbsdeploy/
*.key
web-session-*.json
"""


def precommit_config_text(hook_repo: str | None = None, hook_rev: str | None = None) -> str:
    """A .pre-commit-config.yaml running the hbsdeploy-validate hook: from `hook_repo` at `hook_rev`, else local."""
    if hook_repo:
        return f"""\
# pre-commit (https://pre-commit.com): `pre-commit install` once, then every commit is validated.
repos:
  - repo: {hook_repo}
    rev: {hook_rev or "v" + __version__}
    hooks:
      - id: {HOOK_ID}
"""
    return f"""\
# pre-commit (https://pre-commit.com): `pre-commit install` once, then every commit is validated.
# This hook runs the hbsdeploy installed on your PATH. To have pre-commit install hbsdeploy itself, use the
# hook shipped in hbsdeploy's repository instead (`hbsdeploy init --hook-repo URL --hook-rev TAG` writes that):
#   - repo: <hbsdeploy's git URL>
#     rev: <tag>
#     hooks:
#       - id: {HOOK_ID}
repos:
  - repo: local
    hooks:
      - id: {HOOK_ID}
        name: hbsdeploy validate
        entry: hbsdeploy validate
        language: system
        files: {HOOK_FILES}
        pass_filenames: true
        require_serial: true
"""


@dataclass(frozen=True)
class ScaffoldFile:
    """One file `init` creates: its path relative to the target folder, and its content."""

    path: str
    content: bytes


class ScaffoldConflict(HbsError):
    """Files `init` would create already exist; nothing was written."""

    def __init__(self, target: Path, existing: list[str]) -> None:
        self.target = target
        self.existing = existing
        super().__init__(f"{target}: {plural(len(existing), 'file')} already there, nothing written: "
                         f"{', '.join(existing)}")


def scaffold_files(hook_repo: str | None = None, hook_rev: str | None = None) -> list[ScaffoldFile]:
    """Every file of a new repository, sorted by path: config, an example partner, templates, schemas, hooks."""
    files = [
        ScaffoldFile("hbsdeploy.yaml", CONFIG_TEXT.encode()),
        ScaffoldFile("partners/example-cpo.yaml", partner_text().encode()),
        ScaffoldFile(".gitignore", GITIGNORE_TEXT.encode()),
        ScaffoldFile(".pre-commit-config.yaml", precommit_config_text(hook_repo, hook_rev).encode()),
    ]
    files += _copied(default_templates_dir(), "templates", "*.j2")
    files += _copied(schemas_dir(), "schemas", "*.schema.json")
    return sorted(files, key=lambda f: f.path)


def _copied(source: Path, folder: str, pattern: str) -> list[ScaffoldFile]:
    found = sorted(p for p in source.glob(pattern) if p.is_file())
    if not found:
        raise HbsError(f"hbsdeploy's own {folder} ({source}) holds no {pattern}; reinstall hbsdeploy")
    return [ScaffoldFile(f"{folder}/{p.name}", p.read_bytes()) for p in found]


def existing_files(target: Path, files: list[ScaffoldFile]) -> list[str]:
    """The paths in `files` that already exist under `target` (as files, folders or anything else)."""
    return [f.path for f in files if os.path.lexists(target / f.path)]


def write_scaffold(target: Path, files: list[ScaffoldFile]) -> list[Path]:
    """Create `files` under `target`; ScaffoldConflict, writing nothing, if any of them exists."""
    existing = existing_files(target, files)
    if existing:
        raise ScaffoldConflict(target, existing)
    written: list[Path] = []
    try:
        for item in files:
            path = target / item.path
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("xb") as handle:  # exclusive: never replaces a file that appeared meanwhile
                handle.write(item.content)
            written.append(path)
    except FileExistsError as exc:
        for path in written:  # leave the folder as it was
            path.unlink(missing_ok=True)
        raise ScaffoldConflict(target, [str(Path(str(exc.filename)).relative_to(target))]) from None
    return written
