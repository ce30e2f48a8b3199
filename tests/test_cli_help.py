"""Every command's --help works and shows an example (the README promises it)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli


def _commands(command: click.Command, path: list[str]) -> Iterator[list[str]]:
    yield path
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None
            yield from _commands(sub, [*path, name])


@pytest.mark.parametrize("path", list(_commands(cli, [])), ids=lambda p: " ".join(p) or "hbsdeploy")
def test_help_has_an_example(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
