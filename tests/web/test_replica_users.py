"""The replica's users file, and `hbsdeploy portal serve --ui` as a real process."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from hbsdeploy.cli.portal import portal
from hbsdeploy.errors import InputError
from hbsdeploy.portal.replica_users import ReplicaSetupError, load_users_file, make_user
from tests.fixtures.tls import TlsFiles
from tests.web.helpers import FINGERPRINT

REPO = Path(__file__).resolve().parents[2]
SECRET_PASSWORD = "pa55-never-shown"
USERS = f"""\
accounts:
  - id: "DE*A36"
    name: Example Charging GmbH
    certificates: ["{FINGERPRINT.upper()}"]
users:
  - username: operator
    password_env: HBSDEPLOY_TEST_REPLICA_PASSWORD
    accounts: ["DE*A36", "DE*B12"]
  - username: second
    password: inline-password
    totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
    role: viewer
    accounts: ["DE*A36"]
"""


def test_a_users_file_gives_users_accounts_and_certificates(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(USERS)
    directory = load_users_file(path, {"HBSDEPLOY_TEST_REPLICA_PASSWORD": SECRET_PASSWORD})
    operator = directory.user("operator")
    assert operator is not None and operator.check_password(SECRET_PASSWORD) and not operator.check_password("x")
    assert operator.accounts == ("DE*A36", "DE*B12") and operator.may_edit
    second = directory.user("second")
    assert second is not None and second.totp_secret is not None and not second.may_edit
    assert directory.account("DE*A36").title == "DE*A36 - Example Charging GmbH"
    assert directory.account("DE*A36").certificates == (FINGERPRINT,)  # upper case normalised
    assert directory.account_ids() == ["DE*A36", "DE*B12"]
    assert SECRET_PASSWORD not in repr(operator) and "inline-password" not in repr(second)
    assert "JBSWY3DP" not in repr(second)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("users: []\n", 1, "a users file is a mapping with `users:`"),
    ("users:\n  - username: a\n    accounts: [DE*A36]\n", 2, "password_env (or password) is required"),
    ("users:\n  - username: a\n    password_env: HBSDEPLOY_UNSET_VARIABLE\n    accounts: [DE*A36]\n", 3,
     "HBSDEPLOY_UNSET_VARIABLE is not set or empty"),
    ("users:\n  - username: a\n    password: p\n    accounts: [nonsense]\n", 2, "'nonsense' is not an OICP"),
    ("users:\n  - username: a\n    password: p\n    totp_secret: 'TOPSECRET!!'\n    accounts: [DE*A36]\n", 2,
     "the TOTP secret is not base32"),
    ("users:\n  - username: a\n    password: p\n    accounts: [DE*A36]\n    colour: red\n", 5,
     "unknown key 'colour'"),
    ("users:\n  - username: a\n    password: p\n    accounts: [DE*A36]\n  - username: a\n    password: q\n"
     "    accounts: [DE*A36]\n", 5, "listed twice"),
    ("accounts:\n  - id: DE*A36\n    certificates: [abc]\n"
     "users:\n  - username: a\n    password: p\n    accounts: [DE*A36]\n", 2, "'abc' is not a SHA-256"),
    ("users:\n  - username: a\n    password: p\n    role: owner\n    accounts: [DE*A36]\n", 2,
     "role must be one of administrator, viewer"),
])
def test_users_file_errors_name_the_line_and_never_a_secret(tmp_path: Path, text: str, line: int,
                                                            message: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_users_file(path, {})
    shown = str(caught.value)
    assert f"users.yaml:{line}:" in shown and message in shown, shown
    assert "TOPSECRET" not in shown


def test_programmatic_users_are_checked() -> None:
    with pytest.raises(ReplicaSetupError, match="password is empty"):
        make_user("a", "", ["DE*A36"])
    with pytest.raises(ReplicaSetupError, match="not base32") as caught:
        make_user("a", "p", ["DE*A36"], totp_secret="SECRET-1!")
    assert "SECRET-1" not in str(caught.value)


def test_serve_ui_needs_a_users_file_and_reports_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    state = str(tmp_path / "s.sqlite3")
    result = runner.invoke(portal, ["serve", "--port", "0", "--state", state, "--ui"])
    assert result.exit_code == 2 and "--ui needs --ui-users" in result.output
    bad = tmp_path / "users.yaml"
    bad.write_text("users:\n  - username: a\n    password: hunter2\n    accounts: [nope]\n")
    result = runner.invoke(portal, ["serve", "--port", "0", "--state", state, "--ui", "--ui-users", str(bad)])
    assert result.exit_code == 1 and "users.yaml:2:" in result.output and "'nope' is not an OICP" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output
    good = tmp_path / "good.yaml"
    good.write_text("users:\n  - username: a\n    password: p\n    accounts: [DE*A36]\n")
    result = runner.invoke(portal, ["serve", "--port", "0", "--state", state, "--ui-users", str(good)])
    assert result.exit_code == 1 and "--ui-users needs --ui" in result.output


def test_serve_ui_as_a_process_logs_in_and_never_logs_the_password(tmp_path: Path,
                                                                   tls: TlsFiles) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(USERS)
    env = {**os.environ, "HBSDEPLOY_TEST_REPLICA_PASSWORD": SECRET_PASSWORD, "PYTHONPATH": str(REPO)}
    args = ["serve", "--port", "0", "--state", str(tmp_path / "state.sqlite3"), "--tls-cert", str(tls.server_cert),
            "--tls-key", str(tls.server_key), "--ui", "--ui-users", str(users), "--ui-session-minutes", "5"]
    command = [sys.executable, "-c", "import sys; from hbsdeploy.cli.portal import portal; portal(sys.argv[1:])"]
    process = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the emulator printed nothing"
        match = re.fullmatch(r"serving on (https://127\.0\.0\.1:\d+)\n", process.stdout.readline())
        assert match
        url = match.group(1)
        assert process.stdout.readline() == f"web UI at {url}/login\n"
        client = requests.Session()
        client.trust_env = False
        client.verify = str(tls.ca)
        answer = client.post(f"{url}/login", data={"username": "operator", "password": SECRET_PASSWORD})
        assert answer.url == f"{url}/"
        page = client.get(f"{url}/administration/service-type-settings").text
        assert "DE*A36 - Example Charging GmbH" in page and FINGERPRINT in page
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert '"POST /login" 303' in stderr
    assert SECRET_PASSWORD not in stderr and "inline-password" not in stderr and "Traceback" not in stderr
