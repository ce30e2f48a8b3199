"""Shared by the security tests: the hostile corpus, its .expected files, and what a terminal would act on."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "data" / "hostile"
PARTNERS = sorted((HOSTILE / "partners").glob("*.yaml"))
CONFIGS = sorted((HOSTILE / "configs").glob("*.yaml"))

# A command smuggled into a file would create this file in the working directory (see the yaml-tag-* files).
MARKER = "hostile-executed"
RENDERED = "--- rendered payloads ---"

# HBSDEPLOY_UPDATE_EXPECTED=1 pytest tests/security rewrites the .expected files (review the diff before committing).
UPDATE = os.environ.get("HBSDEPLOY_UPDATE_EXPECTED") == "1"




def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal would act on or hide (ESC, bidi controls, zero-width...), newlines and tabs aside."""
    return [f"U+{ord(c):04X}" for c in text
            if c not in "\n\t" and (not c.isprintable() and unicodedata.category(c) != "Zs" or c == "\x1b")]


def check_expected(expected_file: Path, actual: str) -> None:
    """`actual` is the content of `expected_file`; with UPDATE, rewrite the file instead."""
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.is_file(), f"{expected_file.name} is missing; run with HBSDEPLOY_UPDATE_EXPECTED=1"
    assert actual == expected_file.read_text(encoding="utf-8")
