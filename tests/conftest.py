"""Shared fixtures. Every test is offline: sockets may only reach loopback addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
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


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the example repository (config, partners, templates, certs) in a temporary folder."""
    import shutil

    target = tmp_path / "repo"
    target.mkdir()
    for name in ("hbsdeploy.yaml",):
        shutil.copy(REPO / name, target / name)
    for folder in ("partners", "templates", "certs"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, target / folder)
    return target
