"""The commands that fit hbsdeploy into editors and new repositories: `schema`, `init` and `doctor`.

Loaded by the `cli` group in hbsdeploy/cli/main.py when one of them runs; the group's settings arrive through the
click context object (`Globals`, from hbsdeploy/cli/options.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hbsdeploy.cli.options import ENV_VAR, Globals, complete_environments
from hbsdeploy.errors import EXIT_ERROR, EXIT_OK
from hbsdeploy.text import plural

SCHEMA_NAMES = {"partner": "partner", "config": "config", "payload": "portal-payload", "plan": "plan",
                "validation": "validation-report", "apply-report": "apply-report"}


@click.command()
@click.argument("name", type=click.Choice(sorted(SCHEMA_NAMES)), default="partner")
def schema(name: str) -> int:
    """Print hbsdeploy's own JSON Schema of partner files, of hbsdeploy.yaml (config), of portal payloads, of `plan
    --format json` (plan) or of `validate --format json` (validation). A project's schemas/partner.schema.json, when
    it has one, is the partner schema in effect; compare it with this one after an upgrade.

    Editors with a YAML language server validate and complete files that start with a
    `# yaml-language-server: $schema=...` line pointing at this schema.

    \b
    Example:
      hbsdeploy schema partner > schemas/partner.schema.json
    """
    from hbsdeploy.load.resources import load_schema

    click.echo(json.dumps(load_schema(SCHEMA_NAMES[name]), indent=2, ensure_ascii=False))
    return EXIT_OK


@click.command()
@click.argument("directory", default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--hook-repo", metavar="URL",
              help="Write a .pre-commit-config.yaml using the hbsdeploy-validate hook from this git repository, at "
                   "--hook-rev (default: a local hook running the hbsdeploy on your PATH).")
@click.option("--hook-rev", metavar="REV", help="The tag or commit of --hook-repo to use (required with it: init "
                                                "never guesses a revision).")
@click.pass_obj
def init(g: Globals, directory: Path, hook_repo: str | None, hook_rev: str | None) -> int:
    """Create an hbsdeploy repository in DIRECTORY (default: here), or add what an existing one lacks.

    Writes hbsdeploy.yaml (a sandbox portal as default, QA and PROD as manual portals), one example partner,
    the templates, the JSON Schemas for editors, a .pre-commit-config.yaml and a .gitignore. Never overwrites:
    a file that exists is left as it is and listed as skipped; an existing .gitignore gets the lines hbsdeploy
    needs appended; the example partner is left out where partner files exist. Exit 0.

    \b
    Example:
      hbsdeploy init my-partners && cd my-partners && hbsdeploy validate && hbsdeploy plan
    """
    from hbsdeploy.tools.scaffold import hook_entry, scaffold_files, write_scaffold

    report = write_scaffold(directory, scaffold_files(hook_repo, hook_rev))
    for created in report.created:
        if not g.quiet:
            click.echo(f"created {created}")
    if report.gitignore_added:
        click.echo(f"updated {directory / '.gitignore'}: added {', '.join(report.gitignore_added)}")
    for skipped, why in report.skipped:
        click.echo(f"skipped {directory / skipped}: {why}")
    if report.hook_missing:
        click.echo(hook_entry(hook_repo, hook_rev), nl=False)
    if not g.quiet:
        if not report.created and not report.gitignore_added:
            click.echo(f"nothing to add: {directory} has every file init writes")
        where = "" if directory == Path(".") else f"cd {directory} && "
        click.echo(f"next: {where}hbsdeploy validate && hbsdeploy plan; then `git init` and `pre-commit install`")
    return EXIT_OK


@click.command()
@click.option("--env", "environment", metavar="ENV", envvar=ENV_VAR, show_envvar=True,
              shell_complete=complete_environments,
              help="The environment to check (default: $HBSDEPLOY_ENV, else default_environment).")
@click.option("--probe", is_flag=True,
              help="Also reach every Service URL of the environment's partners as the platform does: DNS, TCP, "
                   "TLS handshake trusting what the platform trusts (the uploaded User certificate, else public "
                   "CAs), certificate valid for the host and not expiring within 30 days, then one HTTP GET.")
@click.option("--probe-http/--no-probe-http", default=True, show_default=True,
              help="With --probe: send one GET of the Service URL plus an OICP operation path that starts nothing "
                   "(e.g. .../authorize-remote/stop), to tell a wrong base path (404) from a right one (405, 400, "
                   "401, 403).")
@click.option("--probe-ca-bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="HBSDEPLOY_PROBE_CA_BUNDLE", metavar="FILE",
              help="Trust this PEM CA bundle when probing instead of the system's public CAs (a private or test "
                   "CA; also $HBSDEPLOY_PROBE_CA_BUNDLE).")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=120.0), default=5.0, show_default=True,
              metavar="SECONDS", help="Timeout of each network step.")
@click.pass_obj
def doctor(g: Globals, environment: str | None, probe: bool, probe_http: bool, probe_ca_bundle: Path | None,
           timeout: float) -> int:
    """Check that this machine can plan and apply: one line per check, `ok`, `warn` or `FAIL`.

    Checks the config, the partner files, the environment's client certificate and key (readable, matching,
    not expiring within 30 days), CA bundle, token variable (never printed) and that the portal is reachable.
    Exit 0 when nothing failed (warnings allowed), 1 otherwise.

    \b
    Example:
      hbsdeploy doctor --env qa --probe
    """
    from hbsdeploy.tools.doctor import CheckStatus, DoctorOptions, run_checks

    options = DoctorOptions(environment=environment, probe=probe, probe_http=probe_http,
                            probe_ca_bundle=probe_ca_bundle, timeout=timeout)
    failures = 0
    for check in run_checks(g.config_path, options):
        failures += check.status is CheckStatus.FAIL
        if not (g.quiet and check.status in (CheckStatus.OK, CheckStatus.NOTE)):  # -q: only what needs action
            click.echo(check.format())
    if not g.quiet:
        click.echo(f"{plural(failures, 'check')} failed" if failures else "all checks passed")
    return EXIT_ERROR if failures else EXIT_OK
