"""Appraisals: destruction follows an approved appraisal (REQUIREMENTS.md §6; 004 att.2 §6).

A keeper or a supervisor *proposes* recordings for destruction, with a reason; a
supervisor other than the proposer *approves* it (or rejects it, saying why), on their own
PIN. An approval is valid for :data:`VALID_DAYS`. A purge that deletes anything cites an
approved, unexpired appraisal, and purges only the recordings it lists (and only those
``retention.decide`` still lets go: a hold placed after the appraisal still keeps);
:meth:`AppraisalRegister.for_purge` says in one line why an appraisal may not be cited.
Every step and every refusal is audited; the schema's triggers keep the tables (never
deleted, decided once, never by the proposer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import KEEPER, SUPERVISOR
from dock.evidence.purge_records import purge_state
from dock.storage.audit import AuditLog
from dock.storage.pins import authorise
from dock.storage.retention_tables import AppraisalTable
from dock.storage.store import Store

#: How long an approval may be cited by a purge (days).
VALID_DAYS = 30


class AppraisalError(Exception):
    """An appraisal step the data or the credentials do not allow (one line)."""


@dataclass(frozen=True)
class Appraisal:
    id: int
    proposed_by: str
    proposed_at: float
    reason: str
    state: str
    decided_by: str | None
    decided_at: float | None
    note: str | None
    expires_at: float | None
    recordings: tuple[tuple[str, str], ...]

    def covers(self) -> set[tuple[str, str]]:
        return set(self.recordings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "proposed_by": self.proposed_by,
            "proposed_at": utc_iso(self.proposed_at),
            "reason": self.reason,
            "state": self.state,
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else utc_iso(self.decided_at),
            "note": self.note,
            "expires_at": None if self.expires_at is None else utc_iso(self.expires_at),
            "recordings": [f"{s}/{r}" for s, r in self.recordings],
        }


class AppraisalRegister:
    """Appraisals in the dock database; every step with its audit entry."""

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.table = AppraisalTable(store)

    def refuse(self, who: str, appraisal: int | None, why: str) -> AppraisalError:
        """Audit a refused step (``appraisal_refused``) and return the error to raise."""
        data = {"appraisal": appraisal, "why": why}
        self.audit.append(AuditKind.APPRAISAL_REFUSED, who or "?", "", data)
        return AppraisalError(why)

    # ------------------------------------------------------------------ proposing
    def propose(
        self, proposer: str, pin: str, reason: str, recordings: Sequence[tuple[str, str]]
    ) -> Appraisal:
        """A keeper or supervisor lists recordings for destruction, with a reason."""
        ok = authorise(self.store, self.audit, proposer, pin, "appraisal", (KEEPER, SUPERVISOR))
        if not ok.ok:
            raise self.refuse(proposer, None, ok.why)
        if not reason.strip():
            raise self.refuse(proposer, None, "an appraisal needs a reason")
        listed = sorted(set(recordings))
        if not listed:
            raise self.refuse(proposer, None, "an appraisal lists at least one recording")
        for serial, rid in listed:
            if self.store.archived(serial, rid) is None:
                raise self.refuse(proposer, None, f"recording {serial}/{rid} is not in the archive")
            gone = purge_state(self.store, serial, rid)
            if gone is not None:
                raise self.refuse(proposer, None, f"recording {serial}/{rid} {gone}")
        at = float(self.clock())
        with self.table.transaction():  # the proposal and its audit entry commit together
            appraisal = self.table.add(proposer, at, reason.strip(), listed)
            self.audit.append(
                AuditKind.APPRAISAL_PROPOSED,
                proposer,
                f"appraisal:{appraisal}",
                {"appraisal": appraisal, "reason": reason.strip(),
                 "recordings": [f"{s}/{r}" for s, r in listed]},
            )  # fmt: skip
        return self.get(appraisal)

    # ------------------------------------------------------------------ deciding
    def approve(self, appraisal: int, supervisor: str, pin: str) -> Appraisal:
        """A supervisor other than the proposer approves, on their own PIN."""
        self._may_decide(appraisal, supervisor, pin)
        at = float(self.clock())
        expires = at + VALID_DAYS * 86400
        with self.table.transaction():
            if not self.table.decide(appraisal, "approved", supervisor, at, "", expires):
                raise AppraisalError(f"appraisal {appraisal} was decided meanwhile")
            self.audit.append(
                AuditKind.APPRAISAL_APPROVED,
                supervisor,
                f"appraisal:{appraisal}",
                {"appraisal": appraisal, "expires_at": utc_iso(expires)},
            )
        self.audit.checkpoint()  # an authorisation to destroy is signed at once
        return self.get(appraisal)

    def reject(self, appraisal: int, supervisor: str, pin: str, reason: str) -> Appraisal:
        """A supervisor other than the proposer rejects it, saying why."""
        if not reason.strip():
            raise self.refuse(supervisor, appraisal, "a rejection must say why")
        self._may_decide(appraisal, supervisor, pin)
        at = float(self.clock())
        with self.table.transaction():
            if not self.table.decide(appraisal, "rejected", supervisor, at, reason.strip(), None):
                raise AppraisalError(f"appraisal {appraisal} was decided meanwhile")
            self.audit.append(
                AuditKind.APPRAISAL_REJECTED,
                supervisor,
                f"appraisal:{appraisal}",
                {"appraisal": appraisal, "reason": reason.strip()},
            )
        return self.get(appraisal)

    def _may_decide(self, appraisal: int, supervisor: str, pin: str) -> None:
        ok = authorise(self.store, self.audit, supervisor, pin, "appraisal")
        if not ok.ok:
            raise self.refuse(supervisor, appraisal, ok.why)
        row = self.table.get(appraisal)
        if row is None:
            raise self.refuse(supervisor, appraisal, f"no appraisal {appraisal}")
        if row["state"] != "proposed":
            raise self.refuse(
                supervisor, appraisal, f"appraisal {appraisal} is already {row['state']}"
            )
        if row["proposed_by"] == supervisor:
            raise self.refuse(
                supervisor, appraisal,
                f"appraisal {appraisal} was proposed by {supervisor}: another supervisor decides",
            )  # fmt: skip

    # ------------------------------------------------------------------ reading
    def get(self, appraisal: int) -> Appraisal:
        row = self.table.get(appraisal)
        if row is None:
            raise AppraisalError(f"no appraisal {appraisal}")
        return Appraisal(**row, recordings=tuple(self.table.members(appraisal)))

    def every(self) -> list[Appraisal]:
        return [self.get(r["id"]) for r in self.table.every()]

    def for_purge(self, appraisal: int, now: float) -> Appraisal:
        """The appraisal a purge at ``now`` may cite, or AppraisalError saying in one line
        why not: unknown, not approved, approved by its proposer, expired."""
        a = self.get(appraisal)
        if a.state != "approved":
            raise AppraisalError(f"appraisal {appraisal} is not approved ({a.state})")
        if a.decided_at is None or a.expires_at is None:
            raise AppraisalError(f"appraisal {appraisal} has no approval time or expiry")
        if not a.decided_by or a.decided_by == a.proposed_by:
            raise AppraisalError(f"appraisal {appraisal} was approved by its own proposer")
        if now >= a.expires_at:
            raise AppraisalError(
                f"appraisal {appraisal} expired at {utc_iso(a.expires_at)}: propose it again"
            )
        if now < a.decided_at:
            raise AppraisalError(f"appraisal {appraisal} is approved after now")
        return a


__all__ = ["VALID_DAYS", "Appraisal", "AppraisalError", "AppraisalRegister"]
