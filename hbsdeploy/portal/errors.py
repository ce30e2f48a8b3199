"""The portal's errors: one type for each way a call fails, so apply can tell "refused" from "maybe written"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hbsdeploy.errors import HbsError
from hbsdeploy.text import redact_url

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment


class PortalError(HbsError):
    """The portal could not do what was asked: one line naming the portal and what to do, never a secret.

    Raised only through its subclasses, each of which says whether the portal may have written anything."""

    attempts: int = 1  # how many HTTP attempts the failed call made
    evidence: tuple[str, ...] = ()  # screenshots taken before the call failed (web portal)


class PortalConfigError(PortalError):
    """The environment's portal settings cannot work (a missing file, a refused option): nothing was sent."""


class PortalStateError(PortalError):
    """The local portal's state file cannot be used: the transaction did not commit, so nothing was written."""


class PortalUnavailable(PortalError):
    """The portal could not be reached: connection refused, timeout, TLS failure, 5xx after retries."""


class PortalAuthError(PortalError):
    """The portal refused who we are: 401/403, a client certificate refused, a token variable not set."""


class PartnerNotFound(PortalError):
    """The portal does not know the partner or the service type (404)."""


class VersionConflict(PortalError):
    """The If-Match version is stale (412): the portal changed since the plan was made."""


class PayloadRejected(PortalError):
    """The portal refused the settings (422); `details` lists each field, rule and message."""

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.details: list[dict[str, str]] = list(details or [])


class PortalRefused(PortalError):
    """Any other 4xx answer (400 malformed, an unexpected client error): the portal refused and wrote nothing."""


class PortalProtocolError(PortalError):
    """The portal answered something outside the contract: invalid JSON, a body of the wrong shape."""


def portal_label(env: Environment) -> str:
    """How messages name a portal: `portal 'qa' (https://gateway.example/hbs)`, credentials in the URL hidden."""
    return f"portal {env.name!r} ({redact_url(env.url or env.portal)})"
