"""The command line: parse, call the library, hand results to a renderer, map errors to exit codes.

Exit codes: 0 success (no changes, or valid); 1 an error (invalid input, failed apply, portal error);
2 usage error, or with `plan --detailed-exitcode`, changes pending; 130 interrupted.
Command modules are imported inside each command so that `validate` never loads requests or jinja2.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hbsdeploy import __version__
from hbsdeploy.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    HbsError,
    InputError,
    Problem,
    UsageError,
)

if TYPE_CHECKING:
    from hbsdeploy.load.config import Config, Environment
    from hbsdeploy.plan.model import Change, Plan



@dataclass
class Globals:
    config_path: str | None
    verbose: int
    quiet: bool

    def load_config(self) -> Config:
        from hbsdeploy.load.config import find_config, load_config

        return load_config(find_config(self.config_path))


pass_globals = click.make_pass_decorator(Globals)


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs, so that `validate` starts fast."""

    lazy_commands = {
        "portal": ("hbsdeploy.cli.portal", "portal"),
        "schema": ("hbsdeploy.cli.ecosystem", "schema"),
        "init": ("hbsdeploy.cli.ecosystem", "init"),
        "doctor": ("hbsdeploy.cli.ecosystem", "doctor"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            import importlib

            module_name, attribute = self.lazy_commands[cmd_name]
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["hbsdeploy.detailed_exitcode"] = "--detailed-exitcode" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        """Map a command's returned exit code and hbsdeploy's errors to exit codes, under any caller of `cli`.

        With --detailed-exitcode, 2 means "changes pending" only: a usage error exits 1 there (as in Terraform).
        """
        usage_code = EXIT_ERROR if ctx.meta.get("hbsdeploy.detailed_exitcode") else EXIT_USAGE
        try:
            code = super().invoke(ctx)
        except click.UsageError as exc:
            setattr(exc, "exit_code", usage_code)  # noqa: B010 (a ClassVar in click's typing; per instance here)
            raise
        except InputError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except HbsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(usage_code if exc.exit_code == EXIT_USAGE else exc.exit_code)
        except OSError as exc:  # a file we were told to write (--out, state_dir) cannot be: say which and why
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}; check the path and its permissions", err=True)
            ctx.exit(EXIT_ERROR)
        if isinstance(code, int) and code != EXIT_OK:
            ctx.exit(code)
        return code


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="hbsdeploy")
@click.option("--config", "config_path", metavar="FILE", envvar="HBSDEPLOY_CONFIG",
              help="The hbsdeploy.yaml to use (default: the nearest one in this folder or a parent; "
                   "also $HBSDEPLOY_CONFIG).")
@click.option("-v", "--verbose", count=True, help="Log each portal request and response on stderr (secrets redacted).")
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
        _log_to_stderr(logging.getLogger("hbsdeploy"))
        if verbose > 1:
            _log_to_stderr(logging.getLogger("urllib3"))


def _log_to_stderr(logger: logging.Logger) -> None:
    # A handler of our own (not basicConfig), so -v works even where the root logger is already configured.
    if not any(getattr(h, "hbsdeploy", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hbsdeploy: %(message)s"))
        handler.hbsdeploy = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, readable=False))
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
    from hbsdeploy.check import reporting
    from hbsdeploy.check.validate import ValidationReport, validation_failed
    from hbsdeploy.check.validate import validate as run_validate
    from hbsdeploy.errors import Severity
    from hbsdeploy.load.config import CONFIG_FILE_NAME

    try:
        config = g.load_config()
    except InputError as exc:
        report = ValidationReport(files=1, problems=exc.problems).finish()
    except HbsError as exc:
        if output_format != "json":
            raise
        # Scripts parse this output: a missing config is a problem in the report, not a line of prose.
        missing = Problem(CONFIG_FILE_NAME, 1, 1, Severity.ERROR, "config-not-found", str(exc))
        report = ValidationReport(files=0, problems=[missing]).finish()
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
    from hbsdeploy.check.project import load_project
    from hbsdeploy.render.payloads import Renderer, canonical_json, payloads_document, write_rendered

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


def _use_colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _ProgressLine:
    """A one-line progress counter on stderr, only on a terminal and only once an operation takes a moment."""

    def __init__(self, g: Globals, what: str, delay: float = 0.5) -> None:
        self.enabled = sys.stderr.isatty() and not g.quiet
        self.what = what
        self.started = time.monotonic()
        self.delay = delay
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if self.enabled and time.monotonic() - self.started >= self.delay:
            click.echo(f"\r{self.what}: {done}/{total}", err=True, nl=False)
            self.shown = True

    def finish(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False)


def _plan_for(g: Globals, config: Config, env: Environment, partner_ids: tuple[str, ...],
              parallelism: int) -> Plan:
    from hbsdeploy.check.project import load_project
    from hbsdeploy.plan.build import make_plan
    from hbsdeploy.portal import open_portal

    project = load_project(config, env, partner_ids)
    _warn(g, project.warnings)
    portal = open_portal(env, parallelism=parallelism)
    progress = _ProgressLine(g, f"reading {env.name}")
    try:
        return make_plan(project, env, portal, parallelism, progress)
    finally:
        progress.finish()
        portal.close()


@cli.command()
@environment_option
@partner_option
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "instructions"]),
              default="text", show_default=True, help="instructions: numbered steps for a person in the portal.")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also save the plan (JSON, with the versions observed and its checksum) for `apply PLANFILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none, 1 on error.")
@click.option("--parallelism", type=click.IntRange(1, 64), help="Partners read at once (default: apply.parallelism).")
@pass_globals
def plan(g: Globals, environment: str | None, partner_ids: tuple[str, ...], output_format: str,
         out_file: Path | None, detailed_exitcode: bool, parallelism: int | None) -> int:
    """Show exactly what apply would change in the portal.

    \b
    Example:
      hbsdeploy plan --env qa --format markdown --out plan.json
    """
    from hbsdeploy.atomic import write_atomic
    from hbsdeploy.plan import formats as planformat
    from hbsdeploy.portal import portal_label

    config = g.load_config()
    env = config.environment(environment)
    the_plan = _plan_for(g, config, env, partner_ids, parallelism or config.parallelism)
    if out_file is not None:
        write_atomic(out_file, the_plan.to_json(), mode=0o644)
    if output_format == "json":
        click.echo(planformat.render_json(the_plan), nl=False)
    elif output_format == "markdown":
        click.echo(planformat.render_markdown(the_plan), nl=False)
    elif output_format == "instructions":
        click.echo(planformat.render_instructions(the_plan, portal_label(env)), nl=False)
    else:
        click.echo(planformat.render_text(the_plan, planformat.ansi if _use_colour() else planformat._plain),
                   nl=False)
    if out_file is not None and not g.quiet:
        click.echo(f"saved plan to {out_file} ({the_plan.checksum})", err=True)
    return EXIT_CHANGES if detailed_exitcode and the_plan.has_changes else EXIT_OK


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@environment_option
@partner_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (for CI).")
@click.option("--parallelism", type=click.IntRange(1, 64),
              help="Partners applied at once (default: apply.parallelism, 8).")
@click.option("--force", is_flag=True, help="Allow a plan that disables more than apply.max_disable_fraction.")
@click.option("--checksum", metavar="SHA", help="Refuse the plan file unless its checksum is this (the reviewed one).")
@pass_globals
def apply(g: Globals, plan_file: Path | None, environment: str | None, partner_ids: tuple[str, ...],
          auto_approve: bool, parallelism: int | None, force: bool, checksum: str | None) -> int:
    """Make the planned changes in the portal: exactly those, verified, audited.

    Without PLANFILE: plans, shows the plan, asks for `yes`. With PLANFILE (from `plan --out`): applies exactly that
    plan without asking, and refuses it, writing nothing, if the portal changed since or the file was altered.
    A protected environment must be named with --env. Exit 0 all applied, 1 otherwise.

    \b
    Example:
      hbsdeploy plan --env prod --out prod.plan.json
      hbsdeploy apply prod.plan.json --env prod
    """
    from hbsdeploy.apply.audit import AuditLog
    from hbsdeploy.apply.run import Status, apply_confirmed, apply_plan, check_disable_share, check_fresh
    from hbsdeploy.plan import formats as planformat
    from hbsdeploy.plan.model import read_plan_file
    from hbsdeploy.portal import open_portal, portal_label

    config = g.load_config()
    if plan_file is not None:
        if partner_ids:
            raise UsageError("--partner cannot narrow a saved plan; plan again with --partner")
        the_plan = read_plan_file(plan_file, checksum)
        if environment and environment != the_plan.environment:
            raise HbsError(f"{plan_file} is a plan for {the_plan.environment!r}, not {environment!r}")
        env = config.environment(the_plan.environment)
    else:
        if checksum:
            raise UsageError("--checksum needs a PLANFILE")
        env = config.environment(environment)
    if env.protected and environment != env.name:
        raise UsageError(f"{env.name!r} is a protected environment: name it with --env {env.name} to apply")
    parallelism = parallelism or config.parallelism
    audit = AuditLog(config.state_dir / "audit.jsonl")

    if plan_file is None:
        the_plan = _plan_for(g, config, env, partner_ids, parallelism)
        click.echo(planformat.render_text(the_plan, planformat.ansi if _use_colour() else planformat._plain),
                   nl=False)
        if not the_plan.has_changes:
            return EXIT_OK
    check_disable_share(the_plan, config.max_disable_fraction, force)

    portal = open_portal(env, parallelism=parallelism)
    try:
        if plan_file is not None:
            check_fresh(the_plan, portal, parallelism)
        if env.kind == "manual":
            if env.protected and not auto_approve:
                _confirm(env, the_plan)
            click.echo(planformat.render_instructions(the_plan, portal_label(env), during_apply=True))
            result = apply_confirmed(the_plan, portal, audit, _manual_confirmation(auto_approve))
        else:
            if plan_file is None and not auto_approve:
                _confirm(env, the_plan)
            progress = _ProgressLine(g, f"applying to {env.name}")
            try:
                result = apply_plan(the_plan, portal, audit, parallelism=parallelism, progress=progress)
            finally:
                progress.finish()
    finally:
        portal.close()
    for item in result.results:
        change = item.change
        line = f"{item.status.value:>13}: {change.partner_id} / {change.service_type} ({change.kind.value})"
        click.echo(line + (f": {item.message}" if item.message else ""))
    summary = (f"Apply: {result.count(Status.APPLIED)} applied, {result.count(Status.FAILED)} failed, "
               f"{result.count(Status.NOT_ATTEMPTED)} not attempted.")
    click.echo(summary)
    if result.audit_error:
        click.echo(f"error: {result.audit_error}", err=True)
    if not result.ok or result.audit_error:
        click.echo(f"Run `hbsdeploy apply --env {env.name}` again to finish: it plans what remains.", err=True)
        return EXIT_INTERRUPTED if result.interrupted else EXIT_ERROR
    return EXIT_OK


def _confirm(env: Environment, the_plan: Plan) -> None:
    if not sys.stdin.isatty() and not os.environ.get("HBSDEPLOY_ALLOW_PIPED_CONFIRMATION"):
        raise UsageError("no terminal to confirm on; pass --auto-approve, or apply a reviewed plan file")
    if env.protected:
        click.secho(f"\n{env.name!r} is a PROTECTED environment.", bold=True, fg="red", err=True)
        answer = click.prompt(f"Type the environment name ({env.name}) to apply {len(the_plan.changes)} changes",
                              default="", show_default=False, err=True)
        if answer != env.name:
            raise HbsError("apply cancelled: nothing was written")
        return
    answer = click.prompt(f"Apply {len(the_plan.changes)} changes to {env.name}? Only 'yes' is accepted",
                          default="", show_default=False, err=True)
    if answer != "yes":
        raise HbsError("apply cancelled: nothing was written")


def _manual_confirmation(auto_approve: bool) -> Callable[[Change], bool]:
    def confirm(change: Change) -> bool:
        if auto_approve:
            return True
        try:
            return click.confirm(f"Done in the portal: {change.partner_id} / {change.service_type}?",
                                 default=False, err=True)
        except click.Abort:  # Ctrl-C or end of input: stop asking, still report what was recorded
            raise KeyboardInterrupt from None

    if not auto_approve and not sys.stdin.isatty() and not os.environ.get("HBSDEPLOY_ALLOW_PIPED_CONFIRMATION"):
        raise UsageError("a manual portal needs a person to confirm each step; run apply in a terminal, or pass "
                         "--auto-approve once every step is done in the portal")
    return confirm


@cli.command(name="import")
@click.option("--env", "environment", metavar="ENV", required=True, help="The environment to read.")
@click.option("--partner", "partner_id", metavar="ID", required=True, help="The partner's OperatorID or ProviderID.")
@click.option("--role", type=click.Choice(["cpo", "emp"]), help="Needed when the ID fits both formats.")
@click.option("--name", help="Display name (default: the partner ID).")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the partner file here (refuses to overwrite) instead of stdout.")
@pass_globals
def import_(g: Globals, environment: str, partner_id: str, role: str | None, name: str | None,
            out_file: Path | None) -> int:
    """Write a partner file from the portal's current state, to bring a partner under management.

    \b
    Example:
      hbsdeploy import --env qa --partner 'DE*A36' --out partners/de-a36.yaml
    """
    from hbsdeploy.atomic import write_atomic
    from hbsdeploy.portal import open_portal
    from hbsdeploy.tools.importer import check_partner_id, infer_role, partner_yaml

    check_partner_id(partner_id, role)
    config = g.load_config()
    env = config.environment(environment)
    portal = open_portal(env)
    try:
        states = portal.list_service_types(partner_id)
    finally:
        portal.close()
    text = partner_yaml(partner_id, name or partner_id, infer_role(partner_id, states, role), env.name, states)
    if out_file is None:
        click.echo(text, nl=False)
        return EXIT_OK
    if out_file.exists():
        raise HbsError(f"{out_file} exists; choose another --out or remove it first")
    write_atomic(out_file, text)
    if not g.quiet:
        click.echo(f"wrote {out_file}; check it with `hbsdeploy validate {out_file}`", err=True)
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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)

