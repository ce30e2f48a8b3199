"""What the commands share: the global options (`Globals`) and the common options (the exit codes: errors.py).

Its own module so that the lazily loaded command modules (deploy, ecosystem, portal) need not import
hbsdeploy.cli.main, which loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from hbsdeploy.load.config import Config


@dataclass
class Globals:
    """The options given before the command: --config, -v, -q."""

    config_path: str | None
    verbose: int
    quiet: bool

    def load_config(self) -> Config:
        """The hbsdeploy.yaml that --config, $HBSDEPLOY_CONFIG or the folder names, loaded and checked."""
        from hbsdeploy.load.config import find_config, load_config

        return load_config(find_config(self.config_path))


pass_globals = click.make_pass_decorator(Globals)

environment_option = click.option("--env", "environment", metavar="ENV",
                                  help="The environment from hbsdeploy.yaml (default: default_environment).")
partner_option = click.option("--partner", "partner_ids", metavar="ID", multiple=True,
                              help="Only this partner (OperatorID or ProviderID); repeatable.")
