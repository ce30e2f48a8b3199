"""`hbsdeploy state`: a manual environment's recorded state (state/<env>.yaml): record steps done outside hbsdeploy,
and migrate what an older hbsdeploy kept on one machine."""

from __future__ import annotations

from pathlib import Path

import click

from hbsdeploy.cli.options import Globals, partner_option, pass_globals
from hbsdeploy.cli.terminal import Terminal
from hbsdeploy.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from hbsdeploy.text import plural


@click.group()
def state() -> None:
    """A manual environment's recorded state, the file plans read instead of the portal.

    \b
    Example:
      hbsdeploy state record --env prod --reason "done in the portal by alice, OPS-123"
    """


@state.command()
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--env", "environment", metavar="ENV", required=True, help="The manual environment.")
@partner_option
@click.option("--service-type", "service_types", metavar="NAME", multiple=True,
              help="Only this service type; repeatable.")
@click.option("--checksum", metavar="SHA", help="Refuse PLANFILE unless its checksum is this (the reviewed one).")
@click.option("--reason", required=True, help="What was done where, for the audit log (e.g. a ticket).")
@pass_globals
def record(g: Globals, plan_file: Path | None, environment: str, partner_ids: tuple[str, ...],
           service_types: tuple[str, ...], checksum: str | None, reason: str) -> int:
    """Record steps done in the portal outside hbsdeploy as the environment's state, audited.

    Records the changes of PLANFILE (a reviewed plan, e.g. the one whose instructions were followed), or of a plan
    made now, narrowed with --partner and --service-type. Shows them and asks for the environment's name or `yes`
    at a terminal; never in CI. Writes state/ENV.yaml: commit it.

    \b
    Example:
      hbsdeploy state record --env prod --partner 'DE*X01' --reason "done in the portal by alice, OPS-123"
    """
    from hbsdeploy.apply.orchestrate import RecordRequest, record_environment

    request = RecordRequest(environment, reason, plan_file, checksum, partner_ids, service_types)
    report = record_environment(g.load_config(), request, Terminal(g.quiet))
    for line in report.lines():
        click.echo(line)
    if report.result is not None and not report.ok:
        return EXIT_INTERRUPTED if report.interrupted else EXIT_ERROR
    return EXIT_OK


@state.command()
@click.option("--env", "environment", metavar="ENV", required=True, help="The manual environment.")
@pass_globals
def migrate(g: Globals, environment: str) -> int:
    """Move a manual environment's records from this machine's <state_dir>/ENV.sqlite3 to state/ENV.yaml.

    hbsdeploy 0.1 kept them in the git-ignored state folder, so other clones and CI saw nothing recorded.

    \b
    Example:
      hbsdeploy state migrate --env prod && git add state/prod.yaml
    """
    from hbsdeploy.load.yamlload import display_path
    from hbsdeploy.portal.recorded import legacy_store, migrate_legacy

    env = g.load_config().environment(environment)
    written, count = migrate_legacy(env)
    click.echo(f"migrated {plural(count, 'service type')} to {display_path(written)}: review and commit it, then "
               f"remove {display_path(legacy_store(env) or written)}")
    return EXIT_OK
