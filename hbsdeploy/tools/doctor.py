"""`hbsdeploy doctor`: is this machine set up to plan and apply? One check result per line, nothing printed here.

Checks, in order: the config is found and valid; the partner files validate; for the chosen environment, the
client certificate and key (readable, matching, not expired, warn within 30 days), the CA bundle, the token
variable (its value is never read into a message), and the portal (an HTTP(S) GET of the base URL for an API,
then an authenticated read of a partner's service types with the token and client certificate: a 401 or 403 fails,
naming the variable, never its value; the state folder writable for `local`, `manual` and `web`). For `web`, it
logs in (the saved session or the *_env credentials) and looks, read-only, for every entry of the UI map on the
portal's pages (portal/web/uicheck.py).
With `probe`, every Service URL of the environment's partners is reached the way the platform reaches it
(tools/probe.py): DNS (public addresses; loopback and private ones only with the environment's
`probe_private_hosts` and HBSDEPLOY_PROBE_PRIVATE_HOSTS=1; link-local and metadata never), TCP, a TLS handshake
trusting what the platform trusts (the uploaded User certificate with `certificate: user`, else public CAs or
--probe-ca-bundle) and naming that trust, a warning that explains a server refusing the probe for want of a client
certificate, then one GET of the Service URL plus the service type's OICP stop path (`probe_path`), and last a note
of what the probe cannot test (the partner's firewall, Hubject's client certificate).

Decisions: a certificate that expires within 30 days is a warning (it still works today), an expired one a
failure. Any HTTP answer from the portal, even 401 or 404, proves it reachable; 5xx is a warning. Reachable is not
usable: the authenticated read is what proves the token (a 404 for a partner the portal does not know yet still
proves it was accepted). The probe's decisions and their sources: docs/decisions.md, "`doctor --probe`".
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbsdeploy.errors import HbsError, InputError
from hbsdeploy.files import FileRefused, read_bytes
from hbsdeploy.load.config import Config, Environment, find_config, load_config
from hbsdeploy.load.servicetypes import operation_path
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.paths import resolve_within
from hbsdeploy.text import escape, plural
from hbsdeploy.tools.checks import Check, CheckStatus
from hbsdeploy.tools.checks import expiry as _expiry
from hbsdeploy.tools.probe import (
    DEFAULT_TIMEOUT,
    PROBE_CA_ENV_VAR,
    PROBE_PRIVATE_VAR,
    ProbeResult,
    Trust,
    probe_url,
)

__all__ = ["PROBE_CA_ENV_VAR", "Check", "CheckStatus", "DoctorOptions", "ProbeResult", "ProbeTarget", "Trust",
           "probe_targets", "probe_url", "run_checks"]


@dataclass(frozen=True)
class DoctorOptions:
    """What to check: the environment (default: the config's default), probing, and the timeout of each step."""

    environment: str | None = None
    probe: bool = False
    probe_ca_bundle: Path | None = None
    probe_http: bool = True  # with probe: one GET of each Service URL plus an operation path that starts nothing
    timeout: float = DEFAULT_TIMEOUT
    now: dt.datetime | None = None


def run_checks(config_option: str | None, options: DoctorOptions) -> Iterator[Check]:
    """Every check, in order, yielded as soon as it is done (network checks take up to `timeout` each)."""
    now = options.now or dt.datetime.now(dt.timezone.utc)
    try:
        config_path = find_config(config_option)
    except HbsError as exc:
        yield Check("config", CheckStatus.FAIL, str(exc))
        return
    try:
        config = load_config(config_path)
    except InputError as exc:
        first = exc.problems[0].format() if exc.problems else str(exc)
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        yield Check("config", CheckStatus.FAIL, f"{first}{more}; run `hbsdeploy validate`")
        return
    except HbsError as exc:
        yield Check("config", CheckStatus.FAIL, str(exc))
        return
    environments = plural(len(config.environments), "environment")
    yield Check("config", CheckStatus.OK, f"{config.shown} is valid ({environments}: {', '.join(config.environments)})")
    schema = _schema_check(config)
    yield schema
    if schema.status is CheckStatus.FAIL:
        return  # every later check reads the partner files through that schema: it would fail the same way
    try:
        env = config.environment(options.environment)
    except HbsError as exc:
        yield Check("environment", CheckStatus.FAIL, str(exc))
        return
    yield _partners_check(config, env)
    if env.kind == "http" or env.client_cert or env.client_key:
        yield from _client_certificate_checks(env, now)
    if env.kind == "http" or env.ca_bundle:
        yield _ca_bundle_check(env)
    if env.kind == "http" or env.token_env:
        yield _token_check(env)
    if env.kind == "http":
        reachable = _portal_reachable(env, options.timeout)
        yield reachable
        token_set = not env.token_env or bool(os.environ.get(env.token_env))
        if reachable.status is not CheckStatus.FAIL and token_set:
            yield _authenticated_read(config, env, options.timeout)
    else:
        yield _state_folder_check(env)
    if env.kind == "web":
        yield from _web_ui_checks(env)
    if options.probe:
        yield from _probe_checks(config, env, options, now)


def _schema_check(config: Config) -> Check:
    """Which partner schema is in effect, and how the project's copy differs from hbsdeploy's (never silently)."""
    from hbsdeploy import __version__
    from hbsdeploy.load.schemaset import SchemaFileError, schema_differences

    schemas = config.schemas
    try:
        schemas.check()
    except SchemaFileError as exc:
        return Check("schema", CheckStatus.FAIL, str(exc))
    types = ", ".join(schemas.service_types)
    if not schemas.project:
        folder = display_path(config.schemas_dir or config.root)
        return Check("schema", CheckStatus.OK, f"no partner.schema.json in {folder}: hbsdeploy {__version__}'s copy "
                                               f"({types})")
    differences = schema_differences(schemas)
    if not differences:
        return Check("schema", CheckStatus.OK, f"{schemas.shown} is hbsdeploy {__version__}'s copy ({types})")
    only_added = len(differences) == 1 and differences[0].startswith("service types added")
    return Check("schema", CheckStatus.OK if only_added else CheckStatus.WARN,
                 f"{schemas.shown} differs from hbsdeploy {__version__}'s copy: {'; '.join(differences)}"
                 + ("" if only_added else "; it is the one in effect: compare with `hbsdeploy schema partner`"))


def _partners_check(config: Config, env: Environment) -> Check:
    from hbsdeploy.check.validate import validate

    report = validate(config, None, env.name)
    deployed = sum(1 for p in report.partners if env.name in p.environments)
    if report.errors:
        return Check("partners", CheckStatus.FAIL, f"{plural(len(report.errors), 'error')} in partner files, first: "
                                              f"{report.errors[0].format()}; run `hbsdeploy validate --env {env.name}`")
    if report.warnings:
        return Check("partners", CheckStatus.WARN, f"{plural(deployed, 'partner')} in {env.name}, "
                                              f"{plural(len(report.warnings), 'warning')}; "
                                              f"run `hbsdeploy validate --env {env.name}`")
    return Check("partners", CheckStatus.OK, f"{plural(len(report.partners), 'partner file')} valid, "
                                        f"{deployed} deployed to {env.name}")


# --- certificates ---------------------------------------------------------------------------------------------------

MAX_TLS_FILE_BYTES = 1024 * 1024  # a PEM certificate with its chain, or a key: a few KiB


def _read(path: Path) -> bytes | str:
    """The file's bytes, or a message why it cannot be read."""
    try:
        return read_bytes(path, MAX_TLS_FILE_BYTES, what="PEM file")
    except FileRefused as exc:
        return "not found" if exc.rule == "file-not-found" else f"cannot be read: {exc}"


def _client_certificate_checks(env: Environment, now: dt.datetime) -> Iterator[Check]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    if env.client_cert is None:
        if env.client_key is not None:
            yield Check("client certificate", CheckStatus.FAIL, "client_key is set but client_cert is not; set both")
        else:
            yield Check("client certificate", CheckStatus.WARN,
                        "none configured (client_cert, client_key); Hubject requires mutual TLS unless a gateway "
                        "in front of the portal handles it")
        return
    shown = display_path(env.client_cert)
    data = _read(env.client_cert)
    if isinstance(data, str):
        yield Check("client certificate", CheckStatus.FAIL, f"{shown} {data}")
        return
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        yield Check("client certificate", CheckStatus.FAIL, f"{shown} holds no valid PEM certificate")
        return
    status, when = _expiry(cert.not_valid_after_utc, now)
    yield Check("client certificate", status, f"{shown}: {cert.subject.rfc4514_string() or 'no subject'}, {when}")

    key_path = env.client_key or env.client_cert  # requests also takes the key inside the certificate file
    key_shown = display_path(key_path)
    key_data = _read(key_path)
    if isinstance(key_data, str):
        yield Check("client key", CheckStatus.FAIL, f"{key_shown} {key_data}")
        return
    if env.client_key is None and b"PRIVATE KEY-----" not in key_data:
        yield Check("client key", CheckStatus.FAIL,
                    f"no client_key set and {key_shown} holds no private key; set client_key")
        return
    try:
        key = load_pem_private_key(key_data, password=None)
    except TypeError:
        yield Check("client key", CheckStatus.FAIL, f"{key_shown} is encrypted; the portal client needs an unencrypted "
                                               "key (keep it in a CI secret or a file only you can read)")
        return
    except ValueError:
        yield Check("client key", CheckStatus.FAIL, f"{key_shown} holds no valid PEM private key")
        return
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        yield Check("client key", CheckStatus.FAIL, f"{key_shown} does not match {shown} (a different key pair); "
                                               "use the key the certificate was issued for")
        return
    mode = key_path.stat().st_mode
    if os.name == "posix" and mode & 0o077:
        yield Check("client key", CheckStatus.WARN, f"{key_shown} matches the certificate but others can read it "
                                               f"(mode {mode & 0o777:o}); chmod 600 it")
        return
    yield Check("client key", CheckStatus.OK, f"{key_shown} matches the certificate")


def _ca_bundle_check(env: Environment) -> Check:
    from cryptography import x509

    if env.ca_bundle is None:
        if not env.verify_tls:
            return Check("CA bundle", CheckStatus.WARN, "verify_tls is false: the portal's certificate is not checked")
        return Check("CA bundle", CheckStatus.OK, "none configured: the system trust store verifies the portal")
    shown = display_path(env.ca_bundle)
    data = _read(env.ca_bundle)
    if isinstance(data, str):
        return Check("CA bundle", CheckStatus.FAIL, f"{shown} {data}")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return Check("CA bundle", CheckStatus.FAIL, f"{shown} holds no valid PEM certificate")
    return Check("CA bundle", CheckStatus.OK, f"{shown}: {plural(len(certs), 'certificate')}")


def _token_check(env: Environment) -> Check:
    if not env.token_env:
        return Check("token", CheckStatus.OK, "none configured (token_env)")
    if os.environ.get(env.token_env):
        return Check("token", CheckStatus.OK, f"${env.token_env} is set")
    return Check("token", CheckStatus.FAIL,
                 f"${env.token_env} is not set or empty; export it (hbsdeploy never prints it)")


# --- the portal -----------------------------------------------------------------------------------------------------

def _portal_reachable(env: Environment, timeout: float) -> Check:
    import requests

    from hbsdeploy.text import redact_url

    shown = redact_url(env.portal)
    verify: bool | str = str(env.ca_bundle) if env.ca_bundle and env.verify_tls else env.verify_tls
    cert: tuple[str, str] | str | None = None
    if env.client_cert and env.client_cert.is_file():
        cert = (str(env.client_cert), str(env.client_key)) if env.client_key else str(env.client_cert)
    started = time.monotonic()
    try:
        # No credentials at all: reachability needs none, and a wrong URL must receive none (not even ~/.netrc's,
        # which requests would add without an explicit auth).
        response = requests.get(env.portal, timeout=(min(env.connect_timeout, timeout), timeout), verify=verify,
                                cert=cert, allow_redirects=False, auth=_no_auth)
    except requests.exceptions.SSLError as exc:
        return Check("portal", CheckStatus.FAIL, f"{shown}: TLS failed ({_reason(exc)}); check ca_bundle, client_cert")
    except requests.exceptions.Timeout:
        return Check("portal", CheckStatus.FAIL, f"{shown}: no answer within {timeout:g} s")
    except (requests.exceptions.RequestException, OSError) as exc:
        return Check("portal", CheckStatus.FAIL, f"{shown}: not reachable ({_reason(exc)})")
    elapsed = time.monotonic() - started
    response.close()
    detail = f"{shown} answered HTTP {response.status_code} in {elapsed:.2f} s"
    if response.status_code >= 500:
        return Check("portal", CheckStatus.WARN, f"{detail}: reachable, but failing")
    return Check("portal", CheckStatus.OK, detail)


def _authenticated_read(config: Config, env: Environment, timeout: float) -> Check:
    """Read one partner's service types as plan does (token, client certificate): proof that the credentials work."""
    import dataclasses

    from hbsdeploy.portal import PartnerNotFound, PortalAuthError, PortalError
    from hbsdeploy.portal.http import HttpPortal

    partner_id = _first_partner(config, env)
    if partner_id is None:
        return Check("authenticated read", CheckStatus.WARN, f"no partner file deploys to {env.name}: nothing to "
                                                             "read, so the credentials were not tried")
    credentials = f"the token in ${env.token_env}" if env.token_env else "the client certificate (no token_env)"
    quick = dataclasses.replace(env, connect_timeout=min(env.connect_timeout, timeout), read_timeout=timeout,
                                total_timeout=timeout, max_retries=0)
    try:
        portal = HttpPortal(quick)
        try:
            portal.list_service_types(partner_id)
        finally:
            portal.close()
    except PartnerNotFound:
        return Check("authenticated read", CheckStatus.OK, f"{credentials} was accepted (the portal does not know "
                                                           f"{partner_id} yet)")
    except PortalAuthError as exc:
        return Check("authenticated read", CheckStatus.FAIL, f"the portal refused {credentials} reading {partner_id} "
                                                             f"({_status_of(str(exc))}); replace the value of "
                                                             f"${env.token_env or 'the token variable'} or the "
                                                             "client certificate, hbsdeploy never prints it")
    except PortalError as exc:
        return Check("authenticated read", CheckStatus.FAIL, f"reading {partner_id} failed: {exc}")
    return Check("authenticated read", CheckStatus.OK, f"{credentials} was accepted: read the service types of "
                                                       f"{partner_id}")


def _status_of(message: str) -> str:
    found = re.search(r"\((40[13])\b", message)
    return f"HTTP {found.group(1)}" if found else "refused"


def _first_partner(config: Config, env: Environment) -> str | None:
    from hbsdeploy.check.validate import validate

    partners = sorted(p.partner_id for p in validate(config, None, env.name).partners if env.name in p.environments)
    return partners[0] if partners else None


def _no_auth(request: Any) -> Any:
    return request


def _reason(exc: BaseException) -> str:
    # requests wraps the socket error in a long message; the `[Errno N] text` part is the useful one.
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip() if found else text


def _state_folder_check(env: Environment) -> Check:
    # local and manual: the store; web: the saved browser session (its evidence goes to the same folder).
    if env.state_file is not None:
        state = env.state_file
    else:
        assert env.state_dir is not None  # every loaded environment has one
        state = env.state_dir / f"web-session-{env.name}.json"
    folder = state.parent
    shown = display_path(folder)
    if state.exists() and not os.access(state, os.R_OK | os.W_OK):
        return Check("portal", CheckStatus.FAIL, f"{env.portal}: state {display_path(state)} is not writable")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check("portal", CheckStatus.FAIL, f"{env.portal}: {display_path(existing)} is not a folder; "
                                            f"state_dir must be one")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hbsdeploy-doctor-"):
            pass
    except OSError as exc:
        return Check("portal", CheckStatus.FAIL, f"{env.portal}: cannot write in {display_path(existing)} "
                                            f"({exc.strerror}); fix permissions or state_dir")
    where = "is writable" if existing == folder else "will be created (its parent is writable)"
    return Check("portal", CheckStatus.OK, f"{env.portal}: state folder {shown} {where}")


def _web_ui_checks(env: Environment) -> Iterator[Check]:
    """Log in (the saved session or the *_env credentials) and look for every UI map entry on the portal's pages."""
    from hbsdeploy.portal import PortalError
    from hbsdeploy.portal.web.driver import WebPortal
    from hbsdeploy.portal.web.uicheck import check_ui

    try:
        portal = WebPortal(env)
    except PortalError as exc:
        yield Check("ui log-in", CheckStatus.FAIL, f"{exc}; the UI map was not checked")
        return
    try:
        if portal.sessions.state is None and not portal.sessions.credentials.available:
            unset = portal.sessions.credentials.missing()
            how = f"set {' and '.join(unset)}" if unset else "set username_env and password_env"
            yield Check("ui log-in", CheckStatus.FAIL, f"no session for portal {env.name!r}; run `hbsdeploy login "
                                                       f"--env {env.name}`, or {how}; the UI map was not checked")
            return
        try:
            findings = check_ui(portal)
        except PortalError as exc:
            yield Check("ui", CheckStatus.FAIL, f"{exc}; the UI map check stopped there")
            return
    finally:
        portal.close()
    for finding in findings:
        yield Check(finding.name, CheckStatus.OK if finding.passed else CheckStatus.FAIL, finding.detail)


# --- probing Service URLs -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeTarget:
    """A Service URL the platform calls, who set it, and the User certificate it trusts there (as the file writes
    it), if any."""

    partner_id: str
    role: str
    service_type: str
    url: str
    user_certificate: str | None = None


def probe_targets(config: Config, env: Environment) -> list[ProbeTarget]:
    """The Service URLs of service types with Online Request on, for the partners deployed to `env`."""
    from hbsdeploy.check.validate import validate

    targets = []
    for partner in sorted(validate(config, None, env.name).partners, key=lambda p: p.partner_id):
        if env.name not in partner.environments:
            continue
        for name, service_type in sorted(partner.resolve(env.name).items()):
            values = service_type.values
            url = values.get("service_url")
            if values.get("online_request") is True and isinstance(url, str) and url:
                certificate = values.get("certificate_file") if values.get("certificate") == "user" else None
                targets.append(ProbeTarget(partner.partner_id, partner.role, name, url,
                                           certificate if isinstance(certificate, str) else None))
    return targets


PROBE_LIMITS = ("cannot test whether the partner's firewall admits the platform's source addresses, nor present "
                "Hubject's client certificate: ask Hubject for its outgoing addresses and send a test request from "
                "the QA portal (docs/config.md, `hbsdeploy doctor`)")


def _probe_checks(config: Config, env: Environment, options: DoctorOptions, now: dt.datetime) -> Iterator[Check]:
    targets = probe_targets(config, env)
    if not targets:
        yield Check("probe", CheckStatus.WARN, f"no partner in {env.name} has a Service URL with Online Request on")
        return
    allow_private = env.probe_private_hosts and os.environ.get(PROBE_PRIVATE_VAR) == "1"
    for target in targets:
        name = f"probe {target.partner_id} {target.service_type}"
        trust = _trust(config, target, options.probe_ca_bundle)
        if isinstance(trust, str):
            yield Check(name, CheckStatus.FAIL, f"{escape(target.url)}: {trust}")
            continue
        http_path = _http_path(config, target) if options.probe_http else None
        if isinstance(http_path, Check):
            yield http_path
            continue
        result = probe_url(target.url, trust=trust, timeout=options.timeout, now=now, allow_private=allow_private,
                           http_path=http_path)
        yield Check(name, result.tls[0], f"{escape(target.url)}: {result.tls[1]}")
        if result.http is not None:
            yield Check(f"{name} http", *result.http)
    yield Check("probe limits", CheckStatus.NOTE, PROBE_LIMITS)


def _trust(config: Config, target: ProbeTarget, ca_bundle: Path | None) -> Trust | str:
    """What the platform trusts for this URL: the uploaded User certificate, else public CAs (or `ca_bundle`)."""
    if target.user_certificate is None:
        return Trust(ca_bundle=ca_bundle, shown=display_path(ca_bundle) if ca_bundle else "")
    path = resolve_within(config.root, target.user_certificate)
    if path is None:
        return (f"certificate_file {escape(target.user_certificate)!r} is outside the repository or cannot be "
                "resolved; run `hbsdeploy validate`")
    return Trust(user_certificate=path, shown=target.user_certificate)


def _http_path(config: Config, target: ProbeTarget) -> str | None | Check:
    """The operation path to GET for this service type and role (None: the service type declares none), or a
    FAIL when the project's partner schema's probe_path is not one that is safe to send."""
    spec = config.schemas.service_types.get(target.service_type)
    template = spec.probe_path.get(target.role) if spec else None
    if template is None:
        return None
    path = operation_path(template)
    if path is None:
        return Check(f"probe {target.partner_id} {target.service_type}", CheckStatus.FAIL,
                     f"probe_path {escape(template)!r} of {target.service_type} (x-hbsdeploy in the partner schema) is "
                     "not an OICP path under /api/oicp/ without a start operation; not probed")
    return path
