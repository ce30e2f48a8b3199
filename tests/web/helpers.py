"""Helpers of the web UI replica tests: a served replica with its log and clients, and what a page shows."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hbsdeploy.portal.emulator import ServerHandle

PASSWORD = "correct horse battery staple"
FINGERPRINT = "3f" * 32
ACCOUNTS = ("DE*A36", "DE*B12")


@dataclass
class Served:
    """A running emulator with the UI, its access log and a client factory."""

    handle: ServerHandle
    log: io.StringIO
    ca: Path

    def client(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`; no proxy either
        session.verify = str(self.ca)
        return session

    def login(self, username: str = "operator", password: str = PASSWORD) -> requests.Session:
        session = self.client()
        answer = session.post(f"{self.handle.url}/login", data={"username": username, "password": password})
        assert answer.status_code == 200 and answer.url == f"{self.handle.url}/", answer.text
        return session

    def page(self, session: requests.Session, **query: str) -> requests.Response:
        return session.get(f"{self.handle.url}/administration/service-type-settings", params=query)

    def settings(self, account: str = "DE*A36", service_type: str = "authorization") -> dict[str, Any]:
        state = self.handle.portal.get_service_type(account, service_type)
        return {"settings": dict(state.settings), "version": state.version}


def csrf_of(page: str) -> str:
    """The CSRF token of a page's settings form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def alert_of(page: str) -> str | None:
    """The text of the page's alert (tags removed), None without one."""
    match = re.search(r'<div role="alert">(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip() if match else None


def status_of(page: str) -> str | None:
    """The text of the page's status message, None without one."""
    match = re.search(r'<div role="status">(.*?)</div>', page, re.S)
    return match.group(1) if match else None
