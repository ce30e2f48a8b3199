"""Fixtures for the end-to-end tests: a repository copy to work in, TLS material (trustme) and emulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from e2e_helpers import Tls

from hbsdeploy.portal.emulator import ServerHandle, serve


@pytest.fixture
def repo(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example repository copied to a temporary folder, as the working directory."""
    monkeypatch.chdir(repo_copy)
    monkeypatch.delenv("HBSDEPLOY_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return repo_copy


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("e2e-tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("client.example.com", common_name="DE*A36")
    for name, leaf in (("server", server), ("client", client)):
        leaf.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    return Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
               folder / "client.key")


@pytest.fixture
def emulator(tmp_path: Path, tls: Tls) -> Iterator[Callable[..., ServerHandle]]:
    """Start emulators on 127.0.0.1 over mutual TLS: `emulator(partners=[...], token=..., ...)`."""
    handles: list[ServerHandle] = []

    def start(**options: Any) -> ServerHandle:
        options.setdefault("state_file", tmp_path / "emulator.sqlite3")
        options.setdefault("log_stream", None)
        options.setdefault("tls_cert", tls.server_cert)
        options.setdefault("tls_key", tls.server_key)
        options.setdefault("client_ca", tls.ca)
        handle = serve(options.pop("state_file"), **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()
