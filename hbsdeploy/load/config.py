"""The repository configuration, `hbsdeploy.yaml`: where partner files and templates live, and the environments."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hbsdeploy.errors import HbsError, InputError, Problem, UsageError
from hbsdeploy.hosts import HostError, parse_portal_url
from hbsdeploy.load import schemacheck
from hbsdeploy.load.schemacheck import show
from hbsdeploy.load.schemaset import DEFAULT_SCHEMAS_FOLDER, SchemaSet, package_schemas, project_schemas
from hbsdeploy.load.yamlload import Document, JsonPath, display_path, load_yaml
from hbsdeploy.paths import leaves, real_file_path, real_folder, unresolvable

CONFIG_FILE_NAME = "hbsdeploy.yaml"
CONFIG_ENV_VAR = "HBSDEPLOY_CONFIG"
ENVIRONMENT_ENV_VAR = "HBSDEPLOY_ENV"  # the CLI's --env default, before default_environment

PORTAL_LOCAL = "local"
PORTAL_MANUAL = "manual"
PORTAL_WEB = "web"
WEB_PARALLELISM = 2  # browser contexts at once: the operator's own account, at human pace


@dataclass(frozen=True)
class Environment:
    """One portal environment (sandbox, QA, PROD) and how to reach it."""

    name: str
    portal: str  # "local", "manual", or an http(s) base URL of the portal API
    protected: bool = False
    description: str | None = None
    token_env: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    verify_tls: bool = True
    probe_private_hosts: bool = False  # doctor --probe may reach loopback and private hosts (never when protected)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0  # one request attempt, from sending to the last byte of the answer
    max_retries: int = 4
    state_file: Path | None = None  # the store behind `local`; the recorded state (YAML) behind `manual`
    state_dir: Path | None = None  # where a web portal keeps its session and evidence
    url: str | None = None  # portal: web: the address of the portal's web UI
    browser: Path | None = None  # portal: web: the Chromium executable (None: find one)
    web_parallelism: int = WEB_PARALLELISM
    page_timeout: float = 30.0
    username_env: str | None = None
    password_env: str | None = None
    totp_env: str | None = None
    ui: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # overrides of the UI map's names
    schemas: SchemaSet = field(default_factory=package_schemas)  # the project's partner schema (its service types)

    @property
    def kind(self) -> str:
        """`local`, `manual`, `web` or `http`."""
        return self.portal if self.portal in (PORTAL_LOCAL, PORTAL_MANUAL, PORTAL_WEB) else "http"

    @property
    def portal_address(self) -> str | None:
        """The HBS portal's web address a person opens (`url` of a web or manual portal), or None."""
        return self.url if self.kind in (PORTAL_WEB, PORTAL_MANUAL) else None

    @property
    def is_sandbox(self) -> bool:
        """The embedded portal is a sandbox: Service URLs may point at loopback or private hosts there."""
        return self.portal == PORTAL_LOCAL


@dataclass(frozen=True)
class Config:
    """The loaded `hbsdeploy.yaml`, every path made absolute against the file's folder."""

    path: Path
    shown: str
    root: Path
    partners_dir: Path
    templates_dir: Path
    state_dir: Path
    default_environment: str
    environments: dict[str, Environment]
    max_disable_fraction: float
    parallelism: int
    disable_check_min_scope: int = 10
    document: Document | None = None
    schemas_dir: Path | None = None  # `schemas:`, the folder of the project's schemas
    schemas: SchemaSet = field(default_factory=package_schemas)  # the partner schema in effect

    def environment(self, name: str | None) -> Environment:
        """The environment called `name` (from --env: an unknown one is a UsageError naming the choices), or the
        default one."""
        chosen = name or self.default_environment
        try:
            return self.environments[chosen]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            source = f" (from ${ENVIRONMENT_ENV_VAR})" if name and os.environ.get(ENVIRONMENT_ENV_VAR) == name else ""
            raise UsageError(f"{self.shown}: no environment {chosen!r}{source}; choose one of: {known}") from None

    def partner_files(self) -> list[Path]:
        """Every partner file, sorted by name: the *.yaml and *.yml files directly in the partner folder (the one
        definition, which validate also applies to the paths pre-commit passes; see `misplaced_partner_files`)."""
        if not self.partners_dir.is_dir():
            return []
        # Anything but a folder: a link to /dev/zero or a FIFO named *.yaml is reported when read, never skipped.
        # scandir, not iterdir: the kind of most entries comes with the listing, without a stat each.
        with os.scandir(self.partners_dir) as entries:
            names = sorted(entry.name for entry in entries if is_yaml_name(entry.name) and not entry.is_dir())
        return [self.partners_dir / name for name in names]

    def misplaced_partner_files(self) -> list[Path]:
        """YAML files in subfolders of the partner folder: hbsdeploy never reads them, so validate reports each one
        rather than let a partner there go undeployed, silently. Symbolic links to folders are not followed."""
        if not self.partners_dir.is_dir():
            return []
        found = []
        for folder, subfolders, files in os.walk(self.partners_dir):
            subfolders.sort()
            if Path(folder) != self.partners_dir:
                found += [Path(folder) / name for name in sorted(files) if is_yaml_name(name)]
        return found

    def partner_file_place(self, path: Path) -> str:
        """Where a path given on the command line stands: `partner` (directly in the partner folder, or outside it:
        a file named explicitly), `misplaced` (in a subfolder of the partner folder), `config`, `template` or
        `schema` (a change to these can break every partner)."""
        try:  # the folders resolved, not the file: a link named like a partner file is one (its target is checked)
            resolved = real_file_path(path)
        except (OSError, ValueError):
            return "partner"  # reported when the file is read
        folder = os.path.dirname(resolved)
        if resolved == real_file_path(self.path):
            return "config"
        if _inside(folder, real_folder(str(self.templates_dir))):
            return "template"
        if folder == real_folder(str(self.schemas_dir or self.root / DEFAULT_SCHEMAS_FOLDER)) and \
                path.name.endswith(".json"):
            return "schema"
        partners_dir = real_folder(str(self.partners_dir))
        if folder != partners_dir and _inside(folder, partners_dir):
            return "misplaced"
        return "partner"


def _inside(folder: str, ancestor: str) -> bool:
    return folder == ancestor or folder.startswith(ancestor.rstrip(os.sep) + os.sep)


def is_yaml_name(name: str) -> bool:
    """Whether a file name is one of a partner file: *.yaml or *.yml."""
    return Path(name).suffix in (".yaml", ".yml")


def find_config(explicit: str | None = None, start: Path | None = None) -> Path:
    """`--config`, else $HBSDEPLOY_CONFIG, else the nearest hbsdeploy.yaml in this folder or a parent (like git)."""
    chosen = explicit or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            source = "--config" if explicit else CONFIG_ENV_VAR
            raise HbsError(f"{chosen}: no such config file (from {source}); check the path")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise HbsError(f"no {CONFIG_FILE_NAME} in {here} or any parent folder; "
                   "run `hbsdeploy init` to create one, or pass --config FILE")


def load_config(path: Path) -> Config:
    """Load and validate `hbsdeploy.yaml`; an InputError lists every problem with its line."""
    document = load_yaml(path)
    problems = schemacheck.check(document, schemacheck.config_validator())
    if problems:
        raise InputError(problems)
    return _build(path, document)


# Folders and files hbsdeploy reads partners and templates from, or writes state to: they must stay inside the folder
# of hbsdeploy.yaml (the repository), so that a reviewed change to the config cannot make validate read or apply write
# elsewhere. The TLS files (client_cert, client_key, ca_bundle) are secrets kept out of the repository: anywhere.
_CONTAINED = ("partners", "templates", "schemas", "state_dir")
_CONTAINED_PER_ENVIRONMENT = ("state",)


_PATH_SETTINGS = ("state", "client_cert", "client_key", "ca_bundle", "browser")


def _escape_problems(root: Path, document: Document) -> list[Problem]:
    data: dict[str, Any] = document.data
    found: list[tuple[JsonPath, str]] = [((key,), data[key]) for key in _CONTAINED if isinstance(data.get(key), str)]
    for name, settings in data["environments"].items():
        for key in _CONTAINED_PER_ENVIRONMENT:
            value = (settings or {}).get(key)
            if isinstance(value, str):
                found.append((("environments", name, key), value))
    unusable: list[tuple[JsonPath, str]] = [((key,), data[key]) for key in _CONTAINED if isinstance(data.get(key), str)]
    unusable += [(("environments", name, key), (settings or {})[key]) for name, settings in data["environments"].items()
                 for key in _PATH_SETTINGS if isinstance((settings or {}).get(key), str)]
    bad_paths = [document.problem(where, "invalid-path", f"{where[-1]} {show(value)} holds a control or invisible "
                                                         "character; write a plain file path")
                 for where, value in unusable if not value.isprintable()]
    if bad_paths:
        return bad_paths
    problems = [document.problem(where, "invalid-path", f"{where[-1]} {show(value)} {why}; write a plain path")
                for where, value in found if (why := unresolvable(root, value))]
    problems += [document.problem(where, "path-escapes-repository",
                                 f"{where[-1]} {show(value)} points outside the folder of {document.path}; use a "
                                 "path relative to that folder and below it")
                for where, value in found if leaves(root, value)]
    for name, settings in data["environments"].items():
        portal = (settings or {}).get("portal")
        problems += _web_problems(document, name, settings or {})
        if not isinstance(portal, str) or portal in (PORTAL_LOCAL, PORTAL_MANUAL, PORTAL_WEB):
            continue
        try:
            parse_portal_url(portal, protected=bool((settings or {}).get("protected", False)))
        except HostError as exc:
            problems.append(document.problem(("environments", name, "portal"), exc.rule,
                                             f"portal {show(portal)} {exc}"))
    return problems


_WEB_ONLY = ("url", "browser", "parallelism", "username_env", "password_env", "totp_env", "ui")
_ALSO_MANUAL = ("url",)  # a manual portal's steps name its address


def _web_problems(document: Document, name: str, settings: dict[str, Any]) -> list[Problem]:
    """`url` and the other web settings: only with portal: web, where url is required; http:// only to loopback;
    `ui:` overrides name entries of the shipped UI map."""
    where = ("environments", name)
    if settings.get("portal") == PORTAL_MANUAL and isinstance(settings.get("url"), str):
        found = [document.problem((*where, key), "web-setting",
                                     f"{key} is only used with portal: web; remove it")
                    for key in _WEB_ONLY if key in settings and key not in _ALSO_MANUAL]
        try:
            parse_portal_url(settings["url"], protected=bool(settings.get("protected", False)),
                             secret="the portal password")
        except HostError as exc:
            found.append(document.problem((*where, "url"), "portal-setting", f"url {show(settings['url'])} {exc}"))
        return found
    if settings.get("portal") != PORTAL_WEB:
        return [document.problem((*where, key), "web-setting",
                                 f"{key} is only used with portal: web{' or manual' if key in _ALSO_MANUAL else ''}; "
                                 "remove it")
                for key in _WEB_ONLY if key in settings]
    url = settings.get("url")
    if not isinstance(url, str):
        return [document.problem((*where, "portal"), "web-setting",
                                 "portal: web needs url: the portal's address, e.g. https://portal-qa.hubject.com")]
    problems: list[Problem] = []
    try:  # the one host rule (hbsdeploy.hosts): http:// only to loopback, never protected, a valid host and port
        parse_portal_url(url, protected=bool(settings.get("protected", False)), secret="the portal password")
    except HostError as exc:
        problems.append(document.problem((*where, "url"), "portal-setting", f"url {show(url)} {exc}"))
    overrides = settings.get("ui")
    if isinstance(overrides, dict) and overrides:
        from hbsdeploy.load.uimap import unknown_override_keys

        problems += [document.problem((*where, "ui", *path), "unknown-ui-key", message, key=True)
                     for path, message in unknown_override_keys(overrides)]
    return problems


def _build(path: Path, document: Document) -> Config:
    data: dict[str, Any] = document.data
    root = path.resolve().parent
    escapes = _escape_problems(root, document)
    if escapes:
        raise InputError(escapes)
    state_dir = root / data.get("state_dir", ".hbsdeploy")
    schemas_folder = root / data.get("schemas", DEFAULT_SCHEMAS_FOLDER)
    if "schemas" in data and schemas_folder.exists() and not schemas_folder.is_dir():
        raise InputError([document.problem(("schemas",), "invalid-path", f"schemas {show(data['schemas'])} is a file, "
                                           "not a folder; name the folder that holds partner.schema.json (default "
                                           f"{DEFAULT_SCHEMAS_FOLDER})")])
    schemas = project_schemas(schemas_folder)
    environments = {
        name: _environment(name, settings or {}, root, state_dir, schemas)
        for name, settings in data["environments"].items()
    }
    default = data.get("default_environment", "sandbox")
    if default not in environments:
        position = document.position(("default_environment",))
        known = ", ".join(sorted(environments))
        raise InputError([document.problem(("default_environment",), "unknown-environment",
                                           f"default_environment {default!r} is not under environments "
                                           f"(line {position[0]}); choose one of: {known}")])
    apply_settings = data.get("apply", {})
    return Config(
        path=path,
        shown=display_path(path),
        root=root,
        partners_dir=root / data.get("partners", "partners"),
        templates_dir=root / data.get("templates", "templates"),
        state_dir=state_dir,
        default_environment=default,
        environments=environments,
        max_disable_fraction=float(apply_settings.get("max_disable_fraction", 0.25)),
        parallelism=int(apply_settings.get("parallelism", 8)),
        disable_check_min_scope=int(apply_settings.get("disable_check_min_scope", 10)),
        document=document,
        schemas_dir=schemas_folder,
        schemas=schemas,
    )


def _environment(name: str, settings: dict[str, Any], root: Path, state_dir: Path,
                 schemas: SchemaSet) -> Environment:
    def path_of(key: str) -> Path | None:
        value = settings.get(key)
        return root / value if value else None

    portal = settings["portal"]
    state_file = path_of("state")
    if state_file is None and portal == PORTAL_LOCAL:
        state_file = state_dir / f"{name}.sqlite3"
    if state_file is None and portal == PORTAL_MANUAL:  # reviewed and committed: docs/review.md
        state_file = root / "state" / f"{name}.yaml"
    timeouts = settings.get("timeouts", {})
    return Environment(
        name=name,
        portal=portal,
        protected=bool(settings.get("protected", False)),
        description=settings.get("description"),
        token_env=settings.get("token_env"),
        client_cert=path_of("client_cert"),
        client_key=path_of("client_key"),
        ca_bundle=path_of("ca_bundle"),
        verify_tls=bool(settings.get("verify_tls", True)),
        probe_private_hosts=bool(settings.get("probe_private_hosts", False)),
        connect_timeout=float(timeouts.get("connect", 5.0)),
        read_timeout=float(timeouts.get("read", 30.0)),
        total_timeout=float(timeouts.get("total", 120.0)),
        max_retries=int(settings.get("max_retries", 4)),
        state_file=state_file,
        state_dir=state_dir,
        url=settings.get("url"),
        browser=path_of("browser"),
        web_parallelism=int(settings.get("parallelism", WEB_PARALLELISM)),
        page_timeout=float(timeouts.get("page", 30.0)),
        username_env=settings.get("username_env"),
        password_env=settings.get("password_env"),
        totp_env=settings.get("totp_env"),
        ui={group: dict(names) for group, names in (settings.get("ui") or {}).items()},
        schemas=schemas,
    )
