"""Portal rules beyond the schema, checked per partner and environment, each with a stable rule id.

| rule id                      | severity                          |
|------------------------------|-----------------------------------|
| unknown-environment          | error                             |
| cpo-needs-authorization      | warning (Authorization switched off) |
| service-type-not-for-role    | error                             |
| (hbsdeploy.check.portalrules)      | error: the portal refuses it      |
| cpo-broadcast                | warning                           |
| name-invisible-characters    | warning                           |
| partner-id-lowercase         | warning                           |
| emp-without-broadcast        | warning                           |
| client-certification-off     | warning (the annotation's `recommended`) |
| certificate-*                | see _check_certificate            |
| certificate-per-account      | warning                           |
| path-escapes-repository      | error                             |
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from hbsdeploy.check.certs import EXPIRY_WARNING_DAYS, CertificateError, expires_soon, read_certificate
from hbsdeploy.check.partial import NOTHING_REFUSED, Refused
from hbsdeploy.check.portalrules import check_service_url, check_settings
from hbsdeploy.errors import Problem, Severity
from hbsdeploy.load.config import Config, Environment
from hbsdeploy.load.partner import Partner, ResolvedServiceType
from hbsdeploy.load.schemacheck import show
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.paths import resolve_within, unresolvable
from hbsdeploy.text import escape


def check_partner(partner: Partner, config: Config, environments: Iterable[Environment],
                  now: dt.datetime | None = None, refused: Refused = NOTHING_REFUSED) -> list[Problem]:
    """Every rule problem of one partner in the given environments (those it is deployed to); of a partner the schema
    refused in part (hbsdeploy.check.partial), the rules that read only what passed it."""
    now = now or dt.datetime.now(dt.timezone.utc)
    doc = partner.document
    problems: list[Problem] = []
    for name in partner.environments:
        if name not in config.environments:
            known = ", ".join(sorted(config.environments))
            problems.append(doc.problem(("environments", name), "unknown-environment",
                                        f"environment {name!r} is not in {config.shown}; use one of: {known}",
                                        key=True))
    if not partner.name.isprintable():
        problems.append(_invisible_in_name(partner))
    if partner.written_id != partner.written_id.upper():
        problems.append(doc.problem((partner.id_key,), "partner-id-lowercase",
                                    f"{partner.id_key} {partner.written_id!r} is in lower case; OICP IDs are upper "
                                    f"case and plans and the portal show {partner.partner_id!r}: write "
                                    f"{partner.id_key}: \"{partner.partner_id}\"", Severity.WARNING))
    specs = config.schemas.service_types
    for environment in environments:
        if environment.name not in partner.environments:
            continue
        resolved = partner.resolve(environment.name)
        for spec in specs.values() if refused.service_types_intact(environment.name) else ():
            # A service type left out is not managed; one this role must offer, switched off, is a warning.
            managed = resolved.get(spec.name)
            if (managed is not None and partner.role in spec.required_for
                    and refused.service_type_intact(environment.name, spec.name)  # else the schema error says it
                    and managed.values.get("online_request") is not True):
                where = managed.sources.get("online_request", managed.path)
                problems.append(doc.problem(where, spec.missing_rule,
                                            f"Hubject marks {spec.label} mandatory for a {partner.role.upper()}; with "
                                            "Online Request off the platform forwards it no requests: set "
                                            "online_request: true unless you are leaving the platform",
                                            Severity.WARNING))
        problems += _one_user_certificate(partner, resolved)
        for service_type in resolved.values():
            spec = specs[service_type.name]
            if not refused.service_type_intact(environment.name, service_type.name):
                problems += _check_url_only(partner, service_type, environment)
                continue
            if partner.role and partner.role not in spec.roles:
                problems.append(doc.problem(service_type.path, "service-type-not-for-role",
                                            f"{spec.label} is only for {_roles(spec)}, not for this "
                                            f"{partner.role.upper()}; remove it",
                                            key=True))
                continue
            problems += _check_service_type(partner, spec, service_type, config, environment, now)
    return problems


def _check_url_only(partner: Partner, service_type: ResolvedServiceType, environment: Environment) -> list[Problem]:
    """A service type with a field the schema refused: only the rules of its Service URL alone, which read no other
    field."""
    url = service_type.values.get("service_url")
    if not isinstance(url, str):
        return []
    at = service_type.sources["service_url"]
    return [partner.document.problem(at, v.rule, v.message, Severity(v.severity))
            for v in check_service_url(url, allow_private_hosts=environment.is_sandbox)]


def _one_user_certificate(partner: Partner, resolved: dict[str, ResolvedServiceType]) -> list[Problem]:
    """Certificate Management reads as one User certificate choice per partner account: service types naming
    different files are a warning (judgement: the article does not say the portal refuses it)."""
    first: tuple[str, str] | None = None
    problems = []
    for service_type in resolved.values():
        file_value = service_type.values.get("certificate_file")
        if service_type.values.get("certificate") != "user" or not isinstance(file_value, str):
            continue
        if first is None:
            first = (service_type.name, file_value)
        elif file_value != first[1]:
            problems.append(partner.document.problem(
                service_type.sources["certificate_file"], "certificate-per-account",
                f"{service_type.name} names the User certificate {file_value!r}, {first[0]} names {first[1]!r}; "
                "Hubject's Certificate Management describes one User certificate per partner account: use one "
                "file unless Hubject confirmed a certificate per service type", Severity.WARNING))
    return problems


def _invisible_in_name(partner: Partner) -> Problem:
    index, char = next((i, c) for i, c in enumerate(partner.name) if not c.isprintable())
    name = unicodedata.name(char, "control character")
    return partner.document.problem(("name",), "name-invisible-characters",
                                    f"name contains U+{ord(char):04X} ({name}) at position {index + 1}: a control, "
                                    "line-break, bidirectional or invisible character that garbles or disguises "
                                    "plans on a terminal; write the name in visible characters", Severity.WARNING)


def _check_service_type(partner: Partner, spec: ServiceTypeSpec, service_type: ResolvedServiceType, config: Config,
                        environment: Environment, now: dt.datetime) -> list[Problem]:
    doc = partner.document
    values = service_type.values

    def at(field: str) -> tuple[str | int, ...]:
        return service_type.sources.get(field, service_type.path)

    problems = [
        doc.problem(at(v.field), v.rule, v.message, Severity(v.severity))
        for v in check_settings(spec, values, allow_private_hosts=environment.is_sandbox)
    ]
    online = values.get("online_request") is True
    if spec.broadcast and online:
        broadcast = values.get("broadcast_request") is True
        if partner.role == "cpo" and broadcast:
            problems.append(doc.problem(at("broadcast_request"), "cpo-broadcast",
                                        f"a CPO's {spec.label} usually has Broadcast Request off (the recommended "
                                        "setting); set broadcast_request: false unless Hubject asked for it",
                                        Severity.WARNING))
        if partner.role == "emp" and not broadcast:
            problems.append(doc.problem(at("broadcast_request"), "emp-without-broadcast",
                                        f"an online EMP's {spec.label} needs Broadcast Request for the "
                                        "AuthorizeStart broadcast; set broadcast_request: true", Severity.WARNING))
    for field, value in spec.recommended.get(partner.role, {}).items():
        if online and values.get(field) != value:
            problems.append(doc.problem(at(field), _RECOMMENDATION_RULES.get(field, "setting-not-recommended"),
                                        f"{_LABELS.get(field, field)} is not {show(value)} in this "
                                        f"{partner.role.upper()}'s {spec.label} "
                                        f"({spec.recommended_source or 'a recommended setting'}); "
                                        f"set {field}: {show(value)}",
                                        Severity.WARNING))
    problems += _check_certificate(partner, service_type, config, now)
    return problems


def _check_certificate(partner: Partner, service_type: ResolvedServiceType, config: Config,
                       now: dt.datetime) -> list[Problem]:
    doc = partner.document
    values = service_type.values
    file_value = values.get("certificate_file")
    if file_value is None:
        return []
    at = service_type.sources["certificate_file"]
    if values.get("certificate", "hubject") != "user":
        return [doc.problem(at, "certificate-file-unexpected",
                            "certificate_file is only used with certificate: user; remove it or set certificate: user")]
    if not file_value.isprintable():
        return [doc.problem(at, "certificate-invalid",
                            f"certificate_file {file_value!r} holds a control or invisible character; write the "
                            "path of the PEM file")]
    path = resolve_within(config.root, file_value)
    why = unresolvable(config.root, file_value) if path is None else None
    if why:
        return [doc.problem(at, "certificate-invalid", f"certificate_file {file_value!r} {why}; point it at the PEM "
                                                       "file itself")]
    if path is None:
        return [doc.problem(at, "path-escapes-repository",
                            f"certificate_file {file_value!r} points outside the repository; keep certificates "
                            f"in the folder of {config.shown} or below it")]
    try:
        info = read_certificate(path)
    except CertificateError as exc:
        rule = "certificate-file-missing" if "not found" in str(exc) else "certificate-invalid"
        return [doc.problem(at, rule, f"certificate_file {file_value!r}: {exc}")]
    problems = []
    expiry = info.not_after.date().isoformat()
    if info.not_after <= now:
        problems.append(doc.problem(at, "certificate-expired",
                                    f"certificate {file_value!r} expired on {expiry}; upload a renewed one"))
    elif expires_soon(info.not_after, now):
        problems.append(doc.problem(at, "certificate-expiring",
                                    f"certificate {file_value!r} expires on {expiry}, within {EXPIRY_WARNING_DAYS} "
                                    "days; renew it", Severity.WARNING))
    url = values.get("service_url")
    host = _host_of(url) if isinstance(url, str) else None
    if host and not info.matches_host(host):
        names = ", ".join(escape(name) for name in info.names()) or "none"  # both from outside: escaped
        problems.append(doc.problem(at, "certificate-host-mismatch",
                                    f"certificate {file_value!r} names {names}, not the Service URL's host "
                                    f"{escape(host)}",
                                    Severity.WARNING))
    return problems


_RECOMMENDATION_RULES = {"client_certification": "client-certification-off"}
_LABELS = {"client_certification": "Client Certification"}


def _roles(spec: ServiceTypeSpec) -> str:
    return " and ".join(sorted(role.upper() for role in spec.roles)) + "s"


def _host_of(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
