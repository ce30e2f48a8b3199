"""The embedded portal: the contract's behaviour on the local store, used by `local` and `manual` and the emulator."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import DEFAULT_SETTINGS, normalize_settings
from hbsdeploy.portal.contract import (
    MAX_PAGE_SIZE,
    check_payload,
    decode_page_token,
    encode_page_token,
    format_etag,
    parse_etag,
)
from hbsdeploy.portal.errors import (
    PartnerNotFound,
    PayloadRejected,
    PortalConfigError,
    PortalStateError,
    VersionConflict,
    portal_label,
)
from hbsdeploy.portal.interface import ServiceTypeState
from hbsdeploy.portal.store import StaleVersion, Store, Stored, StoreError, UnknownPartner

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment


class LocalPortal:
    """A portal held in a SQLite file: versions, If-Match and the portal's rules behave as over HTTP."""

    listing_is_cheap = True

    def __init__(self, state_file: Path, *, name: str = "local", allow_private_hosts: bool = True,
                 auto_register: bool = True, label: str | None = None,
                 service_types: Mapping[str, ServiceTypeSpec] | None = None) -> None:
        """`service_types`: those of the project's partner schema (None: hbsdeploy's own copy's)."""
        self.label = label or f"portal {name!r} (state {state_file})"
        if service_types is None:
            from hbsdeploy.load.schemaset import package_schemas

            service_types = package_schemas().service_types
        self.service_types = service_types
        self.allow_private_hosts = allow_private_hosts
        self.auto_register = auto_register
        with self._errors():
            self.store = Store(state_file)

    @classmethod
    def from_environment(cls, env: Environment, *, parallelism: int) -> LocalPortal:
        """The store at env.state_file (`local` and `manual`); any parallelism is fine (calls share the store's one
        connection, one at a time)."""
        if env.state_file is None:
            raise PortalConfigError(f"{portal_label(env)}: no state file configured; set `state:` for this "
                                    "environment")
        return cls(env.state_file, name=env.name, allow_private_hosts=env.is_sandbox, auto_register=True,
                   service_types=env.schemas.service_types)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (StoreError, sqlite3.Error) as exc:
            raise PortalStateError(f"{self.label}: the state file cannot be used ({exc}); check the file and its "
                              "folder's permissions") from exc

    def register_partner(self, partner_id: str) -> bool:
        """Make a partner known to this portal; True if it was new."""
        with self._errors():
            return self.store.register_partner(partner_id)

    def _known_partner(self, partner_id: str) -> bool:
        """Whether the store holds the partner. With auto_register every partner exists: a read of an unknown one
        sees the defaults and writes nothing (plan stays a pure read); its first accepted write registers it."""
        if self.auto_register:
            return self.store.has_partner(partner_id)
        if not self.store.has_partner(partner_id):
            raise PartnerNotFound(f"{self.label}: unknown partner {partner_id!r}; register it in the portal first")
        return True

    def _spec(self, service_type: str) -> ServiceTypeSpec:
        spec = self.service_types.get(service_type)
        if spec is None:
            known = ", ".join(self.service_types)
            raise PartnerNotFound(f"{self.label}: unknown service type {service_type!r}; the portal knows: {known}")
        return spec

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type the portal knows for the partner, defaults for those never written."""
        with self._errors():
            try:
                stored = self.store.read_all(partner_id) if self._known_partner(partner_id) else {}
            except UnknownPartner:
                raise PartnerNotFound(f"{self.label}: unknown partner {partner_id!r}") from None
        return _states(partner_id, stored, self.service_types)

    def list_page(self, page_token: str | None, page_size: int) -> tuple[dict[str, dict[str, ServiceTypeState]],
                                                                          str | None]:
        """One page of the registered partners in ID order (at most `page_size`, capped at MAX_PAGE_SIZE), each with
        every service type, and the token of the next page (None after the last); ValueError for a bad token."""
        after = decode_page_token(page_token) if page_token is not None else None
        limit = max(1, min(page_size, MAX_PAGE_SIZE))
        with self._errors():
            rows, more = self.store.read_page(after, limit)
        page = {partner_id: _states(partner_id, stored, self.service_types) for partner_id, stored in rows}
        return page, (encode_page_token(rows[-1][0]) if more else None)

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        """Every registered partner's service types, read a page at a time (each page one snapshot). With
        auto_register (the sandbox) a partner never written is not registered and so not listed."""
        found: dict[str, dict[str, ServiceTypeState]] = {}
        token: str | None = None
        while True:
            page, token = self.list_page(token, MAX_PAGE_SIZE)
            found.update(page)
            if token is None:
                return found

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type with its version."""
        spec = self._spec(service_type)
        name = spec.name
        with self._errors():
            if not self._known_partner(partner_id):
                return ServiceTypeState(partner_id, name, normalize_settings(DEFAULT_SETTINGS, spec.fields),
                                        format_etag(0))
            try:
                stored = self.store.read(partner_id, name)
            except UnknownPartner:
                raise PartnerNotFound(f"{self.label}: unknown partner {partner_id!r}") from None
        settings = stored.settings if stored.settings is not None else dict(DEFAULT_SETTINGS)
        return ServiceTypeState(partner_id, name, normalize_settings(settings, spec.fields),
                                format_etag(stored.version))

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """Store the payload (normalised) if `if_match` is the current version: one transaction, which also registers
        a new partner under auto_register (only an accepted write does)."""
        spec = self._spec(service_type)
        name = spec.name
        if not self.auto_register:
            with self._errors():
                self._known_partner(partner_id)  # an unknown partner is 404 before its payload is judged
        details = check_payload(spec, payload, allow_private_hosts=self.allow_private_hosts)
        if details:
            summary = "; ".join(f"{d.field}: {d.message}" for d in details)
            raise PayloadRejected(f"{self.label} refused {name} of {partner_id}: {summary}",
                                  [d.as_json() for d in details])
        expected = parse_etag(if_match)
        settings = normalize_settings(payload, spec.fields)
        with self._errors():
            try:
                if expected is None:
                    known = self.store.has_partner(partner_id)
                    raise StaleVersion(self.store.read(partner_id, name).version if known else 0)
                version = self.store.write(partner_id, name, settings, expected, register=self.auto_register)
            except UnknownPartner:
                raise PartnerNotFound(f"{self.label}: unknown partner {partner_id!r}") from None
            except StaleVersion as stale:
                raise VersionConflict(
                    f"{self.label}: {name} of {partner_id} changed since the plan (plan saw version {if_match[:64]}, "
                    f"the portal has {format_etag(stale.current)}); run plan again") from None
        return ServiceTypeState(partner_id, name, settings, format_etag(version))

    def cancel(self) -> None:
        """Nothing to cancel: this portal never waits (no retries, no back-off), so every call ends on its own."""

    def close(self) -> None:
        """Close the store's connection."""
        self.store.close()


def _states(partner_id: str, stored: Mapping[str, Stored],
            specs: Mapping[str, ServiceTypeSpec]) -> dict[str, ServiceTypeState]:
    """Every service type of a partner: what the store holds, the defaults at version 0 for the rest (each with its
    own fields only)."""
    states = {}
    for name, spec in specs.items():
        entry = stored.get(name)
        settings = entry.settings if entry and entry.settings is not None else dict(DEFAULT_SETTINGS)
        states[name] = ServiceTypeState(partner_id, name, normalize_settings(settings, spec.fields),
                                        format_etag(entry.version if entry else 0))
    return states
