"""Secrets: every command runs with a known bearer token (through token_env) and a client key of known content, against
the portal emulator on 127.0.0.1 over mutual TLS where a portal is needed, with -v/-vv where it logs; neither the
token nor the key appears in any stdout or stderr, any file the commands write (plan file, audit log, rendered
payloads, imported partner file, stores, scaffold), or any exception text. Error paths too: a wrong token (401), a
portal URL with a user name and password, a missing token variable.

The commands run as child processes, so that -v configures logging as it does for a user (pytest owns the root
logger in this process). Independent commands run at once to keep the module quick.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hbsdeploy.load.config import load_config
from hbsdeploy.portal import PortalAuthError, PortalError
from hbsdeploy.portal.emulator import ServerHandle
from hbsdeploy.portal.http import HttpPortal
from tests.fixtures.emulator import Emulators
from tests.fixtures.tls import TlsFiles
from tests.security.helpers import REPO

TOKEN = "HBSDEPLOY-security-t0ken-9f3c1a7e-never-printed"
WRONG_TOKEN = "wrong-t0ken-5d2e-also-never-printed"
PASSWORD = "hunter2-url-password"
TOKEN_ENV = "HBSDEPLOY_SECURITY_TOKEN"
PARTNERS = ["DE*S01", "DE-8SE"]

PARTNER_FILES = {
    "cpo.yaml": """\
name: Security Test Charging
role: cpo
operator_id: "DE*S01"
environments:
  sandbox:
    service_types:
      authorization:
        service_url: {probe_url}
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp.security-test.example.com
    client_certification: true
""",
    "emp.yaml": """\
name: Security Test Mobility
role: emp
provider_id: "DE-8SE"
environments:
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: true
    service_url: https://emp.security-test.example.com
    client_certification: true
""",
}


@dataclass(frozen=True)
class Setup:
    repo: Path
    tls: TlsFiles  # outside the repository
    emulator: ServerHandle
    emulator_store: Path
    key_text: str

    @property
    def key_lines(self) -> list[str]:
        """The key's base64 lines: any one of them in an output would be a leak."""
        return [line for line in self.key_text.splitlines() if line and not line.startswith("-----")]


def config_text(url: str, tls: TlsFiles) -> str:
    return f"""\
default_environment: sandbox
environments:
  sandbox:
    portal: local
    probe_private_hosts: true
  qa:
    portal: {url}
    token_env: {TOKEN_ENV}
    client_cert: {tls.client_cert}
    client_key: {tls.client_key}
    ca_bundle: {tls.ca}
    max_retries: 0
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Setup]:
    store = tmp_path_factory.mktemp("secrets-emulator") / "emulator.sqlite3"
    emulators = Emulators(store, tls)
    emulator = emulators(token=TOKEN, partners=[*PARTNERS, "DE*S02"])  # DE*S02: in no partner file
    repo = tmp_path_factory.mktemp("secrets") / "repo"
    (repo / "partners").mkdir(parents=True)
    shutil.copytree(REPO / "templates", repo / "templates")
    (repo / "hbsdeploy.yaml").write_text(config_text(emulator.url, tls), encoding="utf-8")
    for name, text in PARTNER_FILES.items():
        (repo / "partners" / name).write_text(text.format(probe_url=emulator.url), encoding="utf-8")
    yield Setup(repo, tls, emulator, store, tls.client_key.read_text(encoding="utf-8"))
    emulators.stop_all()


@dataclass(frozen=True)
class Ran:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


def run(cwd: Path, *args: str, token: str | None = TOKEN) -> Ran:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "HBSDEPLOY_PROBE_CA_BUNDLE": "",
           "HBSDEPLOY_PROBE_PRIVATE_HOSTS": "1"}  # with probe_private_hosts, doctor --probe reaches the emulator
    env.pop("HBSDEPLOY_CONFIG", None)
    env.pop(TOKEN_ENV, None)
    if token is not None:
        env[TOKEN_ENV] = token
    done = subprocess.run([sys.executable, "-m", "hbsdeploy", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=120)
    return Ran(args, done.returncode, done.stdout, done.stderr)


def assert_no_secret(setup: Setup, where: str, text: str) -> None:
    for secret in (TOKEN, WRONG_TOKEN, PASSWORD, *setup.key_lines):
        assert secret not in text, f"a secret in {where}"


def files_under(folder: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("utf-8", "replace")


def test_every_command_keeps_the_token_and_the_key_out_of_every_output_and_file(setup: Setup) -> None:
    repo = setup.repo
    ca = str(setup.tls.ca)
    independent = [
        ("-v", "validate"), ("-v", "validate", "--format", "json"),
        ("-v", "render"), ("-v", "render", "--env", "qa", "--out", "rendered"),
        ("schema", "partner"), ("schema", "config"), ("schema", "payload"),
        ("-v", "init", "scaffolded"),
        ("-vv", "doctor", "--env", "qa"),
        ("-v", "doctor", "--env", "sandbox", "--probe", "--probe-ca-bundle", ca),
        ("-vv", "import", "--env", "qa", "--partner", "DE-8SE"),
        ("-v", "import", "--env", "qa", "--partner", "DE*S02", "--role", "cpo", "--out", "imported/cpo.yaml"),
        ("-v", "plan", "--env", "qa", "--format", "markdown"),
        ("-v", "plan", "--env", "qa", "--format", "instructions"),
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda args: run(repo, *args), independent))
    runs += [run(repo, "-vv", "plan", "--env", "qa", "--format", "json", "--out", "plan.json"),
             run(repo, "-vv", "apply", "plan.json"),
             run(repo, "-vv", "apply", "--env", "qa", "--auto-approve"),
             run(repo, "-v", "plan", "--env", "qa", "--detailed-exitcode"),
             run(repo, "-v", "apply", "--auto-approve")]  # the sandbox: the embedded portal and its audit log
    failed = [(r.args, r.code, r.stdout[-500:], r.stderr[-500:]) for r in runs if r.code != 0]
    assert failed == []
    by_args = {r.args: r for r in runs}
    assert "<redacted>" in by_args[("-vv", "plan", "--env", "qa", "--format", "json", "--out", "plan.json")].stderr
    assert "Apply: 2 applied, 0 failed" in by_args[("-vv", "apply", "plan.json")].stdout
    assert f"${TOKEN_ENV} is set" in by_args[("-vv", "doctor", "--env", "qa")].stdout
    assert "ok   probe DE*S01 authorization" in by_args[("-v", "doctor", "--env", "sandbox", "--probe",
                                                         "--probe-ca-bundle", ca)].stdout
    for ran in runs:
        assert_no_secret(setup, f"the output of {' '.join(ran.args)}", ran.stdout + ran.stderr)
        assert "Traceback" not in ran.stderr
    written = dict(files_under(repo))
    for name in ("plan.json", ".hbsdeploy/audit.jsonl", "rendered/qa/DE%2AS01/authorization.json",
                 "imported/cpo.yaml", "scaffolded/hbsdeploy.yaml", ".hbsdeploy/sandbox.sqlite3"):
        assert str(repo / name) in written, f"{name} was not written"
    for path, text in written.items():
        assert_no_secret(setup, path, text)
    assert_no_secret(setup, "the emulator's store", setup.emulator_store.read_bytes().decode(
        "utf-8", "replace"))


def test_portal_serve_with_token_env_never_prints_the_token(setup: Setup, tmp_path: Path) -> None:
    tls = setup.tls
    env = {**os.environ, "PYTHONPATH": str(REPO), TOKEN_ENV: TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "hbsdeploy", "-v", "portal", "serve", "--port", "0", "--state",
         str(tmp_path / "state.sqlite3"), "--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key),
         "--client-ca", str(tls.ca), "--token-env", TOKEN_ENV, "--partner", "DE*S01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        match = re.fullmatch(r"serving on (https://127\.0\.0\.1:\d+)\n", process.stdout.readline())
        assert match
        url = match.group(1) + "/v1/partners/DE%2AS01/service-types"
        cert = (str(tls.client_cert), str(tls.client_key))
        for token, status in ((TOKEN, 200), (WRONG_TOKEN, 401)):
            answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, cert=cert,
                                  verify=str(tls.ca), timeout=10)
            assert answer.status_code == status
            assert TOKEN not in answer.text and WRONG_TOKEN not in answer.text
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert '"GET /v1/partners/DE%2AS01/service-types" 200' in stderr  # it logged the requests
    assert_no_secret(setup, "portal serve's output", stdout + stderr)


def test_a_wrong_token_is_refused_without_echoing_either_token(setup: Setup) -> None:
    ran = run(setup.repo, "-vv", "plan", "--env", "qa", token=WRONG_TOKEN)
    assert ran.code == 1
    assert "the portal refused the credentials (401" in ran.stderr and f"${TOKEN_ENV}" in ran.stderr
    assert_no_secret(setup, "a 401 error", ran.stdout + ran.stderr)
    missing = run(setup.repo, "plan", "--env", "qa", token=None)
    assert missing.code == 1 and f"the environment variable {TOKEN_ENV} (token_env) is not set" in missing.stderr


def test_the_exception_text_of_a_refused_token_holds_no_secret(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, WRONG_TOKEN)
    env = load_config(setup.repo / "hbsdeploy.yaml").environment("qa")
    portal = HttpPortal(env)
    with pytest.raises(PortalAuthError) as caught:
        portal.list_service_types("DE*S01")
    portal.close()
    text = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(portal.session.auth)
    assert "401" in text
    assert_no_secret(setup, "the exception", text + repr(env) + repr(portal.__dict__))


def test_a_portal_url_with_a_password_is_refused_by_every_command_without_showing_it(setup: Setup,
                                                                                   tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "partners").mkdir()
    url = setup.emulator.url.replace("https://", f"https://deploy:{PASSWORD}@")
    (repo / "hbsdeploy.yaml").write_text(config_text(url, setup.tls), encoding="utf-8")
    for args in (("validate",), ("-v", "plan", "--env", "qa"), ("-v", "apply", "--env", "qa", "--auto-approve"),
                 ("-v", "import", "--env", "qa", "--partner", "DE*S01"), ("render",), ("doctor", "--env", "qa")):
        ran = run(repo, *args)
        assert ran.code == 1, (args, ran.stdout, ran.stderr)
        assert "error[portal-credentials]" in ran.stdout + ran.stderr and "https://***@127.0.0.1" in (
            ran.stdout + ran.stderr)
        assert_no_secret(setup, " ".join(args), ran.stdout + ran.stderr)


def test_the_http_client_redacts_a_url_password_it_is_given_directly(setup: Setup,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the config (which refuses it), the client refuses it too, and never shows the password."""
    import dataclasses

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    env = load_config(setup.repo / "hbsdeploy.yaml").environment("qa")
    env = dataclasses.replace(env, portal=env.portal.replace("https://", f"https://deploy:{PASSWORD}@"))
    with pytest.raises(PortalError) as caught:
        HttpPortal(env)
    text = "".join(traceback.format_exception(caught.value))
    assert "***@127.0.0.1" in text
    assert_no_secret(setup, "the exception", text)
