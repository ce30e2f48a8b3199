"""Print pip constraints pinning each runtime dependency of pyproject.toml to its declared minimum (`name>=X` ->
`name==X`), for the CI step that tests the oldest versions hbsdeploy claims to support. pip has no "lowest"
resolution of its own; a requirement without a `>=` bound is refused here, since no minimum could be tested."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import tomllib  # the Python running CI's scripts is 3.11 or newer

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_MINIMUM = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([0-9][A-Za-z0-9.]*)\s*(?:,.*)?(?:;.*)?$")


def constraints(requirements: list[str]) -> list[str]:
    """`name==minimum` for each requirement; ValueError naming one without a `>=` minimum."""
    pinned = []
    for requirement in requirements:
        match = _MINIMUM.match(requirement)
        if match is None:
            raise ValueError(f"{requirement!r} declares no minimum (name>=X): there is nothing to test")
        pinned.append(f"{match.group(1)}=={match.group(3)}")
    return pinned


def load_project() -> dict[str, Any]:
    """The [project] table of pyproject.toml."""
    with PYPROJECT.open("rb") as handle:
        project: dict[str, Any] = tomllib.load(handle)["project"]
    return project


def main() -> int:
    project = load_project()
    try:
        lines = constraints(project["dependencies"])
    except ValueError as exc:
        print(f"{PYPROJECT.name}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
