"""Rendering partner settings into portal API payloads through the Jinja templates in the template folder.

The templates run in Jinja's sandbox with StrictUndefined, loaded only from the configured folder, and compiled once
per run. Each rendering is parsed as JSON and checked against schemas/portal-payload.schema.json, so a broken
template is an error naming the template and line, the partner file and the environment.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hbsdeploy.check.certs import CertificateError, read_certificate
from hbsdeploy.check.project import load_project
from hbsdeploy.errors import HbsError, Problem
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner, ResolvedServiceType
from hbsdeploy.load.servicetypes import service_types
from hbsdeploy.load.settings import DEFAULT_SETTINGS, SETTING_FIELDS
from hbsdeploy.paths import resolve_within
from hbsdeploy.portal.contract import payload_validator

TEMPLATE_SUFFIX = ".json.j2"


class TemplateError(HbsError):
    """A template that cannot render a valid payload."""


@dataclass(frozen=True)
class RenderedPayload:
    """The portal API request body for one service type of one partner in one environment."""

    environment: str
    partner_id: str
    service_type: str
    payload: Mapping[str, Any]
    partner_path: str


class Renderer:
    """Renders payloads with the templates of one folder; templates compile on first use and are reused."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.templates_dir = config.templates_dir
        if not self.templates_dir.is_dir():
            raise HbsError(f"{config.shown}: template folder {self.templates_dir} does not exist; "
                           "fix `templates:` or run `hbsdeploy init`")
        self._jinja = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(self.templates_dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self._payload_validator = payload_validator()
        self._templates: dict[str, jinja2.Template] = {}

    def _template(self, service_type: str) -> jinja2.Template:
        if service_type not in self._templates:
            name = service_type + TEMPLATE_SUFFIX
            try:
                self._templates[service_type] = self._jinja.get_template(name)
            except jinja2.TemplateNotFound:
                raise TemplateError(f"no template for service type {service_type!r}: create "
                                    f"{self.templates_dir / name}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}"
                                    ) from None
        return self._templates[service_type]

    def render(self, partner: Partner, environment: Environment,
               service_type: ResolvedServiceType) -> RenderedPayload:
        """Render one payload; TemplateError when the template fails or breaks the payload schema."""
        spec = service_types()[service_type.name]
        settings = {name: service_type.values.get(name, DEFAULT_SETTINGS[name]) for name in SETTING_FIELDS}
        settings["certificate_sha256"] = self._certificate_sha256(partner, service_type)
        context = {
            "partner": {"id": partner.partner_id, "name": partner.name, "role": partner.role},
            "environment": {"name": environment.name, "protected": environment.protected},
            "service_type": {"name": spec.name, "label": spec.label},
            "settings": settings,
        }
        template = self._template(service_type.name)
        where = f"(partner {partner.path}, environment {environment.name})"
        try:
            text = template.render(context)
        except Exception as exc:  # template code can raise anything: TypeError, ZeroDivisionError, SecurityError...
            message = str(exc)
            if "StrictUndefined" in message:
                message = "a variable or field is undefined (check the names against the context in templates/)"
            raise TemplateError(f"{_template_location(exc, template)}: {type(exc).__name__}: {message} {where}"
                                ) from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{template.filename}: renders invalid JSON ({exc.msg} at rendered line {exc.lineno},"
                                f" column {exc.colno}) {where}; wrap values in `| tojson`") from None
        errors = sorted(self._payload_validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            at = "/".join(str(p) for p in first.absolute_path) or "(top)"
            raise TemplateError(f"{template.filename}: payload breaks schemas/portal-payload.schema.json at {at}: "
                                f"{first.message} {where}")
        return RenderedPayload(environment.name, partner.partner_id, service_type.name, payload, partner.path)

    def _certificate_sha256(self, partner: Partner, service_type: ResolvedServiceType) -> str | None:
        if service_type.values.get("certificate") != "user":
            return None
        value = service_type.values.get("certificate_file")
        path = resolve_within(self.config.root, value) if isinstance(value, str) else None
        if path is None:
            raise HbsError(f"{partner.path}: certificate_file of {service_type.name} is missing or outside the "
                           "repository; run `hbsdeploy validate`")
        try:
            return read_certificate(path).sha256
        except CertificateError as exc:
            raise HbsError(f"{partner.path}: certificate_file {value!r}: {exc}; run `hbsdeploy validate`") from None

    def render_all(self, partners: Iterable[Partner], environments: Iterable[Environment]) -> list[RenderedPayload]:
        """Every payload of the partners in the environments they are deployed to, sorted."""
        rendered = [
            self.render(partner, environment, service_type)
            for environment in environments
            for partner in partners
            if environment.name in partner.environments
            for service_type in partner.resolve(environment.name).values()
        ]
        rendered.sort(key=lambda r: (r.environment, r.partner_id, r.service_type))
        return rendered


def _template_location(exc: Exception, template: jinja2.Template) -> str:
    """`file:line` of the template frame where rendering failed (Jinja rewrites tracebacks to template lines)."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    location = template.filename or "template"
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            location = f"{frame.filename}:{frame.lineno}"
    return location


def render_project(config: Config, environment: str | None = None, partner_ids: Sequence[str] = (), *,
                   warn: Callable[[list[Problem]], None]) -> list[RenderedPayload]:
    """`render`'s job: validate (refusing on errors, warnings to `warn`), then every payload of the partners named (or
    all) in `environment` (or every environment)."""
    environments = [config.environment(environment)] if environment else list(config.environments.values())
    project = load_project(config, environments[0] if environment else None, partner_ids)
    warn(project.warnings)
    return Renderer(config).render_all(project.partners, environments)


def payloads_document(rendered: Iterable[RenderedPayload]) -> dict[str, dict[str, dict[str, Mapping[str, Any]]]]:
    """environment -> partner ID -> service type -> payload."""
    document: dict[str, dict[str, dict[str, Mapping[str, Any]]]] = {}
    for item in rendered:
        document.setdefault(item.environment, {}).setdefault(item.partner_id, {})[item.service_type] = item.payload
    return document


def canonical_json(value: Any) -> str:
    """The one byte-for-byte form: sorted keys, 2-space indent, UTF-8, trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_rendered(rendered: Iterable[RenderedPayload], out_dir: Path) -> list[Path]:
    """One file per payload: OUT/<environment>/<partner ID, percent-encoded>/<service type>.json, written atomically."""
    from urllib.parse import quote

    from hbsdeploy.atomic import write_atomic

    written = []
    for item in rendered:
        path = out_dir / item.environment / quote(item.partner_id, safe="") / f"{item.service_type}.json"
        write_atomic(path, canonical_json(item.payload))
        written.append(path)
    return written
