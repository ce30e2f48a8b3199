"""Who may log in to the portal replica: users, their partner accounts and each account's uploaded certificates."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hbsdeploy.errors import HbsError, InputError
from hbsdeploy.load.partner import roles_of_id
from hbsdeploy.load.yamlload import Document, JsonPath, load_yaml
from hbsdeploy.portal.totp import TotpSecretError, decode_secret

ROLES = ("administrator", "viewer")  # "Partner Account Administrator" may edit; a viewer only reads
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_USER_KEYS = frozenset({"username", "password", "password_env", "totp_secret", "totp_secret_env", "accounts", "role"})
_ACCOUNT_KEYS = frozenset({"id", "name", "certificates"})


class ReplicaSetupError(HbsError):
    """A user or account given to the replica programmatically is wrong (the message never holds a secret)."""


@dataclass(frozen=True)
class Account:
    """A partner account as the portal lists it: OICP ID, display name, SHA-256 fingerprints of uploaded certs."""

    id: str
    name: str
    certificates: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """The option text of the Partner Account list: `DE*A36 - Example Charging GmbH`."""
        return f"{self.id} - {self.name}" if self.name else self.id


@dataclass(frozen=True)
class User:
    """A portal user: a salted password digest (never the password), an optional TOTP secret, its accounts."""

    username: str
    accounts: tuple[str, ...]
    role: str = "administrator"
    totp_secret: str | None = field(default=None, repr=False)
    _salt: bytes = field(default=b"", repr=False)
    _digest: bytes = field(default=b"", repr=False)

    def check_password(self, password: str) -> bool:
        """Whether `password` is this user's password (constant time)."""
        return hmac.compare_digest(_digest(self._salt, password), self._digest)

    @property
    def may_edit(self) -> bool:
        """Whether the user has the Partner Account Administrator role."""
        return self.role == "administrator"


def _digest(salt: bytes, password: str) -> bytes:
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


def _is_partner_id(value: str) -> bool:
    return bool(roles_of_id(value))


def make_user(username: str, password: str, accounts: Iterable[str], *, totp_secret: str | None = None,
              role: str = "administrator") -> User:
    """A user, its input checked (ReplicaSetupError naming what is wrong, never the secret)."""
    accounts = tuple(accounts)
    if not username or not username.isprintable():
        raise ReplicaSetupError("a replica user needs a printable, non-empty username")
    if not password:
        raise ReplicaSetupError(f"replica user {username!r}: the password is empty")
    if role not in ROLES:
        raise ReplicaSetupError(f"replica user {username!r}: role must be one of {', '.join(ROLES)}")
    for account in accounts:
        if not _is_partner_id(account):
            raise ReplicaSetupError(f"replica user {username!r}: account {account!r} is not an OICP OperatorID or "
                                    "ProviderID (e.g. DE*A36, DE-8EO)")
    if totp_secret is not None:
        try:
            decode_secret(totp_secret)
        except TotpSecretError as exc:
            raise ReplicaSetupError(f"replica user {username!r}: {exc}") from None
    salt = secrets.token_bytes(16)
    return User(username, accounts, role, totp_secret, salt, _digest(salt, password))


def sha256_hex(value: str) -> str | None:
    """`AB:CD:...` or `abcd...` -> 64 lower-case hex digits; None when it is not a SHA-256 fingerprint."""
    text = value.strip().lower().replace(":", "")
    return text if _FINGERPRINT.fullmatch(text) else None


def make_account(account_id: str, name: str = "", certificates: Iterable[str] = ()) -> Account:
    """An account, its input checked (ReplicaSetupError otherwise)."""
    if not _is_partner_id(account_id):
        raise ReplicaSetupError(f"account {account_id!r} is not an OICP OperatorID or ProviderID (e.g. DE*A36)")
    fingerprints = []
    for value in certificates:
        fingerprint = sha256_hex(value)
        if fingerprint is None:
            raise ReplicaSetupError(f"account {account_id}: {value[:80]!r} is not a SHA-256 fingerprint "
                                    "(64 hex digits, colons allowed)")
        if fingerprint not in fingerprints:
            fingerprints.append(fingerprint)
    return Account(account_id, name, tuple(fingerprints))


class Directory:
    """The replica's users and accounts; safe across the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._accounts: dict[str, Account] = {}

    def add_user(self, user: User) -> None:
        """Add or replace a user; its accounts become known (with no name) if they were not."""
        with self._lock:
            self._users[user.username] = user
            for account in user.accounts:
                self._accounts.setdefault(account, Account(account, ""))

    def add_account(self, account: Account) -> None:
        """Add or replace an account (name and certificates)."""
        with self._lock:
            self._accounts[account.id] = account

    def user(self, username: str) -> User | None:
        """The user of this name, if any."""
        with self._lock:
            return self._users.get(username)

    def account(self, account_id: str) -> Account:
        """The account of this ID (one with no name or certificates if it was never described)."""
        with self._lock:
            return self._accounts.get(account_id, Account(account_id, ""))

    def account_ids(self) -> list[str]:
        """Every account known, sorted."""
        with self._lock:
            return sorted(self._accounts)


def load_users_file(path: Path, environ: dict[str, str] | None = None) -> Directory:
    """Read a users file (docs/replica.md) into a Directory, or raise InputError naming the file and line."""
    environ = dict(os.environ) if environ is None else environ
    document = load_yaml(path)
    problems = []
    directory = Directory()

    def fail(where: JsonPath, message: str) -> None:
        problems.append(document.problem(where, "replica-users", message))

    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("users"), list) or not data["users"]:
        raise InputError([document.problem((), "replica-users", "a users file is a mapping with `users:`, a list of "
                                           "users (username, password_env or password, accounts); see "
                                           "docs/replica.md")])
    for key in sorted(set(data) - {"users", "accounts"}):
        fail((key,), f"unknown key {key!r}; a users file has `users:` and `accounts:`")
    for index, entry in enumerate(data.get("accounts") or []):
        account = _account(document, ("accounts", index), entry, fail)
        if account is not None:
            directory.add_account(account)
    seen: set[str] = set()
    for index, entry in enumerate(data["users"]):
        user = _user(document, ("users", index), entry, environ, fail)
        if user is None:
            continue
        if user.username in seen:
            fail(("users", index, "username"), f"user {user.username!r} is listed twice; keep one entry")
        seen.add(user.username)
        directory.add_user(user)
    if problems:
        raise InputError(problems)
    return directory


def _account(document: Document, where: JsonPath, entry: Any, fail: Any) -> Account | None:
    if not isinstance(entry, dict):
        fail(where, "an account is a mapping with id, name and certificates")
        return None
    for key in sorted(set(entry) - _ACCOUNT_KEYS):
        fail((*where, key), f"unknown key {key!r}; an account has id, name and certificates")
    certificates = entry.get("certificates") or []
    name = entry.get("name", "")
    if not isinstance(name, str):
        fail((*where, "name"), "name must be a string, e.g. Example Charging GmbH")
        name = ""
    if not isinstance(certificates, list) or not all(isinstance(c, str) for c in certificates):
        fail((*where, "certificates"), "certificates must be a list of SHA-256 fingerprints (64 hex digits)")
        return None
    try:
        return make_account(str(entry.get("id", "")), name, certificates)
    except ReplicaSetupError as exc:
        fail((*where, "id"), str(exc))
        return None


def _user(document: Document, where: JsonPath, entry: Any, environ: dict[str, str], fail: Any) -> User | None:
    if not isinstance(entry, dict):
        fail(where, "a user is a mapping with username, password_env (or password) and accounts")
        return None
    for key in sorted(set(entry) - _USER_KEYS):
        fail((*where, key), f"unknown key {key!r}; a user has {', '.join(sorted(_USER_KEYS))}")
    username = entry.get("username")
    if not isinstance(username, str) or not username:
        fail((*where, "username"), "username is required (a non-empty string)")
        return None
    password = _secret(where, entry, "password", environ, fail, required=True)
    totp_secret = _secret(where, entry, "totp_secret", environ, fail, required=False)
    accounts = entry.get("accounts")
    if not isinstance(accounts, list) or not accounts or not all(isinstance(a, str) for a in accounts):
        fail((*where, "accounts"), "accounts must be a non-empty list of partner IDs the user may administer")
        return None
    role = entry.get("role", "administrator")
    if password is None:
        return None
    try:
        return make_user(username, password, accounts, totp_secret=totp_secret,
                         role=role if isinstance(role, str) else "")
    except ReplicaSetupError as exc:
        fail(where, str(exc))
        return None


def _secret(where: JsonPath, entry: dict[str, Any], key: str, environ: dict[str, str], fail: Any, *,
            required: bool) -> str | None:
    """A secret given inline (`key`) or by the name of an environment variable (`key_env`); never echoed."""
    inline, variable = entry.get(key), entry.get(f"{key}_env")
    if inline is not None and variable is not None:
        fail((*where, f"{key}_env"), f"give {key} or {key}_env, not both")
        return None
    if variable is not None:
        if not isinstance(variable, str) or not variable:
            fail((*where, f"{key}_env"), f"{key}_env must name an environment variable")
            return None
        value = environ.get(variable)
        if not value:
            fail((*where, f"{key}_env"), f"the environment variable {variable} is not set or empty; export it")
            return None
        return value
    if inline is not None:
        if not isinstance(inline, str) or not inline:
            fail((*where, key), f"{key} must be a non-empty string (better: {key}_env naming a variable)")
            return None
        return inline
    if required:
        fail(where, f"{key}_env (or {key}) is required")
    return None
