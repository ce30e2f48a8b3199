"""`hbsdeploy login --env qa` with a visible browser, end to end: Chromium in a virtual X display (Xvfb), a person's
typing played with xdotool on the replica's login page, the session saved, then a plan reusing it without any
credential. .ci/run installs xvfb and xdotool from Debian packages (CI runs as root)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hbsdeploy.cli.main import cli
from hbsdeploy.portal.emulator import ServerHandle
from tests.webdriver.helpers import EXAMPLE_PARTNER, PASSWORD, REPO, USER, start_replica, write_repo

CONFIG = "default_environment: qa\nenvironments:\n  qa:\n    portal: web\n    url: {url}\n"


@pytest.fixture
def display() -> Iterator[str]:
    """A virtual X display of its own (Xvfb picks a free number and writes it to a pipe)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as numbers:
        number = numbers.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerHandle, io.StringIO]]:
    log = io.StringIO()
    handle = start_replica(tmp_path / "portal.sqlite3", {"DE*A36": "Example Charging GmbH"}, log_stream=log)
    yield handle, log
    handle.stop()


def test_headed_login_completed_in_the_page_then_a_plan_reuses_the_session_without_credentials(
        tmp_path: Path, display: str, served: tuple[ServerHandle, io.StringIO],
        monkeypatch: pytest.MonkeyPatch) -> None:
    handle, log = served
    repo = write_repo(tmp_path / "repo", CONFIG.format(url=handle.url), {"example.yaml": EXAMPLE_PARTNER})
    env = {key: value for key, value in os.environ.items() if not key.startswith("HBSDEPLOY_")}
    env.update(DISPLAY=display, PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))

    login = subprocess.Popen([sys.executable, "-m", "hbsdeploy", "login", "--env", "qa", "--wait", "120"], cwd=repo,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        bound = time.monotonic() + 120  # only against a hang; nothing is asserted on time
        while '"GET /login"' not in log.getvalue() and login.poll() is None and time.monotonic() < bound:
            time.sleep(0.1)
        assert '"GET /login"' in log.getvalue(), "the browser window never showed the login page"

        def xdotool(*args: str) -> str:
            done = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=60, check=True)
            return done.stdout.strip()

        # What a person does: the window, the first field, the user name, the password, Enter. Keys typed before the
        # page has focus are lost (no form is posted): then the person reloads the page and types again.
        # The window's title is the page's once the login page is rendered: wait for it rather than for the window.
        window = xdotool("search", "--sync", "--onlyvisible", "--name", "^Log in").splitlines()[0]
        for _attempt in range(5):
            xdotool("windowfocus", "--sync", window)
            xdotool("key", "Tab")
            xdotool("type", "--delay", "20", USER)
            xdotool("key", "Tab")
            xdotool("type", "--delay", "20", PASSWORD)
            xdotool("key", "Return")
            bound = time.monotonic() + 15  # only against a hang; nothing is asserted on time
            while '"POST /login"' not in log.getvalue() and login.poll() is None and time.monotonic() < bound:
                time.sleep(0.1)
            if '"POST /login"' in log.getvalue() or login.poll() is not None:
                break
            xdotool("key", "F5")
        out, err = login.communicate(timeout=120)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, (out, err)
    assert out.strip() == "Logged in to 'qa'; session saved in .hbsdeploy/web-session-qa.json (keep it out of git)."
    assert PASSWORD not in out + err
    session = repo / ".hbsdeploy" / "web-session-qa.json"
    assert session.stat().st_mode & 0o777 == 0o600
    assert log.getvalue().count('"POST /login"') == 1

    # A later plan, headless, with no credential at all: the saved session is enough.
    monkeypatch.chdir(repo)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["plan", "--env", "qa", "--detailed-exitcode"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "DE*A36 (Example Charging GmbH) / authorization [enable]" in result.output
    assert log.getvalue().count('"POST /login"') == 1  # no second log-in
