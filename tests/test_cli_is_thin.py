"""The CLI stays thin: short click commands, the questions to a person only in hbsdeploy/cli/, no private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "hbsdeploy" / "cli"
MAX_COMMAND_BODY = 30

# What talks to the person at the terminal: prompts, confirmations, and the checks whether one is there
# (`click.prompt`, `sys.stdin.isatty()`, `input()`); a library function calling a callback named `confirm` is fine.
_TERMINAL_FUNCTIONS = {"input", "print"}
_TERMINAL_METHODS = {"prompt", "confirm", "getpass", "isatty", "secho", "echo"}
_TERMINAL_NAMES = {"stdin"}


def _cli_modules() -> list[Path]:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) >= 4
    return modules


def _library_modules() -> list[Path]:
    library = [p for p in (REPO / "hbsdeploy").rglob("*.py") if CLI not in p.parents]
    assert len(library) > 20
    return library


def _is_command(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name in {"command", "group"}


def _commands(path: Path) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef) and any(_is_command(d) for d in node.decorator_list):
            yield node


def _body_lines(function: ast.FunctionDef) -> int:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring is the --help text, not code
    if not body:
        return 0
    end = body[-1].end_lineno
    assert end is not None
    return end - body[0].lineno + 1


def test_every_click_command_body_is_at_most_30_lines() -> None:
    found = {f"{path.name}:{command.name}": _body_lines(command)
             for path in _cli_modules() for command in _commands(path)}
    assert {"main.py:validate", "deploy.py:plan", "deploy.py:apply"} <= set(found)
    too_long = {name: lines for name, lines in found.items() if lines > MAX_COMMAND_BODY}
    assert too_long == {}, f"move the work into a library function; command bodies over {MAX_COMMAND_BODY} lines"


def test_the_body_count_sees_a_long_command() -> None:
    source = "@cli.command()\n@click.option('--x')\ndef long(x):\n    '''Help.'''\n" + "    x += 1\n" * 31
    (function,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
    assert _is_command(function.decorator_list[0]) and _body_lines(function) == 31


def _terminal_use(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr in _TERMINAL_METHODS
                    or isinstance(func, ast.Name) and func.id in _TERMINAL_FUNCTIONS):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(func)}()")
        elif isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            if name in _TERMINAL_NAMES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    return found


def test_only_the_cli_asks_a_person() -> None:
    """Prompts, confirmations and terminal checks are the CLI's hooks; the library calls them, never the terminal."""
    assert _terminal_use(CLI / "terminal.py")  # the check finds them where they are
    found = [use for path in _library_modules() for use in _terminal_use(path)]
    assert found == []


def test_the_cli_uses_no_private_library_name() -> None:
    private = []
    for path in _cli_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if module.startswith("hbsdeploy.") and not module.startswith("hbsdeploy.cli"):
                assert isinstance(node, ast.ImportFrom)
                private += [f"{path.name}: {module}.{a.name}" for a in node.names if a.name.startswith("_")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and isinstance(node.value, ast.Name) and node.value.id not in {"self", "click", "exc"}):
                private.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert private == []
