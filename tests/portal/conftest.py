"""Fixtures for the portal tests (TLS material and emulators come from tests/conftest.py): the HTTP client under
test against `responses` at BASE, with recorded sleeps and a seeded jitter."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from hbsdeploy.portal.http import HttpPortal
from tests.portal.helpers import BASE, TOKEN, TOKEN_ENV, Sleeps, make_env


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps) -> Callable[..., HttpPortal]:
    """Makes an HttpPortal at BASE with the token set; keyword arguments override the environment's settings."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def make(**overrides: Any) -> HttpPortal:
        options: dict[str, Any] = {"token_env": TOKEN_ENV}
        options.update(overrides)
        return HttpPortal(make_env(BASE, **options), sleep=sleeps, rng=random.Random(1))

    return make
