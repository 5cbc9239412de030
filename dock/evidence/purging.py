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

Split by step: :mod:`.purge_intent` writes a batch's intent, :mod:`.purge_batches`
carries a batch to ``done``, :mod:`.purge_records` answers what is gone or going; this
module decides (:func:`purge`) and finishes what a crash left (:func:`complete`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.policy import Policy
from dock.evidence.appraisals import Appraisal
from dock.evidence.bagit import BagError, tagmanifest_digest
from dock.evidence.deadlines import epoch_seconds
from dock.evidence.fixity import check_file
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_batches import (
    RECORD_FILE,
    Group,
    PurgeReport,
    archive_path,
    package_dir,
    run_batch,
)
from dock.evidence.purge_intent import CaseFile, CaseLookup, intent, recording_start
from dock.evidence.purge_records import gone_or_going, purge_state, purges, retired_bags, unfinished
from dock.evidence.retention import Instant, decide
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import PurgeTable
from dock.storage.store import Store

log = logging.getLogger("dock.purge")

__all__ = [
    "RECORD_FILE",
    "CaseFile",
    "CaseLookup",
    "PurgeReport",
    "complete",
    "gone_or_going",
    "purge",
    "purge_state",
    "purges",
    "retired_bags",
    "unfinished",
]


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
    appraisal: Appraisal | None = None,
) -> PurgeReport:
    """Purge every archived recording that ``retention.decide`` lets go at ``now``.

    ``approved_by``: the two supervisors (different people, their PINs checked by the
    caller through ``dock.storage.pins``) who approve it; required unless ``dry_run``. ``actor``
    is who typed the command (the login), recorded beside them. First finishes every
    unfinished purge (:func:`complete`), then one batch per package (module docstring).
    ``case``: look-up of the case file a recording is evidence in (none: no cases).
    ``appraisal``: the approved appraisal the purge cites (004 att.2 §6: destruction
    follows an approved appraisal), checked by the caller
    (:meth:`.appraisals.AppraisalRegister.for_purge`); required unless ``dry_run``. Only
    the recordings it lists may go; the others are kept (``unappraised``).
    Retention is ``policy.retention_days`` from the recording's start (``start_ms``).
    """
    at = epoch_seconds(now)
    report = PurgeReport(dry_run=dry_run)
    if not dry_run and (
        len(approved_by) != 2 or len(set(approved_by)) != 2 or not all(approved_by)
    ):
        raise ValueError("a purge needs two different supervisors (four eyes)")
    if not dry_run and appraisal is None:
        raise ValueError("a purge needs an approved appraisal (004 att.2 §6)")
    appraised = None if appraisal is None else appraisal.covers()
    root = os.path.realpath(evidence_dir)
    if dry_run:
        report.pending = [f"{b['old_bag']} ({b['state']})" for b in unfinished(store)]
    else:
        complete(store, audit, seals, evidence_dir, report=report)
    gone = gone_or_going(store)
    sealed: dict[Any, dict[str, Any]] = seals.table.audited()
    batched = PurgeTable(store).batched_seals()
    groups: dict[Any, Group] = {}
    legacy: set[tuple[str, str]] | None = None
    for entry in store.archive_entries():
        serial, rid = entry["serial"], entry["recording_id"]
        if (serial, rid) in gone:
            continue
        report.considered += 1
        path, problem = archive_path(root, entry)
        keep, reason = (True, problem) if problem else _decide(entry, holds, policy, now, case)
        seal_id = entry.get("bag_id")
        if not keep and appraised is not None and (serial, rid) not in appraised:
            keep, reason = True, f"unappraised: not in appraisal {appraisal.id}"  # type: ignore[union-attr]
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
        groups.setdefault(seal_id, Group(sealed[seal_id])).leaving.append((entry, reason))

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
        batch = intent(store, audit, seals, root, policy, at, group, staying,
                        approved_by, actor, holds, case, appraisal=appraisal)  # fmt: skip
        if batch is None:  # another process started a purge of this package meanwhile
            for entry, _reason in group.leaving:
                report._item(entry, "keep", "pending: another purge of its package under way")
            continue
        done = run_batch(store, audit, seals, root, batch, report)
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
    start = recording_start(entry)
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


def _package_problem(root: str, seal: dict[str, Any]) -> str | None:
    """Why a package may not be replaced now: not on disk, or not what was sealed."""
    try:
        digest = tagmanifest_digest(package_dir(root, seal["bag"]))
    except (OSError, BagError) as exc:
        return f"package {seal['bag']} cannot be read ({exc}): run dock archive verify"
    if digest != seal["tagmanifest_sha256"]:
        return (
            f"package {seal['bag']} no longer matches its seal (tag manifest SHA-256 "
            f"{digest}): run dock archive verify"
        )
    return None


def _staying(seals: SealRegister, group: Group, gone: set[tuple[str, str]]) -> list[dict[str, Any]]:
    leaving = {(e["serial"], e["recording_id"]) for e, _ in group.leaving}
    return [
        m
        for m in seals.members(group.seal["id"])
        if (m["serial"], m["recording_id"]) not in leaving | gone
    ]


def _damaged(root: str, staying: list[dict[str, Any]]) -> str | None:
    """A remaining recording whose archived file is not intact: the old package may be
    the only good copy, so it is not replaced."""
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
        if e.kind == AuditKind.PURGE and "recording" in e.data
    }


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
    root = os.path.realpath(evidence_dir)
    table = PurgeTable(store)
    for batch in unfinished(store):
        if run_batch(store, audit, seals, root, batch, report):
            report.completed.append(f"{batch['old_bag']} (purge {batch['token']})")
    for seal in table.left_partial():
        key = (store.path, seal["id"])
        if key in _REPAIR_REFUSED:  # tried (every remaining file read) once per process
            continue
        gone = {(m["serial"], m["recording_id"]) for m in table.purged_members(seal["id"])}
        group = Group(seal)
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
                "audit_entries": [e.seq for e in audit.entries() if e.kind == AuditKind.PURGE
                                  and e.subject == m["serial"]
                                  and e.data.get("recording") == m["recording_id"]],
            }
            for m in table.purged_members(seal["id"])
        ]  # fmt: skip
        # The earlier purge already took the files: this batch re-seals what remains.
        group.leaving = [(m, "purged by an earlier version of the dock") for m in
                         table.purged_members(seal["id"])]  # fmt: skip
        repair = intent(store, audit, seals, root, None, time.time(), group, staying,
                        (), "dock", None, None, legacy)  # fmt: skip
        if repair is not None and run_batch(store, audit, seals, root, repair, report):
            report.completed.append(f"{seal['bag']} (left partial by an earlier version)")
    if standalone and len(report.completed) > before:
        audit.checkpoint()  # purges are signed at once
    return report
