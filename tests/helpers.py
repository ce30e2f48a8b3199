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

# HBSDEPLOY_UPDATE_EXPECTED=1 rewrites every golden file a test compares with (the .expected files of the validate and
# hostile corpora, tests/data/plan/) from what the code now produces: review the diff before committing it.
UPDATE_GOLDEN = os.environ.get("HBSDEPLOY_UPDATE_EXPECTED") == "1"


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


def check_golden(path: Path, actual: str) -> None:
    """`actual` is exactly the content of the golden file `path`; with UPDATE_GOLDEN, (re)write the file instead."""
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
    assert path.is_file(), f"{path.name} is missing; run with HBSDEPLOY_UPDATE_EXPECTED=1 and review the new file"
    assert actual == path.read_bytes().decode("utf-8"), f"{path.name} differs (HBSDEPLOY_UPDATE_EXPECTED=1 updates it)"
