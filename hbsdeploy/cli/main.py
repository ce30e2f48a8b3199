"""The command line: parse, call the library, hand results to a renderer, map errors to exit codes.

Exit codes: 0 success (no changes, or valid); 1 an error (invalid input, failed apply, portal error);
2 usage error, or with `plan --detailed-exitcode`, changes pending; 130 interrupted.
Command modules are imported inside each command so that `validate` never loads requests or jinja2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from hbsdeploy import __version__
from hbsdeploy.cli.options import (
    COLOUR_CHOICES,
    COLOUR_HELP,
    CONFIG_HELP,
    ENV_VAR,
    QUIET_HELP,
    VERBOSE_HELP,
    Globals,
    add_global_options,
    complete_environments,
    complete_partners,
    configure_logging,
    partner_option,
    pass_globals,
)
from hbsdeploy.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, HbsError, InputError, Problem
from hbsdeploy.text import plural

# The names of hbsdeploy.check.reporting.VALIDATION_FORMATS, here so that start-up does not import the renderers.
VALIDATE_FORMATS = ("text", "json", "github", "sarif", "gitlab")


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs, so that `validate` starts fast."""

    lazy_commands = {
        "plan": ("hbsdeploy.cli.deploy", "plan"),
        "apply": ("hbsdeploy.cli.deploy", "apply"),
        "show": ("hbsdeploy.cli.deploy", "show"),
        "portal": ("hbsdeploy.cli.portal", "portal"),
        "schema": ("hbsdeploy.cli.ecosystem", "schema"),
        "init": ("hbsdeploy.cli.ecosystem", "init"),
        "doctor": ("hbsdeploy.cli.ecosystem", "doctor"),
        "login": ("hbsdeploy.cli.web", "login"),
        "audit": ("hbsdeploy.cli.audit", "audit"),
        "state": ("hbsdeploy.cli.state", "state"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            import importlib

            module_name, attribute = self.lazy_commands[cmd_name]
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            add_global_options(command)  # `hbsdeploy plan -q` as well as `hbsdeploy -q plan`
        return command

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
        except BrokenPipeError:  # the reader of our output went away (`| head`): not a file problem
            raise
        except OSError as exc:  # a file we were told to write (--out, state_dir) cannot be: say which and why
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}; check the path and its permissions", err=True)
            ctx.exit(EXIT_ERROR)
        if isinstance(code, int) and code != EXIT_OK:
            ctx.exit(code)
        return code


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="hbsdeploy")
@click.option("--config", "config_path", metavar="FILE", envvar="HBSDEPLOY_CONFIG", help=CONFIG_HELP)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@click.option("--color", "--colour", "colour", type=click.Choice(COLOUR_CHOICES), default="auto", help=COLOUR_HELP)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, colour: str) -> None:
    """Hubject HBS Service Type Settings as code: validate, render, plan and apply.

    \b
    Example:
      hbsdeploy validate             # check every partner file
      hbsdeploy plan                 # what would change on the default (sandbox) portal
      hbsdeploy apply --env qa       # make those changes in QA, after a confirmation

    The global options work before and after the command: `hbsdeploy plan -q` is `hbsdeploy -q plan`.
    """
    ctx.obj = Globals(config_path, verbose, quiet, colour)
    configure_logging(verbose)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, readable=False))
@click.option("--env", "environment", metavar="ENV", shell_complete=complete_environments,
              help="Check the rules of this environment only (default: all, whatever $HBSDEPLOY_ENV says).")
@click.option("--format", "output_format", type=click.Choice(VALIDATE_FORMATS), default="text", show_default=True,
              help="text; json (schemas/validation-report.schema.json); github (workflow commands: annotations on "
                   "the lines); sarif (SARIF 2.1.0, for code scanning); gitlab (a Code Quality report).")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@pass_globals
def validate(g: Globals, paths: tuple[Path, ...], environment: str | None, output_format: str, strict: bool) -> int:
    """Check partner files and hbsdeploy.yaml against the schemas and the portal's rules.

    With no PATHS, checks hbsdeploy.yaml and every partner file. Prints `path:line:col: error[rule]: message`
    per problem. Exit 0 when valid (warnings allowed), 1 on errors (or warnings with --strict).

    \b
    Example:
      hbsdeploy validate partners/example-cpo.yaml --env prod
      hbsdeploy validate --format sarif > hbsdeploy.sarif
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
        if output_format not in reporting.MACHINE_FORMATS:
            raise
        # Scripts parse this output: a missing config is a problem in the report, not a line of prose.
        missing = Problem(CONFIG_FILE_NAME, 1, 1, Severity.ERROR, "config-not-found", str(exc))
        report = ValidationReport(files=0, problems=[missing]).finish()
    else:
        report = run_validate(config, list(paths) if paths else None, environment)
        if report.checked_all:  # a full run, or a change to hbsdeploy.yaml, a schema or a template: render them all
            from hbsdeploy.render.check import add_template_problems

            report = add_template_problems(report, config, environment)
    if output_format == "text" and g.quiet:
        for problem in report.problems:
            click.echo(problem.format())
    else:
        click.echo(reporting.VALIDATION_FORMATS[output_format](report), nl=False)
    return EXIT_ERROR if validation_failed(report, strict) else EXIT_OK


@cli.command()
@click.option("--env", "environment", metavar="ENV", shell_complete=complete_environments,
              help="Only this environment (default: every environment, whatever $HBSDEPLOY_ENV says).")
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
    from hbsdeploy.cli.terminal import Terminal
    from hbsdeploy.render.payloads import canonical_json, payloads_document, render_project, write_rendered

    rendered = render_project(g.load_config(), environment, partner_ids, warn=Terminal(g.quiet).warn)
    if out_dir is None:
        click.echo(canonical_json(payloads_document(rendered)), nl=False)
    else:
        written = write_rendered(rendered, out_dir)
        if not g.quiet:
            click.echo(f"wrote {plural(len(written), 'payload file')} under {out_dir}", err=True)
    return EXIT_OK


@cli.command(name="import")
@click.option("--env", "environments", metavar="ENV", multiple=True, envvar=ENV_VAR, show_envvar=True,
              shell_complete=complete_environments,
              help="An environment to read; repeatable (default: $HBSDEPLOY_ENV, else every environment of "
                   "hbsdeploy.yaml; one the portal does not know the partner in is left out).")
@click.option("--partner", "partner_id", metavar="ID", required=True, shell_complete=complete_partners,
              help="The partner's OperatorID or ProviderID.")
@click.option("--role", type=click.Choice(["cpo", "emp"]),
              help="Needed only when the ID's written form fits both roles (`DEDUA`; `DE*DUA` is an operator, `DE-DUA` "
                   "a provider) and neither the repository nor the portal says which.")
@click.option("--name", help="Display name (default: the partner file's, else the partner ID).")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Write the partner file here (refuses to overwrite, and refuses a partner already managed) "
                   "instead of stdout (`-`).")
@pass_globals
def import_(g: Globals, environments: tuple[str, ...], partner_id: str, role: str | None, name: str | None,
            out_file: Path | None) -> int:
    """Write one partner file from what the portals hold, to bring a partner under management.

    Reads each environment given (default: every environment): values they all agree on become the base, the rest
    goes under each environment, so the file plans to no change in any of them. A partner the repository already
    manages gets no second file. A User certificate is imported as the file to add (named on stderr).

    \b
    Example:
      hbsdeploy import --env qa --env prod --partner 'DE*A36' --out partners/de-a36.yaml
    """
    from hbsdeploy.atomic import write_atomic
    from hbsdeploy.tools.importer import ImportRequest, check_partner_id, import_partner

    check_partner_id(partner_id, role)  # before the config: a wrong ID is the first thing to fix
    out = None if out_file == Path("-") else out_file
    if out is not None and out.exists():
        raise HbsError(f"{out} exists; choose another --out or remove it first")
    result = import_partner(g.load_config(), ImportRequest(partner_id, environments, role, name, out))
    for note in result.notes:  # even with -q: a certificate to add is a problem to fix
        click.echo(note, err=True)
    if out is None:
        click.echo(result.text, nl=False)
        return EXIT_OK
    write_atomic(out, result.text)
    if not g.quiet:
        click.echo(f"wrote {out} ({', '.join(result.environments)}); check it with `hbsdeploy validate {out}`",
                   err=True)
    return EXIT_OK


def _stop_on_first_interrupt() -> None:
    """Ctrl-C and SIGTERM (a cancelled CI job, `kill`) both stop the run: the first raises KeyboardInterrupt (no new
    write; the report; every write audited). Later ones, until the process exits, only say what is awaited, so that
    a second Ctrl-C can neither lose the report nor the audit entry of a write the portal took."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt
        click.echo("hbsdeploy: stopping; the writes under way end within their deadline and are reported and "
                   "audited (SIGKILL stops at once, unreported)", err=True)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hbsdeploy` console script. As the program (`argv` None: the command line), it owns the
    process's SIGINT and SIGTERM; called with `argv` (tests, embedding) it leaves the caller's signal handling alone."""
    as_program = argv is None and threading.current_thread() is threading.main_thread()
    if as_program:
        _stop_on_first_interrupt()
    code = _run(argv)
    if as_program:
        # The outcome is settled and reported: a signal from here to the exit must not turn it into a death by
        # signal. Ignored, not blocked: a mask holds for the main thread only, and Python's shutdown puts the default
        # action back for a signal it handled, which then struck through any other thread still running (a pool or
        # watchdog thread); it leaves an ignored signal ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="hbsdeploy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped reading (`hbsdeploy plan | head`): nothing to say, and nothing more to flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_ERROR
    return code if isinstance(code, int) else EXIT_OK
