"""Sessions the daemon issues to a front end that logged a person in (the web site).

The web process never says who acts: it holds a token the daemon gave at ``login`` and
the daemon looks the person up from it for every request. A token is 32 random bytes,
returned once; the daemon keeps only its SHA-256, so a memory dump shows no live token,
and looks it up by that digest (a hash-table lookup on a digest an attacker cannot steer
is as good as a constant-time comparison; the final check is ``hmac.compare_digest``).

Sessions live in memory: a daemon that restarts forgets them all and everyone logs in
again (docs/SECURITY.md says why). Each ends after ``idle_s`` without use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Bytes of randomness in a token.
TOKEN_BYTES = 32
#: Sessions kept at most; the oldest is dropped to make room (a flood cannot fill memory).
MAX_SESSIONS = 1000


@dataclass
class WebSession:
    """A logged-in person, as the daemon knows them."""

    person: str  # the officer number: the actor of every audit entry it causes
    name: str
    roles: tuple[str, ...]
    expires: float  # the clock's seconds; pushed on by each use
    digest: bytes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class WebSessions:
    """Tokens to persons, each ending after ``idle_s`` idle; thread-safe."""

    def __init__(self, idle_s: float = 1800.0, clock: Callable[[], float] = time.time) -> None:
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._by_digest: dict[bytes, WebSession] = {}

    def open(self, person: str, name: str, roles: tuple[str, ...]) -> tuple[str, WebSession]:
        """A new token for ``person`` (returned once) and its session."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        digest = _digest(token)
        session = WebSession(person, name, roles, self._clock() + self.idle_s, digest)
        with self._lock:
            self._sweep()
            while len(self._by_digest) >= MAX_SESSIONS:
                oldest = min(self._by_digest.values(), key=lambda s: s.expires)
                del self._by_digest[oldest.digest]
            self._by_digest[digest] = session
        return token, session

    def find(self, token: object, touch: bool = True) -> WebSession | None:
        """The live session of ``token`` (its idle time restarted), else None."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        digest = _digest(token)
        now = self._clock()
        with self._lock:
            session = self._by_digest.get(digest)
            if session is None or not hmac.compare_digest(session.digest, digest):
                return None
            if session.expires <= now:
                del self._by_digest[digest]
                return None
            if touch:
                session.expires = now + self.idle_s
            return session

    def close(self, token: object) -> WebSession | None:
        """End the session of ``token``; the session it was, or None."""
        session = self.find(token, touch=False)
        if session is not None:
            with self._lock:
                self._by_digest.pop(session.digest, None)
        return session

    def close_person(self, person: str) -> int:
        """End every session of ``person`` (disabled, role changed); how many."""
        with self._lock:
            gone = [d for d, s in self._by_digest.items() if s.person == person]
            for d in gone:
                del self._by_digest[d]
        return len(gone)

    def _sweep(self) -> None:
        now = self._clock()
        for d in [d for d, s in self._by_digest.items() if s.expires <= now]:
            del self._by_digest[d]
