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
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import DEFAULT_SETTINGS
from hbsdeploy.paths import resolve_within
from hbsdeploy.portal.contract import payload_validator

TEMPLATE_SUFFIX = ".json.j2"


class TemplateError(HbsError):
    """A template that cannot render a valid payload: where (the template as the user sees its path, and the line
    when known), a rule id, and what is wrong."""

    def __init__(self, rule: str, detail: str, template: str, line: int | None = None, where: str = "") -> None:
        self.rule, self.detail, self.template, self.line, self.where = rule, detail, template, line, where
        location = f"{template}:{line}" if line else template
        super().__init__(f"{location}: {detail}{f' {where}' if where else ''}")


def _shown(filename: str | None, fallback: str) -> str:
    """A template's path as the user sees it (relative to the working directory), never Jinja's absolute one."""
    from hbsdeploy.load.yamlload import display_path

    return display_path(Path(filename)) if filename else fallback


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
        self._templates: dict[str, tuple[jinja2.Template, str]] = {}  # service type -> template, its name shown

    def _template(self, service_type: str) -> tuple[jinja2.Template, str]:
        if service_type not in self._templates:
            name = service_type + TEMPLATE_SUFFIX
            try:
                template = self._jinja.get_template(name)
                # once per template, not per payload: display_path resolves the path (a realpath each time)
                self._templates[service_type] = (template, _shown(template.filename, name))
            except jinja2.TemplateNotFound as exc:
                shown = _shown(str(self.templates_dir / name), name)
                if exc.name != name:  # a template it imports or includes is missing
                    raise TemplateError("template-missing", f"imports {exc.name!r}, which is not in the template "
                                        "folder", shown) from None
                raise TemplateError("template-missing", f"no template for service type {service_type!r}: create "
                                    "this file", shown) from None
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(exc, name) from None
        return self._templates[service_type]

    def compile_all(self) -> list[TemplateError]:
        """The syntax errors of every template file in the folder (`*.j2`), used by a service type or not."""
        errors = []
        for path in sorted(self.templates_dir.rglob("*.j2")):
            name = path.relative_to(self.templates_dir).as_posix()
            try:
                self._jinja.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                errors.append(_syntax_error(exc, name))
            except jinja2.TemplateNotFound as exc:  # a broken link, or a folder named *.j2
                errors.append(TemplateError("template-missing", f"cannot be read ({exc.name})", _shown(str(path),
                                                                                                      name)))
        return errors

    def render(self, partner: Partner, environment: Environment,
               service_type: ResolvedServiceType) -> RenderedPayload:
        """Render one payload; TemplateError when the template fails or breaks the payload schema."""
        spec = self.config.schemas.service_types[service_type.name]
        settings = {name: service_type.values.get(name, DEFAULT_SETTINGS[name]) for name in spec.fields}
        if "certificate_sha256" in settings:
            settings["certificate_sha256"] = self._certificate_sha256(partner, service_type)
        context = {
            "partner": {"id": partner.partner_id, "name": partner.name, "role": partner.role},
            "environment": {"name": environment.name, "protected": environment.protected},
            "service_type": {"name": spec.name, "label": spec.label},
            "settings": settings,
        }
        template, shown = self._template(service_type.name)
        where = f"(partner {partner.path}, environment {environment.name})"
        try:
            text = template.render(context)
        except Exception as exc:  # template code can raise anything: TypeError, ZeroDivisionError, SecurityError...
            if isinstance(exc, jinja2.TemplateSyntaxError):  # an import compiled only when rendering
                raise _syntax_error(exc, shown) from None
            message = str(exc)
            if "StrictUndefined" in message:
                message = "a variable or field is undefined (check the names against the context in templates/)"
            filename, line = _template_location(exc, template)
            raise TemplateError("template-error", f"{type(exc).__name__}: {message}", _shown(filename, shown), line,
                                where) from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError("template-invalid-json", f"renders invalid JSON ({exc.msg} at rendered line "
                                f"{exc.lineno}, column {exc.colno}); wrap values in `| tojson`", shown,
                                where=where) from None
        validator = self._payload_validator
        errors = [] if validator.is_valid(payload) else sorted(validator.iter_errors(payload),
                                                                key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            at = "/".join(str(p) for p in first.absolute_path) or "(top)"
            raise TemplateError("template-invalid-payload", f"payload breaks schemas/portal-payload.schema.json at "
                                f"{at}: {first.message}", shown, where=where)
        wrong = _wrong_fields(spec, payload)
        if wrong:
            raise TemplateError("template-invalid-payload", f"payload {wrong}", shown, where=where)
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


def _wrong_fields(spec: ServiceTypeSpec, payload: Mapping[str, Any]) -> str:
    """What is wrong with a payload's fields for its service type (x-hbsdeploy.fields): '' when nothing."""
    if len(payload) == len(spec.fields) and all(name in payload for name in spec.fields):
        return ""
    missing = [name for name in spec.fields if name not in payload]
    extra = [name for name in payload if name not in spec.fields]
    if missing:
        return f"lacks {', '.join(missing)}, a field of {spec.name} (render every field in `settings`)"
    if extra:
        return (f"has {', '.join(extra)}, which {spec.name} does not have (its fields: {', '.join(spec.fields)}); "
                "render only the fields in `settings`, as templates/_payload.j2 does")
    return ""


def _syntax_error(exc: jinja2.TemplateSyntaxError, name: str) -> TemplateError:
    return TemplateError("template-syntax", f"template syntax error: {exc.message}", _shown(exc.filename, name),
                         exc.lineno)


def _template_location(exc: Exception, template: jinja2.Template) -> tuple[str | None, int | None]:
    """The file and line of the template frame where rendering failed (Jinja rewrites tracebacks to template
    lines); the template itself, without a line, when no frame is one of a template."""
    location: tuple[str | None, int | None] = (template.filename, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            location = (frame.filename, frame.lineno)
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
