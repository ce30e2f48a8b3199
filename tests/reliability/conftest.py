"""Fixtures for the reliability tests: a generated repository to work in (emulators come from tests/conftest.py;
TLS is proven elsewhere, here the faults, races and interruptions are what matters)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder for a generated repository, as the working directory."""
    folder = tmp_path / "repo"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return folder
