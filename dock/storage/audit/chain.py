"""The chain's construction (see the package docstring) and its verification, shared
by the database and the export: what an auditor re-implements."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dock.storage.audit.model import (
    BAD_CHECKPOINT_SIGNATURE,
    BAD_OUTSIDE_CHECKPOINT,
    CHANGED,
    CHECKPOINT_DOMAIN,
    CHECKPOINT_MISMATCH,
    ENTRY_COLUMNS,
    ENTRY_DOMAIN,
    GENESIS,
    HEX64,
    HEX128,
    REMOVED,
    REORDERED,
    WRONG_KEY,
    Checkpoint,
    OutsideCheckpoint,
    VerifyReport,
)
from dock.storage.keys import fingerprint

# --- the construction ----------------------------------------------------------------


def framed(text: str) -> bytes:
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
    """hash_n of the package docstring; ``data`` is the stored JSON text."""
    h = hashlib.sha256(framed(ENTRY_DOMAIN))
    for part in (prev_hash, dock_id, str(seq), time, kind, actor, subject, data):
        h.update(framed(part))
    return h.hexdigest()


def checkpoint_message(dock_id: str, seq: int, head_hash: str, time: str) -> bytes:
    """The bytes a checkpoint signs."""
    return b"".join(framed(p) for p in (CHECKPOINT_DOMAIN, dock_id, str(seq), head_hash, time))


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, no NaN: one text per value, for hashing and export."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


# --- verification, shared by the database and the export ------------------------------

#: How far a renumbered row may have moved before the diagnosis stops looking.
_RENUMBER_SEARCH = 10_000


@dataclass(frozen=True)
class Row:
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


class Source:
    """Where verification reads rows: the chain in order, plus look-ups for diagnosis."""

    def rows(self) -> Iterable[Row]:
        raise NotImplementedError

    def seq_of_hash(self, h: str) -> int | None:
        raise NotImplementedError


class ListSource(Source):
    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows
        self._by_hash: dict[str, int] | None = None

    def rows(self) -> Iterable[Row]:
        return self._rows

    def seq_of_hash(self, h: str) -> int | None:
        if self._by_hash is None:
            self._by_hash = {}
            for r in self._rows:
                self._by_hash.setdefault(r.hash, r.seq)
        return self._by_hash.get(h)


class SqlSource(Source):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self) -> Iterable[Row]:
        cur = self._conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY seq")
        return (Row(r[0], *map(as_text, r[1:])) for r in cur)

    def seq_of_hash(self, h: str) -> int | None:
        # No index on hash: this runs only to explain a failure already found.
        row = self._conn.execute("SELECT seq FROM entries WHERE hash = ? LIMIT 1", (h,)).fetchone()
        return None if row is None else int(row[0])


def _diagnose(dock_id: str, s: int, r: Row, prev: str, src: Source) -> tuple[int, str, str]:
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
        key = fingerprint(bytes.fromhex(cp.public_key)) if HEX64.fullmatch(cp.public_key) else "?"
        return WRONG_KEY, f"{what} names key {key}, not the dock's key {fingerprint(trusted)}"
    from cryptography.exceptions import InvalidSignature  # loaded when a signature is checked
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        if not HEX128.fullmatch(cp.signature):
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


def verify_chain(
    dock_id: str,
    src: Source,
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


def as_text(value: object) -> str:
    """A column as text even if someone stored a number or a blob in it: verification
    must report such a row as changed, not crash on it."""
    return value if isinstance(value, str) else f"<{type(value).__name__}:{value!r}>"
