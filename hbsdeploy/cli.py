"""The command line: parse, call the library, hand results to a renderer, map errors to exit codes.

Exit codes: 0 success (no changes, or valid); 1 an error (invalid input, failed apply, portal error);
2 usage error, or with `plan --detailed-exitcode`, changes pending; 130 interrupted.
Command modules are imported inside each command so that `validate` never loads requests or jinja2.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hbsdeploy import __version__
from hbsdeploy.errors import HbsError, InputError, Problem

if TYPE_CHECKING:
    from hbsdeploy.config import Config

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


@dataclass
class Globals:
    config_path: str | None
    verbose: int
    quiet: bool

    def load_config(self) -> Config:
        from hbsdeploy.config import find_config, load_config

        return load_config(find_config(self.config_path))


pass_globals = click.make_pass_decorator(Globals)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="hbsdeploy")
@click.option("--config", "config_path", metavar="FILE", envvar="HBSDEPLOY_CONFIG",
              help="The hbsdeploy.yaml to use (default: the nearest one in this folder or a parent; "
                   "also $HBSDEPLOY_CONFIG).")
@click.option("-v", "--verbose", count=True, help="Say more on stderr (-vv logs portal requests, secrets redacted).")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems and results, no summaries or progress.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool) -> None:
    """Hubject HBS Service Type Settings as code: validate, render, plan and apply.

    \b
    Example:
      hbsdeploy validate             # check every partner file
      hbsdeploy plan                 # what would change on the default (sandbox) portal
      hbsdeploy apply --env qa       # make those changes in QA, after a confirmation
    """
    ctx.obj = Globals(config_path, verbose, quiet)
    if verbose:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose > 1 else logging.INFO,
                            format="hbsdeploy: %(message)s")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--env", "environment", metavar="ENV", help="Check the rules of this environment only (default: all).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@pass_globals
def validate(g: Globals, paths: tuple[Path, ...], environment: str | None, output_format: str, strict: bool) -> int:
    """Check partner files and hbsdeploy.yaml against the schemas and the portal's rules.

    With no PATHS, checks hbsdeploy.yaml and every partner file. Prints `path:line:col: error[rule]: message`
    per problem. Exit 0 when valid (warnings allowed), 1 on errors (or warnings with --strict).

    \b
    Example:
      hbsdeploy validate partners/example-cpo.yaml --env prod
    """
    from hbsdeploy import reporting
    from hbsdeploy.validate import ValidationReport, validate as run_validate, validation_failed

    try:
        config = g.load_config()
    except InputError as exc:
        report = ValidationReport(files=1, problems=exc.problems).finish()
    else:
        report = run_validate(config, list(paths) if paths else None, environment)
    if output_format == "json":
        click.echo(reporting.validation_json(report), nl=False)
    elif g.quiet:
        for problem in report.problems:
            click.echo(problem.format())
    else:
        click.echo(reporting.validation_text(report), nl=False)
    return EXIT_ERROR if validation_failed(report, strict) else EXIT_OK


def _warn(g: Globals, problems: list[Problem]) -> None:
    if not g.quiet:
        for problem in problems:
            click.echo(problem.format(), err=True)


environment_option = click.option("--env", "environment", metavar="ENV",
                                  help="The environment from hbsdeploy.yaml (default: default_environment).")
partner_option = click.option("--partner", "partner_ids", metavar="ID", multiple=True,
                              help="Only this partner (OperatorID or ProviderID); repeatable.")


@cli.command()
@click.option("--env", "environment", metavar="ENV", help="Only this environment (default: every environment).")
@partner_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write one file per payload: OUT/<env>/<partner>/<service type>.json.")
@pass_globals
def render(g: Globals, environment: str | None, partner_ids: tuple[str, ...], out_dir: Path | None) -> int:
    """Render partner settings through the templates into portal API payloads.

    Prints one canonical JSON document (environment -> partner -> service type -> payload), byte for byte
    deterministic, or writes one file per payload with --out.

    \b
    Example:
      hbsdeploy render --env qa --partner 'DE*A36'
    """
    from hbsdeploy.project import load_project
    from hbsdeploy.render import Renderer, canonical_json, payloads_document, write_rendered

    config = g.load_config()
    environments = [config.environment(environment)] if environment else list(config.environments.values())
    project = load_project(config, environments[0] if environment else None, partner_ids)
    _warn(g, project.warnings)
    rendered = Renderer(config).render_all(project.partners, environments)
    if out_dir is None:
        click.echo(canonical_json(payloads_document(rendered)), nl=False)
    else:
        written = write_rendered(rendered, out_dir)
        if not g.quiet:
            click.echo(f"wrote {len(written)} payload files under {out_dir}", err=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hbsdeploy` console script."""
    try:
        code = cli.main(args=argv, prog_name="hbsdeploy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InputError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except HbsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
