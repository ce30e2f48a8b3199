"""One registry of plan formats: `plan --format` offers exactly its entries and prints what they render."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.errors import Problem
from hbsdeploy.load.config import load_config
from hbsdeploy.plan import formats
from hbsdeploy.plan.build import Progress, plan_environment
from hbsdeploy.plan.formats import PLAN_FORMATS, FormatOptions, render_plan
from hbsdeploy.plan.model import Plan, compute_plan
from tests.plan.factories import have, settings, state_of, want


class Quiet:
    """PlanHooks for a repository without warnings, showing no progress."""

    def warn(self, problems: list[Problem]) -> None:
        assert problems == []

    @contextmanager
    def progress(self, what: str) -> Iterator[Progress]:
        yield lambda done, total: None


@pytest.fixture
def plan() -> Plan:
    current = state_of(have("DE*A36", "authorization", version='"2"',
                            payload=settings(service_url="https://old.example.com")))
    return compute_plan("qa", [want("DE*A36", "authorization", service_url="https://new.example.com")], current)


def test_each_entry_renders_with_its_options(plan: Plan) -> None:
    assert render_plan(plan, "text") == formats.render_text(plan, formats.plain)
    assert render_plan(plan, "text", FormatOptions(colour=True)) == formats.render_text(plan, formats.ansi)
    assert render_plan(plan, "json") == formats.render_json(plan)
    assert render_plan(plan, "markdown") == formats.render_markdown(plan)
    options = FormatOptions(portal_label="portal 'qa' (manual)", during_apply=True)
    assert render_plan(plan, "instructions", options) == formats.render_instructions(
        plan, "portal 'qa' (manual)", during_apply=True)
    assert all(entry.help for entry in PLAN_FORMATS.values())


def test_an_unknown_format_names_the_known_ones(plan: Plan) -> None:
    with pytest.raises(KeyError, match="no plan format 'yaml'; known: text, json, markdown, instructions"):
        render_plan(plan, "yaml")


def test_plan_offers_exactly_the_registry() -> None:
    context = click.Context(cli)
    command = cli.get_command(context, "plan")
    assert command is not None
    (option,) = [p for p in command.params if p.name == "output_format"]
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(PLAN_FORMATS)


@pytest.mark.parametrize("name", list(PLAN_FORMATS))
def test_plan_prints_what_the_registry_renders(name: str, repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_copy)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    config = load_config(repo_copy / "hbsdeploy.yaml")
    env = config.environment("sandbox")
    the_plan = plan_environment(config, env, parallelism=2, hooks=Quiet())
    assert the_plan.has_changes  # a fresh sandbox: every format has something to show
    expected = render_plan(the_plan, name, FormatOptions.for_environment(env))
    result = CliRunner().invoke(cli, ["plan", "--format", name])
    assert result.exit_code == 0, result.output
    assert result.stdout == expected
