"""The portal: its interface, errors and contract, and `open_portal`, which picks the driver for an environment.

Drivers: `local` (the embedded store, portal/local.py), `manual` (the state recorded in the repository,
portal/recorded.py), `http` (the portal API, portal/http.py) and
`web` (the portal's web UI in a browser, portal/web/driver.py).
A driver is a class with `from_environment(env, *, parallelism)` (interface.PortalDriver) that implements Portal;
adding one is a module and one entry in DRIVERS. Drivers load on first use, so `validate` never imports `requests`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from hbsdeploy.portal.errors import (
    PartnerNotFound,
    PayloadRejected,
    PortalAuthError,
    PortalConfigError,
    PortalError,
    PortalProtocolError,
    PortalRefused,
    PortalStateError,
    PortalUnavailable,
    VersionConflict,
    portal_label,
)
from hbsdeploy.portal.interface import Portal, PortalDriver, RecordedSource, ServiceTypeState

if TYPE_CHECKING:
    from pathlib import Path

    from hbsdeploy.load.config import Environment

# env.kind -> "module:Class" of the driver (imported only when an environment of that kind is opened).
DRIVERS: dict[str, str] = {
    "local": "hbsdeploy.portal.local:LocalPortal",
    "manual": "hbsdeploy.portal.recorded:RecordedPortal",
    "http": "hbsdeploy.portal.http:HttpPortal",
    "web": "hbsdeploy.portal.web.driver:WebPortal",
}


def driver(kind: str) -> PortalDriver:
    """The driver class for an environment kind; PortalConfigError for a kind no driver serves."""
    target = DRIVERS.get(kind)
    if target is None:
        raise PortalConfigError(f"no portal driver for {kind!r} environments; known: {', '.join(sorted(DRIVERS))}")
    module, _, name = target.partition(":")
    return cast("PortalDriver", getattr(importlib.import_module(module), name))


def portal_identity(env: Environment, root: Path) -> str:
    """Which portal an environment reaches, as a plan file records it: a plan is applied only to the portal it was
    made against. The API is its URL (scheme, host, port and path; no credentials, query or fragment), the web UI
    `web <url>`; the embedded store is named by its path from the repository's `root`, so a plan moves between
    clones of one repository."""
    if env.kind == "http":
        return _address(env.portal)
    if env.kind == "web":
        return f"web {_address(env.url or '')}"
    if env.state_file is None:
        return env.kind
    store = env.state_file.relative_to(root).as_posix() if env.state_file.is_relative_to(root) else env.state_file
    return f"{env.kind} {store}"


def _address(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"


def open_portal(env: Environment, *, parallelism: int = 8) -> Portal:
    """The portal of an environment, through the driver its kind names (`parallelism` concurrent calls)."""
    return driver(env.kind).from_environment(env, parallelism=parallelism)


__all__ = [
    "DRIVERS",
    "PartnerNotFound",
    "PayloadRejected",
    "Portal",
    "PortalAuthError",
    "PortalConfigError",
    "PortalDriver",
    "PortalError",
    "PortalProtocolError",
    "PortalRefused",
    "PortalStateError",
    "PortalUnavailable",
    "RecordedSource",
    "ServiceTypeState",
    "VersionConflict",
    "portal_identity",
    "driver",
    "open_portal",
    "portal_label",
]
