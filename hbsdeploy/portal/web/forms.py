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

from hbsdeploy.load.settings import normalize_settings

VERSION_PREFIX = "w-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FormValues:
    """What the settings form shows, as the browser reads it."""

    online_request: bool
    broadcast_request: bool | None  # None: the service type has no Broadcast Request box
    service_url: str
    client_certification: bool
    user_certificate: bool
    certificate_sha256: str

    def settings(self) -> dict[str, Any]:
        """The canonical settings (normalize_settings) these values stand for."""
        return normalize_settings({
            "online_request": self.online_request,
            "broadcast_request": bool(self.broadcast_request),
            "service_url": self.service_url.strip() or None,
            "client_certification": self.client_certification,
            "certificate": "user" if self.user_certificate else "hubject",
            "certificate_sha256": self.certificate_sha256.strip().lower() or None,
        })


def content_version(settings: Mapping[str, Any]) -> str:
    """The version of settings read from the UI, which shows none: a hash of their canonical JSON, as an ETag
    ('"w-<16 hex>"'). Equal settings have equal versions, so a change back and forth is not a conflict."""
    canonical = json.dumps(normalize_settings(settings), sort_keys=True, separators=(",", ":"))
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
    want, have = normalize_settings(expected), normalize_settings(found)
    return [f"{name}: expected {want[name]!r}, the portal shows {have[name]!r}" for name in want
            if want[name] != have[name]]
