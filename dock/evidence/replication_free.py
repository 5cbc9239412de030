"""Local copies freed after the second copy (``[replication] free_local_after_days``).

A package's local footage may go only when every configured target holds a verified
replica of it (:func:`.replication.may_free_local`), the newest of those verifications
is at least ``free_local_after_days`` old, and nothing else keeps any of its recordings:
no hold of any kind (recording, case, officer, episode), no open case, no appraisal
under way, retention (``retention.decide``: its minimum, closed cases) lets it go, no
working copy of it is out. Any doubt keeps; a package goes whole or not at all.

It is a purge (:mod:`.purging`), never a second deletion mechanism: the intent and its
``purge_intent`` entry first, the reason ``freed_after_replication`` naming each target,
its remote path and ``verified_at``; :func:`.purging.complete` finishes a batch a crash
left. The archive row keeps ``second_copy_where`` (the target and path) and the queue
row keeps ``verified_at``: the footage stays findable at the target. 0 (the default):
never freed by this rule.
"""

from __future__ import annotations

import os
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.policy import Policy
from dock.domain.replica import safe_relpath
from dock.evidence.appraisals import AppraisalRegister
from dock.evidence.bagit import BagError, tagmanifest_digest
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_batches import Group, PurgeReport, archive_path, package_dir, run_batch
from dock.evidence.purge_intent import intent, recording_start
from dock.evidence.purge_records import gone_or_going
from dock.evidence.purging import complete
from dock.evidence.retention import decide
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import PurgeTable
from dock.storage.replication_table import ReplicationTable
from dock.storage.store import Store
from dock.storage.working_copy_table import WorkingCopyTable

#: The purge reason code of a copy freed here.
REASON = "freed_after_replication"
DAY_S = 86400.0


def free_local(
    store: Store,
    audit: AuditLog,
    holds: HoldRegister,
    seals: SealRegister,
    evidence_dir: str,
    policy: Policy,
    dock_id: str,
    targets: list[str],
    days: int,
    now: float,
) -> PurgeReport:
    """Free every package the rule lets go at ``now`` (module docstring); first
    finishes every unfinished purge. Nothing when ``days`` is 0 or no target is set."""
    report = PurgeReport(dry_run=False)
    if days <= 0 or not targets:
        return report
    root = os.path.realpath(evidence_dir)
    complete(store, audit, seals, evidence_dir, report=report)
    gone = gone_or_going(store)
    queue = ReplicationTable(store)
    batched = PurgeTable(store).batched_seals()
    copies = {r["what"] for r in WorkingCopyTable(store).present()}
    appraised: set[tuple[str, str]] = set()
    for a in AppraisalRegister(store, audit).every():
        if a.state in ("proposed", "approved"):
            appraised |= a.covers()
    for seal in seals.table.audited().values():
        if seal["id"] in batched:
            continue
        members = [m for m in seals.members(seal["id"]) if (m["serial"], m["recording_id"])
                   not in gone]  # fmt: skip
        if not members:
            continue
        replicas = queue.verified_replicas(seal["id"], targets)
        if replicas is None or max(r["verified_at"] for r in replicas) + days * DAY_S > now:
            continue
        remote = f"{safe_relpath(dock_id)}/{os.path.basename(seal['bag'])}"
        replicas = [{"target": r["target"], "remote": remote, "verified_at": r["verified_at"]}
                    for r in replicas]  # fmt: skip
        entries = [store.archived(m["serial"], m["recording_id"]) for m in members]
        why = _kept(root, seal, entries, holds, policy, now, copies, appraised, store)
        if why is not None:
            for e in entries:
                if e is not None:
                    report._item(e, "keep", why)
            continue
        where = "; ".join(f"{r['target']}: {r['remote']} verified {utc_iso(r['verified_at'])}"
                          for r in replicas)  # fmt: skip
        group = Group(seal, [(e, f"{REASON}: {where}") for e in entries if e is not None])
        extra = {"freed_after_replication": {"days": days, "replicas": replicas}}
        batch = intent(store, audit, seals, root, policy, now, group, [], (), "dock", holds,
                       None, extra=extra)  # fmt: skip
        if batch is None:
            continue
        if run_batch(store, audit, seals, root, batch, report):
            for e, reason in group.leaving:
                report.purged.append(f"{e['serial']}/{e['recording_id']}")
                report._item(e, "purged", reason)
    if report.purged or report.completed or report.failed:
        audit.checkpoint()  # purges are signed at once
    return report


def _kept(
    root: str,
    seal: dict[str, Any],
    entries: list[dict[str, Any] | None],
    holds: HoldRegister,
    policy: Policy,
    now: float,
    copies: set[str],
    appraised: set[tuple[str, str]],
    store: Store,
) -> str | None:
    """Why the package's local copy stays (the first reason found), or None."""
    try:
        digest = tagmanifest_digest(package_dir(root, seal["bag"]))
    except (OSError, BagError) as exc:
        return f"invalid: package {seal['bag']} cannot be read ({exc})"
    if digest != seal["tagmanifest_sha256"]:
        return f"invalid: package {seal['bag']} no longer matches its seal"
    for e in entries:
        if e is None:
            return "invalid: a member of the package is not in the archive"
        name = f"{e['serial']}/{e['recording_id']}"
        path, problem = archive_path(root, e)
        if problem or not os.path.lexists(path):
            return problem or f"missing: {name} is not on disk"
        if name in copies:
            return f"working_copy: a working copy of {name} is out"
        if (e["serial"], e["recording_id"]) in appraised:
            return f"appraisal: {name} is in an appraisal under way"
        cases = store.cases_of_recording(e["serial"], e["recording_id"])
        if any(c["closed_at"] is None for c in cases):
            return f"case_open: {name} is attached to an open case"
        closed = {"case_closed_at": max(float(c["closed_at"]) for c in cases),
                  "case_retention_days": 0} if cases else {}  # fmt: skip
        held = holds.holds_for(e["serial"], e["recording_id"])
        decision = decide(recording_start(e), policy.retention_days, held, now, **closed)  # type: ignore[arg-type]
        if decision.keep:
            return f"{decision.reason} ({name})"
    return None
