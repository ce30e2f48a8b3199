"""`hbsdeploy portal ...`: run the portal emulator."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from hbsdeploy.cli.options import Globals
from hbsdeploy.errors import HbsError
from hbsdeploy.load.schemaset import SchemaSet
from hbsdeploy.load.servicetypes import ServiceTypeSpec
from hbsdeploy.portal.emulator import serve as start_emulator

_FILE = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("portal")
def portal() -> None:
    """The portal emulator: the portal API contract served over HTTP(S) for tests and demos.

    \b
    Example:
      hbsdeploy portal serve --port 8443 --auto-register
    """


@portal.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only unless "
              "--allow-remote).")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True,
              help="Port to listen on; 0 picks a free one (printed on stdout).")
@click.option("--state", "state", type=_FILE, default=Path(".hbsdeploy/emulator.sqlite3"), show_default=True,
              help="The emulator's state file (SQLite, the same store as the `local` portal).")
@click.option("--tls-cert", type=_EXISTING, help="Server certificate (PEM); serves HTTPS.")
@click.option("--tls-key", type=_EXISTING, help="Private key of --tls-cert (PEM, unencrypted).")
@click.option("--client-ca", type=_EXISTING, help="Require client certificates signed by this CA (mutual TLS).")
@click.option("--token-env", metavar="NAME", help="Require `Authorization: Bearer <token>`, the token read from "
              "this environment variable.")
@click.option("--latency-ms", type=click.FloatRange(0, 600_000), default=0, show_default=True,
              help="Delay each answer by this many milliseconds.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of requests answered with an injected fault: 500, 503, 429, a dropped connection, or a "
                   "lost answer after the write.")
@click.option("--seed", type=int, help="Seed the fault injection for a repeatable run.")
@click.option("--auto-register", is_flag=True, help="Know every partner on first access (404 otherwise).")
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Register a partner at start (repeatable).")
@click.option("--allow-private-urls", is_flag=True, help="Accept loopback and private hosts in Service URLs.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
@click.option("--ui", is_flag=True, help="Also serve the replica of the portal's web UI (login, Administration, "
              "Service Type Settings) on the same store; see docs/replica.md.")
@click.option("--ui-users", type=_EXISTING, help="Users file of the web UI: who may log in, their partner accounts "
              "and uploaded certificates (YAML; see docs/replica.md).")
@click.option("--ui-session-minutes", type=click.FloatRange(0, 10_080, min_open=True), default=30, show_default=True,
              help="A web UI session ends after this many idle minutes.")
@click.option("--schemas", "schemas_folder", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="The folder whose partner.schema.json defines the service types the emulator knows (default: "
                   "`schemas:` of the hbsdeploy.yaml in use, if any; else hbsdeploy's own copy).")
@click.pass_obj
def serve_command(g: Globals, host: str, port: int, state: Path, tls_cert: Path | None, tls_key: Path | None,
                  client_ca: Path | None, token_env: str | None, latency_ms: float, fail_rate: float,
                  seed: int | None, auto_register: bool, partners: tuple[str, ...], allow_private_urls: bool,
                  allow_remote: bool, ui: bool, ui_users: Path | None, ui_session_minutes: float,
                  schemas_folder: Path | None) -> None:
    """Serve the portal API (schemas/portal-api.openapi.yaml) until SIGINT or SIGTERM.

    \b
    Example:
      export HBSDEPLOY_QA_TOKEN=...
      hbsdeploy portal serve --port 8443 --tls-cert server.pem --tls-key server.key \\
          --client-ca ca.pem --token-env HBSDEPLOY_QA_TOKEN --auto-register

    \b
    With the web UI replica (log in at https://127.0.0.1:8443/login):
      hbsdeploy portal serve --tls-cert server.pem --tls-key server.key --ui --ui-users users.yaml
    """
    if ui and ui_users is None:
        raise click.UsageError("--ui needs --ui-users FILE: the users who may log in (see docs/replica.md)")
    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise click.ClickException(f"--token-env {token_env}: the environment variable is not set or empty; "
                                       "export the token the clients must send")
    with _stop_on_signals() as stop:
        try:
            handle = start_emulator(state, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key,
                                    client_ca=client_ca, token=token, latency_ms=latency_ms, fail_rate=fail_rate,
                                    seed=seed, allow_private_urls=allow_private_urls, auto_register=auto_register,
                                    partners=partners, allow_remote=allow_remote, log_stream=sys.stderr,
                                    ui=ui, ui_users=ui_users, ui_session_minutes=ui_session_minutes,
                                    service_types=_service_types(g, schemas_folder))
        except HbsError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"serving on {handle.url}")
        if handle.ui is not None:
            click.echo(f"web UI at {handle.url}/login")
        sys.stdout.flush()
        try:
            while not stop.wait(0.2):
                pass
        finally:
            handle.stop()
            stats = handle.stats
            click.echo(f"stopped after {stats.requests} requests, {sum(stats.faults.values())} faults injected",
                       err=True)


def _service_types(g: Globals, folder: Path | None) -> Mapping[str, ServiceTypeSpec]:
    """The service types the emulator knows, named on stderr with the file they come from."""
    schemas = _schemas(g, folder)
    found = schemas.service_types
    click.echo(f"service types: {', '.join(found)} (from {schemas.shown})", err=True)
    return found


def _schemas(g: Globals, folder: Path | None) -> SchemaSet:
    """The partner schema the emulator takes its service types from: --schemas, else the project's, else
    hbsdeploy's own copy (no hbsdeploy.yaml here)."""
    from hbsdeploy.load.config import find_config, load_config
    from hbsdeploy.load.schemaset import package_schemas, project_schemas

    if folder is not None:
        if not folder.is_dir():
            raise HbsError(f"--schemas {folder}: no such folder")
        return project_schemas(folder)
    try:
        path = find_config(g.config_path if g is not None else None)
    except HbsError:
        return package_schemas()
    return load_config(path).schemas


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs; the previous handlers come back after it."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
