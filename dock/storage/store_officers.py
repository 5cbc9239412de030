"""The officers table and PIN rules of the dock database: who may hold a recorder, and
how a PIN is set, checked and locked (docs/OPERATIONS.md, "PINs").

A part of :class:`~dock.storage.store.Store` (which re-exports these names), apart so
the PIN rules and lockout, which decide who an officer is, read on their own.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from dock.storage.store_base import StoreBase, StoreError

PIN_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

#: Wrong PINs in a row after which an officer number's PIN is locked, until a supervisor
#: unlocks it (``dock officer unlock``).
PIN_TRIES = 5


@dataclass(frozen=True)
class Officer:
    officer_id: str
    name: str
    unit: str
    badge: str | None
    role: str
    disabled: bool


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one PIN tried for one officer number.

    What may be shown to whoever typed it: ``ok``, ``locked`` and ``tries_left``, which
    are the same for an officer number that exists and one that does not. ``known``
    (whether the number exists) is for the audit log only.
    """

    ok: bool
    locked: bool  # the number's PIN is locked (by this try or before)
    just_locked: bool  # this try locked it: audit it
    tries_left: int  # wrong PINs left before the lock; 0 when locked
    known: bool


def hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, **PIN_SCRYPT)


def _run(pin: str, step: int) -> bool:
    return all((int(b) - int(a)) % 10 == step % 10 for a, b in itertools.pairwise(pin))


def pin_problem(pin: str, min_length: int = 6, officer_id: str | None = None) -> str | None:
    """Why ``pin`` may not be set, in one line; None when it may. Refused: not all digits,
    shorter than ``min_length``, one digit repeated (000000), a run up or down (123456,
    654321, 890123), a short pattern repeated (121212, 123123), the officer number."""
    if pin and not (pin.isascii() and pin.isdigit()):
        return "the PIN must be digits only (0-9)"
    if len(pin) < min_length:
        return f"the PIN must be at least {min_length} digits"
    if len(set(pin)) == 1:
        return f"the PIN is one digit repeated ({pin[0] * 6}): choose one that is not"
    if _run(pin, 1) or _run(pin, -1):
        return "the PIN is a run of digits (like 123456 or 654321): choose one that is not"
    for size in range(2, len(pin) // 2 + 1):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            return "the PIN repeats a short pattern (like 121212): choose one that does not"
    if officer_id is not None and pin == officer_id:
        return "the PIN is the officer number: choose one that is not"
    return None


class OfficerRows(StoreBase):
    """``officers`` and ``pin_failures``: officers, their PINs and the lockout."""

    def add_officer(
        self,
        officer_id: str,
        name: str,
        unit: str,
        pin: str,
        badge: str | None = None,
        role: str = "officer",
        min_pin_length: int = 6,
        audit: Callable[[], object] | None = None,
    ) -> Officer:
        """``audit`` writes its audit entry inside this transaction (as for
        :meth:`add_archived`): a failed append leaves no officer."""
        if not officer_id.strip() or not name.strip():
            raise StoreError("officer number and name must not be empty")
        problem = pin_problem(pin, min_pin_length, officer_id)
        if problem is not None:
            raise StoreError(problem)
        salt = os.urandom(16)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO officers VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (officer_id, name, unit, badge, salt, hash_pin(pin, salt), role, self._clock()),
                )
                # Tries on this number from before it existed are not the new officer's.
                db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
                if audit is not None:
                    audit()
        except sqlite3.IntegrityError as exc:
            what = "badge" if "badge" in str(exc) else "officer number"
            raise StoreError(f"that {what} is already registered") from exc
        return self.officer(officer_id)  # type: ignore[return-value]

    def officer(self, officer_id: str) -> Officer | None:
        row = self._db().execute("SELECT * FROM officers WHERE officer_id = ?", (officer_id,))
        return _officer(row.fetchone())

    def officer_by_badge(self, badge: str) -> Officer | None:
        row = self._db().execute("SELECT * FROM officers WHERE badge = ?", (badge,))
        return _officer(row.fetchone())

    def officers(self) -> list[Officer]:
        rows = self._db().execute("SELECT * FROM officers ORDER BY officer_id").fetchall()
        return [o for o in map(_officer, rows) if o is not None]

    def check_pin(self, officer_id: str, pin: str) -> bool:
        """Whether the PIN opens; counts towards the lockout like ``verify_pin`` (whose
        outcome says more, and which dock.storage.pins.verify audits: prefer that)."""
        return self.verify_pin(officer_id, pin).ok

    def verify_pin(self, officer_id: str, pin: str) -> PinCheck:
        """Try a PIN for an officer number; PIN_TRIES wrong ones in a row lock it until
        ``unlock_pin``. The same work and the same answer whether or not the number
        exists: one scrypt, one constant-time comparison, one row counted."""
        row = (
            self._db()
            .execute("SELECT pin_salt, pin_hash FROM officers WHERE officer_id = ?", (officer_id,))
            .fetchone()
        )
        known = row is not None
        salt = row["pin_salt"] if known else b"\0" * 16
        expected = bytes(row["pin_hash"]) if known else bytes(PIN_SCRYPT["dklen"])
        matches = hmac.compare_digest(hash_pin(pin, salt), expected) and known
        now = self._clock()
        with self._write() as db:
            tried = db.execute(
                "SELECT failures, locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,)
            ).fetchone()
            if tried is not None and tried["locked_at"] is not None:
                db.execute(
                    "UPDATE pin_failures SET failures = failures + 1, last_at = ? "
                    "WHERE officer_id = ?",
                    (now, officer_id),
                )
                return PinCheck(False, True, False, 0, known)
            if matches:
                db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
                return PinCheck(True, False, False, PIN_TRIES, known)
            failures = (tried["failures"] if tried is not None else 0) + 1
            lock = failures >= PIN_TRIES
            db.execute(
                "INSERT INTO pin_failures (officer_id, failures, last_at, locked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (officer_id) DO UPDATE SET "
                "failures = excluded.failures, last_at = excluded.last_at, "
                "locked_at = excluded.locked_at",
                (officer_id, failures, now, now if lock else None),
            )
        return PinCheck(False, lock, lock, max(0, PIN_TRIES - failures), known)

    def pin_locked(self, officer_id: str) -> bool:
        row = (
            self._db()
            .execute("SELECT locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,))
            .fetchone()
        )
        return row is not None and row["locked_at"] is not None

    def locked_pins(self) -> set[str]:
        """Officer numbers whose PIN is locked (numbers without an officer included)."""
        rows = self._db().execute("SELECT officer_id FROM pin_failures WHERE locked_at IS NOT NULL")
        return {r["officer_id"] for r in rows}

    def unlock_pin(self, officer_id: str, audit: Callable[[bool], object] | None = None) -> bool:
        """Forget the wrong PINs of a number; True if its PIN was locked. ``audit`` (given
        that answer) writes its entry inside this transaction."""
        with self._write() as db:
            was = db.execute(
                "SELECT locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,)
            ).fetchone()
            db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
            if audit is not None:
                audit(was is not None and was["locked_at"] is not None)
        return was is not None and was["locked_at"] is not None

    def set_officer_disabled(
        self, officer_id: str, disabled: bool, audit: Callable[[], object] | None = None
    ) -> None:
        """``audit`` writes its entry inside this transaction: never one without the other."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE officers SET disabled = ? WHERE officer_id = ?", (int(disabled), officer_id)
            )
            if cur.rowcount == 0:
                raise StoreError(f"no officer {officer_id}")
            if audit is not None:
                audit()

    # ------------------------------------------------------------ machines' API tokens
    def add_web_token(
        self, name: str, role: str, digest: bytes, audit: Callable[[], object] | None = None
    ) -> None:
        """Keep the SHA-256 of a machine's API token under ``name`` (unique), with its
        audit entry in the same transaction."""
        if not name.strip():
            raise StoreError("a token's name must not be empty")
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO web_tokens (name, role, token_sha256, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, role, digest, self._clock()),
                )
                if audit is not None:
                    audit()
        except sqlite3.IntegrityError as exc:
            if "CHECK" in str(exc):
                raise StoreError(f"no role {role!r}") from exc
            raise StoreError(f"a token named {name!r} already exists") from exc

    def web_token(self, digest: bytes) -> WebToken | None:
        """The live (not revoked) token whose SHA-256 is ``digest``."""
        row = (
            self._db()
            .execute(
                "SELECT name, role, token_sha256 FROM web_tokens "
                "WHERE token_sha256 = ? AND revoked_at IS NULL",
                (digest,),
            )
            .fetchone()
        )
        if row is None or not hmac.compare_digest(bytes(row["token_sha256"]), digest):
            return None
        return WebToken(row["name"], row["role"])

    def web_tokens(self) -> list[tuple[str, str, float, float | None]]:
        """(name, role, created_at, revoked_at) of every token, by name."""
        rows = self._db().execute(
            "SELECT name, role, created_at, revoked_at FROM web_tokens ORDER BY name"
        )
        return [(r["name"], r["role"], r["created_at"], r["revoked_at"]) for r in rows]

    def revoke_web_token(self, name: str, audit: Callable[[], object] | None = None) -> None:
        with self._write() as db:
            cur = db.execute(
                "UPDATE web_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (self._clock(), name),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no live token named {name!r}")
            if audit is not None:
                audit()


@dataclass(frozen=True)
class WebToken:
    """A machine's API token: its name (the actor ``token:NAME``) and role."""

    name: str
    role: str


def _officer(row: sqlite3.Row | None) -> Officer | None:
    if row is None:
        return None
    return Officer(
        row["officer_id"],
        row["name"],
        row["unit"],
        row["badge"],
        row["role"],
        bool(row["disabled"]),
    )
