"""The recorded state of a `manual` environment: a YAML file in the repository (state/<env>.yaml), committed.

The real HBS portal has no API, so what a manual environment holds is what its operators recorded: a step confirmed
at a terminal during apply, or one done outside hbsdeploy and recorded with `hbsdeploy state record`. The file is
reviewed and committed like any change, so every clone, the CI plan and the drift check see the same "before"; plans
say that it is recorded state, as of when and by whom, not read from the portal. It behaves as a portal does towards
plan and apply: versions (one per record of a service type), If-Match, the portal's payload rules. Writes are atomic.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hbsdeploy.atomic import write_atomic
from hbsdeploy.errors import InputError
from hbsdeploy.files import FileRefused, refuse_link
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import DEFAULT_SETTINGS, fields_in, normalize_settings
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.portal.contract import check_payload, format_etag, parse_etag
from hbsdeploy.portal.errors import (
    PartnerNotFound,
    PayloadRejected,
    PortalConfigError,
    PortalStateError,
    VersionConflict,
    portal_label,
)
from hbsdeploy.portal.interface import RecordedSource, ServiceTypeState
from hbsdeploy.who import current_user

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment

STATE_FORMAT_VERSION = 1
CONFIRMED = "confirmed at a terminal during apply"


def now_utc() -> str:
    """The current time as the state file writes it: UTC, seconds, `Z`."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RecordedPortal:
    """A manual environment's recorded state, read and written as a portal."""

    listing_is_cheap = True

    def __init__(self, path: Path, environment: str, *, label: str | None = None,
                 service_types: Mapping[str, ServiceTypeSpec] | None = None) -> None:
        """`service_types`: those of the project's partner schema (None: hbsdeploy's own copy's)."""
        if service_types is None:
            from hbsdeploy.load.schemaset import package_schemas

            service_types = package_schemas().service_types
        self.service_types = service_types
        self.path = path
        self.environment = environment
        self.label = label or f"manual environment {environment!r}"
        self.shown = display_path(path)
        self.how = CONFIRMED  # what the next write records as the way it was confirmed
        self._lock = threading.Lock()
        self._data = self._load()

    @classmethod
    def from_environment(cls, env: Environment, *, parallelism: int) -> RecordedPortal:
        """The recorded state at env.state_file; refuses while an older hbsdeploy's machine-local store of the same
        environment exists and nothing is recorded in the repository yet (`hbsdeploy state migrate`)."""
        if env.state_file is None:
            raise PortalConfigError(f"{portal_label(env)}: no state file configured; set `state:` for this "
                                    "environment")
        if env.state_file.suffix not in (".yaml", ".yml"):
            raise PortalConfigError(f"{portal_label(env)}: state {display_path(env.state_file)} is not a YAML file; "
                                    f"a manual environment records its state in the repository, e.g. "
                                    f"state/{env.name}.yaml (run `hbsdeploy state migrate --env {env.name}`)")
        legacy = legacy_store(env)
        if not env.state_file.exists() and legacy is not None and legacy.exists():
            raise PortalStateError(f"{portal_label(env)}: what was recorded is still in {display_path(legacy)}, on "
                                   f"this machine only; run `hbsdeploy state migrate --env {env.name}` to move it "
                                   f"to {display_path(env.state_file)}, then commit that file")
        return cls(env.state_file, env.name, label=portal_label(env), service_types=env.schemas.service_types)

    # -- reading --------------------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            refuse_link(self.path)  # the recorded state is a plain file of the repository, never a link elsewhere
        except FileRefused as exc:
            raise PortalConfigError(f"{self.shown} {exc}") from None
        if not self.path.exists():
            return {"format_version": STATE_FORMAT_VERSION, "environment": self.environment, "updated_at": None,
                    "updated_by": None, "partners": {}}
        from hbsdeploy.load.resources import load_schema
        from hbsdeploy.load.schemacheck import check, compile_schema
        from hbsdeploy.load.yamlload import load_yaml

        document = load_yaml(self.path)  # InputError naming file:line on a syntax error
        problems = check(document, compile_schema(load_schema("state")))
        if problems:
            raise InputError(problems)
        data: dict[str, Any] = document.data
        if data["environment"] != self.environment:
            raise PortalStateError(f"{self.shown} records environment {data['environment']!r}, not "
                                   f"{self.environment!r}; check `state:` in hbsdeploy.yaml")
        return data

    def source(self) -> RecordedSource:
        """Where plans against this environment take their "before" from."""
        return RecordedSource(self.shown, self._data["updated_at"], self._data["updated_by"])

    def partners(self) -> list[str]:
        """Every partner something is recorded for: the listing of a manual environment."""
        return sorted(self._data["partners"])

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type, as recorded, or the portal's defaults (version 0) where nothing is."""
        return {name: self._state(partner_id, name) for name in self.service_types}

    def list_all_service_types(self) -> dict[str, dict[str, ServiceTypeState]]:
        """Every partner something is recorded for, with its service types: the listing of a manual environment."""
        return {partner_id: self.list_service_types(partner_id) for partner_id in self.partners()}

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type as recorded."""
        self._spec(service_type)
        return self._state(partner_id, service_type)

    def _spec(self, service_type: str) -> ServiceTypeSpec:
        spec = self.service_types.get(service_type)
        if spec is None:
            raise PartnerNotFound(f"{self.label}: unknown service type {service_type!r}; known: "
                                  f"{', '.join(self.service_types)}")
        return spec

    def _state(self, partner_id: str, service_type: str) -> ServiceTypeState:
        fields = self.service_types[service_type].fields
        entry = self._data["partners"].get(partner_id, {}).get(service_type)
        if entry is None:
            return ServiceTypeState(partner_id, service_type, normalize_settings(DEFAULT_SETTINGS, fields),
                                    format_etag(0))
        return ServiceTypeState(partner_id, service_type, normalize_settings(entry["settings"], fields),
                                format_etag(entry["version"]))

    # -- writing --------------------------------------------------------------------------------------------------

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """Record the settings if the recorded version is still `if_match`; writes the whole file atomically."""
        current = self.get_service_type(partner_id, service_type)
        spec = self._spec(service_type)
        details = check_payload(spec, payload, allow_private_hosts=False)
        if details:
            summary = "; ".join(f"{d.field}: {d.message}" for d in details)
            raise PayloadRejected(f"{self.label} would refuse {service_type} of {partner_id}: {summary}",
                                  [d.as_json() for d in details])
        with self._lock:
            expected = parse_etag(if_match)
            version = parse_etag(current.version) or 0
            if expected is None or expected != version:
                raise VersionConflict(f"{self.label}: {service_type} of {partner_id} was recorded again since the "
                                      f"plan (plan saw version {if_match[:64]}, {self.shown} has "
                                      f"{current.version}); pull the latest {self.shown} and plan again")
            settings = normalize_settings(payload, spec.fields)
            when, who = now_utc(), current_user()
            self._data["partners"].setdefault(partner_id, {})[service_type] = {
                "version": version + 1, "recorded_at": when, "recorded_by": who, "how": self.how,
                "settings": dict(settings)}
            self._data.update(updated_at=when, updated_by=who)
            self._write()
        return ServiceTypeState(partner_id, service_type, settings, format_etag(version + 1))

    def _write(self) -> None:
        try:
            write_atomic(self.path, render_state(self._data))
        except OSError as exc:
            raise PortalStateError(f"{self.label}: cannot write {self.shown} ({exc.strerror or exc}); nothing "
                                   "was recorded. Fix the file or its folder") from None

    def cancel(self) -> None:
        """Nothing to cancel: nothing here waits."""

    def close(self) -> None:
        """Nothing to release: the file is read once and written whole."""


def render_state(data: Mapping[str, Any]) -> str:
    """The state file's text: a header saying what it is, then the data with sorted keys (stable diffs)."""
    header = (f"# yaml-language-server: $schema=../schemas/state.schema.json\n"
              f"# What the manual environment {data['environment']!r} holds, as its operators recorded it with\n"
              "# hbsdeploy (a step confirmed during apply, or `hbsdeploy state record`). Commit it with the change it\n"
              "# records; plans read it instead of the portal. Written by hbsdeploy: do not edit by hand.\n")
    body = yaml.safe_dump(dict(data), sort_keys=True, allow_unicode=True, default_flow_style=False, width=1000)
    return header + body


def legacy_store(env: Environment) -> Path | None:
    """Where hbsdeploy 0.1 kept a manual environment's records: the machine-local <state_dir>/<env>.sqlite3."""
    return env.state_dir / f"{env.name}.sqlite3" if env.state_dir is not None else None


def migrate_legacy(env: Environment) -> tuple[Path, int]:
    """Move what hbsdeploy 0.1 recorded in <state_dir>/<env>.sqlite3 (this machine only) to the environment's state
    file in the repository; the state file and how many service types it records. Refuses to overwrite."""
    from hbsdeploy.portal.store import Store, StoreError

    legacy = legacy_store(env)
    if env.kind != "manual" or env.state_file is None:
        raise PortalConfigError(f"{env.name!r} is not a manual environment: nothing to migrate")
    if legacy is None or not legacy.exists():
        raise PortalStateError(f"no {legacy or 'state_dir/' + env.name + '.sqlite3'} on this machine: nothing to "
                               "migrate (another clone may hold it)")
    if env.state_file.exists():
        raise PortalStateError(f"{display_path(env.state_file)} exists already; nothing was migrated. Compare it "
                               f"with `hbsdeploy plan --env {env.name}` and remove {display_path(legacy)}")
    portal = RecordedPortal(env.state_file, env.name, label=portal_label(env))
    portal.how = f"migrated from {display_path(legacy)}"
    count = 0
    try:
        store = Store(legacy)
        for partner_id in store.partners():
            for name, stored in sorted(store.read_all(partner_id).items()):
                if stored.settings is None:
                    continue
                portal._data["partners"].setdefault(partner_id, {})[name] = {
                    "version": max(1, stored.version), "recorded_at": now_utc(), "recorded_by": current_user(),
                    "how": portal.how,
                    "settings": dict(normalize_settings(stored.settings, fields_in(stored.settings)))}
                count += 1
    except StoreError as exc:
        raise PortalStateError(f"{display_path(legacy)} cannot be read ({exc}); nothing was migrated") from None
    portal._data.update(updated_at=now_utc(), updated_by=current_user())
    portal._write()
    return env.state_file, count
