"""Fixtures of the ecosystem tests: running the CLI with its real exit codes, in a chosen folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbsdeploy.cli.main import main
from tests.ecosystem.helpers import RunHbs


@pytest.fixture
def hbs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunHbs:
    """Run `hbsdeploy ARGS` in `cwd` through the console-script entry point: (exit code, stdout, stderr)."""
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)

    def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            with pytest.raises(SystemExit) as exited:
                main(list(args))
        out, err = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 0 if code is None else 1), out, err

    return run
