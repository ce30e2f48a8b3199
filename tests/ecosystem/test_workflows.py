"""The CI examples parse, and every `hbsdeploy ...` they run is a real command with real options of the CLI."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from hbsdeploy.cli.main import cli
from tests.ecosystem.helpers import RunHbs

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WORKFLOWS = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
GITHUB = EXAMPLES / "github-actions" / "hbsdeploy.yml"
MATCHER = EXAMPLES / "github-actions" / "hbsdeploy-problem-matcher.json"

COMMAND_STARTERS = {";", "&&", "||", "|", "(", "$(", "{", "!", "then", "do", "else", "elif", "if", "while", "time",
                    "exec"}
SHELL_OPERATORS = set("();<>|&")


# --- finding hbsdeploy invocations in shell scripts ------------------------------------------------------------------

def scripts(path: Path) -> Iterator[tuple[str, str]]:
    """(where, shell script) of every step of a GitHub workflow or every script line of a GitLab CI file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    if "jobs" in document:  # GitHub Actions
        for job_name, job in document["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    yield f"{job_name}.steps[{index}]", step["run"]
        return
    jobs = {name: job for name, job in document.items() if isinstance(job, dict)}  # GitLab CI
    for job_name, job in jobs.items():
        for key in ("before_script", "script", "after_script"):
            lines = job.get(key, [])
            for index, line in enumerate([lines] if isinstance(lines, str) else lines):
                yield f"{job_name}.{key}[{index}]", line


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError as exc:
        raise AssertionError(f"cannot split shell line {line!r}: {exc}") from None


def invocations(script: str) -> Iterator[list[str]]:
    """The arguments of every `hbsdeploy` run in command position in `script`."""
    script = re.sub(r"\$\{\{.*?\}\}", "GITHUB_EXPRESSION", script)
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        tokens = _tokens(line)
        for index, token in enumerate(tokens):
            if token != "hbsdeploy":
                continue
            before = tokens[index - 1] if index else ";"
            if before not in COMMAND_STARTERS and not set(before) <= SHELL_OPERATORS and not before.endswith("$("):
                continue
            args: list[str] = []
            for arg in tokens[index + 1:]:
                if set(arg) <= SHELL_OPERATORS:
                    if args and args[-1].isdigit() and ">" in arg:  # `2>` split into `2` and `>`
                        args.pop()
                    break
                args.append(arg)
            yield args


# --- checking them against the click command tree -------------------------------------------------------------------

def _options(command: click.Command) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


def check_invocation(args: list[str]) -> list[str]:
    """Problems of one `hbsdeploy ARGS` run: unknown commands, unknown options, bad choices, too many arguments."""
    problems: list[str] = []
    command: click.Command = cli
    path = "hbsdeploy"
    help_names = set(cli.context_settings.get("help_option_names", ["--help"]))
    queue = list(args)
    positional: list[str] = []
    while queue:
        arg = queue.pop(0)
        if arg.startswith("-") and arg != "-":
            name, has_value, value = arg.partition("=")
            options = _options(command)
            if name in help_names:
                continue
            option = options.get(name)
            if option is None:
                problems.append(f"`{path}` has no option {name} (it has: {', '.join(sorted(options))})")
                continue
            takes_value = not option.is_flag and not option.count
            if takes_value and not has_value:
                if not queue:
                    problems.append(f"`{path} {name}` needs a value")
                    continue
                value = queue.pop(0)
            if takes_value and isinstance(option.type, click.Choice) and "$" not in value \
                    and "GITHUB_EXPRESSION" not in value and value not in option.type.choices:
                problems.append(f"`{path} {name} {value}`: choose one of {', '.join(map(str, option.type.choices))}")
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), arg)
            if sub is None:
                known = ", ".join(command.list_commands(click.Context(command)))
                problems.append(f"`{path}` has no command {arg!r} (it has: {known})")
                return problems
            command, path = sub, f"{path} {arg}"
            continue
        positional.append(arg)
    if isinstance(command, click.Group):
        problems.append(f"`{path}` needs a command")
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if all(a.nargs != -1 for a in arguments) and len(positional) > sum(a.nargs for a in arguments):
        problems.append(f"`{path}` takes {sum(a.nargs for a in arguments)} argument(s), got {positional}")
    return problems


def all_invocations() -> list[tuple[str, list[str]]]:
    return [(f"{path.relative_to(REPO)}:{where}", args)
            for path in WORKFLOWS for where, script in scripts(path) for args in invocations(script)]


# --- the tests -------------------------------------------------------------------------------------------------------

def test_there_are_github_and_gitlab_examples() -> None:
    assert GITHUB in WORKFLOWS
    assert EXAMPLES / "gitlab-ci" / ".gitlab-ci.yml" in WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_hbsdeploy_invocation_is_a_real_command_with_real_options(path: Path) -> None:
    found = [(where, args) for where, script in scripts(path) for args in invocations(script)]
    assert found, f"{path}: no hbsdeploy invocation found; is the extraction broken?"
    problems = [f"{where}: {problem}" for where, args in found for problem in check_invocation(args)]
    assert problems == []


def test_the_examples_cover_validate_plan_apply_and_the_drift_check() -> None:
    runs = [" ".join(args) for _, args in all_invocations()]
    assert any(r.startswith("validate") for r in runs)
    assert any(r.startswith("plan") and "--out plan.json" in r and "--format markdown" in r for r in runs)
    assert any(r.startswith("apply ") and "--checksum" in r for r in runs)
    assert any(r.startswith("plan") and "--detailed-exitcode" in r for r in runs)
    assert any(r.startswith("doctor") for r in runs)


@pytest.mark.parametrize("args", [
    ["plan", "--formt", "json"],
    ["plan", "--format", "yaml"],
    ["deploy"],
    ["portal"],
    ["validate", "--env"],
    ["schema", "partner", "config"],
])
def test_the_check_catches_drift(args: list[str]) -> None:
    assert check_invocation(args) != []


def test_the_check_accepts_global_options_subcommands_and_shell_forms() -> None:
    (args,) = invocations('x=$(hbsdeploy -q plan --env "$E" --format=json 2>&1) && echo "$x" | tee out')
    assert args == ["-q", "plan", "--env", "$E", "--format=json"]
    assert check_invocation(args) == []
    assert list(invocations("pip install hbsdeploy && echo hbsdeploy plan --nope")) == []


def test_the_github_workflow_runs_on_pull_requests_main_and_a_schedule() -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "push", "schedule", "workflow_dispatch"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert {"validate", "plan", "apply-qa", "apply-prod", "drift"} <= set(jobs)
    plan_steps = json.dumps(jobs["plan"]["steps"])
    assert "actions/upload-artifact" in plan_steps
    assert "<!-- hbsdeploy-plan:$TARGET -->" in plan_steps
    assert "issues/comments/$comment_id" in plan_steps  # the previous comment is updated, not duplicated
    apply_steps = json.dumps(jobs["apply-qa"]["steps"])
    assert "gh run download" in apply_steps and "hbsdeploy-plan-checksum:$TARGET" in apply_steps
    assert jobs["apply-qa"]["concurrency"]["cancel-in-progress"] is False


def _matcher() -> tuple[re.Pattern[str], dict[str, Any]]:
    (entry,) = json.loads(MATCHER.read_text())["problemMatcher"]
    (pattern,) = entry["pattern"]
    return re.compile(pattern["regexp"]), pattern


def test_the_problem_matcher_turns_validate_output_into_annotations(repo_copy: Path, hbs: RunHbs) -> None:
    partner = repo_copy / "partners" / "example-cpo.yaml"
    partner.write_text(partner.read_text().replace("https://oicp.example-charging.com\n",
                                                   "https://oicp.example charging.com\n"))
    code, out, _ = hbs("validate", cwd=repo_copy)
    assert code == 1
    regexp, groups = _matcher()
    matches = [m for line in out.splitlines() if (m := regexp.match(line))]
    assert len(matches) == 1, out
    (match,) = matches
    assert match.group(groups["file"]) == "partners/example-cpo.yaml"
    line = int(match.group(groups["line"]))
    assert "example charging" in partner.read_text().splitlines()[line - 1]
    assert int(match.group(groups["column"])) > 1
    assert match.group(groups["severity"]) == "error"
    assert match.group(groups["code"]) == "service-url-whitespace"
    assert match.group(groups["message"]).startswith("Service URL contains U+0020 (SPACE)")
    assert not regexp.match(out.splitlines()[-1])  # the summary line is not an annotation
