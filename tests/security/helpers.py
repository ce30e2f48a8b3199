"""Shared by the security tests: the hostile corpus, its .expected files, and what a terminal would act on."""

from __future__ import annotations

import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "data" / "hostile"
PARTNERS = sorted((HOSTILE / "partners").glob("*.yaml"))
CONFIGS = sorted((HOSTILE / "configs").glob("*.yaml"))

# A command smuggled into a file would create this file in the working directory (see the yaml-tag-* files).
MARKER = "hostile-executed"
RENDERED = "--- rendered payloads ---"


def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal would act on or hide (ESC, bidi controls, zero-width...), newlines and tabs aside."""
    return [f"U+{ord(c):04X}" for c in text
            if c not in "\n\t" and (not c.isprintable() and unicodedata.category(c) != "Zs" or c == "\x1b")]

