"""Fixtures for the portal tests: environments, TLS material made with trustme, and emulators on 127.0.0.1."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from portal_helpers import Sleeps, TlsFiles

from hbsdeploy.portal.emulator import ServerHandle, serve


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    other = trustme.CA()
    files: dict[str, Path] = {}

    def write(name: str, blob: Any) -> Path:
        path = folder / name
        blob.write_to_path(str(path))
        files[name] = path
        return path

    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    other.cert_pem.write_to_path(str(folder / "other-ca.pem"))
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("client.example.com", common_name="DE*A36")
    stranger = other.issue_cert("client.example.com")
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = ca.issue_cert("127.0.0.1", not_before=now - datetime.timedelta(days=30),
                            not_after=now - datetime.timedelta(days=1))
    wrong_host = ca.issue_cert("portal.example.com")
    for name, leaf in (("server", server), ("client", client), ("stranger", stranger), ("expired", expired),
                       ("wrong-host", wrong_host)):
        write(f"{name}.pem", leaf.cert_chain_pems[0])
        write(f"{name}.key", leaf.private_key_pem)
    return TlsFiles(
        ca=folder / "ca.pem", server_cert=files["server.pem"], server_key=files["server.key"],
        client_cert=files["client.pem"], client_key=files["client.key"], other_ca=folder / "other-ca.pem",
        other_client_cert=files["stranger.pem"], other_client_key=files["stranger.key"],
        expired_cert=files["expired.pem"], expired_key=files["expired.key"],
        wrong_host_cert=files["wrong-host.pem"], wrong_host_key=files["wrong-host.key"],
    )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Start emulators on 127.0.0.1, port 0: `emulator(partners=["DE*A36"], ...)`; all stopped at teardown."""
    handles: list[ServerHandle] = []

    def start(**options: Any) -> ServerHandle:
        options.setdefault("state_file", tmp_path / f"emulator-{len(handles)}.sqlite3")
        options.setdefault("log_stream", None)
        handle = serve(options.pop("state_file"), **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
