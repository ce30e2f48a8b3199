"""Fixtures for the web UI replica: an emulator with --ui over TLS on 127.0.0.1, and a logged-in client."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from replica_helpers import ACCOUNTS, FINGERPRINT, PASSWORD, ReplicaTls, Served

from hbsdeploy.portal.emulator import ServerHandle, serve


@pytest.fixture(scope="session")
def replica_tls(tmp_path_factory: pytest.TempPathFactory) -> ReplicaTls:
    folder = tmp_path_factory.mktemp("replica-tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    leaf.private_key_pem.write_to_path(str(folder / "server.key"))
    return ReplicaTls(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@pytest.fixture
def replica(tmp_path: Path, replica_tls: ReplicaTls) -> Iterator[Callable[..., Served]]:
    """`replica(**serve_options)`: an emulator with the UI over TLS, user `operator` administering two accounts."""
    handles: list[ServerHandle] = []

    def start(**options: Any) -> Served:
        log = io.StringIO()
        options.setdefault("tls_cert", replica_tls.cert)
        options.setdefault("tls_key", replica_tls.key)
        handle = serve(options.pop("state_file", tmp_path / f"ui-{len(handles)}.sqlite3"), ui=True,
                       log_stream=log, **options)
        handles.append(handle)
        assert handle.ui is not None
        handle.ui.add_account("DE*A36", "Example Charging GmbH", [FINGERPRINT])
        handle.ui.add_user("operator", PASSWORD, ACCOUNTS)
        return Served(handle, log, replica_tls.ca)

    yield start
    for handle in handles:
        handle.stop()
