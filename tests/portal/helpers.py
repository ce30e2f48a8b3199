"""Helpers shared by the portal tests: environments with short timeouts, a valid payload, a recording sleep."""

from __future__ import annotations

from typing import Any

from hbsdeploy.load.config import Environment
from tests.helpers import online_payload

BASE = "https://gateway.example/hbs"  # the portal API the HTTP client tests talk to (through `responses`)
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

