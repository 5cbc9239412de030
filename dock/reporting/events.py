"""Which audit entries headquarters hears about, and as what event.

Events come from the audit log rather than from calls scattered through the service: the
audit entry is already durable, ordered and written by every process (the daemon and the
`dock` commands alike), so an event can neither be forgotten nor be sent for something
that did not happen. Pure: an entry in, an event type and its data out (or None).

Every :class:`AuditKind` is decided here: ``event_for`` maps it to an event, or
``NOT_REPORTED`` says why headquarters does not hear of it (tests/test_audit_kinds.py
holds each kind to exactly one of the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.domain.audit_kinds import AuditKind
from mqtt_contract.contract import (
    REPLICATION_ERROR_MAX,
    REPLICATION_NAME_MAX,
    REPLICATION_PACKAGE_MAX,
    EventType,
    one_line,
)

#: The ``kind`` of the view ``feed`` makes of a signed checkpoint. No audit entry has it
#: (it is no :class:`AuditKind`, so ``AuditLog.append`` refuses it): an entry cannot pose
#: as a checkpoint.
CHECKPOINT = "checkpoint"

#: The kinds headquarters does not hear about, each with why. The others are mapped by
#: ``event_for`` (``checks`` and ``clock_set`` only when they matter: failed checks, a
#: clock set from beyond the drift bound). A new kind goes either here or there.
NOT_REPORTED: dict[AuditKind, str] = {
    AuditKind.OVERRIDE: "the checkout entry that follows carries it (override, supervisor, "
    "reason) into checkout.granted",
    AuditKind.HANDOVER: "the handover register is kept at the dock; checkin is the return",
    AuditKind.HANDOVER_REFUSED: "a signature refused changes nothing; a lockout is pin.locked",
    AuditKind.CLOCK_NOT_SET: "a clock left unset passes the checks only within the drift "
    "limit; beyond it, checks.failed says so",
    AuditKind.ENROL: "local administration of the dock's recorders",
    AuditKind.SLOT_TEST: "maintenance at the dock; a check it finds failing is checks.failed",
    AuditKind.CONFIG: "headquarters sees the configuration hash in the birth message",
    AuditKind.OFFICER_ADD: "local administration of officers",
    AuditKind.OFFICER_DISABLE: "local administration of officers",
    AuditKind.OFFICER_ENABLE: "local administration of officers",
    AuditKind.PIN_UNLOCK_REFUSED: "a failed unlock changes nothing; the PIN stays locked "
    "(pin.locked is open at headquarters until pin.unlocked)",
    AuditKind.OFFLOAD_FILE: "per recording: offload.done carries the counts",
    AuditKind.OFFLOAD_RETRY: "a step inside an offload: its outcome is in offload.failed or "
    "offload.done",
    AuditKind.MASS_STORAGE_REFUSED: "the offload goes on over the protocol; its outcome is "
    "in offload.done or offload.failed",
    AuditKind.ARCHIVE_DAMAGED: "the recording is not erased and stays on the recorder; "
    "offload.done carries the erased count",
    AuditKind.ERASE_INTENT: "per recording, the crash-safe step before an erase: "
    "offload.done carries the erased count",
    AuditKind.ERASE: "per recording: offload.done carries the erased count",
    AuditKind.ERASE_REFUSED: "the recording stays on the recorder; offload.done carries "
    "the erased count",
    AuditKind.ERASE_SKIPPED: "the recordings stay on the recorder; offload.done carries "
    "the erased count",
    AuditKind.SEAL: "offload.done carries the package and its seal (a re-seal after a "
    "purge: retention is decided on the dock)",
    AuditKind.SEAL_FAILED: "the footage is archived and verified; the seal is retried at "
    "the next offload",
    AuditKind.SECOND_COPY: "local record of where a second copy is kept",
    AuditKind.PACKAGE_REPLICATED: "health's replication object carries the counts and the "
    "last success per target",
    AuditKind.REPLICATION_RETRY: "a person's retry changes no copy; what follows is "
    "replication.failed or health's counts",
    AuditKind.FIXITY_CHECK: "the routine summary; each failure is reported as fixity.failed",
    AuditKind.GAP_EXPLAINED: "local review: headquarters hears of the gap (gap.found)",
    AuditKind.GAP_EXPLAIN_REFUSED: "local review refused; nothing changed",
    AuditKind.GAP_ACCOUNT: "local review: headquarters hears of the gap (gap.found)",
    AuditKind.GAP_ACCOUNT_REFUSED: "local review refused; nothing changed",
    AuditKind.GAP_RETURNED: "local review: headquarters heard of the gap (gap.found)",
    AuditKind.GAP_FILED: "local filing: headquarters heard of the gap (gap.found)",
    AuditKind.GAP_STEP_REFUSED: "a step of local review refused; nothing changed",
    AuditKind.EVENT_LOG_PARTLY_READ: "the rest of the recorder's event log is read at the "
    "next docking",
    AuditKind.HOLD_PLACED: "retention is decided on the dock",
    AuditKind.HOLD_RELEASED: "retention is decided on the dock",
    AuditKind.HOLD_RELEASE_REFUSED: "retention is decided on the dock; nothing changed",
    AuditKind.PURGE_INTENT: "retention is decided on the dock (two supervisors)",
    AuditKind.PURGE: "retention is decided on the dock (two supervisors)",
    AuditKind.PURGE_FAILED: "the next run finishes the purge",
    AuditKind.PURGE_REFUSED: "retention is decided on the dock; nothing changed",
    AuditKind.APPRAISAL_PROPOSED: "retention is decided on the dock (an appraisal)",
    AuditKind.APPRAISAL_APPROVED: "retention is decided on the dock (an appraisal)",
    AuditKind.APPRAISAL_REJECTED: "retention is decided on the dock; nothing changed",
    AuditKind.APPRAISAL_REFUSED: "retention is decided on the dock; nothing changed",
    AuditKind.ARCHIVE_HANDOVER: "the archivist's hand-over is local; nothing changed",
    AuditKind.MAINTENANCE_DUE: "local maintenance planning; an overdue recorder fails its "
    "check (checks.failed)",
    AuditKind.CASE_ATTACH: "local case management",
    AuditKind.CASE_ATTACH_REFUSED: "local case management; nothing changed",
    AuditKind.CASE_OPEN: "local case management",
    AuditKind.CASE_CLOSE: "local case management (retention applies again: purges audited)",
    AuditKind.CASE_EPISODE: "local case management",
    AuditKind.CASE_REFUSED: "local case management; nothing changed",
    AuditKind.ACCESS_REQUEST: "access to footage is requested and registered on the dock",
    AuditKind.ACCESS_APPROVE: "access to footage is requested and registered on the dock",
    AuditKind.ACCESS_REFUSE: "access to footage is requested and registered on the dock",
    AuditKind.ACCESS_DENIED: "access to footage is requested and registered on the dock",
    AuditKind.ACCESS_RECORD: "access to footage is requested and registered on the dock",
    AuditKind.ACCESS_EXPORT: "access to footage is requested and registered on the dock",
    AuditKind.WORKING_COPY_REMOVED: "a working copy's removal when its approval expired is "
    "kept in the dock's access register; the footage itself stays in the archive",
    AuditKind.CONFIDENTIAL_MARK: "confidentiality is handled on the dock",
    AuditKind.CONFIDENTIAL_RELEASE: "confidentiality is handled on the dock",
    AuditKind.WEB_LOGIN: "local access to the dock's site; a lockout is pin.locked",
    AuditKind.WEB_LOGIN_REFUSED: "local access to the dock's site; a lockout is pin.locked",
    AuditKind.WEB_LOGOUT: "local access to the dock's site",
    AuditKind.WEB_TOKEN_ADD: "local administration of the dock's site",
    AuditKind.WEB_TOKEN_REVOKE: "local administration of the dock's site",
    AuditKind.AUDIT_EXPORT: "a copy of the log for a supervisor; the checkpoints "
    "headquarters holds are what the log is verified against",
}


@dataclass(frozen=True)
class AuditView:
    """The parts of an audit entry (or checkpoint) an event is made from."""

    seq: int
    time: str
    kind: str  # as stored (an AuditKind value), or CHECKPOINT
    actor: str
    subject: str
    data: dict[str, Any]


def _pick(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: data.get(n) for n in names}


def checkpoint_event(cp: AuditView) -> tuple[EventType, dict[str, Any]]:
    """The event for one signed checkpoint (``feed`` makes its view, kind CHECKPOINT).

    time, public_key, signature and previous: for headquarters to check that each
    checkpoint extends the last (MQTT.md, "Audit checkpoints").
    """
    d = cp.data
    return EventType.AUDIT_CHECKPOINT, {
        "seq": cp.seq,
        "head": d.get("head"),
        **{k: d[k] for k in ("time", "public_key", "signature", "previous") if k in d},
    }


def event_for(entry: AuditView, drift_bound_s: float) -> tuple[EventType, dict[str, Any]] | None:
    """The event for one audit entry, or None when headquarters need not hear of it
    (the kinds in NOT_REPORTED, and checks that passed or a clock set within the bound).

    ``drift_bound_s``: a clock set is reported only when the recorder was further off
    than this before the dock set it.
    """
    d = entry.data
    serial = entry.subject
    match entry.kind:
        case AuditKind.CHECKOUT:
            data = {"officer": entry.actor, "serial": serial, "slot": d.get("slot")}
            data["override"] = "override_by" in d
            if data["override"]:
                data |= {"supervisor": d.get("override_by"), "reason": d.get("reason")}
            return EventType.CHECKOUT_GRANTED, data
        case AuditKind.CHECKOUT_REFUSED:
            return EventType.CHECKOUT_REFUSED, {
                "officer": entry.actor,
                "reasons": list(d.get("reasons", [])),
            }
        case AuditKind.CHECKIN:
            return EventType.CHECKIN, {"serial": serial, **_pick(d, "officer", "slot", "custody")}
        case AuditKind.GRANT_EXPIRED | AuditKind.GRANT_CANCELLED:
            # The grant's custody ends with its recorder still in the slot: for
            # headquarters a check-in, marked as the grant that was never taken.
            return EventType.CHECKIN, {
                "serial": serial,
                **_pick(d, "officer", "slot", "custody"),
                "withdrawn": "expired" if entry.kind == AuditKind.GRANT_EXPIRED else "cancelled",
            }
        case AuditKind.CHECKS if not d.get("passed", True):
            return EventType.CHECKS_FAILED, {
                "serial": serial,
                "slot": d.get("slot"),
                "failed": list(d.get("failed", [])),
            }
        case AuditKind.OFFLOAD_START:
            return EventType.OFFLOAD_STARTED, {
                "serial": serial,
                **_pick(d, "slot", "recordings", "bytes"),
            }
        case AuditKind.OFFLOAD_DONE:
            return EventType.OFFLOAD_DONE, {
                "serial": serial,
                **_pick(d, "slot", "archived", "already_archived", "erased", "failed", "bag"),
                "seal": d.get("seal"),
            }
        case AuditKind.OFFLOAD_FAILED | AuditKind.OFFLOAD_REFUSED:
            return EventType.OFFLOAD_FAILED, {
                "serial": serial,
                "recording": d.get("recording", ""),
                "error": d.get("error") or d.get("reason") or str(entry.kind),
            }
        case AuditKind.GAP_OPENED:
            return EventType.GAP_FOUND, {
                "serial": serial,
                "item": d.get("item"),
                **_pick(d, "officer", "kind", "reason"),
            }
        case AuditKind.GAP_ALERT:
            return EventType.GAP_ALERT, {
                "serial": serial,
                "item": d.get("item"),
                **_pick(d, "officer", "kind", "reason", "start_ms"),
            }
        case (
            AuditKind.RECORDING_MISSING
            | AuditKind.RECORDING_OUTSIDE_EPISODE
            | AuditKind.RECORDING_UNSIGNED
        ):
            return EventType.CONTINUITY_FLAGGED, {
                "serial": serial,
                **_pick(d, "item", "officer", "custody", "kind", "reason", "recording"),
                **({"missing": d["missing"]} if "missing" in d else {}),
                "detail": d.get("detail", ""),
            }
        case AuditKind.DEADLINE_AT_RISK | AuditKind.DEADLINE_OVERDUE:
            kind = EventType.DEADLINE_AT_RISK
            if entry.kind == AuditKind.DEADLINE_OVERDUE:
                kind = EventType.DEADLINE_OVERDUE
            # the contract's names first; the dock's deadline row after them
            named = {"officer": d.get("officer_id"), "due": d.get("deadline_utc")}
            return kind, {"serial": serial, **named, **d}
        case AuditKind.HANDOVER_BY_OTHER | AuditKind.HANDOVER_UNSIGNED:
            return EventType.HANDOVER_FLAGGED, {
                "serial": serial,
                **_pick(d, "custody", "slot", "custodian", "how"),
                "returned_by": d.get("returned_by") or "",
                "flag": "by_other" if entry.kind == AuditKind.HANDOVER_BY_OTHER else "unsigned",
            }
        case AuditKind.RECORDER_NOT_RETURNED:
            return EventType.RECORDER_NOT_RETURNED, {
                "serial": serial,
                "officer": d.get("officer_id"),
                "due": d.get("due_utc"),
                **_pick(d, "custody_id", "out_at"),
            }
        case AuditKind.CLOCK_SET:
            before = d.get("drift_before_s")
            if isinstance(before, int | float) and abs(before) > drift_bound_s:
                return EventType.CLOCK_DRIFT, {
                    "serial": serial,
                    **_pick(d, "slot", "drift_before_s", "after_s"),
                    "bound_s": drift_bound_s,
                }
            return None
        case AuditKind.AUDIT_REWOUND:
            return EventType.AUDIT_REWOUND, _pick(
                d, "head_seq", "head", "reported_seq", "reported_head", "agreed_seq",
                "checkpoint_seq", "reported_checkpoint_seq", "detail",
            )  # fmt: skip
        case AuditKind.SCANNER_HIT:
            return EventType.SCANNER_HIT, {"serial": serial, **_pick(d, "recording", "detail")}
        case AuditKind.FIXITY_FAILURE:
            return EventType.FIXITY_FAILED, {
                "serial": serial if d.get("path") != serial else "",
                "path": d.get("path"),
                "detail": d.get("problem"),
            }
        case AuditKind.PIN_LOCKED:
            return EventType.PIN_LOCKED, {
                "officer": serial,
                **_pick(d, "purpose", "tries", "known"),
            }
        case AuditKind.PIN_UNLOCKED:
            return EventType.PIN_UNLOCKED, {"officer": serial, "by": entry.actor}
        case AuditKind.DEVICE_FLAG:
            return EventType.DEVICE_FLAGGED, {
                "serial": serial,
                "lost": d.get("lost"),
                "maintenance": d.get("maintenance"),
                "note": d.get("note") or "",
                "by": entry.actor,
            }
        case AuditKind.REPLICATION_FAILED:
            return EventType.REPLICATION_FAILED, replication_failed_data(entry)
        case AuditKind.HQ_COMMAND:
            return EventType.COMMAND, {
                **_pick(d, "id", "command", "accepted", "error"),
                "by": entry.actor,
            }
    return None


def replication_failed_data(entry: AuditView) -> dict[str, Any]:
    """A failed replication attempt in the contract's bounds (a server's error may be long
    or hold line breaks): package, target, reason and attempts."""
    d = entry.data
    attempts = d.get("attempts")
    return {
        "package": one_line(
            d.get("package") or d.get("bag") or entry.subject, REPLICATION_PACKAGE_MAX
        ),
        "target": one_line(d.get("target") or "", REPLICATION_NAME_MAX),
        "reason": one_line(d.get("reason") or d.get("error") or "failed", REPLICATION_ERROR_MAX),
        "attempts": attempts if type(attempts) is int and attempts >= 0 else 0,
    }
