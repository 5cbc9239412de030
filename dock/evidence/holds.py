"""Holds, purging and offload deadlines: the pure rules given the dock's data.

``retention.decide`` says whether a recording may go and ``deadlines.deadline_status``
where a return stands; neither reads storage. This module feeds them from the dock's
database and evidence folder and carries out what they allow (REQUIREMENTS.md §4, §6):

* :class:`HoldRegister` keeps holds per recording in the dock database. A hold is never
  deleted or edited, only released, once, by a supervisor with their own PIN and a
  reason (triggers refuse anything else); every change is in the audit log.
* :func:`purge` deletes footage whose retention is over and that no hold keeps, and
  records every deletion twice: an audited ``purge`` entry written *before* the file is
  touched, and a row in ``purges`` written after. Any doubt keeps (``retention.decide``
  keeps on missing or contradictory data; here also: a file that is not what the archive
  says, a path outside the evidence folder, a failed case look-up). Dry run by default.
* :func:`deadline_report` lists returned recorders against their offload deadline.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..audit import AuditLog
from ..clock import local_display, utc_iso
from ..pins import verify as verify_pin
from ..policy import Policy
from ..store import Store
from .deadlines import deadline_status
from .retention import Hold, HoldKind, Instant, decide

#: Created on first use in the dock database; the triggers make holds release-only and
#: purge records permanent, so a slip in code cannot quietly lift a hold or hide a purge.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS holds (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        placed_at REAL NOT NULL,
        placed_by TEXT NOT NULL,
        until REAL,
        released_at REAL,
        released_by TEXT,
        release_reason TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS holds_by_recording ON holds(serial, recording_id)",
    """CREATE TABLE IF NOT EXISTS purges (
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        sha256 BLOB NOT NULL,
        path TEXT NOT NULL,
        purged_at REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS holds_never_deleted BEFORE DELETE ON holds
    BEGIN SELECT RAISE(ABORT, 'holds are never deleted, only released'); END""",
    """CREATE TRIGGER IF NOT EXISTS holds_release_only BEFORE UPDATE ON holds
    WHEN OLD.released_at IS NOT NULL
      OR NEW.id IS NOT OLD.id OR NEW.serial IS NOT OLD.serial
      OR NEW.recording_id IS NOT OLD.recording_id OR NEW.kind IS NOT OLD.kind
      OR NEW.reference IS NOT OLD.reference OR NEW.placed_at IS NOT OLD.placed_at
      OR NEW.placed_by IS NOT OLD.placed_by OR NEW.until IS NOT OLD.until
      OR NEW.released_at IS NULL OR NEW.released_by IS NULL
      OR coalesce(NEW.release_reason, '') = ''
    BEGIN SELECT RAISE(ABORT, 'a hold changes only by one release with a reason'); END""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_deleted BEFORE DELETE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_changed BEFORE UPDATE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
)

BAGS_DIR = "bags"


class HoldError(Exception):
    """A hold request the data or the credentials do not allow."""


def ensure_tables(store: Store) -> None:
    """Create the holds and purges tables (idempotent)."""
    with store._write() as db:
        for statement in SCHEMA:
            db.execute(statement)


# --------------------------------------------------------------------------- holds


@dataclass(frozen=True)
class HoldRecord:
    """One row of the holds table, as stored (``kind`` may be a kind this version does not
    know; ``retention.decide`` then keeps the recording)."""

    id: int
    serial: str
    recording_id: str
    kind: str
    reference: str
    placed_at: float
    placed_by: str
    until: float | None
    released_at: float | None
    released_by: str | None
    release_reason: str | None

    def as_hold(self) -> Hold:
        try:
            kind: Any = HoldKind(self.kind)
        except ValueError:
            kind = self.kind  # decide() reports it as invalid and keeps
        return Hold(
            kind=kind,
            reference=self.reference,
            placed_at=self.placed_at,
            placed_by=self.placed_by,
            released_at=self.released_at,
            release_reason=self.release_reason,
            until=self.until,
        )

    def active(self, now: float) -> bool:
        if self.released_at is not None:
            return False
        return self.until is None or now < self.until

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("placed_at", "until", "released_at"):
            d[key] = None if d[key] is None else utc_iso(d[key])
        return d


class HoldRegister:
    """Holds on archived recordings, in the dock database; every change audited.

    A change and its audit entry go together: the audit entry is appended inside the
    database transaction, so a failed append rolls the change back. A crash between the
    two commits can leave an audited release that did not take effect -- the safe side.
    """

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        ensure_tables(store)

    def place(
        self,
        serial: str,
        recording_id: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold one archived recording (permanent unless ``until``, epoch seconds).

        Only recordings in the archive and not purged: a hold on a mistyped id would
        protect nothing while looking as if it did."""
        try:
            hold_kind = HoldKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in HoldKind)
            raise HoldError(f"unknown hold kind {kind!r} (one of {known})") from None
        if not reference.strip() or not placed_by.strip():
            raise HoldError("a hold needs a reference (case, complaint, ...) and who places it")
        if self.store.archived(serial, recording_id) is None:
            raise HoldError(f"recording {serial}/{recording_id} is not in the archive")
        placed_at = float(self.clock())
        if until is not None and not (math.isfinite(until) and until > placed_at):
            raise HoldError(f"until {until!r} is not a time after now")
        with self.store._write() as db:
            if _is_purged(db, serial, recording_id):
                raise HoldError(f"recording {serial}/{recording_id} was already purged")
            cur = db.execute(
                "INSERT INTO holds (serial, recording_id, kind, reference, placed_at, "
                "placed_by, until) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (serial, recording_id, hold_kind.value, reference, placed_at, placed_by, until),
            )
            hold_id = int(cur.lastrowid or 0)
            self.audit.append(
                "hold_placed",
                placed_by,
                serial,
                {
                    "hold": hold_id,
                    "recording": recording_id,
                    "kind": hold_kind.value,
                    "reference": reference,
                    "until": None if until is None else utc_iso(until),
                },
            )
        return self.record(hold_id)

    def release(
        self, hold_id: int, released_by: str, supervisor_pin: str, reason: str
    ) -> HoldRecord:
        """End a hold early: only a supervisor, with their own PIN, giving a reason.
        A refusal is audited too (``hold_release_refused``)."""
        check = verify_pin(self.store, self.audit, released_by, supervisor_pin, "hold_release")
        officer = self.store.officer(released_by)
        why = None
        if not reason.strip():
            why = "a release needs a reason"
        elif check.locked:
            why = "supervisor PIN locked: another supervisor unlocks it"
        elif not check.ok or officer is None or officer.disabled:
            why = "unknown supervisor or wrong PIN"
        elif officer.role != "supervisor":
            why = f"{released_by} is not a supervisor"
        if why is not None:
            self.audit.append(
                "hold_release_refused", released_by, "", {"hold": hold_id, "why": why}
            )
            raise HoldError(f"release refused: {why}")
        with self.store._write() as db:
            row = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
            if row is None:
                raise HoldError(f"no hold {hold_id}")
            if row["released_at"] is not None:
                raise HoldError(f"hold {hold_id} was already released")
            db.execute(
                "UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? "
                "WHERE id = ?",
                (float(self.clock()), released_by, reason, hold_id),
            )
            self.audit.append(
                "hold_released",
                released_by,
                row["serial"],
                {
                    "hold": hold_id,
                    "recording": row["recording_id"],
                    "kind": row["kind"],
                    "reference": row["reference"],
                    "reason": reason,
                },
            )
        return self.record(hold_id)

    def record(self, hold_id: int) -> HoldRecord:
        row = self.store._db().execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
        if row is None:
            raise HoldError(f"no hold {hold_id}")
        return HoldRecord(**dict(row))

    def records(
        self, serial: str | None = None, recording_id: str | None = None
    ) -> list[HoldRecord]:
        """Every hold (released ones too), oldest first; or those of one recording."""
        params: tuple[str | None, ...]
        sql, params = "SELECT * FROM holds", ()
        if serial is not None:
            sql, params = sql + " WHERE serial = ? AND recording_id = ?", (serial, recording_id)
        rows = self.store._db().execute(sql + " ORDER BY id", params).fetchall()
        return [HoldRecord(**dict(r)) for r in rows]

    def holds_for(self, serial: str, recording_id: str) -> list[Hold]:
        """Every hold ever placed on the recording, for ``retention.decide``."""
        return [r.as_hold() for r in self.records(serial, recording_id)]


def _is_purged(db: sqlite3.Connection, serial: str, recording_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM purges WHERE serial = ? AND recording_id = ?", (serial, recording_id)
    ).fetchone()
    return row is not None


# --------------------------------------------------------------------------- purge


@dataclass(frozen=True)
class CaseFile:
    """The case file a recording is evidence in: it is kept as long as the case file
    (open: ``closed_at`` None)."""

    closed_at: Instant | None
    retention_days: int


#: ``(serial, recording_id) -> CaseFile | None``: where the dock learns about cases.
CaseLookup = Callable[[str, str], CaseFile | None]


@dataclass
class PurgeReport:
    """What a purge run did (or, in a dry run, would do).

    ``kept`` counts by reason code (``retention``, ``hold``, ``case_open``, ``invalid``,
    ``missing``, ...); ``items`` has one line per recording considered with the full reason.
    """

    dry_run: bool
    considered: int = 0
    #: "SERIAL/RECORDING" purged (dry run: would be purged).
    purged: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    #: Sealed bags (relative to the evidence folder) now missing payload files.
    bags_partial: list[str] = field(default_factory=list)
    #: Deletions that failed after being audited: retried on the next run.
    failed: dict[str, str] = field(default_factory=dict)
    #: Purges audited earlier whose file was gone but whose purge row was not written
    #: (a crash in between): the row is written now.
    completed: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def _item(self, entry: dict[str, Any], action: str, reason: str) -> None:
        self.items.append(
            {
                "serial": entry["serial"],
                "recording_id": entry["recording_id"],
                "path": entry["path"],
                "action": action,
                "reason": reason,
            }
        )
        if action == "keep":
            code = reason.split(":", 1)[0]
            self.kept[code] = self.kept.get(code, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def purge(
    store: Store,
    audit: AuditLog,
    holds: HoldRegister,
    evidence_dir: str,
    policy: Policy,
    now: Instant,
    *,
    dry_run: bool = True,
    case: CaseLookup | None = None,
    actor: str = "dock",
) -> PurgeReport:
    """Purge every archived recording that ``retention.decide`` lets go at ``now``.

    Per recording, in this order, so that a crash never leaves a deletion unrecorded:
    audit ``purge`` (hash, path, reason, bag links) -> make the file writable -> unlink
    its links in sealed bags under ``<evidence>/bags/`` and the file -> fsync the folders
    -> insert the ``purges`` row (``purged_at`` = ``now``) -> audit
    ``bag_partially_purged`` per bag that lost a file. After a crash, a file that still
    exists is decided and purged again (a second audit entry); a file already gone whose
    ``purge`` entry is in the audit log gets its row. A file gone *without* an audited
    purge is never recorded as purged: it is reported as kept, reason ``missing:``.

    ``case``: look-up of the case file a recording is evidence in (none: no cases).
    Retention is ``policy.retention_days`` from the recording's start (``start_ms``).
    """
    at = _epoch(now)
    report = PurgeReport(dry_run=dry_run)
    root = os.path.realpath(evidence_dir)
    db = store._db()
    done = {
        (r["serial"], r["recording_id"])
        for r in db.execute("SELECT serial, recording_id FROM purges").fetchall()
    }
    bags = _BagIndex(os.path.join(root, BAGS_DIR))
    audited: set[tuple[str, str]] | None = None
    for entry in store.archive_entries():
        serial, rid = entry["serial"], entry["recording_id"]
        if (serial, rid) in done:
            continue
        report.considered += 1
        name = f"{serial}/{rid}"
        path, problem = _archive_path(root, entry)
        keep, decision_reason = (
            (True, problem) if problem else _decide(entry, holds, policy, now, case)
        )
        if keep:
            report._item(entry, "keep", decision_reason)
            continue
        if not os.path.lexists(path):
            if audited is None:
                audited = _audited_purges(audit)
            if (serial, rid) not in audited:
                report._item(entry, "keep", "missing: file gone but no purge was ever recorded")
                continue
            if not dry_run:
                _record_purge(store, entry, at, "completed: purge audited before a restart")
            report.completed.append(name)
            report._item(entry, "complete", "purge audited earlier; file already gone")
            continue
        try:
            links = bags.links_to(path, bytes(entry["sha256"]))
        except OSError as exc:
            report._item(entry, "keep", f"invalid: cannot look for its bag copies: {exc}")
            continue
        partial = sorted({os.path.relpath(bag, root) for bag, _ in links})
        report.bags_partial.extend(b for b in partial if b not in report.bags_partial)
        if dry_run:
            report.purged.append(name)
            report._item(entry, "would_purge", decision_reason)
            continue
        audit.append(
            "purge",
            actor,
            serial,
            {
                "recording": rid,
                "sha256": bytes(entry["sha256"]).hex(),
                "size": entry["size"],
                "path": entry["path"],
                "reason": decision_reason,
                "bag_links": [os.path.relpath(link, root) for _, link in links],
            },
        )
        try:
            _delete(path, [link for _, link in links])
        except OSError as exc:
            report.failed[name] = str(exc)
            report._item(entry, "failed", f"deletion failed, retried next run: {exc}")
            audit.append("purge_failed", actor, serial, {"recording": rid, "error": str(exc)})
            continue
        _record_purge(store, entry, at, decision_reason)
        for bag in partial:
            removed = [
                os.path.relpath(link, os.path.join(root, bag)) for b, link in links if b == bag
            ]
            audit.append(
                "bag_partially_purged",
                actor,
                serial,
                {"bag": bag, "recording": rid, "removed": removed},
            )
        report.purged.append(name)
        report._item(entry, "purged", decision_reason)
    if not dry_run and (report.purged or report.completed or report.failed):
        audit.checkpoint()  # purges are signed at once
    return report


def _decide(
    entry: dict[str, Any],
    holds: HoldRegister,
    policy: Policy,
    now: Instant,
    case: CaseLookup | None,
) -> tuple[bool, str]:
    """(keep, reason) from ``retention.decide``, or keep when the case look-up fails."""
    start_ms = entry["start_ms"]
    ok_start = isinstance(start_ms, int) and not isinstance(start_ms, bool) and start_ms > 0
    start = start_ms / 1000 if ok_start else None
    case_kw: dict[str, Any] = {}
    if case is not None:
        try:
            found = case(entry["serial"], entry["recording_id"])
        except Exception as exc:  # any doubt keeps
            return True, f"invalid: case look-up failed: {exc}"
        if found is not None:
            case_kw = {
                "case_closed_at": found.closed_at,
                "case_retention_days": found.retention_days,
            }
    held = holds.holds_for(entry["serial"], entry["recording_id"])
    decision = decide(start, policy.retention_days, held, now, **case_kw)  # type: ignore[arg-type]
    return decision.keep, decision.reason


def _archive_path(root: str, entry: dict[str, Any]) -> tuple[str, str | None]:
    """The file's absolute path, or why the archive row cannot be trusted to name one."""
    rel = entry["path"]
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return "", f"invalid: archive path {rel!r} is not relative to the evidence folder"
    path = os.path.normpath(os.path.join(root, rel))
    first = os.path.relpath(path, root).split(os.sep)[0]
    if first in ("..", BAGS_DIR, "quarantine"):
        return "", f"invalid: archive path {rel!r} is outside the archive proper"
    if os.path.lexists(path):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return path, f"invalid: {rel} is not a regular file"
        if st.st_size != entry["size"]:
            return path, f"invalid: {rel} is {st.st_size} bytes, the archive says {entry['size']}"
    return path, None


class _BagIndex:
    """Files under ``<evidence>/bags``, read once per run: a bag holds footage as hard
    links (same inode) or, where linking was impossible, as copies (same name and hash)."""

    def __init__(self, bags_root: str) -> None:
        self.root = bags_root
        self._by_inode: dict[tuple[int, int], list[str]] | None = None
        self._by_name: dict[str, list[str]] = {}

    def _load(self) -> dict[tuple[int, int], list[str]]:
        if self._by_inode is None:
            self._by_inode = {}
            for folder, _, names in os.walk(self.root):
                for n in names:
                    p = os.path.join(folder, n)
                    st = os.lstat(p)
                    if stat.S_ISREG(st.st_mode):
                        self._by_inode.setdefault((st.st_dev, st.st_ino), []).append(p)
                        self._by_name.setdefault(n, []).append(p)
        return self._by_inode

    def links_to(self, path: str, sha256: bytes) -> list[tuple[str, str]]:
        """(bag folder, file) for every copy of ``path`` inside a bag."""
        by_inode = self._load()
        st = os.lstat(path)
        found = list(by_inode.get((st.st_dev, st.st_ino), []))
        for p in self._by_name.get(os.path.basename(path), []):
            if p not in found and os.lstat(p).st_size == st.st_size and _sha256(p) == sha256:
                found.append(p)
        return [(self._bag_of(p), p) for p in sorted(found)]

    def _bag_of(self, p: str) -> str:
        """The bag folder holding ``p``: the nearest folder with a bagit.txt."""
        folder = os.path.dirname(p)
        while folder.startswith(self.root + os.sep):
            if os.path.exists(os.path.join(folder, "bagit.txt")):
                return folder
            folder = os.path.dirname(folder)
        return os.path.dirname(p)


def _sha256(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.digest()


def _delete(path: str, links: list[str]) -> None:
    """Unlink the bag links and the file, then make the removals durable."""
    os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IWUSR)
    folders = {os.path.dirname(path)}
    for link in links:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        folders.add(os.path.dirname(link))
    os.unlink(path)
    for folder in sorted(folders):
        _fsync_dir(folder)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_purge(store: Store, entry: dict[str, Any], at: float, reason: str) -> None:
    with store._write() as db:
        db.execute(
            "INSERT OR IGNORE INTO purges (serial, recording_id, sha256, path, purged_at, "
            "reason) VALUES (?, ?, ?, ?, ?, ?)",
            (entry["serial"], entry["recording_id"], entry["sha256"], entry["path"], at, reason),
        )


def _audited_purges(audit: AuditLog) -> set[tuple[str, str]]:
    return {(e.subject, str(e.data.get("recording"))) for e in audit.entries() if e.kind == "purge"}


def purges(store: Store) -> list[dict[str, Any]]:
    """The purge records, oldest first (hash as hex)."""
    ensure_tables(store)
    rows = store._db().execute("SELECT * FROM purges ORDER BY purged_at, rowid").fetchall()
    return [dict(r) | {"sha256": bytes(r["sha256"]).hex()} for r in rows]


# --------------------------------------------------------------------------- deadlines


def deadline_report(store: Store, policy: Policy, tz: str, now: Instant) -> list[dict[str, Any]]:
    """Every returned custody episode against its offload deadline, oldest return first.

    When an episode counts as offloaded (the store knows archive rows, not which footage
    was on the recorder at its return), the rule is:

    1. ``offloaded_at`` = the latest ``archived_at`` of the serial's archive rows archived
       at or after the return (``in_at``), up to ``now`` and before the serial's next
       check-out (later rows belong to a later episode) -- basis ``archive``;
    2. else, when the serial's next check-out happened (by ``now``) without a supervisor
       override, it passed the ``footage_pending`` check, so nothing of this episode was
       left to offload: done at its return -- basis ``nothing_pending``;
    3. else not offloaded (``offloaded_at`` None): ``on_time``, ``at_risk`` or ``overdue``.

    Limits: an offload that archived only part of the footage counts as an offload
    (the failure shows on the slot and in the audit log); a recorder returned with no
    footage shows as due until its next check-out. Public holidays are not known to the
    dock, so working-day deadlines count Monday to Friday.
    """
    at = _epoch(now)
    db = store._db()
    episodes = db.execute(
        "SELECT id, serial, officer_id, out_at, in_at, override_by FROM custody ORDER BY out_at, id"
    ).fetchall()
    by_serial: dict[str, list[sqlite3.Row]] = {}
    for e in episodes:
        by_serial.setdefault(e["serial"], []).append(e)
    rows: list[dict[str, Any]] = []
    for e in sorted((e for e in episodes if e["in_at"] is not None), key=lambda e: e["in_at"]):
        in_at = float(e["in_at"])
        later = [n for n in by_serial[e["serial"]] if n["id"] != e["id"] and n["out_at"] >= in_at]
        nxt = later[0] if later else None
        sql = (
            "SELECT max(archived_at) FROM archive WHERE serial = ? AND archived_at >= ? "
            "AND archived_at <= ?"
        )
        params: tuple[Any, ...] = (e["serial"], in_at, at)
        if nxt is not None:
            sql, params = sql + " AND archived_at < ?", (*params, float(nxt["out_at"]))
        found = db.execute(sql, params).fetchone()[0]
        basis: str | None = None
        offloaded_at: float | None = None
        if found is not None:
            offloaded_at, basis = float(found), "archive"
        elif nxt is not None and nxt["out_at"] <= at and nxt["override_by"] is None:
            offloaded_at, basis = in_at, "nothing_pending"
        ds = deadline_status(in_at, offloaded_at, at, policy, tz)
        deadline = ds.deadline.timestamp()
        rows.append(
            {
                "custody_id": e["id"],
                "serial": e["serial"],
                "officer_id": e["officer_id"],
                "returned_at": utc_iso(in_at),
                "deadline_utc": utc_iso(deadline),
                "deadline_local": local_display(deadline, tz),
                "offloaded_at": None if offloaded_at is None else utc_iso(offloaded_at),
                "offload_basis": basis,
                "state": ds.state,
                "remaining_s": round(ds.remaining.total_seconds(), 3),
            }
        )
    return rows


def overdue_or_at_risk(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that need someone to act: the alert of REQUIREMENTS.md §4."""
    return [r for r in report if r["state"] in ("overdue", "at_risk")]


# --------------------------------------------------------------------------- helpers


def _epoch(t: Instant) -> float:
    """Epoch seconds from an aware datetime or a number; a naive datetime is refused."""
    if isinstance(t, datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("now is a naive datetime; pass an aware one or epoch seconds")
        return t.astimezone(UTC).timestamp()
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"now {t!r} is neither an aware datetime nor epoch seconds")
    return float(t)


__all__ = [
    "CaseFile",
    "CaseLookup",
    "HoldError",
    "HoldRecord",
    "HoldRegister",
    "PurgeReport",
    "deadline_report",
    "ensure_tables",
    "overdue_or_at_risk",
    "purge",
    "purges",
]
