"""A plan file names the portal it was read from (`portal_identity`): what makes two environments the same portal."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbsdeploy.load.config import Environment
from hbsdeploy.portal import portal_identity

ROOT = Path("/repo")


@pytest.mark.parametrize("env, identity", [
    (Environment("qa", "https://Gateway.Example.com/qa/"), "https://gateway.example.com/qa"),
    (Environment("qa", "https://user:pw@gateway.example.com:8443/qa?x=1#f"), "https://gateway.example.com:8443/qa"),
    (Environment("qa", "https://[2001:db8::1]/qa"), "https://[2001:db8::1]/qa"),
    (Environment("qa", "web", url="https://portal-qa.hubject.com/"), "web https://portal-qa.hubject.com"),
    (Environment("sandbox", "local", state_file=ROOT / ".hbsdeploy/sandbox.sqlite3"),
     "local .hbsdeploy/sandbox.sqlite3"),
    (Environment("sandbox", "local", state_file=Path("/elsewhere/s.sqlite3")), "local /elsewhere/s.sqlite3"),
    (Environment("prod", "manual", state_file=ROOT / "state/prod.yaml"), "manual state/prod.yaml"),
])
def test_identity_keeps_what_selects_the_portal_and_drops_credentials(env: Environment, identity: str) -> None:
    assert portal_identity(env, ROOT) == identity


def test_another_host_or_path_is_another_portal() -> None:
    base = portal_identity(Environment("qa", "https://gateway.example.com/qa"), ROOT)
    assert portal_identity(Environment("qa", "https://gateway.example.com/prod"), ROOT) != base
    assert portal_identity(Environment("qa", "https://evil.example.com/qa"), ROOT) != base
    assert portal_identity(Environment("qa", "https://gateway.example.com:444/qa"), ROOT) != base
