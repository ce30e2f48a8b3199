"""Data-driven validate tests: every file in tests/data/validate/valid/ is clean, every file in invalid/ produces
exactly the lines of the `.expected` file beside it (paths relative to tests/data/validate/).

Invalid files are named by level: `yaml-*` (the loader refuses them), `schema-*` (the JSON Schema refuses them; the
compatibility test runs check-jsonschema on these) and `rule-*` (schema-valid; a portal rule refuses them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hbsdeploy.load.config import load_config
from tests.helpers import check_golden, working_directory
from tests.validate.helpers import DATA, INVALID, REPO, VALID, corpus_config, validation_lines


def _id(path: Path) -> str:
    return path.stem


def test_corpus_is_not_empty() -> None:
    assert len(VALID) >= 5 and len(INVALID) >= 40


@pytest.mark.parametrize("path", VALID, ids=_id)
def test_valid_file_has_no_problem(path: Path) -> None:
    with working_directory(DATA):
        assert validation_lines(corpus_config(), [path.relative_to(DATA)]) == []


def test_all_valid_files_together_have_no_problem() -> None:
    """With no paths: the config and every partner file of valid/, duplicate IDs checked across all of them."""
    with working_directory(DATA):
        assert validation_lines(corpus_config(), None) == []


@pytest.mark.parametrize("path", sorted((REPO / "partners").glob("*.yaml")), ids=_id)
def test_repository_example_has_no_problem(path: Path) -> None:
    with working_directory(REPO):
        assert validation_lines(load_config(REPO / "hbsdeploy.yaml"), [path.relative_to(REPO)]) == []


@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_invalid_file_gives_expected_problems(path: Path) -> None:
    expected_file = path.with_suffix(".expected")
    with working_directory(DATA):
        lines = validation_lines(corpus_config(), [path.relative_to(DATA)])
    check_golden(expected_file, "".join(f"{line}\n" for line in lines))
    assert any(": error[" in line for line in lines) or "warning" in path.stem, "an invalid file must have an error"


def test_every_expected_file_has_its_yaml_file() -> None:
    """A renamed or deleted invalid file must not leave its .expected file behind, untested."""
    orphans = [p.name for p in (DATA / "invalid").glob("*.expected") if not p.with_suffix(".yaml").is_file()]
    assert orphans == []
