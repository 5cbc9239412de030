"""Purges that leave the archive valid (REQUIREMENTS.md §6; 004 att.2 §6: destruction
follows an approved appraisal, and every purge is recorded).

``retention.decide`` says whether a recording may go; this module carries it out.
Archived footage is sealed in BagIt packages (:mod:`.seals`) whose tag-manifest digest
is in the audit log, so a file taken out of a package would leave it invalid for ever
(and ``dock archive verify`` failing for ever). Instead, each package that loses
recordings is *replaced*, by a purge batch that moves through these states, each
durable before the next step starts:

``intent``
    the batch, its members and the purge record -- who approved it (two supervisors),
    who typed the command, when, the retention rule (policy and period), the holds
    checked for each recording, each purged file's path, size and SHA-256, the package
    and its tag-manifest digest -- are in the dock database, and the ``purge_intent``
    audit entry carrying the record is in the log: one transaction. Nothing on disk has
    changed yet.
``resealed`` (only when recordings remain in the package)
    a new package holding the remaining recordings and ``purge-record.json`` (this
    purge's record after those of earlier purges of the same footage) is made and
    sealed like any package: its ``seal`` entry names the package it ``supersedes``
    and that package's digest, and the remaining recordings move to it
    (:meth:`.seals.SealRegister.reseal`).
``done``
    the purged files are unlinked, the old package is renamed aside (out of ``bags/``)
    and deleted, then the ``purge`` audit entry (the old package, what superseded it,
    the recordings, the record's digest), the ``purges`` rows and the batch's state are
    written in one transaction. When every recording of a package is purged, the
    package goes with nothing to supersede it: the record stays in the audit log (both
    entries) and in the database (``purge_batches``, ``purges``), which ``dock audit
    export`` carries; no file of it is left on the evidence disk.

:func:`complete` takes every batch from wherever a crash left it to ``done``: ``dock
purge --apply`` runs it first and the daemon's housekeeping runs it, so a kill at any
step leaves a state the next run finishes. A batch that reached ``intent`` is always
completed, never decided again: the decision was made and audited. The old package
stays whole (its files are hard links of the archive's) until the new one is sealed,
so at every instant each remaining recording is in a valid, sealed package.

It also repairs packages an earlier version of the dock left partial (it unlinked
purged files from sealed packages): such a package is re-sealed the same way, its
record naming the earlier ``purge`` entries.

Any doubt keeps: besides ``retention.decide``'s reasons, a file that is not what the
archive says, a path outside the archive, a recording in no sealed package, a package
whose digest no longer matches its seal, or a remaining recording whose file no longer
hashes to its capture hash keeps every recording of that package. Dry run by default.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.policy import Policy
from dock.evidence.bagit import TMP_PREFIX, BagError, tagmanifest_digest
from dock.evidence.holds import HoldRegister, _epoch, ensure_tables
from dock.evidence.retention import Instant, decide
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.store import Store
from dock.support import crashpoints
from dock.support.files import fsync_dir

log = logging.getLogger("dock.purge")

BAGS_DIR = "bags"
#: The tag file of a re-sealed package listing what left it, when and why.
RECORD_FILE = "purge-record.json"
RECORD_FORMAT = "bwc-dock purge record 1"

__all__ = [
    "RECORD_FILE",
    "CaseFile",
    "CaseLookup",
    "PurgeReport",
    "complete",
    "gone_or_going",
    "purge",
    "retired_bags",
    "unfinished",
]


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
    ``missing``, ``unsealed``, ``pending``, ...); ``items`` has one line per recording
    considered with the full reason.
    """

    dry_run: bool
    considered: int = 0
    #: "SERIAL/RECORDING" purged (dry run: would be purged).
    purged: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    #: Packages replaced: {"bag", "as" (the new package), "remaining"} (dry run: "as" None).
    resealed: list[dict[str, Any]] = field(default_factory=list)
    #: Packages removed whole: every recording in them purged (dry run: would be).
    removed: list[str] = field(default_factory=list)
    #: Purges a crash (or an earlier version) left unfinished, finished now.
    completed: list[str] = field(default_factory=list)
    #: Dry run: unfinished purges that ``--apply`` (or the daemon) will finish.
    pending: list[str] = field(default_factory=list)
    #: Package -> why its purge failed now (audited as purge_failed; retried next run).
    failed: dict[str, str] = field(default_factory=dict)
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


@dataclass
class _Group:
    """One sealed package and what leaves it."""

    seal: dict[str, Any]
    leaving: list[tuple[dict[str, Any], str]] = field(default_factory=list)


# --------------------------------------------------------------------------- purge


def purge(
    store: Store,
    audit: AuditLog,
    holds: HoldRegister,
    seals: SealRegister,
    evidence_dir: str,
    policy: Policy,
    now: Instant,
    *,
    dry_run: bool = True,
    approved_by: tuple[str, ...] = (),
    actor: str = "",
    case: CaseLookup | None = None,
) -> PurgeReport:
    """Purge every archived recording that ``retention.decide`` lets go at ``now``.

    ``approved_by``: the two supervisors (different people, their PINs checked by the
    caller through ``dock.storage.pins``) who approve it; required unless ``dry_run``. ``actor``
    is who typed the command (the login), recorded beside them. First finishes every
    unfinished purge (:func:`complete`), then one batch per package (module docstring).
    ``case``: look-up of the case file a recording is evidence in (none: no cases).
    Retention is ``policy.retention_days`` from the recording's start (``start_ms``).
    """
    at = _epoch(now)
    report = PurgeReport(dry_run=dry_run)
    if not dry_run and (
        len(approved_by) != 2 or len(set(approved_by)) != 2 or not all(approved_by)
    ):
        raise ValueError("a purge needs two different supervisors (four eyes)")
    ensure_tables(store)
    root = os.path.realpath(evidence_dir)
    if dry_run:
        report.pending = [f"{b['old_bag']} ({b['state']})" for b in unfinished(store)]
    else:
        complete(store, audit, seals, evidence_dir, report=report)
    db = store._db()
    gone = gone_or_going(store)
    sealed = {r["id"]: dict(r) for r in db.execute("SELECT * FROM seals WHERE state = 'audited'")}
    batched = {r[0] for r in db.execute("SELECT seal_id FROM purge_batches") if r[0] is not None}
    groups: dict[int, _Group] = {}
    legacy: set[tuple[str, str]] | None = None
    for entry in store.archive_entries():
        serial, rid = entry["serial"], entry["recording_id"]
        if (serial, rid) in gone:
            continue
        report.considered += 1
        path, problem = _archive_path(root, entry)
        keep, reason = (True, problem) if problem else _decide(entry, holds, policy, now, case)
        seal_id = entry.get("bag_id")
        if not keep and seal_id not in sealed:
            keep, reason = True, "unsealed: in no sealed package yet (sealed at the next offload)"
        elif not keep and seal_id in batched:
            keep, reason = True, "pending: an unfinished purge of its package comes first"
        if not keep and not os.path.lexists(path):
            if legacy is None:
                legacy = _audited_purges(audit)
            if (serial, rid) not in legacy:
                keep, reason = True, "missing: file gone but no purge was ever recorded"
        if keep:
            report._item(entry, "keep", reason)
            continue
        groups.setdefault(seal_id, _Group(sealed[seal_id])).leaving.append((entry, reason))

    for group in groups.values():
        why = _package_problem(root, group.seal)
        staying = _staying(seals, group, gone)
        if why is None and not dry_run:
            why = _damaged(root, staying)
        if why is not None:
            for entry, _reason in group.leaving:
                report._item(entry, "keep", f"invalid: {why}; nothing of it purged")
            continue
        old = group.seal["bag"]
        if dry_run:
            if staying:
                report.resealed.append({"bag": old, "as": None, "remaining": len(staying)})
            else:
                report.removed.append(old)
            for entry, reason in group.leaving:
                report.purged.append(f"{entry['serial']}/{entry['recording_id']}")
                report._item(entry, "would_purge", reason)
            continue
        batch = _intent(store, audit, seals, root, policy, at, group, staying,
                        approved_by, actor, holds, case)  # fmt: skip
        if batch is None:  # another process started a purge of this package meanwhile
            for entry, _reason in group.leaving:
                report._item(entry, "keep", "pending: another purge of its package under way")
            continue
        done = _run_locked(store, audit, seals, root, batch, report)
        for entry, reason in group.leaving:
            name = f"{entry['serial']}/{entry['recording_id']}"
            if done:
                report.purged.append(name)
                report._item(entry, "purged", reason)
            else:
                failed = report.failed.get(old, "")
                report._item(entry, "failed", f"purge failed, finished by the next run: {failed}")
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
    start = _start(entry)
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


def _start(entry: dict[str, Any]) -> float | None:
    start_ms = entry["start_ms"]
    ok = isinstance(start_ms, int) and not isinstance(start_ms, bool) and start_ms > 0
    return start_ms / 1000 if ok else None


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


def _bag_dir(root: str, bag: str) -> str:
    """A package's folder, refused unless it lies under ``<evidence>/bags/``."""
    path = os.path.normpath(os.path.join(root, bag))
    if os.path.isabs(bag) or not path.startswith(os.path.join(root, BAGS_DIR) + os.sep):
        raise BagError(f"package path {bag!r} lies outside {BAGS_DIR}/")
    return path


def _package_problem(root: str, seal: dict[str, Any]) -> str | None:
    """Why a package may not be replaced now: not on disk, or not what was sealed."""
    try:
        bag_dir = _bag_dir(root, seal["bag"])
        digest = tagmanifest_digest(bag_dir)
    except (OSError, BagError) as exc:
        return f"package {seal['bag']} cannot be read ({exc}): run dock archive verify"
    if digest != seal["tagmanifest_sha256"]:
        return (
            f"package {seal['bag']} no longer matches its seal (tag manifest SHA-256 "
            f"{digest}): run dock archive verify"
        )
    return None


def _staying(
    seals: SealRegister, group: _Group, gone: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    leaving = {(e["serial"], e["recording_id"]) for e, _ in group.leaving}
    return [
        m
        for m in seals.members(group.seal["id"])
        if (m["serial"], m["recording_id"]) not in leaving | gone
    ]


def _damaged(root: str, staying: list[dict[str, Any]]) -> str | None:
    """A remaining recording whose archived file is not intact: the old package may be
    the only good copy, so it is not replaced."""
    from dock.evidence.fixity import check_file  # fixity imports this module

    for m in staying:
        problems = check_file(root, m, None)
        if problems:
            return f"remaining recording {m['serial']}/{m['recording_id']}: {problems[0]}"
    return None


def _audited_purges(audit: AuditLog) -> set[tuple[str, str]]:
    """Recordings an earlier version audited as purged (one ``purge`` entry each)."""
    return {
        (e.subject, str(e.data.get("recording")))
        for e in audit.entries()
        if e.kind == "purge" and "recording" in e.data
    }


# --------------------------------------------------------------------------- a batch


def _intent(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    root: str,
    policy: Policy | None,
    at: float,
    group: _Group,
    staying: list[dict[str, Any]],
    approved_by: tuple[str, ...],
    actor: str,
    holds: HoldRegister | None,
    case: CaseLookup | None,
    legacy: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Write the batch and its ``purge_intent`` entry (one transaction); None when the
    package already has a batch (another process)."""
    seal = group.seal
    token = f"{datetime.fromtimestamp(at, UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    new_bag = _new_bag_path(seal["bag"], token) if staying else None
    recordings = []
    for entry, reason in group.leaving:
        item: dict[str, Any] = {
            "serial": entry["serial"],
            "recording": entry["recording_id"],
            "officer": entry["officer_id"],
            "start": utc_iso(entry["start_ms"] / 1000) if _start(entry) else None,
            "path": entry["path"],
            "size": entry["size"],
            "sha256": bytes(entry["sha256"]).hex(),
            "reason": reason,
        }
        if holds is not None:
            item["holds_checked"] = [
                h.as_dict() for h in holds.covering(entry["serial"], entry["recording_id"])
            ]
        if case is not None:
            with contextlib.suppress(Exception):  # decided with it a moment ago
                found = case(entry["serial"], entry["recording_id"])
                item["case_file"] = None if found is None else asdict(found)
        recordings.append(item)
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "purge": token,
        "at": utc_iso(at),
        "approved_by": list(approved_by),
        "requested_by": actor,
        "rule": None
        if policy is None
        else {
            "policy": policy.name,
            "retention_days": policy.retention_days,
            "counted_from": "recording start",
        },
        "package": {
            "bag": seal["bag"],
            "tagmanifest_sha256": seal["tagmanifest_sha256"],
            "recordings": [m["recording_id"] for m in seals.members(seal["id"])],
        },
        "resealed_as": new_bag,
        "recordings": recordings,
    }
    if legacy is not None:
        record["earlier_purges"] = legacy
    record_json = json.dumps(record, sort_keys=True, ensure_ascii=False)
    record_sha = hashlib.sha256(record_json.encode("utf-8")).hexdigest()
    package_record = None
    if new_bag is not None:
        earlier = _earlier_records(_bag_dir(root, seal["bag"]))
        package_record = (
            json.dumps(
                {"format": RECORD_FORMAT, "package": new_bag, "purges": [*earlier, record]},
                sort_keys=True,
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        ).encode("utf-8")
    leaving_ids = [e["recording_id"] for e, _ in group.leaving]
    who = approved_by[0] if approved_by else "dock"
    with seals.exclusive():
        try:
            with store._write() as db:
                cur = db.execute(
                    "INSERT INTO purge_batches (token, serial, seal_id, old_bag, old_digest, "
                    "new_bag, state, actor, record, package_record, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?, ?)",
                    (token, seal["serial"], seal["id"], seal["bag"], seal["tagmanifest_sha256"],
                     new_bag, who, record_json, package_record, at),
                )  # fmt: skip
                batch_id = cur.lastrowid
                for entry, reason in group.leaving:
                    db.execute(
                        "INSERT INTO purge_members (batch, serial, recording_id, reason) "
                        "VALUES (?, ?, ?, ?)",
                        (batch_id, entry["serial"], entry["recording_id"], reason),
                    )
                audit.append(
                    "purge_intent",
                    who,
                    seal["serial"],
                    {
                        "purge": token,
                        "bag": seal["bag"],
                        "tagmanifest_sha256": seal["tagmanifest_sha256"],
                        "resealed_as": new_bag,
                        "recordings": leaving_ids,
                        "approved_by": list(approved_by),
                        "by": actor,
                        "record": record,
                        "record_sha256": record_sha,
                    },
                )
        except sqlite3.IntegrityError:
            return None
    crashpoints.reach("purge.intent.after")
    row = store._db().execute("SELECT * FROM purge_batches WHERE id = ?", (batch_id,))
    return dict(row.fetchone())


def _new_bag_path(old: str, token: str) -> str:
    """Beside the old package: its name with the purge's token (never a seal's name)."""
    base = os.path.basename(old).split("-purged-")[0]
    return os.path.join(os.path.dirname(old), f"{base}-purged-{token}")


def _earlier_records(bag_dir: str) -> list[Any]:
    """The purge records the old package carries (it was re-sealed before)."""
    try:
        with open(os.path.join(bag_dir, RECORD_FILE), encoding="utf-8") as f:
            found = json.load(f).get("purges", [])
    except (OSError, ValueError, AttributeError):
        return []
    return found if isinstance(found, list) else []


def _run_locked(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    root: str,
    batch: dict[str, Any],
    report: PurgeReport,
) -> bool:
    """Take one batch to ``done`` under the seal lock; False (audited, reported) when a
    step fails: the batch stays where it is and the next run goes on from there."""
    try:
        with seals.exclusive():
            fresh = (
                store._db()
                .execute("SELECT * FROM purge_batches WHERE id = ?", (batch["id"],))
                .fetchone()
            )
            if fresh["state"] != "done":  # else: finished by another process meanwhile
                _run(store, audit, seals, root, dict(fresh))
    except (OSError, BagError, ValueError) as exc:
        why = f"{type(exc).__name__}: {exc}"
        log.error("purge %s of %s not finished (the next run goes on): %s",
                  batch["token"], batch["old_bag"], why)  # fmt: skip
        audit.append(
            "purge_failed", "dock", batch["serial"],
            {"purge": batch["token"], "bag": batch["old_bag"], "error": why},
        )  # fmt: skip
        report.failed[batch["old_bag"]] = why
        return False
    if batch["new_bag"]:
        remaining = len(seals.members(_seal_id(store, batch["new_bag"])))
        report.resealed.append({"bag": batch["old_bag"], "as": batch["new_bag"],
                                "remaining": remaining})  # fmt: skip
    else:
        report.removed.append(batch["old_bag"])
    return True


def _seal_id(store: Store, bag: str) -> int:
    row = store._db().execute("SELECT id FROM seals WHERE bag = ?", (bag,)).fetchone()
    return -1 if row is None else int(row[0])


def _run(
    store: Store, audit: AuditLog, seals: SealRegister, root: str, batch: dict[str, Any]
) -> None:
    """From ``intent`` or ``resealed`` to ``done``; every step may be run again."""
    db = store._db()
    members = [
        dict(r)
        for r in db.execute(
            "SELECT a.*, m.reason AS purge_reason FROM purge_members m JOIN archive a "
            "ON a.serial = m.serial AND a.recording_id = m.recording_id "
            "WHERE m.batch = ? ORDER BY a.start_ms, a.rowid",
            (batch["id"],),
        )
    ]
    leaving = {m["recording_id"] for m in members}
    old_bag = batch["old_bag"]
    if batch["state"] == "intent" and batch["new_bag"]:
        seals.reseal(
            batch["seal_id"],
            batch["new_bag"],
            leaving,
            tag_files={RECORD_FILE: bytes(batch["package_record"])},
            supersedes={"bag": old_bag, "tagmanifest_sha256": batch["old_digest"]},
            purge=batch["token"],
        )
        with store._write() as w:
            w.execute("UPDATE purge_batches SET state = 'resealed' WHERE id = ?", (batch["id"],))
        crashpoints.reach("purge.reseal.after")
    folders: set[str] = set()
    for m in members:
        path = _member_path(root, m)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        folders.add(os.path.dirname(path))
        crashpoints.reach("purge.file.after")
    for folder in sorted(folders):
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(folder)
    _retire(root, old_bag, batch["token"])
    crashpoints.reach("purge.done.before")
    record = json.loads(batch["record"])
    record_sha = hashlib.sha256(batch["record"].encode("utf-8")).hexdigest()
    now = time.time()
    with store._write() as w:
        for m in members:
            w.execute(
                "INSERT OR IGNORE INTO purges (serial, recording_id, sha256, path, purged_at, "
                "reason) VALUES (?, ?, ?, ?, ?, ?)",
                (m["serial"], m["recording_id"], m["sha256"], m["path"], now, m["purge_reason"]),
            )
        w.execute(
            "UPDATE purge_batches SET state = 'done', done_at = ? WHERE id = ?", (now, batch["id"])
        )
        if audit.find("purge", batch["serial"], purge=batch["token"]) is None:
            audit.append(
                "purge",
                batch["actor"],
                batch["serial"],
                {
                    "purge": batch["token"],
                    "bag": old_bag,
                    "tagmanifest_sha256": batch["old_digest"],
                    "superseded_by": batch["new_bag"],
                    "removed": True,
                    "recordings": sorted(leaving),
                    "approved_by": record.get("approved_by", []),
                    "record_sha256": record_sha,
                },
            )


def _member_path(root: str, m: dict[str, Any]) -> str:
    """A purged recording's file, refused unless it lies in the archive proper."""
    path, problem = _archive_path(root, m)
    if not path:
        raise ValueError(f"{m['serial']}/{m['recording_id']}: {problem}")
    return path


def _retire(root: str, old_bag: str, token: str) -> None:
    """Remove the old package: renamed aside first (one step: it leaves ``bags/``
    listings whole), then deleted. Either may have happened before a crash."""
    bag_dir = _bag_dir(root, old_bag)
    parent = os.path.dirname(bag_dir)
    aside = os.path.join(parent, f"{TMP_PREFIX}purged-{token}")
    if os.path.lexists(bag_dir):
        if os.path.lexists(aside):
            shutil.rmtree(aside)
        os.rename(bag_dir, aside)
        fsync_dir(parent)
        crashpoints.reach("purge.bag.aside")
    if os.path.lexists(aside):
        shutil.rmtree(aside, ignore_errors=True)  # a seal's sweep of stale temps may race
        if os.path.lexists(aside):
            raise OSError(f"cannot remove {aside}")
        fsync_dir(parent)


# --------------------------------------------------------------------------- completion

#: Packages whose repair was refused in this process: tried and said once, not at every
#: sweep (a restart, or dock purge --apply, tries again).
_REPAIR_REFUSED: set[tuple[str, int]] = set()


def complete(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    evidence_dir: str,
    *,
    report: PurgeReport | None = None,
) -> PurgeReport:
    """Finish every purge a crash left unfinished, then repair packages an earlier
    version left partial (purged recordings unlinked from a sealed package). Cheap when
    there is nothing to do: the daemon runs it at every housekeeping."""
    standalone = report is None
    report = report if report is not None else PurgeReport(dry_run=False)
    before = len(report.completed)
    ensure_tables(store)
    root = os.path.realpath(evidence_dir)
    for batch in unfinished(store):
        if _run_locked(store, audit, seals, root, batch, report):
            report.completed.append(f"{batch['old_bag']} (purge {batch['token']})")
    for seal in _left_partial(store):
        key = (store.path, seal["id"])
        if key in _REPAIR_REFUSED:  # tried (every remaining file read) once per process
            continue
        gone = {(m["serial"], m["recording_id"]) for m in _purged_members(store, seal["id"])}
        group = _Group(seal)
        staying = _staying(seals, group, gone)
        why = _damaged(root, staying)
        if why is not None:
            if key not in _REPAIR_REFUSED:
                _REPAIR_REFUSED.add(key)
                log.error("package %s left partial by an earlier purge, not re-sealed: %s",
                          seal["bag"], why)  # fmt: skip
            continue
        legacy = [
            {
                "serial": m["serial"],
                "recording": m["recording_id"],
                "path": m["path"],
                "sha256": bytes(m["sha256"]).hex(),
                "purged_at": utc_iso(m["purged_at"]),
                "reason": m["reason"],
                "audit_entries": [e.seq for e in audit.entries() if e.kind == "purge"
                                  and e.subject == m["serial"]
                                  and e.data.get("recording") == m["recording_id"]],
            }
            for m in _purged_members(store, seal["id"])
        ]  # fmt: skip
        # The earlier purge already took the files: this batch re-seals what remains.
        group.leaving = [(m, "purged by an earlier version of the dock") for m in
                         _purged_members(store, seal["id"])]  # fmt: skip
        batch = _intent(store, audit, seals, root, None, time.time(), group, staying,
                        (), "dock", None, None, legacy)  # fmt: skip
        if batch is not None and _run_locked(store, audit, seals, root, batch, report):
            report.completed.append(f"{seal['bag']} (left partial by an earlier version)")
    if standalone and len(report.completed) > before:
        audit.checkpoint()  # purges are signed at once
    return report


def _left_partial(store: Store) -> list[dict[str, Any]]:
    """Sealed packages with members in ``purges`` that no purge batch replaced: what an
    earlier version left behind when it unlinked purged files from packages."""
    rows = store._db().execute(
        "SELECT DISTINCT s.* FROM seals s JOIN archive a ON a.bag_id = s.id "
        "JOIN purges p ON p.serial = a.serial AND p.recording_id = a.recording_id "
        "WHERE s.state = 'audited' AND s.id NOT IN "
        "(SELECT seal_id FROM purge_batches WHERE seal_id IS NOT NULL) ORDER BY s.id"
    )
    return [dict(r) for r in rows.fetchall()]


def _purged_members(store: Store, seal_id: int) -> list[dict[str, Any]]:
    rows = store._db().execute(
        "SELECT a.*, p.purged_at, p.reason FROM archive a JOIN purges p "
        "ON p.serial = a.serial AND p.recording_id = a.recording_id WHERE a.bag_id = ? "
        "ORDER BY a.start_ms, a.rowid",
        (seal_id,),
    )
    return [dict(r) for r in rows.fetchall()]


# --------------------------------------------------------------------------- for fixity


def gone_or_going(store: Store) -> set[tuple[str, str]]:
    """Recordings purged, or in a purge under way: no longer expected in the archive."""
    db = store._db()
    try:
        purged = db.execute("SELECT serial, recording_id FROM purges").fetchall()
        going = db.execute("SELECT serial, recording_id FROM purge_members").fetchall()
    except sqlite3.OperationalError:  # no purge tables yet: nothing was ever purged
        return set()
    return {(r[0], r[1]) for r in [*purged, *going]}


def unfinished(store: Store) -> list[dict[str, Any]]:
    """Purge batches not yet ``done``, oldest first."""
    try:
        rows = (
            store._db()
            .execute("SELECT * FROM purge_batches WHERE state != 'done' ORDER BY id")
            .fetchall()
        )
    except sqlite3.OperationalError:
        return []
    return [dict(r) for r in rows]


def retired_bags(audit: AuditLog) -> dict[str, int]:
    """Packages a purge replaced or removed -> the audit entry saying so: a ``seal``
    that ``supersedes`` it, or the ``purge`` entry that removed it. Their absence from
    the disk is expected."""
    retired: dict[str, int] = {}
    for e in audit.entries():
        if e.kind == "seal" and isinstance(e.data.get("supersedes"), dict):
            bag = e.data["supersedes"].get("bag")
        elif e.kind == "purge" and "purge" in e.data:
            bag = e.data.get("bag")
        else:
            continue
        if isinstance(bag, str):
            retired.setdefault(os.path.normpath(bag), e.seq)
    return retired
