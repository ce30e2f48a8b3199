"""What the browser tests share: the replica's operator, a served replica, and a repository whose `qa` is its UI."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from hbsdeploy.portal.emulator import ServerHandle, serve

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "operator", "correct-horse-battery-staple"

# One CPO with the seed's Authorization settings, deployed to `qa`.
EXAMPLE_PARTNER = """\
name: Example Charging GmbH
role: cpo
operator_id: "DE*A36"
environments:
  qa:
service_types:
  authorization:
    online_request: true
    service_url: https://oicp-qa.example-charging.com
"""


def start_replica(store: Path, accounts: Mapping[str, str], *, log_stream: TextIO | None = None,
                  latency_ms: float = 0) -> ServerHandle:
    """The portal's UI replica on `store`, with user USER administering every account (ID -> name)."""
    handle = serve(store, ui=True, log_stream=log_stream, latency_ms=latency_ms)
    assert handle.ui is not None
    for account_id, name in accounts.items():
        handle.ui.add_account(account_id, name)
    handle.ui.add_user(USER, PASSWORD, list(accounts))
    return handle


def write_repo(root: Path, config: str, partners: Mapping[str, str]) -> Path:
    """A repository at `root`: this hbsdeploy.yaml, the shipped templates, and partner files (name -> text)."""
    (root / "partners").mkdir(parents=True)
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "hbsdeploy.yaml").write_text(config, encoding="utf-8")
    for name, text in partners.items():
        (root / "partners" / name).write_text(text, encoding="utf-8")
    return root
