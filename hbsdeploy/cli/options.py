"""What the commands share: the global options (`Globals`) and the common options (the exit codes: errors.py).

Its own module so that the lazily loaded command modules (deploy, ecosystem, portal) need not import
hbsdeploy.cli.main, which loads them.

The global options (--config, -v, -q, --color) are accepted before the command and after it (`hbsdeploy plan -q`,
a pre-commit `args: [--config, infra/hbsdeploy.yaml]`): the group declares them, and `add_global_options` gives every
command a copy that updates the same `Globals` (given twice, the one after the command wins).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from hbsdeploy.load.config import Config

ENV_VAR = "HBSDEPLOY_ENV"  # hbsdeploy.load.config.ENVIRONMENT_ENV_VAR, which loads YAML: not imported at start

COLOUR_CHOICES = ("auto", "always", "never")


@dataclass
class Globals:
    """The global options: --config, -v, -q, --color."""

    config_path: str | None
    verbose: int
    quiet: bool
    colour: str = "auto"

    def load_config(self) -> Config:
        """The hbsdeploy.yaml that --config, $HBSDEPLOY_CONFIG or the folder names, loaded and checked."""
        from hbsdeploy.load.config import find_config, load_config

        return load_config(find_config(self.config_path))

    def use_colour(self, stream_is_tty: bool | None = None) -> bool:
        """--color always/never; by default colour only on a terminal (stdout) and never with NO_COLOR set."""
        if self.colour != "auto":
            return self.colour == "always"
        tty = sys.stdout.isatty() if stream_is_tty is None else stream_is_tty
        return tty and not os.environ.get("NO_COLOR")


pass_globals = click.make_pass_decorator(Globals)


def configure_logging(verbose: int) -> None:
    """-v logs hbsdeploy's portal requests on stderr (secrets redacted); -vv also urllib3's connections."""
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


CONFIG_HELP = ("The hbsdeploy.yaml to use (default: $HBSDEPLOY_CONFIG, else the nearest one in this folder or a "
               "parent).")
VERBOSE_HELP = "Log each portal request and response on stderr (secrets redacted); -vv adds connections."
QUIET_HELP = "Print only problems and results, no summaries or progress."
COLOUR_HELP = "Colour text output: auto (a terminal without NO_COLOR), always or never."


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _after_command(update: Callable[[Globals, Any], None]) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name is None or not _given(ctx, param.name):
            return
        ctx.meta[f"hbsdeploy.{param.name}"] = value  # shell completion reads it: no Globals exist while completing
        g = ctx.find_object(Globals)
        if g is not None and not ctx.resilient_parsing:
            update(g, value)

    return callback


def _set_config(g: Globals, value: str) -> None:
    g.config_path = value


def _add_verbose(g: Globals, value: int) -> None:
    g.verbose += value
    configure_logging(g.verbose)


def _set_quiet(g: Globals, value: bool) -> None:
    g.quiet = g.quiet or value


def _set_colour(g: Globals, value: str) -> None:
    g.colour = value


def global_params() -> list[click.Parameter]:
    """A fresh copy of the global options for one command: each updates the `Globals` the group made."""
    return [
        click.Option(["--config", "config_after"], metavar="FILE", expose_value=False, help=CONFIG_HELP,
                     callback=_after_command(_set_config)),
        click.Option(["-v", "--verbose", "verbose_after"], count=True, expose_value=False, help=VERBOSE_HELP,
                     callback=_after_command(_add_verbose)),
        click.Option(["-q", "--quiet", "quiet_after"], is_flag=True, expose_value=False, help=QUIET_HELP,
                     callback=_after_command(_set_quiet)),
        click.Option(["--color", "--colour", "colour_after"], type=click.Choice(COLOUR_CHOICES), expose_value=False,
                     help=COLOUR_HELP, callback=_after_command(_set_colour)),
    ]


def add_global_options(command: click.Command) -> None:
    """Give `command` (and, for a group, each of its commands) the global options, once."""
    if getattr(command, "hbsdeploy_globals", False):
        return
    command.params.extend(global_params())
    command.hbsdeploy_globals = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub)


def config_path_of(ctx: click.Context) -> str | None:
    """The --config given after the command, else before it, else None (for shell completion, before Globals)."""
    after = ctx.meta.get("hbsdeploy.config_after")
    if isinstance(after, str) and after:
        return after
    before = ctx.find_root().params.get("config_path")
    return before if isinstance(before, str) and before else None


def complete_environments(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of --env: the environments of the hbsdeploy.yaml in use (none if it cannot be read)."""
    from hbsdeploy.tools.completion import environment_names

    return [name for name in environment_names(config_path_of(ctx)) if name.startswith(incomplete)]


def complete_partners(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of --partner: the partner IDs of the repository's partner files."""
    from hbsdeploy.tools.completion import partner_ids

    return [pid for pid in partner_ids(config_path_of(ctx)) if pid.lower().startswith(incomplete.lower())]


environment_option = click.option(
    "--env", "environment", metavar="ENV", envvar=ENV_VAR, show_envvar=True, shell_complete=complete_environments,
    help=f"The environment from hbsdeploy.yaml (default: ${ENV_VAR}, else default_environment).")
partner_option = click.option("--partner", "partner_ids", metavar="ID", multiple=True, shell_complete=complete_partners,
                              help="Only this partner (OperatorID or ProviderID); repeatable.")


def _complete_service_types(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from hbsdeploy.tools.completion import service_type_names

    return [name for name in service_type_names(config_path_of(ctx)) if name.startswith(incomplete)]


service_type_option = click.option(
    "--service-type", "service_types", metavar="NAME", multiple=True, shell_complete=_complete_service_types,
    help="Only this service type (see `hbsdeploy schema partner`); repeatable. Combines with --partner.")

MAX_STDIN_BYTES = 256 * 1024 * 1024


def read_input(what: str) -> bytes:
    """Standard input's bytes for a `-` given where a file is read (at most MAX_STDIN_BYTES)."""
    from hbsdeploy.errors import HbsError

    if sys.stdin.isatty():
        raise HbsError(f"-: reading the {what} from standard input, but it is a terminal; pipe the {what} in "
                       f"(`... | hbsdeploy ... -`) or give its path")
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise HbsError(f"-: the {what} on standard input is larger than {MAX_STDIN_BYTES // (1024 * 1024)} MB")
    return data
