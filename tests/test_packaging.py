"""Packaging: the metadata tells the truth (license text, classifiers, no invented URLs), and the CI step that tests
the declared minimum versions pins exactly those minimums."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _minimums() -> ModuleType:
    spec = importlib.util.spec_from_file_location("minimums", REPO / ".ci" / "minimums.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROJECT = _minimums().load_project()


def test_every_runtime_dependency_is_pinned_to_its_declared_minimum() -> None:
    pinned = _minimums().constraints(PROJECT["dependencies"])
    assert len(pinned) == len(PROJECT["dependencies"])
    for requirement, pin in zip(PROJECT["dependencies"], pinned, strict=True):
        match = re.match(r"([A-Za-z0-9._-]+)\s*>=\s*([0-9.]+)", requirement)
        assert match is not None and pin == f"{match.group(1)}=={match.group(2)}"


def test_the_minimums_are_the_ones_found_to_work() -> None:
    """cryptography 41 has no Certificate.not_valid_after_utc (validate crashed on a User-certificate partner); the
    tests read stderr apart from stdout, which click 8.1's CliRunner cannot."""
    pinned = dict(pin.split("==") for pin in _minimums().constraints(PROJECT["dependencies"]))
    assert int(pinned["cryptography"].split(".")[0]) >= 42
    assert tuple(map(int, pinned["click"].split("."))) >= (8, 2)


@pytest.mark.parametrize("requirement", ["requests", "requests<3", "requests==2.31", "requests~=2.31"])
def test_a_dependency_without_a_minimum_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="declares no minimum"):
        _minimums().constraints([requirement])


def test_markers_and_extras_keep_their_minimum() -> None:
    assert _minimums().constraints(["a[x]>=1.2", "b >= 3, <4", 'c>=5; python_version < "3.11"']) == [
        "a==1.2", "b==3", "c==5"]


def test_the_license_file_is_the_apache_2_0_text_the_metadata_names() -> None:
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text


def test_classifiers_match_what_the_project_declares() -> None:
    classifiers = PROJECT["classifiers"]
    versions = sorted(c.rsplit(" ", 1)[-1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: "
                                                                                  r"3\.\d+", c))
    assert versions[0] == PROJECT["requires-python"].removeprefix(">=")
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX expression says it (PEP 639)
    # the repository has no public address yet: no invented homepage
    assert "urls" not in PROJECT
