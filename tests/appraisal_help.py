"""An approved appraisal for tests that apply a purge (004 att.2 §6: destruction follows
an approved appraisal): proposed by one supervisor, approved by another, listing what a
dry run at ``now`` would purge (or, when nothing would, every recording still archived)."""

from __future__ import annotations

from typing import Any

from dock.evidence.appraisals import Appraisal, AppraisalRegister
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_records import gone_or_going
from dock.evidence.purging import purge

_LAST: dict[str, Appraisal] = {}


def approved_appraisal(
    svc: Any,
    now: float,
    proposer: tuple[str, str] = ("9001", "999000"),
    approver: tuple[str, str] = ("9002", "808541"),
) -> Appraisal:
    dry = purge(svc.store, svc.audit, HoldRegister(svc.store, svc.audit), svc.offloader.seals,
                svc.offloader.evidence_dir, svc.policy, now, dry_run=True)  # fmt: skip
    listed = [tuple(p.split("/", 1)) for p in dry.purged]
    if not listed:
        gone = gone_or_going(svc.store)
        listed = [(e["serial"], e["recording_id"]) for e in svc.store.archive_entries()
                  if (e["serial"], e["recording_id"]) not in gone]  # fmt: skip
    if not listed:  # nothing left to appraise: the last appraisal, cited again
        return _LAST[svc.store.path]
    register = AppraisalRegister(svc.store, svc.audit, clock=lambda: now)
    proposed = register.propose(proposer[0], proposer[1], "retention ended", listed)
    register.approve(proposed.id, approver[0], approver[1])
    found = register.for_purge(proposed.id, now)
    _LAST[svc.store.path] = found
    return found
