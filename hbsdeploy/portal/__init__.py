"""The portal: its interface, the embedded store-backed portal, the HTTP client and the emulator."""

from __future__ import annotations

from hbsdeploy.portal.base import (
    PartnerNotFound,
    PayloadRejected,
    Portal,
    PortalAuthError,
    PortalError,
    PortalProtocolError,
    PortalUnavailable,
    ServiceTypeState,
    VersionConflict,
    open_portal,
)

__all__ = [
    "PartnerNotFound",
    "PayloadRejected",
    "Portal",
    "PortalAuthError",
    "PortalError",
    "PortalProtocolError",
    "PortalUnavailable",
    "ServiceTypeState",
    "VersionConflict",
    "open_portal",
]
