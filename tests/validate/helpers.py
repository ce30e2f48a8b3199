"""Shared by the validate tests: the corpus folder, its config, and running validation through the library."""

from __future__ import annotations

from pathlib import Path

from hbsdeploy.check.validate import validate
from hbsdeploy.errors import InputError
from hbsdeploy.load.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "validate"
VALID = sorted((DATA / "valid").glob("*.yaml"))
INVALID = sorted((DATA / "invalid").glob("*.yaml"))

def corpus_config() -> Config:
    """The corpus's hbsdeploy.yaml: sandbox (local), qa, and prod (protected); partner files in valid/."""
    return load_config(DATA / "hbsdeploy.yaml")


def validation_lines(config: Config, paths: list[Path] | None, environment: str | None = None) -> list[str]:
    """Every problem of a validate run, formatted `path:line:col: severity[rule]: message`, in report order."""
    try:
        report = validate(config, paths, environment)
    except InputError as exc:  # not expected from validate, which collects; kept so a regression reads clearly
        return [problem.format() for problem in exc.problems]
    return [problem.format() for problem in report.problems]
