"""`hbsdeploy audit`: the audit log as a history per partner, service type and environment, filtered."""

from __future__ import annotations

from pathlib import Path

import click

from hbsdeploy.cli.options import Globals, pass_globals
from hbsdeploy.errors import EXIT_OK

RESULTS = ("applied", "failed", "not attempted", "recorded")


@click.command()
@click.option("--env", "environments", metavar="ENV", multiple=True, help="Only this environment; repeatable.")
@click.option("--partner", "partner_ids", metavar="ID", multiple=True, help="Only this partner; repeatable.")
@click.option("--service-type", "service_types", metavar="NAME", multiple=True,
              help="Only this service type; repeatable.")
@click.option("--result", "results", type=click.Choice(RESULTS), multiple=True, help="Only this result; repeatable.")
@click.option("--user", "users", metavar="NAME", multiple=True, help="Only entries by this user; repeatable.")
@click.option("--since", metavar="WHEN", help="From this date or time on (2026-11-26, 2026-11-26T15:30:00Z).")
@click.option("--until", metavar="WHEN", help="Up to this date (its whole day) or time.")
@click.option("--log", "logs", metavar="FILE", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Read this log instead of <state_dir>/audit.jsonl, e.g. a CI run's `hbsdeploy-audit` artifact; "
                   "repeatable (an entry found in several logs is shown once).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one document, schemas/audit.schema.json.")
@pass_globals
def audit(g: Globals, environments: tuple[str, ...], partner_ids: tuple[str, ...], service_types: tuple[str, ...],
          results: tuple[str, ...], users: tuple[str, ...], since: str | None, until: str | None,
          logs: tuple[Path, ...], output_format: str) -> int:
    """Show the audit trail: who changed what, where and when, with the result and its evidence.

    Reads the audit log apply writes (<state_dir>/audit.jsonl) or the logs given with --log, oldest entry first.

    \b
    Example:
      hbsdeploy audit --env prod --partner 'DE*X01' --service-type reservation
      hbsdeploy audit --log artifacts/audit.jsonl --since 2026-11-01 --format json
    """
    from hbsdeploy.apply.history import AuditFilter, history_json, history_text, load_history, parse_when

    selection = AuditFilter(environments, partner_ids, service_types, results, users,
                            parse_when(since, "--since") if since else None,
                            parse_when(until, "--until", end=True) if until else None)
    paths = list(logs) or [g.load_config().state_dir / "audit.jsonl"]
    if not logs and not paths[0].exists():
        click.echo(f"no audit log at {paths[0]}: nothing was applied from this clone; read a CI run's "
                   "`hbsdeploy-audit` artifact with --log FILE", err=True)
        paths = []
    history = load_history(paths, selection)
    if output_format == "json":
        click.echo(history_json(history), nl=False)
    else:
        for line in history_text(history):
            click.echo(line)
    return EXIT_OK
