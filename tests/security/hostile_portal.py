"""A hostile portal on 127.0.0.1: raw bytes on a socket, so that it can do what no well-behaved server does
(trickle, reset after the headers, send a compression bomb or broken gzip, echo the token, send a lone surrogate).

`python tests/security/hostile_portal.py MODE PORT` serves one mode until killed (the replays in docs/security.md).
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

MODES = ("trickle", "bomb", "reset-after-headers", "bad-gzip", "retry-after-odd", "echo-token", "surrogate",
         "ok")


def _listing(partner_id: str, version: str = "1") -> bytes:
    return json.dumps({"partner_id": partner_id, "service_types": {}, "version": version}).encode()


def _bomb(expanded_mib: int) -> bytes:
    block = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    out = b"".join(block.compress(zeros) for _ in range(expanded_mib))
    return out + block.flush()


class HostilePortal:
    """One mode for every request; `requests` counts them, `authorization` keeps what each one carried."""

    def __init__(self, mode: str, *, trickle_interval: float = 0.2, bomb_mib: int = 64) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.trickle_interval = trickle_interval
        self.bomb = _bomb(bomb_mib) if mode == "bomb" else b""
        self.requests = 0
        self.authorization: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        portal = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                portal._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        """The base URL: http:// on loopback, which the host rule allows for an unprotected environment."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, conn: socket.socket) -> None:
        raw = b""
        conn.settimeout(10)
        while b"\r\n\r\n" not in raw:
            chunk = conn.recv(65536)
            if not chunk:
                return
            raw += chunk
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in head[1:] if ":" in line}
        with self._lock:
            self.requests += 1
            attempt = self.requests
            self.authorization.append(headers.get("authorization", ""))
        partner_id = path.split("/")[3].replace("%2A", "*") if path.count("/") >= 3 else "?"
        getattr(self, "_" + self.mode.replace("-", "_"))(conn, partner_id, headers, attempt)

    @staticmethod
    def _send(conn: socket.socket, status: str, body: bytes, extra: str = "") -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n{extra}\r\n".encode("latin-1") + body)

    def _ok(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        self._send(conn, "200 OK", _listing(partner_id))

    def _trickle(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        body = _listing(partner_id) + b" " * 4000
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "\r\n".encode())
        for byte in body:
            if self._stop.wait(self.trickle_interval):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    def _bomb(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        try:
            self._send(conn, "200 OK", self.bomb, "Content-Encoding: gzip\r\n")
        except OSError:
            return

    def _reset_after_headers(self, conn: socket.socket, partner_id: str, headers: dict[str, str],
                             attempt: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"part")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        conn.close()

    def _bad_gzip(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        broken = gzip.compress(_listing(partner_id))[:12] + b"not deflate data at all"
        self._send(conn, "200 OK", broken, "Content-Encoding: gzip\r\n")

    def _retry_after_odd(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        if attempt == 1:
            self._send(conn, "503 Service Unavailable", b"{}", "Retry-After: \u00b2\r\n")
        else:
            self._send(conn, "200 OK", _listing(partner_id))

    def _echo_token(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        said = headers.get("authorization", "")
        body = json.dumps({"error": "bad_request", "message": f"malformed header Authorization: {said}",
                           "details": [{"field": "Authorization", "rule": "echo", "message": said}]}).encode()
        self._send(conn, "400 Bad Request", body)

    def _surrogate(self, conn: socket.socket, partner_id: str, headers: dict[str, str], attempt: int) -> None:
        body = (b'{"partner_id": "' + partner_id.encode() + b'", "service_types": {"authorization": '
                b'{"settings": {"online_request": false, "broadcast_request": false, "service_url": null, '
                b'"client_certification": false, "certificate": "hubject", "certificate_sha256": null}, '
                b'"version": "\\ud800"}}}')
        self._send(conn, "200 OK", body)

    @contextmanager
    def running(self) -> Iterator[HostilePortal]:
        """Serve in a thread until the block ends."""
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self.server.shutdown()
            self.server.server_close()


if __name__ == "__main__":
    chosen = HostilePortal(sys.argv[1], trickle_interval=1.0, bomb_mib=int(sys.argv[3]) if len(sys.argv) > 3 else 64)
    chosen.server.server_close()
    chosen.server = type(chosen.server)(("127.0.0.1", int(sys.argv[2])), chosen.server.RequestHandlerClass)
    with chosen.running():
        while True:
            time.sleep(3600)
