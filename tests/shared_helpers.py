"""Helpers more than one test folder uses (tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def online_payload(**overrides: Any) -> dict[str, Any]:
    """A complete, valid payload: the recommended CPO Authorization (online, Hubject certificate), with overrides."""
    base: dict[str, Any] = {
        "online_request": True,
        "broadcast_request": False,
        "service_url": "https://oicp.example.com/base",
        "client_certification": True,
        "certificate": "hubject",
        "certificate_sha256": None,
    }
    base.update(overrides)
    return base


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run with `path` as the working directory: problems then name files relative to it."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
