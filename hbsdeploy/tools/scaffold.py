"""`hbsdeploy init`: the files of an hbsdeploy repository, and adding the missing ones without overwriting any."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hbsdeploy.errors import HbsError, UsageError
from hbsdeploy.load.resources import default_templates_dir, schemas_dir
from hbsdeploy.load.schemaset import package_schemas

HOOK_ID = "hbsdeploy-validate"
HOOK_FILES = r"^(partners/.*\.ya?ml|hbsdeploy\.yaml|templates/.*|schemas/[^/]*\.json)$"  # as .pre-commit-hooks.yaml

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

  # The real HBS portal has no API: `manual` plans against the state recorded in state/<env>.yaml (commit
  # it), and apply prints step-by-step instructions for Administration > Service Type Settings and records
  # what a person confirms at a terminal; `hbsdeploy state record` records steps done outside hbsdeploy.
  # With a portal API (e.g. your organisation's gateway), set `portal: https://...` and add token_env,
  # client_cert, client_key and ca_bundle (see docs/config.md).
  qa:
    portal: manual
    url: https://portal-qa.hubject.com  # named in the steps
    description: Hubject QA

  prod:
    portal: manual
    url: https://portal.hubject.com
    description: Hubject PROD
    protected: true

apply:
  max_disable_fraction: 0.25
  parallelism: 8
"""

def partner_text() -> str:
    """The example CPO: every service type the schema's annotations require of a CPO, with the recommended
    settings."""
    required = [spec for spec in package_schemas().service_types.values() if "cpo" in spec.required_for]
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

GITIGNORE_COMMENT = ("# hbsdeploy: embedded portal stores, audit log, evidence and locks; never commit private keys "
                     "or web sessions.")
GITIGNORE_LINES = (".hbsdeploy/", "*.key", "web-session-*.json")
GITIGNORE_TEXT = GITIGNORE_COMMENT + "\n" + "".join(line + "\n" for line in GITIGNORE_LINES)


def precommit_config_text(hook_repo: str | None = None, hook_rev: str | None = None) -> str:
    """A .pre-commit-config.yaml running the hbsdeploy-validate hook: from `hook_repo` at `hook_rev` (both given,
    never guessed: a tag that does not exist breaks every commit), else a local hook."""
    if hook_rev and not hook_repo:
        raise UsageError("--hook-rev needs --hook-repo: the git repository whose tag or commit it names")
    if hook_repo:
        if not hook_rev:
            raise UsageError("--hook-repo needs --hook-rev: a tag or commit of that repository that exists "
                             "(`git ls-remote --tags URL` lists them); without --hook-repo, init writes a local hook")
        return f"""\
# pre-commit (https://pre-commit.com): `pre-commit install` once, then every commit is validated.
repos:
  - repo: {hook_repo}
    rev: {hook_rev}
    hooks:
      - id: {HOOK_ID}
"""
    return f"""\
# pre-commit (https://pre-commit.com): `pre-commit install` once, then every commit is validated.
# This hook runs the hbsdeploy installed on your PATH. To have pre-commit install hbsdeploy itself, use the
# hook shipped in hbsdeploy's repository at a tag or commit that exists there
# (`hbsdeploy init --hook-repo URL --hook-rev REV` writes that):
#   - repo: <hbsdeploy's git URL>
#     rev: <tag or commit>
#     hooks:
#       - id: {HOOK_ID}
{LOCAL_HOOK_REPO}"""


LOCAL_HOOK_REPO = f"""\
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


@dataclass
class ScaffoldReport:
    """What `init` did: the files it created, the lines it added to an existing .gitignore, and what it skipped
    (path, why) because it exists already."""

    created: list[Path] = field(default_factory=list)
    gitignore_added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def hook_missing(self) -> bool:
        """The existing .pre-commit-config.yaml does not run the hbsdeploy hook."""
        return any(path == ".pre-commit-config.yaml" and HOOK_ID in why and "without" in why
                   for path, why in self.skipped)


def hook_entry(hook_repo: str | None = None, hook_rev: str | None = None) -> str:
    """The `repos:` entry of the hbsdeploy hook, to paste into an existing .pre-commit-config.yaml."""
    text = precommit_config_text(hook_repo, hook_rev)
    return text[text.index("repos:\n") + len("repos:\n"):]


def write_scaffold(target: Path, files: list[ScaffoldFile]) -> ScaffoldReport:
    """Create what is missing of `files` under `target`; never overwrite. An existing .gitignore gets the missing
    hbsdeploy lines appended; an existing file of any other name is left as it is and reported as skipped; the
    example partner is skipped when the partner folder already holds partner files."""
    report = ScaffoldReport()
    for item in files:
        path = target / item.path
        if item.path == ".gitignore" and path.is_file() and not path.is_symlink():
            report.gitignore_added = _complete_gitignore(path)
            if not report.gitignore_added:
                report.skipped.append((item.path, "exists and already ignores what hbsdeploy needs"))
            continue
        if os.path.lexists(path):
            report.skipped.append((item.path, _why_skipped(item, path)))
            continue
        if item.path.startswith("partners/") and _has_partner_files(path.parent):
            report.skipped.append((item.path, f"{item.path.split('/')[0]}/ already holds partner files"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("xb") as handle:  # exclusive: never replaces a file that appeared meanwhile
                handle.write(item.content)
        except FileExistsError:
            report.skipped.append((item.path, "exists (appeared while init ran)"))
            continue
        report.created.append(path)
    return report


def _why_skipped(item: ScaffoldFile, path: Path) -> str:
    if item.path == ".pre-commit-config.yaml" and path.is_file():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if HOOK_ID not in text:
            return f"exists without the {HOOK_ID} hook: add the entry shown below to its `repos:`"
        return f"exists and runs the {HOOK_ID} hook"
    if path.is_file() and path.read_bytes() == item.content:
        return "exists, identical"
    return "exists (left as it is; compare with `hbsdeploy init` in an empty folder)"


def _has_partner_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix in (".yaml", ".yml") for p in folder.iterdir())


def _complete_gitignore(path: Path) -> list[str]:
    """Append the hbsdeploy lines an existing .gitignore lacks (appending: nothing in it is replaced)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present and "/" + line not in present]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        addition = prefix + GITIGNORE_COMMENT + "\n" + "".join(line + "\n" for line in missing)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(addition)
    return missing
