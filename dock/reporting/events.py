"""Which audit entries headquarters hears about, and as what event.

Events come from the audit log rather than from calls scattered through the service: the
audit entry is already durable, ordered and written by every process (the daemon and the
`dock` commands alike), so an event can neither be forgotten nor be sent for something
that did not happen. Pure: an entry in, an event type and its data out (or None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mqtt_contract.contract import EventType


@dataclass(frozen=True)
class AuditView:
    """The parts of an audit entry (or checkpoint) an event is made from."""

    seq: int
    time: str
    kind: str
    actor: str
    subject: str
    data: dict[str, Any]


def _pick(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: data.get(n) for n in names}


def event_for(entry: AuditView, drift_bound_s: float) -> tuple[EventType, dict[str, Any]] | None:
    """The event for one audit entry, or None when headquarters need not hear of it.

    ``drift_bound_s``: a clock set is reported only when the recorder was further off
    than this before the dock set it.
    """
    d = entry.data
    serial = entry.subject
    match entry.kind:
        case "checkout":
            data = {"officer": entry.actor, "serial": serial, "slot": d.get("slot")}
            data["override"] = "override_by" in d
            if data["override"]:
                data |= {"supervisor": d.get("override_by"), "reason": d.get("reason")}
            return EventType.CHECKOUT_GRANTED, data
        case "checkout_refused":
            return EventType.CHECKOUT_REFUSED, {
                "officer": entry.actor,
                "reasons": list(d.get("reasons", [])),
            }
        case "checkin":
            return EventType.CHECKIN, {"serial": serial, **_pick(d, "officer", "slot", "custody")}
        case "checks" if not d.get("passed", True):
            return EventType.CHECKS_FAILED, {
                "serial": serial,
                "slot": d.get("slot"),
                "failed": list(d.get("failed", [])),
            }
        case "offload_start":
            return EventType.OFFLOAD_STARTED, {
                "serial": serial,
                **_pick(d, "slot", "recordings", "bytes"),
            }
        case "offload_done":
            return EventType.OFFLOAD_DONE, {
                "serial": serial,
                **_pick(d, "slot", "archived", "already_archived", "erased", "failed", "bag"),
                "seal": d.get("seal"),
            }
        case "offload_failed" | "offload_refused":
            return EventType.OFFLOAD_FAILED, {
                "serial": serial,
                "recording": d.get("recording", ""),
                "error": d.get("error") or d.get("reason") or entry.kind,
            }
        case "gap_opened":
            return EventType.GAP_FOUND, {
                "serial": serial,
                "item": d.get("item"),
                **_pick(d, "officer", "kind", "reason"),
            }
        case "deadline_at_risk" | "deadline_overdue":
            kind = EventType.DEADLINE_AT_RISK
            if entry.kind == "deadline_overdue":
                kind = EventType.DEADLINE_OVERDUE
            return kind, {"serial": serial, **d}
        case "clock_set":
            before = d.get("drift_before_s")
            if isinstance(before, int | float) and abs(before) > drift_bound_s:
                return EventType.CLOCK_DRIFT, {
                    "serial": serial,
                    **_pick(d, "slot", "drift_before_s", "after_s"),
                    "bound_s": drift_bound_s,
                }
            return None
        case "checkpoint":
            # time, public_key, signature and previous: for headquarters to check that
            # each checkpoint extends the last (MQTT.md, "Audit checkpoints").
            return EventType.AUDIT_CHECKPOINT, {
                "seq": entry.seq,
                "head": d.get("head"),
                **{k: d[k] for k in ("time", "public_key", "signature", "previous") if k in d},
            }
        case "audit_rewound":
            return EventType.AUDIT_REWOUND, _pick(
                d, "head_seq", "head", "reported_seq", "reported_head", "agreed_seq",
                "checkpoint_seq", "reported_checkpoint_seq", "detail",
            )  # fmt: skip
        case "scanner_hit":
            return EventType.SCANNER_HIT, {"serial": serial, **_pick(d, "recording", "detail")}
        case "fixity_failure":
            return EventType.FIXITY_FAILED, {
                "serial": serial if d.get("path") != serial else "",
                "path": d.get("path"),
                "detail": d.get("problem"),
            }
        case "pin_locked":
            return EventType.PIN_LOCKED, {
                "officer": serial,
                **_pick(d, "purpose", "tries", "known"),
            }
        case "pin_unlocked":
            return EventType.PIN_UNLOCKED, {"officer": serial, "by": entry.actor}
        case "device_flag":
            return EventType.DEVICE_FLAGGED, {
                "serial": serial,
                "lost": d.get("lost"),
                "maintenance": d.get("maintenance"),
                "note": d.get("note") or "",
                "by": entry.actor,
            }
        case "hq_command":
            return EventType.COMMAND, {
                **_pick(d, "id", "command", "accepted", "error"),
                "by": entry.actor,
            }
    return None
