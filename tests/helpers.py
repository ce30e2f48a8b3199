"""Helpers more than one test folder uses: the repository's root, a valid payload, running the CLI in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent


def online_payload(**overrides: Any) -> dict[str, Any]:
    """A complete, valid payload: the recommended CPO Authorization (online, Hubject certificate), with overrides."""
    base: dict[str, Any] = {
        "online_request": True,
        "broadcast_request": False,
        "service_url": "https://oicp.example.com/base",
        "client_certification": True,
        "certificate": "hubject",
        "certificate_sha256": None,
    }
    base.update(overrides)
    return base


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run with `path` as the working directory: problems then name files relative to it."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@dataclass(frozen=True)
class Ran:
    """One CLI run: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, input: str | None = None, env: Mapping[str, str | None] | None = None) -> Ran:
    """Run `hbsdeploy ARGS` in this process through the console script's entry point (exit codes as shipped)."""
    from hbsdeploy.cli.main import main

    runner = CliRunner()
    with runner.isolation(input=input, env=env) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return Ran(code, stdout, stderr)
