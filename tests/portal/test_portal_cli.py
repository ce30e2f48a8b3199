"""`hbsdeploy portal serve` as a real process: prints its URL, serves, stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.portal import portal
from hbsdeploy.portal.http import HttpPortal
from tests.fixtures.tls import TlsFiles
from tests.portal.helpers import TOKEN, TOKEN_ENV, make_env

REPO = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    """`python -m hbsdeploy portal` once cli.py registers the group, else the group itself."""
    try:
        from hbsdeploy.cli.main import cli

        registered = "portal" in getattr(cli, "commands", {})
    except Exception:  # cli.py is another module's work; fall back while it does not import or register
        registered = False
    if registered:
        return [sys.executable, "-m", "hbsdeploy", "portal"]
    return [sys.executable, "-c", "import sys; from hbsdeploy.cli.portal import portal; portal(sys.argv[1:])"]


def _read_line(process: subprocess.Popen[str], timeout: float = 10) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the emulator printed nothing"
    return process.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_the_url_serves_and_stops_cleanly(tmp_path: Path, tls: TlsFiles,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       stop_signal: signal.Signals) -> None:
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONPATH": str(REPO)}
    args = ["serve", "--port", "0", "--state", str(tmp_path / "state.sqlite3"), "--tls-cert",
            str(tls.server_cert), "--tls-key", str(tls.server_key), "--client-ca", str(tls.ca),
            "--token-env", TOKEN_ENV, "--partner", "DE*A36", "--partner", "+49*536"]
    process = subprocess.Popen([*_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    try:
        line = _read_line(process)
        match = re.fullmatch(r"serving on (https://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        client = HttpPortal(make_env(match.group(1), token_env=TOKEN_ENV, client_cert=tls.client_cert,
                                     client_key=tls.client_key, ca_bundle=tls.ca))
        assert client.get_service_type("+49*536", "authorization").version == '"0"'
        client.close()
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert '"GET /v1/partners/%2B49%2A536/service-types/authorization" 200' in stderr
    assert TOKEN not in stderr and "Traceback" not in stderr
    assert re.search(r"stopped after \d+ requests, 0 faults injected", stderr)


def test_serve_errors_are_one_line_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    result = runner.invoke(portal, ["serve", "--port", "0", "--state", str(tmp_path / "s"), "--token-env", TOKEN_ENV])
    assert result.exit_code == 1 and f"--token-env {TOKEN_ENV}" in result.output
    result = runner.invoke(portal, ["serve", "--host", "10.1.2.3", "--state", str(tmp_path / "s")])
    assert result.exit_code == 1 and "not a loopback address" in result.output
    assert "Traceback" not in result.output
