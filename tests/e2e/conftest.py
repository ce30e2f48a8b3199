"""Fixtures for the end-to-end tests: the example repository copied to a temporary folder, as the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def repo(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example repository copied to a temporary folder, as the working directory."""
    monkeypatch.chdir(repo_copy)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return repo_copy
