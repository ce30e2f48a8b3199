"""Fixtures of the review tests: the example repository as the working directory (as in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def repo(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example repository copied to a temporary folder, as the working directory."""
    monkeypatch.chdir(repo_copy)
    for variable in ("HBSDEPLOY_CONFIG", "NO_COLOR", "CI", "GITHUB_ACTOR", "GITLAB_USER_LOGIN",
                     "HBSDEPLOY_ALLOW_PIPED_CONFIRMATION"):
        monkeypatch.delenv(variable, raising=False)
    return repo_copy
