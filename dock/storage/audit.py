"""The dock's tamper-evident audit log: a hash chain in SQLite with signed checkpoints.

Every custody change, check result, override, clock set, enrolment, configuration
change and administrative action is appended here (000 §10: tamper-evident storage,
electronic signatures). Nothing is ever updated or deleted: triggers refuse it, and
``verify`` finds it if someone does it anyway behind the dock's back.

Construction (version 1), so that an auditor can re-implement it
------------------------------------------------------------------
All fields are text. ``F(s)`` is the UTF-8 encoding of ``s`` preceded by its length in
bytes as a 4-byte big-endian unsigned integer. Integers are written in decimal ASCII
without sign or leading zeros. Hashes and keys are lowercase hex.

Entry ``n`` (``seq`` = 1, 2, 3, ... without gaps) has::

    hash_n = SHA-256( F("bwc-dock-audit/v1") || F(prev_hash) || F(dock_id) || F(seq)
                      || F(time) || F(kind) || F(actor) || F(subject) || F(data) )

where ``prev_hash`` is ``hash_(n-1)``, or 64 zeros ("0" * 64) for entry 1; ``time`` is
UTC ISO-8601 with milliseconds and a ``Z`` (``2024-05-01T08:00:00.000Z``); ``data`` is
the exact stored JSON text (canonical when written: keys sorted, separators ``,`` and
``:``, no whitespace, UTF-8 not ``\\u``-escaped). The hash covers those exact bytes, so a
verifier never needs to re-canonicalise JSON.

A checkpoint at ``seq`` is an Ed25519 signature (RFC 8032, the dock's key) over::

    F("bwc-dock-audit-checkpoint/v1") || F(dock_id) || F(seq) || F(head_hash) || F(time)

with ``head_hash`` = ``hash_seq``. Because each hash covers its predecessor, a valid
checkpoint at ``seq`` vouches for entries 1..seq. One is made automatically whenever
``checkpoint_every`` entries are unsigned, by ``checkpoint()``, and before an export.

An export is JSON lines (UTF-8, each line canonical JSON as above, ``\\n`` after each):
a ``header`` line (format, dock_id, public_key, fingerprint, exported_at, head_seq,
head_hash), one ``entry`` line per entry (the stored columns; ``data`` as the JSON
*text*), one ``checkpoint`` line per checkpoint, and a final ``signature`` line holding
``sha256`` (hex SHA-256 of every byte before that line) and ``signature``, an Ed25519
signature over ``F("bwc-dock-audit-export/v1") || F(sha256)``. An export contains only
entries covered by its last checkpoint.

The ``meta`` table holds exactly ``dock_id`` (the configured dock id, which every entry
hash covers too) and ``format`` (``1``); ``verify`` refuses a log whose ``meta`` holds
anything else.

A checkpoint file (the copy kept outside the database, and what ``dock-hq checkpoint``
prints) is one canonical JSON object: ``format`` (``bwc-dock-audit-checkpoint/1``),
``dock`` (the dock id), ``seq``, ``head``, ``time``, ``public_key``, ``signature`` (of
the checkpoint, as above) and ``fingerprint``; readers ignore other fields.

What this does and does not prove: without the dock's key, nobody can change, remove,
reorder or insert an entry that a checkpoint covers without ``verify`` noticing. Inside
the database alone, the newest entries can be cut off together with their checkpoints,
and anyone who deletes checkpoints can rewrite and re-hash what they covered, or empty
the log: a checkpoint kept *outside* the database catches all of that. The log keeps
its newest checkpoint in a file of its own (``copy_path``, replaced only by a
checkpoint that extends it) and ``verify`` compares the chain with it and with any
checkpoint given to it (headquarters' copy): the chain must hold each one's head at
its ``seq``. Without any, ``verify`` says that a cut of the newest entries would not
show. Whoever holds the key (root on the dock) can forge everything; the key file is
0600 for that reason, and headquarters' copy is the one such a person cannot reach.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from common.utc import utc_iso
from dock.storage.keys import fingerprint, public_key_bytes
from dock.storage.sqlite_tx import immediate

log = logging.getLogger("dock.storage.audit")

ENTRY_DOMAIN = "bwc-dock-audit/v1"
CHECKPOINT_DOMAIN = "bwc-dock-audit-checkpoint/v1"
EXPORT_DOMAIN = "bwc-dock-audit-export/v1"
EXPORT_FORMAT = "bwc-dock-audit-export/1"
CHECKPOINT_FILE_FORMAT = "bwc-dock-audit-checkpoint/1"
#: What ``meta`` holds besides the dock id; anything else there fails ``verify``.
META_FORMAT = "1"
GENESIS = "0" * 64

# Reasons a verification fails (VerifyReport.reason).
CHANGED = "changed"
REMOVED = "removed"
REORDERED = "reordered"
BAD_CHECKPOINT_SIGNATURE = "bad checkpoint signature"
CHECKPOINT_MISMATCH = "checkpoint does not match chain"
WRONG_KEY = "signed by another key"
MALFORMED = "malformed export"
BAD_EXPORT_SIGNATURE = "bad export signature"
META_CHANGED = "meta changed"
BAD_OUTSIDE_CHECKPOINT = "bad outside checkpoint"

#: What ``verify`` says when nothing outside the log vouches for its newest entries.
NO_OUTSIDE_CHECKPOINT = (
    "no external checkpoint to compare with: a cut of the newest entries would not show"
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_BUSY_TIMEOUT_MS = 10_000
#: How far a renumbered row may have moved before the diagnosis stops looking.
_RENUMBER_SEARCH = 10_000


class AuditKind(StrEnum):
    """The kinds the requirements name; ``append`` accepts any ``[a-z][a-z0-9_.]*``."""

    CUSTODY = "custody"
    CHECK = "check"
    OVERRIDE = "override"
    CLOCK_SET = "clock_set"
    ENROLMENT = "enrolment"
    CONFIG = "config"
    ADMIN = "admin"


class AuditError(Exception):
    """The audit log cannot be used (damaged database, another dock's log)."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    kind: str
    actor: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    public_key: str
    signature: str


@dataclass(frozen=True)
class OutsideCheckpoint:
    """A checkpoint kept outside the database: its copy beside the log, or headquarters'.

    ``source`` names where it came from, for the report (a file's path).
    """

    dock_id: str
    checkpoint: Checkpoint
    source: str


@dataclass(frozen=True)
class ExportSummary:
    path: str
    entries: int
    checkpoints: int
    head_hash: str


@dataclass
class VerifyReport:
    """The outcome of a verification; ``describe()`` is the line a person reads."""

    ok: bool
    entries_checked: int = 0
    checkpoints_checked: int = 0
    #: The first entry that can no longer be trusted, or None.
    first_bad: int | None = None
    reason: str | None = None
    detail: str = ""
    #: When a checkpoint failed: its seq (it vouched for entries first_bad..this).
    bad_checkpoint: int | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    #: The newest valid checkpoint; entries after it are not signed yet.
    last_checkpoint: int = 0
    public_key_fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    #: Checkpoints kept outside the log that the chain was compared with, as
    #: "entry N (source)"; empty: nothing outside vouched for the newest entries.
    outside: list[str] = field(default_factory=list)
    #: False for an export, whose own signature covers where it ends.
    needs_outside: bool = True

    @property
    def unsigned_tail(self) -> int:
        return max(0, self.head_seq - self.last_checkpoint) if self.ok else 0

    def describe(self) -> str:
        if self.ok:
            tail = f", {self.unsigned_tail} newer not yet signed" if self.unsigned_tail else ""
            line = (
                f"audit log OK: {self.entries_checked} entries, {self.checkpoints_checked} "
                f"checkpoints, signed up to entry {self.last_checkpoint}{tail}; head "
                f"{self.head_hash[:16]}; key {self.public_key_fingerprint}"
            )
            if self.outside:
                return line + "\nmatches the checkpoints kept outside: " + "; ".join(self.outside)
            return line + ("\n" + NO_OUTSIDE_CHECKPOINT if self.needs_outside else "")
        where = "" if self.first_bad is None else f" at entry {self.first_bad}"
        return f"audit log BAD{where}: {self.reason}: {self.detail}"


# --- the construction ----------------------------------------------------------------


def _f(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def entry_hash(
    prev_hash: str,
    dock_id: str,
    seq: int,
    time: str,
    kind: str,
    actor: str,
    subject: str,
    data: str,
) -> str:
    """hash_n of the module docstring; ``data`` is the stored JSON text."""
    h = hashlib.sha256(_f(ENTRY_DOMAIN))
    for part in (prev_hash, dock_id, str(seq), time, kind, actor, subject, data):
        h.update(_f(part))
    return h.hexdigest()


def checkpoint_message(dock_id: str, seq: int, head_hash: str, time: str) -> bytes:
    """The bytes a checkpoint signs."""
    return b"".join(_f(p) for p in (CHECKPOINT_DOMAIN, dock_id, str(seq), head_hash, time))


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, no NaN: one text per value, for hashing and export."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


# --- verification, shared by the database and the export ------------------------------


@dataclass(frozen=True)
class _Row:
    seq: int
    time: str
    kind: str
    actor: str
    subject: str
    data: str
    prev_hash: str
    hash: str

    def hash_as(self, dock_id: str, seq: int, prev_hash: str) -> str:
        """This row's content hashed as if it were entry ``seq`` after ``prev_hash``."""
        return entry_hash(
            prev_hash, dock_id, seq, self.time, self.kind, self.actor, self.subject, self.data
        )


class _Source:
    """Where verification reads rows: the chain in order, plus look-ups for diagnosis."""

    def rows(self) -> Iterable[_Row]:
        raise NotImplementedError

    def seq_of_hash(self, h: str) -> int | None:
        raise NotImplementedError


class _ListSource(_Source):
    def __init__(self, rows: list[_Row]) -> None:
        self._rows = rows
        self._by_hash: dict[str, int] | None = None

    def rows(self) -> Iterable[_Row]:
        return self._rows

    def seq_of_hash(self, h: str) -> int | None:
        if self._by_hash is None:
            self._by_hash = {}
            for r in self._rows:
                self._by_hash.setdefault(r.hash, r.seq)
        return self._by_hash.get(h)


class _SqlSource(_Source):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self) -> Iterable[_Row]:
        cur = self._conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq")
        return (_Row(r[0], *map(_as_text, r[1:])) for r in cur)

    def seq_of_hash(self, h: str) -> int | None:
        # No index on hash: this runs only to explain a failure already found.
        row = self._conn.execute("SELECT seq FROM entries WHERE hash = ? LIMIT 1", (h,)).fetchone()
        return None if row is None else int(row[0])


def _diagnose(dock_id: str, s: int, r: _Row, prev: str, src: _Source) -> tuple[int, str, str]:
    """Why the row at position ``s`` (after a chain good up to ``prev``) fails.

    Runs once, after the first failure, so it may scan: it tells "changed" from
    "reordered" from "removed and renumbered", which is what an investigator asks next.
    """
    if r.hash_as(dock_id, s, r.prev_hash) == r.hash:
        # The row is intact but does not follow the entry before it: that entry was
        # rewritten and given a fresh hash (or this row's link was rewritten).
        bad = s - 1 if s > 1 else s
        why = (
            f"entry {s} is intact but does not follow entry {s - 1}: entry {bad} was "
            f"rewritten and re-hashed, or the link stored in entry {s} was changed"
        )
        return bad, CHANGED, why
    # A whole row (content and hashes) moved here from position t.
    before = 0 if r.prev_hash == GENESIS else src.seq_of_hash(r.prev_hash)
    t = None if before is None else before + 1
    if t is not None and t != s and r.hash_as(dock_id, t, r.prev_hash) == r.hash:
        return s, REORDERED, f"the row at position {s} holds entry {t}"
    # Only the content moved: another row's hash columns fit this content.
    for other in src.rows():
        if other.seq != s and r.hash_as(dock_id, other.seq, other.prev_hash) == other.hash:
            return s, REORDERED, f"entry {s} holds the content of entry {other.seq}"
    # Entries before it were deleted and the rest renumbered to close the gap: then its
    # link points at a hash that no row has any more.
    renumbered = r.prev_hash != prev and src.seq_of_hash(r.prev_hash) is None
    for k in range(1, _RENUMBER_SEARCH + 1 if renumbered else 1):
        if r.hash_as(dock_id, s + k, r.prev_hash) == r.hash:
            why = (
                f"{k} entr{'y' if k == 1 else 'ies'} from {s} on were removed and the "
                f"rest renumbered (the row now numbered {s} was entry {s + k})"
            )
            return s, REMOVED, why
    if r.prev_hash != prev:
        return s, CHANGED, f"entry {s} does not match its hash, nor link to entry {s - 1}"
    return s, CHANGED, f"entry {s}'s content does not match its hash"


def _check_signature(
    dock_id: str, cp: Checkpoint, trusted: bytes, what: str = ""
) -> tuple[str, str] | None:
    """(reason, detail) if the checkpoint is not signed by the key ``trusted``."""
    what = what or f"checkpoint {cp.seq}"
    if cp.public_key != trusted.hex():
        key = fingerprint(bytes.fromhex(cp.public_key)) if _HEX64.fullmatch(cp.public_key) else "?"
        return WRONG_KEY, f"{what} names key {key}, not the dock's key {fingerprint(trusted)}"
    try:
        if not _HEX128.fullmatch(cp.signature):
            raise InvalidSignature
        Ed25519PublicKey.from_public_bytes(trusted).verify(
            bytes.fromhex(cp.signature), checkpoint_message(dock_id, cp.seq, cp.head_hash, cp.time)
        )
    except InvalidSignature:
        return BAD_CHECKPOINT_SIGNATURE, f"the signature of {what} is not valid"
    return None


def _check_checkpoint(
    dock_id: str, cp: Checkpoint, head: str, trusted: bytes
) -> tuple[str, str] | None:
    """(reason, detail) if the checkpoint does not vouch for ``head``, else None."""
    problem = _check_signature(dock_id, cp, trusted)
    if problem:
        return problem
    if cp.head_hash != head:
        return CHECKPOINT_MISMATCH, (
            f"checkpoint {cp.seq} signed a head hash the chain no longer has: an entry up to "
            f"{cp.seq} was rewritten and the later hashes recomputed"
        )
    return None


def _verify_chain(
    dock_id: str,
    src: _Source,
    checkpoints: list[Checkpoint],
    trusted: bytes,
    outside: Sequence[OutsideCheckpoint] = (),
) -> VerifyReport:
    """Walk the chain once, checking links, hashes and checkpoints in seq order, and
    that it still holds the head of every checkpoint kept ``outside`` the log."""
    report = VerifyReport(ok=False, public_key_fingerprint=fingerprint(trusted))
    cps = sorted(checkpoints, key=lambda c: c.seq)
    ci = 0
    prev, expected = GENESIS, 1

    def fail(first_bad: int | None, reason: str, detail: str) -> VerifyReport:
        report.first_bad, report.reason, report.detail = first_bad, reason, detail
        return report

    for o in outside:  # first: a forged or foreign copy must not count as one
        what = f"the checkpoint at entry {o.checkpoint.seq} in {o.source}"
        if o.dock_id != dock_id:
            return fail(None, BAD_OUTSIDE_CHECKPOINT, f"{what} is for dock {o.dock_id!r}")
        problem = _check_signature(dock_id, o.checkpoint, trusted, what)
        if problem:
            return fail(None, BAD_OUTSIDE_CHECKPOINT, f"{problem[0]}: {problem[1]}")
    far = sorted(outside, key=lambda o: o.checkpoint.seq)
    fi = 0

    def outside_failure(o: OutsideCheckpoint, below: int, head: str | None) -> VerifyReport:
        cp = o.checkpoint
        signed = f"the checkpoint kept in {o.source} (signed {cp.time})"
        if head is None:
            return fail(
                report.head_seq + 1,
                REMOVED,
                f"the log ends at entry {report.head_seq}, but {signed} vouches for entries up "
                f"to {cp.seq}: entries {report.head_seq + 1}..{cp.seq} were removed",
            )
        return fail(
            below + 1,
            CHECKPOINT_MISMATCH,
            f"entry {cp.seq} is {head[:16]} in the log, {cp.head_hash[:16]} in {signed}: "
            f"entries {below + 1}..{cp.seq} were rewritten (entries up to {below} are "
            "vouched for by a checkpoint in the log)",
        )

    def checkpoint_failure(cp: Checkpoint, reason: str, detail: str) -> VerifyReport:
        report.bad_checkpoint = cp.seq
        start = report.last_checkpoint + 1
        if start <= cp.seq:
            detail += f"; entries {start}..{cp.seq} are not vouched for"
        return fail(min(start, max(cp.seq, 1)), reason, detail)

    for r in src.rows():
        if ci < len(cps) and cps[ci].seq < expected:  # only seq <= 0 gets here
            return checkpoint_failure(cps[ci], CHECKPOINT_MISMATCH, "checkpoint before entry 1")
        if r.seq > expected:
            gap = (
                f"entry {expected} is"
                if r.seq == expected + 1
                else (f"entries {expected}..{r.seq - 1} are")
            )
            return fail(expected, REMOVED, f"{gap} missing")
        if r.seq < expected:
            return fail(r.seq, REORDERED, f"entry {r.seq} appears again after entry {prev}")
        if r.prev_hash != prev or r.hash_as(dock_id, r.seq, prev) != r.hash:
            return fail(*_diagnose(dock_id, r.seq, r, prev, src))
        prev, expected = r.hash, expected + 1
        report.entries_checked += 1
        report.head_seq, report.head_hash = r.seq, r.hash
        below = report.last_checkpoint  # the last checkpoint before this entry
        while ci < len(cps) and cps[ci].seq == r.seq:
            problem = _check_checkpoint(dock_id, cps[ci], r.hash, trusted)
            if problem:
                return checkpoint_failure(cps[ci], *problem)
            report.last_checkpoint = r.seq
            report.checkpoints_checked += 1
            ci += 1
        while fi < len(far) and far[fi].checkpoint.seq <= r.seq:
            o = far[fi]
            if o.checkpoint.seq < r.seq:  # only seq <= 0 gets here
                return fail(None, BAD_OUTSIDE_CHECKPOINT, f"{o.source}: checkpoint before entry 1")
            if o.checkpoint.head_hash != r.hash:
                return outside_failure(o, below, r.hash)
            report.outside.append(f"entry {r.seq} ({o.source})")
            fi += 1
    if ci < len(cps):
        cp = cps[ci]
        report.bad_checkpoint = cp.seq
        return fail(
            expected,
            REMOVED,
            f"checkpoint {cp.seq} covers entries up to {cp.seq} but the log ends at "
            f"{expected - 1}: entries {expected}..{cp.seq} were removed",
        )
    if fi < len(far):
        return outside_failure(far[fi], report.last_checkpoint, None)
    report.ok = True
    return report


# --- the log -------------------------------------------------------------------------

_ENTRY_COLUMNS = "seq, time, kind, actor, subject, data, prev_hash, hash"
_CHECKPOINT_COLUMNS = "seq, head_hash, time, public_key, signature"

_APPEND_ONLY = "BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq INTEGER PRIMARY KEY,
        head_hash TEXT NOT NULL,
        time TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature TEXT NOT NULL
    )""",
    # Guards against the dock's own code (a purge job, a migration), not against an
    # attacker, who can drop them: verify() is what catches an attacker.
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} "
        + _APPEND_ONLY.format(op=op, table=table)
        for table in ("entries", "checkpoints")
        for op in ("UPDATE", "DELETE")
    ),
)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Invalid UTF-8 written behind our back must read as "changed", not raise.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")  # an acknowledged entry survives power loss
    return conn


class AuditLog:
    """The append-only, hash-chained audit log of one dock, in a SQLite file.

    Thread-safe: appends from this process share one connection under a lock; other
    processes (the CLI) are serialised by ``BEGIN IMMEDIATE`` and ``busy_timeout``.
    Reads (``entries``, ``verify``, ``export``) use their own connection and one
    snapshot each, so they never see half a transaction nor block appends.
    """

    def __init__(
        self,
        db_path: str,
        signing_key: Ed25519PrivateKey,
        dock_id: str,
        checkpoint_every: int = 100,
        clock: Callable[[], float] = time.time,
        copy_path: str | None = None,
    ) -> None:
        """``copy_path``: where the newest checkpoint is also kept, outside the database
        (a checkpoint file, best in another directory or on another disk); None: nowhere."""
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if not dock_id:
            raise ValueError("dock_id must not be empty")
        self.db_path = db_path
        self.dock_id = dock_id
        self.checkpoint_every = checkpoint_every
        self.copy_path = copy_path
        self._signed: Checkpoint | None = None
        self._key = signing_key
        self._public = public_key_bytes(signing_key)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = _connect(db_path)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        try:
            check = [r[0] for r in self._conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"audit database {self.db_path} is damaged: {exc}") from exc
        if check != ["ok"]:
            raise AuditError(f"audit database {self.db_path} is damaged: {'; '.join(check)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise AuditError(f"audit database {self.db_path}: cannot use WAL (got {mode})")
        with self._write() as conn:
            for statement in _SCHEMA:  # not executescript: it would COMMIT for us
                conn.execute(statement)
            if conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None:
                # A new log. In a log with entries, meta is never written again: rows
                # missing there are for verify() to report, not for us to paper over.
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('dock_id', ?), ('format', ?)",
                    (self.dock_id, META_FORMAT),
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'dock_id'").fetchone()
            stored = self.dock_id if row is None else row[0]
        if stored != self.dock_id:
            raise AuditError(
                f"audit database {self.db_path} belongs to dock {stored!r}, not "
                f"{self.dock_id!r}: check the configured dock id"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._signed = None
            with immediate(self._conn) as conn:
                yield conn
            # Committed: only now may the copy outside the database name this checkpoint.
            signed, self._signed = self._signed, None
            if signed is not None and self.copy_path:
                self._keep_outside(signed)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = _connect(self.db_path)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()  # start the snapshot now
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def public_key(self) -> bytes:
        return self._public

    # --- writing ---

    def append(self, kind: str, actor: str, subject: str, data: dict[str, Any]) -> int:
        """Append one entry and return its seq; signs a checkpoint when one is due.

        ``actor`` is who did it (officer or supervisor id, or "dock"); ``subject`` what it
        was done to (a recorder serial, a setting). ``data`` must be JSON-representable.
        The entry is on disk (fsynced) when this returns.
        """
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise ValueError(f"audit kind must match [a-z][a-z0-9_.]*, got {kind!r}")
        if not isinstance(actor, str) or not isinstance(subject, str):
            raise TypeError("actor and subject must be strings")
        if not isinstance(data, dict):
            raise TypeError("audit data must be a dict")
        try:
            data_json = canonical_json(data)
            for text in (actor, subject, data_json):
                text.encode("utf-8")  # lone surrogates cannot be hashed: refuse them now
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit data is not representable as JSON: {exc}") from exc
        kind = str(kind)  # an AuditKind member is stored as its plain value
        with self._write() as conn:
            seq, prev = self._head(conn)
            seq += 1
            stamp = utc_iso(self._clock())
            digest = entry_hash(prev, self.dock_id, seq, stamp, kind, actor, subject, data_json)
            conn.execute(
                f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, stamp, kind, actor, subject, data_json, prev, digest),
            )
            if seq - self._last_checkpoint(conn) >= self.checkpoint_every:
                self._sign(conn, seq, digest)
        return seq

    def checkpoint(self) -> int:
        """Sign the current head now (e.g. at shutdown); returns the seq it covers (0: empty)."""
        with self._write() as conn:
            seq, head = self._head(conn)
            if seq and self._last_checkpoint(conn) < seq:
                self._sign(conn, seq, head)
            return seq

    def _head(self, conn: sqlite3.Connection) -> tuple[int, str]:
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), row[1])

    @staticmethod
    def _last_checkpoint(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM checkpoints").fetchone()[0])

    def _sign(self, conn: sqlite3.Connection, seq: int, head: str) -> None:
        stamp = utc_iso(self._clock())
        signature = self._key.sign(checkpoint_message(self.dock_id, seq, head, stamp))
        conn.execute(
            f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (seq, head, stamp, self._public.hex(), signature.hex()),
        )
        self._signed = Checkpoint(seq, head, stamp, self._public.hex(), signature.hex())

    def _keep_outside(self, cp: Checkpoint) -> None:
        """Replace the copy outside the database with ``cp`` if ``cp`` extends it.

        Only a checkpoint further on, of a log that still holds the copy's head, replaces
        it: after a cut or a rewrite the copy keeps what the log no longer has, for
        verify() to show. Never raises: the entry is committed; a copy that cannot be
        written is logged as an error (verify then compares with an older one, or says
        it has none).
        """
        path = str(self.copy_path)
        try:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                fcntl.flock(dfd, fcntl.LOCK_EX)  # two processes signing: one at a time
                try:
                    kept = read_checkpoint_file(path)
                except FileNotFoundError:
                    kept = None
                if kept is not None:
                    if kept.checkpoint.seq >= cp.seq:
                        return
                    row = self._conn.execute(
                        "SELECT hash FROM entries WHERE seq = ?", (kept.checkpoint.seq,)
                    ).fetchone()
                    if (
                        kept.dock_id != self.dock_id
                        or row is None
                        or (row[0] != kept.checkpoint.head_hash)
                    ):
                        log.error(
                            "audit log no longer holds entry %d as signed in %s: the log "
                            "was cut or rewritten; that copy is kept, not replaced (run "
                            "`dock audit verify`)",
                            kept.checkpoint.seq,
                            path,
                        )
                        return
                text = checkpoint_file_text(self.dock_id, cp)
                _replace_file(path, text.encode("utf-8"), dfd)
            finally:
                os.close(dfd)
        except (OSError, ValueError) as exc:
            log.error("cannot keep the audit checkpoint outside the database in %s: %s", path, exc)

    # --- reading ---

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry: what to anchor elsewhere (e.g. headquarters)."""
        with self._snapshot() as conn:
            return self._head(conn)

    def entries(self, since: int = 0) -> Iterator[AuditEntry]:
        """Entries with seq > ``since``, oldest first, from one consistent snapshot."""
        with self._snapshot() as conn:
            cur = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE seq > ? ORDER BY seq", (since,)
            )
            for r in cur:
                row = _Row(*r)
                yield AuditEntry(
                    row.seq, row.time, row.kind, row.actor, row.subject,
                    json.loads(row.data), row.prev_hash, row.hash,
                )  # fmt: skip

    def find(self, kind: str, subject: str, **data: str) -> int | None:
        """The seq of the newest ``kind`` entry about ``subject`` whose data holds these
        values (None: there is none): how a step reconciled after a crash learns whether
        its entry was written before the crash."""
        where = "".join(f" AND json_extract(data, '$.{key}') = ?" for key in data)
        for key in data:
            if not key.isidentifier():
                raise ValueError(f"not a data key: {key!r}")
        with self._snapshot() as conn:
            row = conn.execute(
                f"SELECT seq FROM entries WHERE kind = ? AND subject = ?{where} "
                "ORDER BY seq DESC LIMIT 1",
                (kind, subject, *data.values()),
            ).fetchone()
        return None if row is None else int(row[0])

    def checkpoints(self, since: int = 0) -> list[Checkpoint]:
        """Checkpoints covering entries after ``since``, oldest first."""
        with self._snapshot() as conn:
            return _read_checkpoints(conn, since)

    def checkpoint_before(self, seq: int) -> tuple[int, str]:
        """(seq, head) of the newest checkpoint before entry ``seq``; (0, GENESIS): none."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT seq, head_hash FROM checkpoints WHERE seq < ? ORDER BY seq DESC LIMIT 1",
                (seq,),
            ).fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), _as_text(row[1]))

    def position(self, seq: int, checkpoint_seq: int) -> tuple[int, str, str | None, str | None]:
        """(head seq, head hash, hash of entry ``seq``, head of the checkpoint at
        ``checkpoint_seq``), from one snapshot; None where there is no such entry or
        checkpoint (GENESIS for 0). What the reporter checks its cursors against."""
        with self._snapshot() as conn:
            head_seq, head = self._head(conn)
            entry = conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
            cp = conn.execute(
                "SELECT head_hash FROM checkpoints WHERE seq = ?", (checkpoint_seq,)
            ).fetchone()
        at = GENESIS if seq == 0 else (None if entry is None else _as_text(entry[0]))
        signed = GENESIS if checkpoint_seq == 0 else (None if cp is None else _as_text(cp[0]))
        return head_seq, head, at, signed

    def verify(
        self,
        public_key_bytes: bytes | None = None,
        against: Sequence[OutsideCheckpoint] = (),
    ) -> VerifyReport:
        """Check every link, hash and checkpoint, ``meta``, and that the chain holds the
        head of the copy kept outside (``copy_path``) and of every checkpoint in
        ``against`` (e.g. headquarters'); by default against this dock's own key.

        Entries and checkpoints are read in one snapshot, so appends running meanwhile
        cannot make a sound log look truncated. A copy that exists but cannot be read
        fails the verification: it is evidence, not something to skip.
        """
        trusted = self._public if public_key_bytes is None else bytes(public_key_bytes)
        outside = list(against)
        if self.copy_path:
            try:
                outside.append(read_checkpoint_file(self.copy_path))
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as exc:
                return VerifyReport(
                    ok=False,
                    reason=BAD_OUTSIDE_CHECKPOINT,
                    detail=f"the checkpoint kept in {self.copy_path} cannot be read: {exc}",
                    public_key_fingerprint=fingerprint(trusted),
                )
        with self._snapshot() as conn:
            report = _verify_chain(
                self.dock_id, _SqlSource(conn), _read_checkpoints(conn), trusted, outside
            )
            rows = conn.execute("SELECT key, value FROM meta").fetchall()
        meta = {_as_text(k): _as_text(v) for k, v in rows}
        want = {"dock_id": self.dock_id, "format": META_FORMAT}
        if report.ok and meta != want:
            report.ok, report.reason = False, META_CHANGED
            report.detail = "; ".join(
                f"{k} is {meta[k]!r}, not {want[k]!r}"
                if k in meta and k in want
                else (f"{k} is missing" if k in want else f"{k} = {meta[k]!r} should not be there")
                for k in sorted(set(meta) | set(want))
                if meta.get(k) != want.get(k)
            )
        return report

    def export(self, path: str) -> ExportSummary:
        """Write the log for a supervisor (format in the module docstring), atomically.

        Signs a checkpoint first and exports only entries it covers, so every exported
        entry is vouched for by a signature; entries appended meanwhile go in the next.
        """
        self.checkpoint()
        with self._snapshot() as conn:
            cps = _read_checkpoints(conn)
            head_seq = cps[-1].seq if cps else 0
            head_hash = cps[-1].head_hash if cps else GENESIS
            header = {
                "type": "header",
                "format": EXPORT_FORMAT,
                "dock_id": self.dock_id,
                "public_key": self._public.hex(),
                "fingerprint": fingerprint(self._public),
                "exported_at": utc_iso(self._clock()),
                "head_seq": head_seq,
                "head_hash": head_hash,
            }
            rows = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE seq <= ? ORDER BY seq", (head_seq,)
            )
            lines: Iterator[dict[str, Any]] = _chain_lines(
                header,
                ({"type": "entry", **_row_dict(_Row(*r))} for r in rows),
                ({"type": "checkpoint", **vars(cp)} for cp in cps),
            )
            _write_atomically(path, lines, self._key)
        return ExportSummary(path, head_seq, len(cps), head_hash)


def _read_checkpoints(conn: sqlite3.Connection, since: int = 0) -> list[Checkpoint]:
    cur = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE seq > ? ORDER BY seq", (since,)
    )
    return [Checkpoint(r[0], *map(_as_text, r[1:])) for r in cur]


def _as_text(value: object) -> str:
    """A column as text even if someone stored a number or a blob in it: verification
    must report such a row as changed, not crash on it."""
    return value if isinstance(value, str) else f"<{type(value).__name__}:{value!r}>"


#: A column as every reader here shows it (for code that compares with what it read).
as_text = _as_text


def _row_dict(r: _Row) -> dict[str, Any]:
    return {
        "seq": r.seq, "time": r.time, "kind": r.kind, "actor": r.actor,
        "subject": r.subject, "data": r.data, "prev_hash": r.prev_hash, "hash": r.hash,
    }  # fmt: skip


def _chain_lines(*parts: Iterable[dict[str, Any]] | dict[str, Any]) -> Iterator[dict[str, Any]]:
    for part in parts:
        if isinstance(part, dict):
            yield part
        else:
            yield from part


def _export_signed_message(sha256_hex: str) -> bytes:
    return _f(EXPORT_DOMAIN) + _f(sha256_hex)


def _write_atomically(path: str, lines: Iterable[dict[str, Any]], key: Ed25519PrivateKey) -> None:
    """The export, streamed, with its signed trailer: all of the file or none."""

    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        for line in lines:
            raw = (canonical_json(line) + "\n").encode("utf-8")
            digest.update(raw)
            out.write(raw)
        sha = digest.hexdigest()
        signature = key.sign(_export_signed_message(sha)).hex()
        trailer = {"type": "signature", "sha256": sha, "signature": signature}
        out.write((canonical_json(trailer) + "\n").encode("utf-8"))

    directory = os.path.dirname(os.path.abspath(path))
    dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        _write_replacing(path, write, dfd)
    finally:
        os.close(dfd)


# --- checkpoint files: the copy outside the database, and headquarters' -----------------

_CHECKPOINT_FILE_MAX = 64 * 1024
_CHECKPOINT_FILE_KEYS = {
    "format": str, "dock": str, "seq": int, "head": str,
    "time": str, "public_key": str, "signature": str,
}  # fmt: skip


def checkpoint_file_text(dock_id: str, cp: Checkpoint) -> str:
    """A checkpoint file (module docstring): one canonical JSON line."""
    body = {
        "format": CHECKPOINT_FILE_FORMAT,
        "dock": dock_id,
        "seq": cp.seq,
        "head": cp.head_hash,
        "time": cp.time,
        "public_key": cp.public_key,
        "signature": cp.signature,
        "fingerprint": fingerprint(bytes.fromhex(cp.public_key)),
    }
    return canonical_json(body) + "\n"


def parse_checkpoint(raw: bytes | str, source: str) -> OutsideCheckpoint:
    """A checkpoint file's content; ValueError says what is wrong with it. Only its form
    is checked here: whose signature it carries is for verify() to decide."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for key, want in _CHECKPOINT_FILE_KEYS.items():
        value = obj.get(key)
        if type(value) is not want:
            raise ValueError(f"{key} missing or not {want.__name__}")
    if obj["format"] != CHECKPOINT_FILE_FORMAT:
        raise ValueError(f"format {obj['format']!r} is not {CHECKPOINT_FILE_FORMAT}")
    if obj["seq"] < 1:
        raise ValueError("seq must be 1 or more")
    if not _HEX64.fullmatch(obj["head"]) or not _HEX64.fullmatch(obj["public_key"]):
        raise ValueError("head and public_key must be 64 lowercase hex digits")
    if not _HEX128.fullmatch(obj["signature"]):
        raise ValueError("signature must be 128 lowercase hex digits")
    cp = Checkpoint(obj["seq"], obj["head"], obj["time"], obj["public_key"], obj["signature"])
    return OutsideCheckpoint(obj["dock"], cp, source)


def read_checkpoint_file(path: str) -> OutsideCheckpoint:
    """Read a checkpoint file; FileNotFoundError when there is none, ValueError (with the
    path) when it is not one."""
    with open(path, "rb") as f:
        raw = f.read(_CHECKPOINT_FILE_MAX + 1)
    if len(raw) > _CHECKPOINT_FILE_MAX:
        raise ValueError(f"{path}: too big for a checkpoint file")
    try:
        return parse_checkpoint(raw, path)
    except ValueError as exc:
        raise ValueError(f"{path}: not a checkpoint file: {exc}") from None


def _replace_file(path: str, data: bytes, dfd: int) -> None:
    _write_replacing(path, lambda out: out.write(data), dfd)


def _write_replacing(path: str, write: Callable[[BinaryIO], object], dfd: int) -> None:
    """tmp in the same folder + fsync + rename + fsync folder (``dfd``): all or none."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fchmod(out.fileno(), 0o640)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.fsync(dfd)


# --- the supervisor's side: an export, without the database ---------------------------

_LINE_KEYS = {
    "header": {
        "type", "format", "dock_id", "public_key", "fingerprint",
        "exported_at", "head_seq", "head_hash",
    },
    "entry": {"type", "seq", "time", "kind", "actor", "subject", "data", "prev_hash", "hash"},
    "checkpoint": {"type", "seq", "head_hash", "time", "public_key", "signature"},
    "signature": {"type", "sha256", "signature"},
}  # fmt: skip
_INT_KEYS = {"seq", "head_seq"}


class _Malformed(Exception):
    pass


def _parse_line(number: int, raw: bytes) -> dict[str, Any]:
    """One strictly canonical line: any other spelling of the same value is refused,
    so that no byte of the file can change without changing what it says."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Malformed(f"line {number}: not JSON ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("type") not in _LINE_KEYS:
        raise _Malformed(f"line {number}: not a header, entry, checkpoint or signature")
    if set(obj) != _LINE_KEYS[obj["type"]]:
        raise _Malformed(f"line {number}: unexpected fields for a {obj['type']} line")
    for key, value in obj.items():
        want = int if key in _INT_KEYS else str
        if type(value) is not want:
            raise _Malformed(f"line {number}: {key} must be {want.__name__}")
    try:
        canonical = canonical_json(obj)
    except ValueError as exc:
        raise _Malformed(f"line {number}: {exc}") from exc
    if canonical != text:
        raise _Malformed(f"line {number}: not in canonical form")
    return obj


def export_key(path: str) -> bytes | None:
    """The public key an export's header names (None if it names none readably): to
    compare its fingerprint with the dock's before trusting it."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
        header = json.loads(first)
        key = header.get("public_key") if isinstance(header, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return bytes.fromhex(key) if isinstance(key, str) and _HEX64.fullmatch(key) else None


def verify_export(
    path: str,
    public_key_bytes: bytes | None = None,
    against: Sequence[OutsideCheckpoint] = (),
) -> VerifyReport:
    """Check an exported audit log on its own: what a supervisor runs.

    Without ``public_key_bytes`` the key named in the file is used and its fingerprint
    reported: compare it with the dock's known fingerprint, because anyone can sign a
    file with their own key. With it, a file signed by any other key fails. ``against``:
    checkpoints kept elsewhere (headquarters') whose heads the export must hold.
    """
    with open(path, "rb") as f:
        blob = f.read()
    try:
        header, rows, cps, trailer, signed_len = _parse_export(blob)
    except _Malformed as exc:
        return VerifyReport(ok=False, reason=MALFORMED, detail=str(exc))
    named = bytes.fromhex(header["public_key"])
    trusted = named if public_key_bytes is None else bytes(public_key_bytes)
    if named != trusted:
        return VerifyReport(
            ok=False,
            reason=WRONG_KEY,
            detail=f"export names key {fingerprint(named)}, expected {fingerprint(trusted)}",
            public_key_fingerprint=fingerprint(named),
        )
    for i in range(1, len(rows)):
        if rows[i].seq <= rows[i - 1].seq:
            return VerifyReport(
                ok=False,
                first_bad=min(rows[i].seq, rows[i - 1].seq),
                reason=REORDERED,
                detail=f"entry {rows[i].seq} comes after entry {rows[i - 1].seq}",
            )
    report = _verify_chain(header["dock_id"], _ListSource(rows), cps, trusted, against)
    report.needs_outside = False  # the file's signature covers where it ends
    if not report.ok:
        return report
    if (report.head_seq, report.head_hash) != (header["head_seq"], header["head_hash"]):
        report.ok = False
        report.first_bad = report.head_seq + 1 if header["head_seq"] > report.head_seq else None
        report.reason = REMOVED if header["head_seq"] > report.head_seq else MALFORMED
        report.detail = (
            f"the header says the log ends at entry {header['head_seq']} "
            f"({header['head_hash'][:16]}), the file ends at {report.head_seq}"
        )
        return report
    if report.last_checkpoint != report.head_seq:
        report.ok = False
        report.first_bad = report.last_checkpoint + 1
        report.reason = REMOVED
        report.detail = (
            f"entries {report.last_checkpoint + 1}..{report.head_seq} are not covered by a "
            "checkpoint (a dock's export always ends with one)"
        )
        return report
    sha = hashlib.sha256(blob[:signed_len]).hexdigest()
    try:
        if trailer["sha256"] != sha or not _HEX128.fullmatch(trailer["signature"]):
            raise InvalidSignature
        Ed25519PublicKey.from_public_bytes(trusted).verify(
            bytes.fromhex(trailer["signature"]), _export_signed_message(sha)
        )
    except InvalidSignature:
        report.ok = False
        report.reason = BAD_EXPORT_SIGNATURE
        report.detail = "the file's signature does not match its contents"
        return report
    report.notes.append(f"exported at {header['exported_at']}")
    return report


def _parse_export(
    blob: bytes,
) -> tuple[dict[str, Any], list[_Row], list[Checkpoint], dict[str, Any], int]:
    if not blob.endswith(b"\n"):
        raise _Malformed("the file does not end with a newline (cut short?)")
    raw_lines = blob[:-1].split(b"\n")
    if len(raw_lines) < 2:
        raise _Malformed("no header and signature lines")
    parsed = [_parse_line(i + 1, raw) for i, raw in enumerate(raw_lines)]
    header, trailer = parsed[0], parsed[-1]
    if header["type"] != "header" or trailer["type"] != "signature":
        raise _Malformed("the first line must be the header and the last the signature")
    if header["format"] != EXPORT_FORMAT:
        raise _Malformed(f"unknown format {header['format']!r}")
    if not _HEX64.fullmatch(header["public_key"]):
        raise _Malformed("the header's public key is not 64 lowercase hex digits")
    if header["fingerprint"] != fingerprint(bytes.fromhex(header["public_key"])):
        raise _Malformed("the header's fingerprint does not belong to its public key")
    rows: list[_Row] = []
    cps: list[Checkpoint] = []
    seen_cp: set[int] = set()
    for number, obj in enumerate(parsed[1:-1], start=2):
        kind = obj.pop("type")
        if kind == "entry":
            rows.append(_Row(**obj))
        elif kind == "checkpoint":
            if obj["seq"] in seen_cp:
                raise _Malformed(f"line {number}: a second checkpoint at {obj['seq']}")
            seen_cp.add(obj["seq"])
            cps.append(Checkpoint(**obj))
        else:
            raise _Malformed(f"line {number}: a {kind} line in the middle of the file")
    signed_len = len(blob) - len(raw_lines[-1]) - 1
    return header, rows, cps, trailer, signed_len
