"""Helpers shared by the portal tests (imported by name: tests/portal is on sys.path under pytest)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_helpers import online_payload

from hbsdeploy.load.config import Environment

TOKEN = "s3cr3t-token-value-never-logged"
TOKEN_ENV = "HBSDEPLOY_TEST_PORTAL_TOKEN"


payload = online_payload


def make_env(portal: str, **overrides: Any) -> Environment:
    """An Environment with short timeouts, for tests."""
    settings: dict[str, Any] = {"name": "test", "portal": portal, "connect_timeout": 2.0, "read_timeout": 5.0,
                                "max_retries": 3}
    settings.update(overrides)
    return Environment(**settings)


class Sleeps:
    """A sleep that records instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for one test session: a CA, a server certificate for 127.0.0.1, a client certificate, a second
    CA nobody trusts, and an expired server certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    expired_cert: Path
    expired_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path
