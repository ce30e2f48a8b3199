"""The portal API contract every driver and the emulator share: paths, ETags and which payloads the portal takes."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hbsdeploy.check.portalrules import check_settings
from hbsdeploy.load.resources import load_schema
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.text import one_line

API_PREFIX = "/v1"
PARTNERS_PATH = f"{API_PREFIX}/partners"  # the paged listing of every partner's service types
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # a larger page_size is served as this many (a page of 1,000 partners is about 700 KB)
_PAGE_TOKEN_PREFIX = "after."
_ETAG = re.compile(r'^"([0-9]{1,18})"$')


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
    if not match or format_etag(int(match.group(1))) != value.strip():  # `"00"` is not the version `"0"`
        return None
    return int(match.group(1))


def loads_strict(content: bytes | str) -> Any:
    """JSON as the portal API carries it, both ways: UTF-8 (RFC 8259), ValueError when it is not JSON, UnicodeError
    (a ValueError) when it is not UTF-8 or a string holds a lone surrogate (json.loads lets `\\ud800` through, and it
    then fails wherever the text is printed or stored), RecursionError when it is nested too deeply to parse."""
    if isinstance(content, bytes):
        text = content.decode("utf-8-sig")  # strict: an encoded surrogate is refused here (a BOM is dropped)
    else:
        text = content
        text.encode("utf-8")  # strict: refuses a lone surrogate character
    data = json.loads(text)
    # What is left is a `\\uD800`-`\\uDFFF` escape. Without one in the text, the costly re-encoding that finds a lone
    # one (a pair is fine) is skipped: 20 ms on a page of 1,000 partners.
    if _SURROGATE_ESCAPE.search(text):
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def encode_partner_id(partner_id: str) -> str:
    """A partner ID as one path segment: `DE*A36` -> `DE%2AA36`, `+49*536` -> `%2B49%2A536`."""
    return quote(partner_id, safe="")


def encode_page_token(last_partner_id: str) -> str:
    """The opaque token of the page after the one that ended with `last_partner_id` (a cursor, not an offset: a
    partner added or removed meanwhile neither repeats nor skips another)."""
    return _PAGE_TOKEN_PREFIX + base64.urlsafe_b64encode(last_partner_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> str:
    """The partner ID a page token continues after; ValueError for a token this contract did not issue."""
    if not token.startswith(_PAGE_TOKEN_PREFIX) or len(token) > 200:
        raise ValueError("not a page token this portal issued")
    text = token[len(_PAGE_TOKEN_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        partner_id = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a page token this portal issued") from None
    if not partner_id or encode_page_token(partner_id) != token:
        raise ValueError("not a page token this portal issued")
    return partner_id


def partners_page_path(page_size: int, page_token: str | None = None) -> str:
    """The API path of one page of the partners listing."""
    query = {"page_size": str(page_size)}
    if page_token is not None:
        query["page_token"] = page_token
    return f"{PARTNERS_PATH}?{urlencode(query)}"


def service_types_path(partner_id: str, service_type: str | None = None) -> str:
    """The API path (under the portal's base URL) of a partner's service types, or of one of them."""
    path = f"{API_PREFIX}/partners/{encode_partner_id(partner_id)}/service-types"
    return path if service_type is None else f"{path}/{quote(service_type, safe='')}"


@functools.cache
def payload_validator() -> Any:
    """The compiled validator of schemas/portal-payload.schema.json (the one render uses too)."""
    from hbsdeploy.load.schemacheck import compile_schema

    return compile_schema(load_schema("portal-payload"))


def check_payload(spec: ServiceTypeSpec, payload: Any, *, allow_private_hosts: bool) -> list[Detail]:
    """Why the portal refuses this payload for this service type (empty when it accepts it): exactly the service
    type's fields, the payload schema, then the portal's rules (errors only)."""
    if not isinstance(payload, Mapping):
        return [Detail("$", "payload-type", "the request body must be a JSON object of the service type's "
                                            f"settings ({', '.join(spec.fields)})")]
    found = [Detail(name, "unknown-field", f"unknown field {name!r}; {spec.name} has: {', '.join(spec.fields)}")
             for name in sorted(set(payload) - set(spec.fields))]
    found += [Detail(name, "required", f"field {name!r} is required") for name in spec.fields if name not in payload]
    for error in sorted(payload_validator().iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "$"
        if error.validator not in ("additionalProperties", "required"):  # reported above, by the service type
            found.append(Detail(where, f"schema-{error.validator}", one_line(error.message, 300)))
    if found:
        return found
    found.extend(Detail(v.field, v.rule, v.message)
                 for v in check_settings(spec, payload, allow_private_hosts=allow_private_hosts)
                 if v.severity == "error")
    return found
