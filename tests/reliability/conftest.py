"""Fixtures for the reliability tests: a generated repository to work in and plain-HTTP emulators on 127.0.0.1.

TLS is proven elsewhere (tests/portal, tests/e2e); here the faults, races and interruptions are what matters.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# e2e_helpers.run_cli runs the console script's entry point in this process; reuse it rather than copy it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from hbsdeploy.portal.emulator import ServerHandle, serve  # noqa: E402


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder for a generated repository, as the working directory."""
    folder = tmp_path / "repo"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return folder


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Start plain-HTTP emulators on 127.0.0.1 sharing tmp_path/emulator.sqlite3 unless told otherwise."""
    handles: list[ServerHandle] = []

    def start(**options: Any) -> ServerHandle:
        options.setdefault("log_stream", None)
        options.setdefault("auto_register", True)
        handle = serve(options.pop("state_file", tmp_path / "emulator.sqlite3"), **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()
