"""Fixtures for the web UI replica: an emulator with --ui over TLS on 127.0.0.1, and a logged-in client."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.emulator import Emulators
from tests.fixtures.tls import TlsFiles
from tests.web.helpers import ACCOUNTS, FINGERPRINT, PASSWORD, Served


@pytest.fixture
def replica(tmp_path: Path, tls: TlsFiles) -> Iterator[Callable[..., Served]]:
    """`replica(**serve_options)`: an emulator with the UI over TLS, user `operator` administering two accounts;
    each one on a store of its own unless given `state_file`."""
    emulators = Emulators(tmp_path / "ui.sqlite3")

    def start(**options: Any) -> Served:
        log = io.StringIO()
        options.setdefault("tls_cert", tls.server_cert)
        options.setdefault("tls_key", tls.server_key)
        options.setdefault("state_file", tmp_path / f"ui-{len(emulators.started)}.sqlite3")
        handle = emulators(ui=True, log_stream=log, **options)
        assert handle.ui is not None
        handle.ui.add_account("DE*A36", "Example Charging GmbH", [FINGERPRINT])
        handle.ui.add_user("operator", PASSWORD, ACCOUNTS)
        return Served(handle, log, tls.ca)

    yield start
    emulators.stop_all()
