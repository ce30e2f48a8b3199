"""Who is running hbsdeploy, for the audit log and the recorded state of a manual environment."""

from __future__ import annotations

import getpass
import os

CI_ACTOR_VARIABLES = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN")


def current_user() -> str:
    """The login name, or the CI's actor where one is set."""
    for variable in CI_ACTOR_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def in_ci() -> bool:
    """Whether this runs in CI: CI=true (or 1), as GitHub Actions, GitLab CI and most others set it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
