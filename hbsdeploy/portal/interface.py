"""What plan and apply need from a portal, whichever driver serves it: the state of a service type and the Portal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment


@dataclass(frozen=True)
class ServiceTypeState:
    """One service type of one partner as the portal holds it."""

    partner_id: str
    service_type: str
    settings: Mapping[str, Any]  # canonical (normalize_settings)
    version: str  # opaque ETag value, e.g. '"3"'
    evidence: tuple[str, ...] = field(default=(), compare=False)  # files showing a write (web portal screenshots)


@dataclass(frozen=True)
class RecordedSource:
    """Where a plan's "before" came from for a manual environment: the file, and when and by whom it was written
    (None for both when nothing was recorded yet)."""

    file: str
    as_of: str | None
    by: str | None

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "as_of": self.as_of, "by": self.by}

    def describe(self) -> str:
        """`recorded state as of 2026-11-26T15:00:00Z, by alice (state/prod.yaml), not read from the portal`."""
        if self.as_of is None:
            return (f"nothing recorded yet ({self.file} does not exist): the portal's defaults are assumed, not "
                    "read from the portal")
        return f"recorded state as of {self.as_of}, by {self.by} ({self.file}), not read from the portal"


class Portal(Protocol):
    """Read and write a partner's service-type settings."""

    # Whether list_all_service_types costs a few requests (a paged API, a local store) rather than one page per
    # partner account (a web UI): targeted reads of many partners take the listing only where it is cheap.
    listing_is_cheap: bool

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type the portal knows for the partner (defaults for those never set)."""
        ...

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        """Every partner the account holds, by ID, with its service types as list_service_types gives them (the
        paged listing, every page fetched; the web UI, every account of its list)."""
        ...

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type with its current version."""
        ...

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """Replace one service type's settings if its version is still `if_match`; the new state."""
        ...

    def cancel(self) -> None:
        """Give up waiting (to retry, for a page): calls in progress end promptly; safe from any thread."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class PortalDriver(Protocol):
    """A portal implementation as `open_portal` finds it: a class that opens itself for an environment."""

    @classmethod
    def from_environment(cls, env: Environment, *, parallelism: int) -> Portal:
        """The portal of `env`, ready for `parallelism` concurrent calls; PortalError when it cannot be opened."""
        ...
