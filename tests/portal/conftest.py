"""Fixtures for the portal tests (TLS material and emulators come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.portal.helpers import Sleeps


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
