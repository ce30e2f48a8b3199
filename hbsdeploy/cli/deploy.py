"""`hbsdeploy plan` and `hbsdeploy apply`: parse, call the library, print, return the exit code.

Imported only when one of them runs (see _LazyGroup in hbsdeploy/cli/main.py), so `validate` never pays for the plan
model and its output formats, whose registry gives --format its choices.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hbsdeploy.cli.options import (
    Globals,
    environment_option,
    partner_option,
    pass_globals,
    read_input,
    service_type_option,
)
from hbsdeploy.cli.terminal import Terminal
from hbsdeploy.errors import EXIT_CHANGES, EXIT_OK, HbsError
from hbsdeploy.plan.formats import PLAN_FORMATS

_FORMAT_HELP = "; ".join(f"{name}: {plan_format.help}" for name, plan_format in PLAN_FORMATS.items()) + "."


@click.command()
@environment_option
@partner_option
@service_type_option
@click.option("--format", "output_format", type=click.Choice(list(PLAN_FORMATS)), default="text", show_default=True,
              help=_FORMAT_HELP)
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Also save the plan (JSON, with the versions observed and its checksum) for `apply PLANFILE`; "
                   "`-`: to stdout, the --format output then going to stderr.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none, 1 on error.")
@click.option("--parallelism", type=click.IntRange(1, 64), help="Partners read at once (default: apply.parallelism).")
@click.option("--allow-disables", is_flag=True,
              help="Allow this plan to disable more than apply.max_disable_fraction; recorded in the plan file under "
                   "its checksum, so reviewers see it and `apply PLANFILE` needs nothing more.")
@pass_globals
def plan(g: Globals, environment: str | None, partner_ids: tuple[str, ...], service_types: tuple[str, ...],
         output_format: str, out_file: Path | None, detailed_exitcode: bool, parallelism: int | None,
         allow_disables: bool) -> int:
    """Show exactly what apply would change in the portal.

    \b
    Example:
      hbsdeploy plan --env qa --format markdown --out plan.json
      hbsdeploy plan --env qa --service-type authorization --out - | hbsdeploy apply - --env qa
    """
    from hbsdeploy.atomic import write_atomic
    from hbsdeploy.plan.build import plan_environment
    from hbsdeploy.plan.formats import FormatOptions, render_plan

    config = g.load_config()
    env = config.environment(environment)
    to_stdout = out_file == Path("-")
    the_plan = plan_environment(config, env, partner_ids, parallelism=parallelism or config.parallelism,
                                hooks=Terminal(g.quiet), service_types=service_types,
                                allow_disables=allow_disables)
    options = FormatOptions.for_environment(env, colour=g.use_colour(sys.stderr.isatty() if to_stdout else None))
    if to_stdout:  # stdout is the plan file: what a person reads goes to stderr (unless -q)
        click.echo(the_plan.to_json(), nl=False)
        if not g.quiet:
            click.echo(render_plan(the_plan, output_format, options), nl=False, err=True, color=options.colour)
    elif out_file is not None:
        write_atomic(out_file, the_plan.to_json(), mode=0o644)
        click.echo(render_plan(the_plan, output_format, options), nl=False, color=options.colour)
        if not g.quiet:
            click.echo(f"saved plan to {out_file} ({the_plan.checksum})", err=True)
    else:
        click.echo(render_plan(the_plan, output_format, options), nl=False, color=options.colour)
    return EXIT_CHANGES if detailed_exitcode and the_plan.has_changes else EXIT_OK


@click.command()
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@environment_option
@partner_option
@service_type_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (for CI).")
@click.option("--parallelism", type=click.IntRange(1, 64),
              help="Partners applied at once (default: apply.parallelism, 8).")
@click.option("--allow-disables", "--force", "allow_disables", is_flag=True,
              help="Without PLANFILE: allow the plan apply makes to disable more than apply.max_disable_fraction "
                   "(a saved plan carries its own permission: `plan --allow-disables`).")
@click.option("--checksum", metavar="SHA", help="Refuse the plan file unless its checksum is this (the reviewed one).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: a line per change and a summary; json: the apply report on stdout "
                   "(schemas/apply-report.schema.json), the plan and questions on stderr.")
@pass_globals
def apply(g: Globals, plan_file: Path | None, environment: str | None, partner_ids: tuple[str, ...],
          service_types: tuple[str, ...], auto_approve: bool, parallelism: int | None, allow_disables: bool,
          checksum: str | None, output_format: str) -> int:
    """Make the planned changes in the portal: exactly those, verified, audited.

    Without PLANFILE: plans, shows the plan, asks for `yes`. With PLANFILE (from `plan --out`): applies exactly that
    plan without asking, and refuses it, writing nothing, if the portal changed since or the file was altered;
    `-` reads the plan from standard input.
    A protected environment must be named with --env. Exit 0 all applied, 1 otherwise.

    \b
    Example:
      hbsdeploy plan --env prod --out prod.plan.json
      hbsdeploy apply prod.plan.json --env prod --format json > report.json
    """
    from hbsdeploy.apply.orchestrate import ApplyRequest, apply_environment
    from hbsdeploy.apply.report import apply_report_document, refused_document, report_json

    plan_input = read_input("plan file") if plan_file == Path("-") else None
    request = ApplyRequest(plan_file, environment, partner_ids, checksum, auto_approve, allow_disables,
                           parallelism,
                           service_types, plan_input)
    as_json = output_format == "json"
    try:
        report = apply_environment(g.load_config(), request, Terminal(g.quiet, g.use_colour(), plan_to_stderr=as_json))
    except HbsError as exc:  # refused, nothing written: still a report for the script reading stdout
        if as_json:
            click.echo(report_json(refused_document(str(exc), exc.exit_code)), nl=False)
        raise
    for line in [report_json(apply_report_document(report))] if as_json else report.lines():
        click.echo(line, nl=not as_json)
    if report.result is not None and report.result.audit_error:
        click.echo(f"error: {report.result.audit_error}", err=True)
    if report.next_step() is not None:
        click.echo(report.next_step(), err=True)
    return report.exit_code


@click.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--format", "output_format", type=click.Choice(list(PLAN_FORMATS)), default="text", show_default=True,
              help=_FORMAT_HELP)
@click.option("--checksum", metavar="SHA", help="Refuse the plan file unless its checksum is this (the reviewed one).")
@partner_option
@service_type_option
@pass_globals
def show(g: Globals, plan_file: Path, output_format: str, checksum: str | None, partner_ids: tuple[str, ...],
         service_types: tuple[str, ...]) -> int:
    """Show a saved plan (from `plan --out`) in any plan format, once its checksum is verified.

    Like `terraform show PLANFILE`: an altered file is refused, as apply would refuse it; `-` reads the plan from
    standard input. --partner and --service-type show part of it (a plan of its own, with its own checksum).

    \b
    Example:
      hbsdeploy show qa.plan.json --format markdown --checksum sha256:...
    """
    from hbsdeploy.plan.build import check_service_types
    from hbsdeploy.plan.formats import FormatOptions, render_plan
    from hbsdeploy.plan.model import narrow_plan, parse_plan, read_plan_file
    from hbsdeploy.text import plural

    data = read_input("plan file") if plan_file == Path("-") else None
    saved = parse_plan(data, "-", checksum) if data is not None else read_plan_file(plan_file, checksum)
    try:
        config = g.load_config()
        known = [*config.schemas.service_types, *(o.service_type for o in saved.observed)]
        options = FormatOptions.for_environment(config.environment(saved.environment), colour=g.use_colour())
    except HbsError:  # no repository here, or not this environment: the plan still shows
        known = [o.service_type for o in saved.observed]
        options = FormatOptions(colour=g.use_colour())
    shown = narrow_plan(saved, partner_ids, check_service_types(service_types, dict.fromkeys(known)))
    click.echo(render_plan(shown, output_format, options), nl=False, color=options.colour)
    if not g.quiet:
        click.echo(f"{plan_file}: a plan for {saved.environment}, checksum {saved.checksum} verified", err=True)
        if shown is not saved:
            click.echo(f"shown: {plural(len(shown.changes), 'change')} of {len(saved.changes)}, with the checksum "
                       "of that part", err=True)
    return EXIT_OK
