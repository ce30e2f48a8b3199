"""Shared fixtures: loopback-only sockets, a copy of the example repository, TLS material and emulators.

Every test is offline: sockets may only reach loopback addresses. The fixtures' machinery lives in tests/fixtures/.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import HealthCheck, settings

from tests.fixtures.emulator import Emulators
from tests.fixtures.tls import TlsFiles, make_tls_files
from tests.helpers import REPO

# No timed assertions: Hypothesis's 200 ms deadline per example and its too-slow health check fail tests on a loaded
# machine (both seen on 2 shared cores), whatever the code under test does.
settings.register_profile("hbsdeploy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hbsdeploy")


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    else:
        return True  # AF_UNIX and friends
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse any connection to a non-loopback address: tests never touch a real network."""
    original = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise OSError(f"test tried to reach {address!r}; only loopback addresses are allowed")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests behave alike on a workstation and in CI (which sets CI=true): a test that wants CI sets it."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the example repository (config, partners, templates, certs) in a temporary folder."""
    target = tmp_path / "repo"
    target.mkdir()
    for name in ("hbsdeploy.yaml",):
        shutil.copy(REPO / name, target / name)
    for folder in ("partners", "templates", "certs"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, target / folder)
    return target


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The session's test CA: it signed every certificate of `tls`; tests may issue more from it."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The session's certificates as PEM files (see TlsFiles)."""
    return make_tls_files(tls_ca, tmp_path_factory.mktemp("tls"))


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulators]:
    """Plain-HTTP emulators on 127.0.0.1 sharing tmp_path/emulator.sqlite3: `emulator(partners=["DE*A36"], ...)`."""
    started = Emulators(tmp_path / "emulator.sqlite3")
    yield started
    started.stop_all()


@pytest.fixture
def tls_emulator(tmp_path: Path, tls: TlsFiles) -> Iterator[Emulators]:
    """Emulators as `emulator`, over mutual TLS with the session's certificates."""
    started = Emulators(tmp_path / "emulator.sqlite3", tls)
    yield started
    started.stop_all()
