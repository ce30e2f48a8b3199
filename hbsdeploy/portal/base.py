"""The portal interface: what plan and apply need from a portal, whichever implementation serves it."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from hbsdeploy.check.portalrules import check_settings
from hbsdeploy.errors import HbsError
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.servicetypes import service_types
from hbsdeploy.load.settings import SETTING_FIELDS

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment

API_PREFIX = "/v1"
_ETAG = re.compile(r'^"([0-9]{1,18})"$')


@dataclass(frozen=True)
class ServiceTypeState:
    """One service type of one partner as the portal holds it."""

    partner_id: str
    service_type: str
    settings: Mapping[str, Any]  # canonical (normalize_settings)
    version: str  # opaque ETag value, e.g. '"3"'


class Portal(Protocol):
    """Read and write a partner's service-type settings."""

    def list_service_types(self, partner_id: str) -> dict[str, ServiceTypeState]:
        """Every service type the portal knows for the partner (defaults for those never set)."""
        ...

    def get_service_type(self, partner_id: str, service_type: str) -> ServiceTypeState:
        """One service type with its current version."""
        ...

    def update_service_type(self, partner_id: str, service_type: str, payload: Mapping[str, Any],
                            if_match: str) -> ServiceTypeState:
        """Replace one service type's settings if its version is still `if_match`; the new state."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class PortalError(HbsError):
    """The portal could not do what was asked: one line naming the portal and what to do, never a secret."""

    attempts: int = 1  # how many HTTP attempts the failed call made


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


class PortalProtocolError(PortalError):
    """The portal answered something outside the contract: invalid JSON, a body of the wrong shape."""


@dataclass(frozen=True)
class Detail:
    """One reason a payload is refused, as the 422 body lists it."""

    field: str
    rule: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def format_etag(version: int) -> str:
    """The strong ETag of a version number: 3 -> '"3"'."""
    return f'"{version}"'


def parse_etag(value: str | None) -> int | None:
    """The version number in a strong ETag this portal issued, or None for anything else (weak, `*`, garbage)."""
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    return int(match.group(1)) if match else None


def encode_partner_id(partner_id: str) -> str:
    """A partner ID as one path segment: `DE*A36` -> `DE%2AA36`, `+49*536` -> `%2B49%2A536`."""
    return quote(partner_id, safe="")


def service_types_path(partner_id: str, service_type: str | None = None) -> str:
    """The API path (under the portal's base URL) of a partner's service types, or of one of them."""
    path = f"{API_PREFIX}/partners/{encode_partner_id(partner_id)}/service-types"
    return path if service_type is None else f"{path}/{quote(service_type, safe='')}"


def redact_url(url: str) -> str:
    """The URL without any user name or password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))


@functools.cache
def payload_validator() -> Any:
    """The compiled validator of schemas/portal-payload.schema.json (the one render uses too)."""
    from hbsdeploy.load.schemacheck import compile_schema

    return compile_schema(load_schema("portal-payload"))


def check_payload(service_type: str, payload: Any, *, allow_private_hosts: bool) -> list[Detail]:
    """Why the portal refuses this payload for this service type (empty when it accepts it): the payload schema,
    then the portal's rules (errors only)."""
    if not isinstance(payload, Mapping):
        return [Detail("$", "payload-type", "the request body must be a JSON object of the six settings")]
    found: list[Detail] = []
    for error in sorted(payload_validator().iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "$"
        if error.validator == "additionalProperties":
            extra = sorted(set(payload) - set(SETTING_FIELDS))
            found.extend(Detail(name, "unknown-field", f"unknown field {name!r}; allowed: {', '.join(SETTING_FIELDS)}")
                         for name in extra)
        elif error.validator == "required":
            missing = [name for name in SETTING_FIELDS if name not in payload]
            found.extend(Detail(name, "required", f"field {name!r} is required") for name in missing)
        else:
            found.append(Detail(where, f"schema-{error.validator}", _short(error.message)))
    if found:
        return found
    spec = service_types().get(service_type)
    if spec is None:
        return [Detail("$", "unknown-service-type", f"unknown service type {service_type!r}")]
    found.extend(Detail(v.field, v.rule, v.message)
                 for v in check_settings(spec, payload, allow_private_hosts=allow_private_hosts)
                 if v.severity == "error")
    return found


def _short(text: str, limit: int = 300) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def portal_label(env: Environment) -> str:
    """How messages name a portal: `portal 'qa' (https://gateway.example/hbs)`."""
    where = env.portal if env.kind != "http" else redact_url(env.portal)
    return f"portal {env.name!r} ({where})"


def open_portal(env: Environment, *, parallelism: int = 8) -> Portal:
    """The portal of an environment: `local` and `manual` -> the store at env.state_file; a URL -> the HTTP client
    (with a connection for each of `parallelism` workers)."""
    if env.kind == "http":
        from hbsdeploy.portal.http import HttpPortal

        return HttpPortal(env, pool_size=parallelism)
    from hbsdeploy.portal.local import LocalPortal

    if env.state_file is None:
        raise PortalError(f"{portal_label(env)}: no state file configured; set `state:` for this environment")
    return LocalPortal(env.state_file, name=env.name, allow_private_hosts=env.is_sandbox,
                       auto_register=True)
