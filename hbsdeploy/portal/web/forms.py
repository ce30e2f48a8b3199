"""The pure parts of the web driver: the form's values as settings, versions as content hashes, evidence names."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.load.settings import SETTING_FIELDS, fields_in, normalize_settings

VERSION_PREFIX = "w-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FormValues:
    """What the settings form shows, as the browser reads it; None for a control the service type does not show."""

    online_request: bool
    broadcast_request: bool | None = None
    service_url: str | None = None
    client_certification: bool | None = None
    user_certificate: bool | None = None
    certificate_sha256: str | None = None

    def settings(self, fields: tuple[str, ...] = SETTING_FIELDS) -> dict[str, Any]:
        """The canonical settings (normalize_settings) of a service type with these `fields` that these values stand
        for (a field whose control is not shown takes the portal's default)."""
        shown: dict[str, Any] = {"online_request": self.online_request}
        if self.broadcast_request is not None:
            shown["broadcast_request"] = self.broadcast_request
        if self.service_url is not None:
            shown["service_url"] = self.service_url.strip() or None
        if self.client_certification is not None:
            shown["client_certification"] = self.client_certification
        if self.user_certificate is not None:
            shown["certificate"] = "user" if self.user_certificate else "hubject"
            shown["certificate_sha256"] = (self.certificate_sha256 or "").strip().lower() or None
        return normalize_settings(shown, fields)


def content_version(settings: Mapping[str, Any]) -> str:
    """The version of settings read from the UI, which shows none: a hash of their canonical JSON, as an ETag
    ('"w-<16 hex>"'). Equal settings have equal versions, so a change back and forth is not a conflict."""
    canonical = json.dumps(normalize_settings(settings, fields_in(settings)), sort_keys=True, separators=(",", ":"))
    return f'"{VERSION_PREFIX}{hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]}"'


def safe_name(text: str) -> str:
    """`DE*A36` -> `DE-A36`: a partner ID fit for a file name (no `*`, `+`, `/`)."""
    return _UNSAFE.sub("-", text).strip("-") or "partner"


def evidence_paths(folder: Path, partner_id: str, service_type: str,
                   now: dt.datetime | None = None) -> tuple[Path, Path]:
    """The before and after screenshots of one write: `<UTC time>-<partner>-<service type>-before.png`."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    stem = f"{moment.strftime('%Y%m%dT%H%M%S.%f')[:-3]}Z-{safe_name(partner_id)}-{safe_name(service_type)}"
    return folder / f"{stem}-before.png", folder / f"{stem}-after.png"


def differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """The fields that differ, as `field: expected X, the portal shows Y`."""
    fields = fields_in(expected)
    want, have = normalize_settings(expected, fields), normalize_settings(found, fields)
    return [f"{name}: expected {want[name]!r}, the portal shows {have[name]!r}" for name in want
            if want[name] != have[name]]


def shown_controls(spec: ServiceTypeSpec) -> tuple[str, ...]:
    """The controls the settings form shows for a service type: its fields' controls, Broadcast Request only where
    the portal offers it (Reservation holds the field, always off, without a box)."""
    return tuple(name for name in spec.controls if name != "broadcast_request" or spec.broadcast)
