"""Helpers for the reliability tests: generated repositories, child processes, a misbehaving portal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbsdeploy.apply.audit import read_audit
from hbsdeploy.portal.store import Store

REPO = Path(__file__).resolve().parents[2]
SERVICE_TYPES = ("authorization", "reservation")

# Two desired states for the same partner: every managed service type differs in two fields between them, so a
# service type holding half of one and half of the other would show.
PARTNER = """\
name: Reliability Partner {index}
role: cpo
operator_id: "{operator_id}"
environments:
  sandbox:
  qa:
service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp.partner{index}.example.com/{variant}
    client_certification: {certification}
  reservation:
    online_request: true
    service_url: https://oicp.partner{index}.example.com/{variant}/reservation
    client_certification: {certification}
"""

CONFIG = """\
partners: {partners_dir}
default_environment: {default}
environments:
  sandbox:
    portal: local
  qa:
    portal: {url}
    max_retries: {max_retries}
    timeouts:
      connect: 5
      read: {read_timeout}
apply:
  max_disable_fraction: 0.25
  parallelism: {parallelism}
"""


def operator_id(index: int) -> str:
    """A distinct valid OperatorID per index: DE*R00, DE*R01, ..."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    high, low = divmod(index, 36)
    return f"DE*R{alphabet[high % 36]}{alphabet[low]}"


def partner_ids(count: int) -> list[str]:
    return [operator_id(index) for index in range(count)]


def make_repo(folder: Path, partners: int, *, url: str = "local", variant: str = "a", default: str = "qa",
              read_timeout: float = 10, max_retries: int = 4, parallelism: int = 4,
              partners_dir: str = "partners", config_name: str = "hbsdeploy.yaml") -> Path:
    """A repository with the project's templates, `partners` CPO partner files (two service types each) and a qa
    environment whose portal is `url`. Variant "a" and "b" want different settings for every service type; two
    variants can share one folder (and so one sandbox store and audit log) with their own partner folders and
    config files."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "templates").exists():
        shutil.copytree(REPO / "templates", folder / "templates")
    partner_dir = folder / partners_dir
    if partner_dir.exists():
        shutil.rmtree(partner_dir)
    partner_dir.mkdir()
    certification = "true" if variant == "a" else "false"
    for index in range(partners):
        (partner_dir / f"partner-{index:03d}.yaml").write_text(
            PARTNER.format(index=index, operator_id=operator_id(index), variant=variant,
                           certification=certification), encoding="utf-8")
    (folder / config_name).write_text(
        CONFIG.format(default=default, url=url, read_timeout=read_timeout, max_retries=max_retries,
                      parallelism=parallelism, partners_dir=partners_dir), encoding="utf-8")
    return folder


Key = tuple[str, str]


@dataclass(frozen=True)
class Outcome:
    """One line of apply's report."""

    status: str  # applied, failed, not attempted
    kind: str
    message: str | None


def parse_report(stdout: str) -> dict[Key, Outcome]:
    """apply's per-change lines: `      applied: DE*R00 / authorization (enable)[: message]`."""
    found: dict[Key, Outcome] = {}
    for raw in stdout.splitlines():
        line = raw.strip()
        for status in ("applied", "failed", "not attempted"):
            if line.startswith(status + ": "):
                rest = line[len(status) + 2:]
                head, _, message = rest.partition("): ")
                head = head.removesuffix(")")
                partner_service, _, kind = head.rpartition(" (")
                partner_id, _, service_type = partner_service.partition(" / ")
                found[(partner_id, service_type)] = Outcome(status, kind, message or None)
    return found


def held(state_file: Path) -> dict[Key, tuple[dict[str, Any] | None, int]]:
    """Everything a store holds: (partner, service type) -> (settings, version)."""
    store = Store(state_file)
    return {(partner_id, name): (stored.settings, stored.version)
            for partner_id in store.partners() for name, stored in store.read_all(partner_id).items()}


def audit_path(repo: Path) -> Path:
    return repo / ".hbsdeploy" / "audit.jsonl"


def audit_entries(repo: Path) -> list[dict[str, Any]]:
    return read_audit(audit_path(repo))


def strict_audit_lines(repo: Path, allow_torn_last: bool = False) -> list[dict[str, Any]]:
    """Every line of the audit log parsed; only the last may be torn, and only when allowed (after SIGKILL)."""
    path = audit_path(repo)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty unless the last line is torn
    assert allow_torn_last or tail == b"", f"torn last audit line: {tail[:80]!r}"
    entries = []
    for raw in lines:
        if raw.strip():
            entry = json.loads(raw)
            assert isinstance(entry, dict)
            entries.append(entry)
    return entries


def child_env() -> dict[str, str]:
    """The environment of an hbsdeploy child process: this checkout first on the path, no colour, no config."""
    env = {key: value for key, value in os.environ.items() if key != "HBSDEPLOY_CONFIG"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    return env


class Child:
    """An hbsdeploy process whose output goes to temporary files (a pipe nobody reads would block a long plan)."""

    def __init__(self, command: Sequence[str], cwd: Path) -> None:
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish)
        # SIGINT back to its default in the child, so that Python turns it into KeyboardInterrupt even where the
        # test runner was started with SIGINT ignored (a background job).
        self.process = subprocess.Popen(list(command), cwd=cwd, env=child_env(), stdout=self._out, stderr=self._err,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def poll(self) -> int | None:
        return self.process.poll()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the exit: (exit code, stdout, stderr)."""
        code = self.process.wait(timeout=timeout)
        texts = []
        for handle in (self._out, self._err):
            handle.seek(0)
            texts.append(handle.read().decode("utf-8", "replace"))
            handle.close()
        return code, texts[0], texts[1]


def start_cli(repo: Path, *args: str, prefix: Sequence[str] = ()) -> Child:
    """Start `python -m hbsdeploy ARGS` in `repo` (or `python PREFIX... ARGS`)."""
    command = [sys.executable, *prefix] if prefix else [sys.executable, "-m", "hbsdeploy"]
    return Child([*command, *args], repo)


def wait_for(condition: Callable[[], bool], what: str, process: Child | None = None, limit: float = 60) -> None:
    """Poll until `condition` holds (a generous bound only against hanging; nothing is asserted on time)."""
    deadline = time.monotonic() + limit
    while not condition():
        if process is not None and process.poll() is not None:
            code, out, err = process.finish()
            raise AssertionError(f"the process ended ({code}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def audit_count(repo: Path) -> int:
    path = audit_path(repo)
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def desired_after(keys: Iterable[Key], variant: str) -> dict[Key, dict[str, Any]]:
    """The canonical settings variant `variant` of make_repo wants for each key."""
    from hbsdeploy.load.settings import normalize_settings

    wanted = {}
    for partner_id, service_type in keys:
        index = partner_ids(100).index(partner_id)
        url = f"https://oicp.partner{index}.example.com/{variant}"
        if service_type == "reservation":
            url += "/reservation"
        wanted[(partner_id, service_type)] = normalize_settings({
            "online_request": True, "broadcast_request": False, "service_url": url,
            "client_certification": variant == "a", "certificate": "hubject", "certificate_sha256": None})
    return wanted


class FakePortal:
    """A tiny portal on 127.0.0.1 (stdlib http.server) that answers well from a LocalPortal, except for the methods
    given a misbehaviour in `modes`: "close" (hang up without answering), "not-json" (200 with an HTML body),
    "wrong-body" (200 with JSON of another shape, `wrong_body`), "retry-after" (429, Retry-After: 3600),
    "500-once" (one 500, then well again). With `write_first`, a misbehaving PUT stores the payload before
    answering badly (the answer is what breaks)."""

    def __init__(self, state_file: Path, modes: dict[str, str], *, write_first: bool = False,
                 wrong_body: dict[str, Any] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from hbsdeploy.portal.local import LocalPortal

        self.portal = LocalPortal(state_file, name="fake", label="fake", allow_private_hosts=False)
        self.modes = modes
        self.write_first = write_first
        self.wrong_body = wrong_body if wrong_body is not None else {"items": []}
        self.requests: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.answer(self)

            def do_PUT(self) -> None:
                fake.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def answer(self, handler: Any) -> None:
        import socket
        from urllib.parse import unquote

        from hbsdeploy.portal import PortalError, VersionConflict

        method = handler.command
        self.requests[method] = self.requests.get(method, 0) + 1
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path, _, query = handler.path.partition("?")
        segments = path.split("/")  # "", v1, partners[, ID, service-types[, name]]
        listing = len(segments) == 3
        partner_id = unquote(segments[3]) if not listing else ""
        service_type = unquote(segments[5]) if len(segments) == 6 else None
        mode = self.modes.get(method, "ok")
        if method == "PUT" and (mode == "ok" or self.write_first):
            try:
                state = self.portal.update_service_type(partner_id, str(service_type), json.loads(body),
                                                        handler.headers.get("If-Match", ""))
            except VersionConflict:
                return self.send(handler, 412, {"error": "precondition_failed", "message": "stale"})
            except PortalError as exc:
                return self.send(handler, 422, {"error": "validation", "message": str(exc)})
            if mode == "ok":
                return self.send(handler, 200, _state_body(state), {"ETag": state.version})
        if mode == "500-once":
            del self.modes[method]
            return self.send(handler, 500, {"error": "internal", "message": "a passing failure"})
        if mode == "close":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return None
        if mode == "not-json":
            return self.send(handler, 200, None, raw=b"<html><body>Service Unavailable</body></html>")
        if mode == "wrong-body":
            return self.send(handler, 200, self.wrong_body)
        if mode == "retry-after":
            return self.send(handler, 429, {"error": "rate_limited", "message": "slow down"}, {"Retry-After": "3600"})
        if listing:
            from urllib.parse import parse_qs

            params = parse_qs(query)
            token = params.get("page_token", [None])[0]
            page, next_token = self.portal.list_page(token, int(params.get("page_size", ["100"])[0]))
            answer: dict[str, Any] = {"partners": [{"partner_id": pid, "service_types": {
                name: {"settings": dict(s.settings), "version": s.version} for name, s in states.items()}}
                for pid, states in page.items()]}
            if next_token is not None:
                answer["next_page_token"] = next_token
            return self.send(handler, 200, answer)
        if service_type is None:
            states = self.portal.list_service_types(partner_id)
            return self.send(handler, 200, {"partner_id": partner_id, "service_types": {
                name: {"settings": dict(s.settings), "version": s.version} for name, s in states.items()}})
        state = self.portal.get_service_type(partner_id, service_type)
        return self.send(handler, 200, _state_body(state), {"ETag": state.version})

    @staticmethod
    def send(handler: Any, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html" if raw is not None else "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _state_body(state: Any) -> dict[str, Any]:
    return {"partner_id": state.partner_id, "service_type": state.service_type, "settings": dict(state.settings),
            "version": state.version}
