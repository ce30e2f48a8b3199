"""validate's check of the templates: every template file compiles, and each partner's service types render into a
valid payload in every environment the partner is deployed to. Each mistake is one problem at its template line."""

from __future__ import annotations

from collections.abc import Iterable

from hbsdeploy.check.validate import ValidationReport
from hbsdeploy.errors import HbsError, Problem, Severity
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.render.payloads import Renderer, TemplateError


def add_template_problems(report: ValidationReport, config: Config, environment: str | None) -> ValidationReport:
    """The report with the templates' problems added (validate's report of every partner file: `checked_all`)."""
    environments = [config.environment(environment)] if environment else list(config.environments.values())
    report.add(check_templates(config, report.partners, environments))
    return report.finish()


def check_templates(config: Config, partners: Iterable[Partner], environments: Iterable[Environment]) -> list[Problem]:
    """The template problems, one per template mistake (however many renderings it breaks)."""
    if not config.templates_dir.is_dir():
        line, column = config.document.position(("templates",)) if config.document else (1, 1)
        return [Problem(config.shown, line, column, Severity.ERROR, "template-folder-missing",
                        f"template folder {display_path(config.templates_dir)} does not exist, so nothing can be "
                        "planned; fix `templates:` or copy hbsdeploy's templates there (`hbsdeploy init` writes them)")]
    renderer = Renderer(config)
    found: dict[tuple[str, int, str, str], list[str]] = {}

    def add(error: TemplateError) -> None:
        found.setdefault((error.template, error.line or 1, error.rule, error.detail), []).append(error.where)

    for error in renderer.compile_all():
        add(error)
    if found:  # a template that does not compile breaks every rendering that imports it: nothing more to learn
        return _problems(found)
    for environment in environments:
        for partner in partners:
            if environment.name not in partner.environments:
                continue
            for service_type in partner.resolve(environment.name).values():
                try:
                    renderer.render(partner, environment, service_type)
                except TemplateError as exc:
                    add(exc)
                except HbsError:  # a certificate_file problem: the rules report it at the partner's line
                    continue
    return _problems(found)


def _problems(found: dict[tuple[str, int, str, str], list[str]]) -> list[Problem]:
    return [Problem(template, line, 1, Severity.ERROR, rule, detail + _where(wheres))
            for (template, line, rule, detail), wheres in found.items()]


def _where(wheres: list[str]) -> str:
    named = [where for where in wheres if where]
    if not named:
        return ""
    more = len(named) - 1
    return f" {named[0]}" + (f", and {more} more rendering{'' if more == 1 else 's'}" if more else "")
