"""`hbsdeploy login`: keep a session of the portal's web UI for later headless runs of a `portal: web` environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hbsdeploy.cli.options import ENV_VAR, complete_environments
from hbsdeploy.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from hbsdeploy.cli.options import Globals


@click.command()
@click.option("--env", "environment", metavar="ENV", required=True, envvar=ENV_VAR, show_envvar=True,
              shell_complete=complete_environments, help="The web environment to log in to.")
@click.option("--headless", is_flag=True,
              help="Log in without a window, from the username_env, password_env (and totp_env) variables.")
@click.option("--wait", "wait_seconds", type=click.IntRange(10, 3600), default=600, show_default=True,
              help="Seconds to wait for you to log in in the browser window.")
@click.pass_obj
def login(g: Globals, environment: str, headless: bool, wait_seconds: int) -> int:
    """Log in to a web portal and keep the session (0600, in the state folder) for later runs.

    Opens a browser window at the portal's login page: log in there, with whatever second factor the portal asks
    for; hbsdeploy waits until the Service Type Settings link is reachable and saves the session. Later commands on
    this environment reuse it headless until it expires. With --headless, logs in from the environment variables
    named by username_env, password_env and totp_env (as unattended runs do).

    \b
    Example:
      hbsdeploy login --env qa
    """
    from hbsdeploy.load.yamlload import display_path
    from hbsdeploy.portal.web.driver import log_in_interactively

    config = g.load_config()
    env = config.environment(environment)
    if env.kind != "web":
        raise UsageError(f"{environment!r} is not a web environment (portal: {env.portal}); login is for portal: web")
    if headless and not (env.username_env and env.password_env):
        raise UsageError(f"--headless needs username_env and password_env in environment {env.name!r}")
    if not headless:
        click.echo(f"Log in to {env.url} in the browser window; waiting up to {wait_seconds} s.", err=True)
    saved = log_in_interactively(env, headless=headless, wait_seconds=wait_seconds)
    click.echo(f"Logged in to {env.name!r}; session saved in {display_path(saved)} (keep it out of git).")
    return EXIT_OK
