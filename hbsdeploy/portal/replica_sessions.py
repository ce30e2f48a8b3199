"""The replica's server-side session table: random tokens, a CSRF token each, idle expiry, expiry on demand."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

PENDING_SECONDS = 300  # a password accepted, the second factor not yet given


@dataclass
class Session:
    """One logged-in browser: who, whether the second factor is done, its CSRF token and a one-shot message."""

    username: str
    verified: bool
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    last_seen: float = 0.0
    flash: str | None = None
    failures: int = 0


class SessionTable:
    """Sessions by token; a session idle for longer than `idle_seconds` is gone (expired)."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float]) -> None:
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, username: str, *, verified: bool) -> Session:
        """A new session (new token, new CSRF token)."""
        session = Session(username, verified, last_seen=self.clock())
        with self._lock:
            self._prune()
            self._sessions[session.token] = session
        return session

    def lookup(self, token: str) -> Session | None:
        """The live session of this token, its idle clock restarted; None if unknown or expired."""
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > self._lifetime(session):
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def promote(self, session: Session) -> Session:
        """The second factor is done: a new verified session under a new token replaces the pending one."""
        with self._lock:
            self._sessions.pop(session.token, None)
        return self.create(session.username, verified=True)

    def drop(self, token: str) -> None:
        """Log out: forget the session."""
        with self._lock:
            self._sessions.pop(token, None)

    def expire(self, username: str | None = None) -> int:
        """End every session (of one user, or of all); how many ended. The next request is sent to log in."""
        with self._lock:
            doomed = [token for token, s in self._sessions.items() if username is None or s.username == username]
            for token in doomed:
                del self._sessions[token]
            return len(doomed)

    def count(self) -> int:
        """How many sessions are live (pending ones included)."""
        now = self.clock()
        with self._lock:
            return sum(1 for s in self._sessions.values() if now - s.last_seen <= self._lifetime(s))

    def _lifetime(self, session: Session) -> float:
        return self.idle_seconds if session.verified else min(self.idle_seconds, PENDING_SECONDS)

    def _prune(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self._lifetime(s)]:
            del self._sessions[token]
