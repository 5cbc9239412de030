"""The per-slot state machine, as a pure transition function.

``transition(status, event) -> (new_status, actions)`` does no I/O, reads no clock and
raises for no input: the daemon feeds it the events of one slot in order, stores the
new status and carries out the actions (LED, buzzer, custody ledger, offload queue,
checks, alerts). The daemon also logs every transition, which is how failed checks
and refusals are "recorded" (REQUIREMENTS.md §1).

States and the LED each one shows (``LED_FOR``): EMPTY=OFF; IDENTIFYING, CHARGING,
OFFLOADING=BUSY; READY=READY; CHECKED_OUT=TAKE_THIS; FAILED_CHECK=FAILED_CHECK;
FAULT=FAULT. Whenever the state changes the actions hold exactly one
``ShowLed(LED_FOR[new_state])``; when it does not they hold none.

Transition table. "docked" means every state but EMPTY; ``-`` is an explicit no-op
(status unchanged, no actions). Every (state, event) pair not listed is ``-``.

=============  ====================  ===============  ======================================
event          from                  to               actions / notes
=============  ====================  ===============  ======================================
Docked         EMPTY                 IDENTIFYING      LED BUSY; a new docking session
Docked         IDENTIFYING           IDENTIFYING      Alert slot_redock (a bounce)
Docked         other docked          IDENTIFYING      LED BUSY, Alert slot_redock; see *re-dock*
Undocked       CHECKED_OUT           EMPTY            LED OFF (the normal take-away)
Undocked       other docked          EMPTY            LED OFF, Alert removed_without_checkout;
                                                      + Alert offload_interrupted when it was
                                                      OFFLOADING or still owed an offload
Identified     IDENTIFYING           FAILED_CHECK     not enrolled: codes ("device_unknown",),
                                                      LED FAILED_CHECK, Alert device_unknown;
                                                      never closes custody nor offloads (the
                                                      identity is not authenticated)
Identified     IDENTIFYING           OFFLOADING       enrolled and in_custody (a return not yet
                                                      closed): CloseCustody, QueueOffload,
                                                      LED BUSY; or pending_recordings > 0, or
                                                      an offload still owed: QueueOffload,
                                                      LED BUSY (not re-queued while one is
                                                      outstanding)
Identified     IDENTIFYING           CHARGING         enrolled, otherwise: RunChecks, LED BUSY
Identified     IDENTIFYING           FAULT            serial empty or not a string: as
                                                      IdentifyFailed
IdentifyFailed IDENTIFYING           FAULT            LED FAULT, Alert identify_failed
OffloadStarted any                   -                informational
OffloadDone    OFFLOADING            CHARGING         RunChecks, LED BUSY
OffloadDone    other docked          same             a late result: offload no longer owed
                                                      nor outstanding; no actions
OffloadFailed  OFFLOADING            FAULT            LED FAULT, Alert offload_failed (the
                                                      footage stays on the device)
OffloadFailed  other docked          same             only if one was outstanding: Alert
                                                      offload_failed; else ``-``
ChecksPassed   CHARGING              READY            LED READY
ChecksPassed   FAILED_CHECK          READY            LED READY (periodic re-check passed);
                                                      ``-`` for an unknown device
ChecksFailed   CHARGING, READY       FAILED_CHECK     LED FAILED_CHECK, codes kept (a READY
                                                      device can fail a periodic re-check)
ChecksFailed   FAILED_CHECK          FAILED_CHECK     codes replaced, no actions; ``-`` for an
                                                      unknown device ("device_unknown" stays)
ChecksFailed   CHECKED_OUT           FAILED_CHECK     grant revoked: LED FAILED_CHECK, Buzz
                                                      refuse, Alert checkout_revoked
Charging       docked                same             battery_percent recorded, no actions
CheckedOut     READY                 CHECKED_OUT      LED TAKE_THIS, Buzz ack (officer named)
CheckedOut     any other, or READY   same             refused: Buzz refuse, Alert
               with no officer named                  checkout_refused
GrantWithdrawn CHECKED_OUT           CHARGING         RunChecks, LED BUSY: a grant expired or
                                                      cancelled before the device was taken;
                                                      judged again before it is READY
Fault          docked but FAULT      FAULT            LED FAULT, Alert slot_fault; from
                                                      CHECKED_OUT also Buzz refuse, Alert
                                                      checkout_revoked
Fault          FAULT, EMPTY          same             Alert slot_fault only (first reason kept;
                                                      an empty slot has nothing to latch)
FaultCleared   FAULT                 IDENTIFYING      LED BUSY (re-identify)
=============  ====================  ===============  ======================================

A device is READY only if it was identified as enrolled, owes no offload and has no
offload outstanding; a ChecksPassed that arrives otherwise (a stale or unsolicited
result) is ignored. The codes of a failed check are kept only while FAILED_CHECK, the
officer of a grant only while CHECKED_OUT, the fault reason only while FAULT.

*Custody.* An enrolled device identified ``in_custody`` gets CloseCustody once per
custody period: ``custody_closed`` remembers that this docking session already closed
it, so a ledger that still says "in custody" on a re-identification does not close it
twice; an identification that fails to authenticate keeps these facts for the same
serial. A grant (CheckedOut) starts a new custody period, so it resets that flag. A
returned device owes an offload (``offload_owed``) until an OffloadDone; each
QueueOffload must be answered by exactly one OffloadDone or OffloadFailed (the daemon's
offload worker guarantees it, on undock and fault too), and ``offload_outstanding``
keeps a second QueueOffload from being emitted while one is in flight. A failed
offload leaves the device in FAULT; after FaultCleared it is re-identified and the
offload is queued again (a retry, so a second QueueOffload after a result is normal).

*Re-dock.* Docked while not EMPTY means the slot's bookkeeping missed an Undocked (or
saw a contact bounce): we cannot know whether the same device is still there, so it is
re-identified. What the slot knows about custody survives: the serial, whether this
session already closed custody, whether an offload is owed or outstanding. A pending
grant is dropped with the alert (the device is re-checked and must be granted again);
the grant began a new custody period, so if the officer did take the device and it
came back unnoticed, the re-identification (``in_custody``) closes that custody and
offloads the footage instead of taking it for a lagging ledger. If the
re-identified serial differs, the old device left unnoticed: its session ends (Alert
offload_interrupted if it still owed footage) and the new device starts afresh.

Inputs of the wrong type never raise: an unknown event is a no-op, odd field values are
read on the safe side (an unknown ``pending_recordings`` means "offload"), and as a last
resort an internal error leaves the status unchanged with Alert state_machine_error.
"""

# One file: everything that affects a slot's state (its states, events, actions and every
# transition) is here, as h11 keeps its state table, so this module is the whole truth.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from dock.domain.interfaces import LedPattern

__all__ = [
    "ACTION_TYPES",
    "EVENT_TYPES",
    "LED_FOR",
    "Action",
    "Alert",
    "Buzz",
    "Charging",
    "CheckedOut",
    "ChecksFailed",
    "ChecksPassed",
    "CloseCustody",
    "Docked",
    "Event",
    "Fault",
    "FaultCleared",
    "GrantWithdrawn",
    "Identified",
    "IdentifyFailed",
    "OffloadDone",
    "OffloadFailed",
    "OffloadStarted",
    "QueueOffload",
    "RunChecks",
    "ShowLed",
    "SlotState",
    "SlotStatus",
    "Undocked",
    "transition",
]


class SlotState(StrEnum):
    EMPTY = "empty"
    IDENTIFYING = "identifying"
    CHARGING = "charging"  # charging; checks requested, their result decides
    OFFLOADING = "offloading"
    READY = "ready"
    FAILED_CHECK = "failed_check"
    CHECKED_OUT = "checked_out"  # granted to an officer, still in the slot until taken
    FAULT = "fault"


LED_FOR: dict[SlotState, LedPattern] = {
    SlotState.EMPTY: LedPattern.OFF,
    SlotState.IDENTIFYING: LedPattern.BUSY,
    SlotState.CHARGING: LedPattern.BUSY,
    SlotState.OFFLOADING: LedPattern.BUSY,
    SlotState.READY: LedPattern.READY,
    SlotState.FAILED_CHECK: LedPattern.FAILED_CHECK,
    SlotState.CHECKED_OUT: LedPattern.TAKE_THIS,
    SlotState.FAULT: LedPattern.FAULT,
}

DEVICE_UNKNOWN = "device_unknown"


# --- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Docked:
    pass


@dataclass(frozen=True)
class Undocked:
    pass


@dataclass(frozen=True)
class Identified:
    serial: str
    #: In the enrolment table and authenticated with its secret.
    enrolled: bool
    #: The custody ledger says the device is out with an officer: this is a return.
    in_custody: bool
    pending_recordings: int


@dataclass(frozen=True)
class IdentifyFailed:
    reason: str


@dataclass(frozen=True)
class OffloadStarted:
    pass


@dataclass(frozen=True)
class OffloadDone:
    pass


@dataclass(frozen=True)
class OffloadFailed:
    reason: str


@dataclass(frozen=True)
class ChecksPassed:
    pass


@dataclass(frozen=True)
class ChecksFailed:
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Charging:
    """Periodic status while docked."""

    battery_percent: int


@dataclass(frozen=True)
class CheckedOut:
    """The dock granted this device to an officer; it stays in the slot until taken."""

    officer_id: str


@dataclass(frozen=True)
class GrantWithdrawn:
    """The grant ended before the device was taken (expired, or cancelled by the officer):
    the custody it opened is withdrawn, and the device is judged again."""


@dataclass(frozen=True)
class Fault:
    reason: str


@dataclass(frozen=True)
class FaultCleared:
    pass


Event = (
    Docked
    | Undocked
    | Identified
    | IdentifyFailed
    | OffloadStarted
    | OffloadDone
    | OffloadFailed
    | ChecksPassed
    | ChecksFailed
    | Charging
    | CheckedOut
    | GrantWithdrawn
    | Fault
    | FaultCleared
)
EVENT_TYPES: tuple[type, ...] = Event.__args__


# --- actions -----------------------------------------------------------------------


@dataclass(frozen=True)
class ShowLed:
    pattern: LedPattern


@dataclass(frozen=True)
class CloseCustody:
    """Record the return of ``serial``: closes its open device→officer custody."""

    serial: str


@dataclass(frozen=True)
class QueueOffload:
    serial: str


@dataclass(frozen=True)
class RunChecks:
    serial: str


@dataclass(frozen=True)
class Buzz:
    kind: Literal["refuse", "ack"]


@dataclass(frozen=True)
class Alert:
    code: str
    detail: str


Action = ShowLed | CloseCustody | QueueOffload | RunChecks | Buzz | Alert
ACTION_TYPES: tuple[type, ...] = Action.__args__


# --- status ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotStatus:
    state: SlotState = SlotState.EMPTY
    serial: str | None = None
    #: The last identification found the device enrolled and authenticated.
    enrolled: bool = False
    #: This docking session already closed the device's custody (since the last grant).
    custody_closed: bool = False
    #: Footage must be offloaded and verified before the device may be READY.
    offload_owed: bool = False
    #: A QueueOffload was emitted and no OffloadDone/OffloadFailed has come back yet.
    offload_outstanding: bool = False
    #: Codes of the failed check; non-empty only in FAILED_CHECK.
    failed_codes: tuple[str, ...] = ()
    #: Officer the device was granted to; set only in CHECKED_OUT.
    officer_id: str | None = None
    #: Set only in FAULT.
    fault_reason: str | None = None
    #: Last battery level reported while docked (None if none yet).
    battery_percent: int | None = None


Result = tuple[SlotStatus, list[Action]]


# --- the transition function -------------------------------------------------------


def transition(status: SlotStatus, event: object) -> Result:
    """The new status of the slot and what the daemon must do. Never raises."""
    try:
        return _transition(status, event)
    except Exception as exc:  # the last resort: the daemon must never crash on an event
        return status, [Alert("state_machine_error", f"{type(exc).__name__} on {type(event)}")]


def _transition(status: SlotStatus, event: object) -> Result:
    handler = _HANDLERS.get(type(event))
    if handler is None or not isinstance(status.state, SlotState):
        return status, []
    return handler(status, event)


def _enter(status: SlotStatus, state: SlotState, actions: list[Action], **changes: Any) -> Result:
    """Move to ``state`` (clearing the per-state facts it does not keep), showing its LED."""
    new = replace(
        status,
        state=state,
        failed_codes=changes.pop("failed_codes", ()) if state is SlotState.FAILED_CHECK else (),
        officer_id=changes.pop("officer_id", None) if state is SlotState.CHECKED_OUT else None,
        fault_reason=changes.pop("fault_reason", "") if state is SlotState.FAULT else None,
        **changes,
    )
    if state is not status.state:
        actions = [ShowLed(LED_FOR[state]), *actions]
    return new, actions


def _docked(status: SlotStatus) -> bool:
    return status.state is not SlotState.EMPTY


def _owes_offload(status: SlotStatus) -> bool:
    return (
        status.state is SlotState.OFFLOADING
        or status.offload_owed is True
        or status.offload_outstanding is True
    )


def _may_be_ready(status: SlotStatus) -> bool:
    return (
        status.enrolled is True
        and isinstance(status.serial, str)
        and status.serial != ""
        and not status.offload_owed
        and not status.offload_outstanding
    )


def _on_docked(status: SlotStatus, _event: Docked) -> Result:
    if status.state is SlotState.EMPTY:
        return _enter(SlotStatus(), SlotState.IDENTIFYING, [])
    alert = Alert("slot_redock", f"docked while {status.state.value}; re-identifying")
    if status.state is SlotState.IDENTIFYING:
        return status, [alert]
    if status.state is SlotState.CHECKED_OUT:
        alert = Alert(
            "slot_redock",
            f"docked while checked_out to {status.officer_id}; grant dropped, re-identifying",
        )
    return _enter(status, SlotState.IDENTIFYING, [alert])


def _on_undocked(status: SlotStatus, _event: Undocked) -> Result:
    if not _docked(status):
        return status, []
    actions: list[Action] = []
    if status.state is not SlotState.CHECKED_OUT:
        actions.append(
            Alert(
                "removed_without_checkout",
                f"{status.serial or 'unidentified device'} taken while {status.state.value}",
            )
        )
    if _owes_offload(status):
        actions.append(
            Alert(
                "offload_interrupted",
                f"{status.serial or 'unidentified device'} left with footage not offloaded;"
                " resumes on next dock",
            )
        )
    return SlotStatus(), [ShowLed(LED_FOR[SlotState.EMPTY]), *actions]


def _on_identified(status: SlotStatus, event: Identified) -> Result:
    if status.state is not SlotState.IDENTIFYING:
        return status, []
    serial = event.serial
    if not isinstance(serial, str) or serial == "":
        return _on_identify_failed(status, IdentifyFailed(f"no usable serial: {serial!r}"))
    actions: list[Action] = []
    other_device = status.serial is not None and status.serial != serial
    if other_device:
        # The old device left unnoticed, and its docking session with it.
        if _owes_offload(status):
            actions.append(
                Alert(
                    "offload_interrupted",
                    f"{status.serial} left unnoticed with footage not offloaded;"
                    " resumes on next dock",
                )
            )
        status = SlotStatus(state=status.state)
    if event.enrolled is not True:
        # Custody facts of the same serial are kept (an authentication glitch must not
        # close a custody twice), but nothing is closed or offloaded on its word.
        actions.append(Alert(DEVICE_UNKNOWN, f"{serial} is not enrolled or failed to authenticate"))
        unknown = replace(status, serial=serial, enrolled=False)
        return _enter(unknown, SlotState.FAILED_CHECK, actions, failed_codes=(DEVICE_UNKNOWN,))

    custody_closed = status.custody_closed is True
    offload_owed = status.offload_owed is True
    outstanding = status.offload_outstanding is True
    if event.in_custody and not custody_closed:
        actions.append(CloseCustody(serial))
        custody_closed = True
        offload_owed = True
    pending = event.pending_recordings
    if not isinstance(pending, int) or isinstance(pending, bool) or pending > 0:
        offload_owed = True  # an unknown count is read on the safe side
    changes = {"serial": serial, "enrolled": True, "custody_closed": custody_closed}
    if offload_owed or outstanding:
        if not outstanding:
            actions.append(QueueOffload(serial))
        return _enter(
            status,
            SlotState.OFFLOADING,
            actions,
            offload_owed=offload_owed,
            offload_outstanding=True,
            **changes,
        )
    actions.append(RunChecks(serial))
    return _enter(status, SlotState.CHARGING, actions, **changes)


def _on_identify_failed(status: SlotStatus, event: IdentifyFailed) -> Result:
    if status.state is not SlotState.IDENTIFYING:
        return status, []
    reason = f"identification failed: {event.reason}"
    return _enter(status, SlotState.FAULT, [Alert("identify_failed", reason)], fault_reason=reason)


def _on_offload_started(status: SlotStatus, _event: OffloadStarted) -> Result:
    return status, []


def _on_offload_done(status: SlotStatus, _event: OffloadDone) -> Result:
    if status.state is SlotState.OFFLOADING:
        done = replace(status, offload_owed=False, offload_outstanding=False)
        if not isinstance(status.serial, str) or status.serial == "":
            return _enter(done, SlotState.IDENTIFYING, [])  # inconsistent status: re-identify
        return _enter(done, SlotState.CHARGING, [RunChecks(status.serial)])
    if _docked(status) and status.offload_outstanding:
        return replace(status, offload_owed=False, offload_outstanding=False), []
    return status, []


def _on_offload_failed(status: SlotStatus, event: OffloadFailed) -> Result:
    detail = f"{status.serial}: {event.reason}; the footage stays on the device"
    if status.state is SlotState.OFFLOADING:
        return _enter(
            status,
            SlotState.FAULT,
            [Alert("offload_failed", detail)],
            offload_outstanding=False,
            fault_reason=f"offload failed: {event.reason}",
        )
    if _docked(status) and status.offload_outstanding:
        return replace(status, offload_outstanding=False), [Alert("offload_failed", detail)]
    return status, []


def _on_checks_passed(status: SlotStatus, _event: ChecksPassed) -> Result:
    if status.state in (SlotState.CHARGING, SlotState.FAILED_CHECK) and _may_be_ready(status):
        return _enter(status, SlotState.READY, [])
    return status, []


def _on_checks_failed(status: SlotStatus, event: ChecksFailed) -> Result:
    raw = event.codes
    if isinstance(raw, str):
        codes: tuple[str, ...] = (raw,)
    elif isinstance(raw, tuple | list):
        codes = tuple(str(code) for code in raw)
    else:
        codes = ()
    codes = codes or ("check_failed",)
    if status.state in (SlotState.CHARGING, SlotState.READY):
        return _enter(status, SlotState.FAILED_CHECK, [], failed_codes=codes)
    if status.state is SlotState.FAILED_CHECK:
        if status.enrolled is not True:
            return status, []  # an unknown device stays "device_unknown"
        return replace(status, failed_codes=codes), []
    if status.state is SlotState.CHECKED_OUT:
        actions: list[Action] = [
            Buzz("refuse"),
            Alert(
                "checkout_revoked",
                f"{status.serial} granted to {status.officer_id} failed a check: "
                + ", ".join(codes),
            ),
        ]
        return _enter(status, SlotState.FAILED_CHECK, actions, failed_codes=codes)
    return status, []


def _on_charging(status: SlotStatus, event: Charging) -> Result:
    level = event.battery_percent
    if not _docked(status) or not isinstance(level, int) or isinstance(level, bool):
        return status, []
    return replace(status, battery_percent=level), []


def _on_checked_out(status: SlotStatus, event: CheckedOut) -> Result:
    officer = event.officer_id
    named = isinstance(officer, str) and officer.strip() != ""
    if status.state is SlotState.READY and named:
        return _enter(
            status, SlotState.CHECKED_OUT, [Buzz("ack")], officer_id=officer, custody_closed=False
        )
    if status.state is SlotState.READY:
        why = "no officer named"
    elif status.state is SlotState.FAILED_CHECK:
        why = "failed check: " + ", ".join(map(str, status.failed_codes))
    elif status.state is SlotState.CHECKED_OUT:
        why = f"already granted to {status.officer_id}"
    else:
        why = f"slot is {status.state.value}"
    detail = f"{status.serial or 'no device'} refused to {officer!r}: {why}"
    return status, [Buzz("refuse"), Alert("checkout_refused", detail)]


def _on_grant_withdrawn(status: SlotStatus, _event: GrantWithdrawn) -> Result:
    if status.state is not SlotState.CHECKED_OUT or not isinstance(status.serial, str):
        return status, []
    return _enter(status, SlotState.CHARGING, [RunChecks(status.serial)])


def _on_fault(status: SlotStatus, event: Fault) -> Result:
    reason = f"{event.reason}"
    alert = Alert("slot_fault", f"{status.serial or 'slot'} ({status.state.value}): {reason}")
    if status.state in (SlotState.EMPTY, SlotState.FAULT):
        return status, [alert]
    actions: list[Action] = [alert]
    if status.state is SlotState.CHECKED_OUT:
        revoked = f"{status.serial} granted to {status.officer_id}: fault"
        actions = [Buzz("refuse"), Alert("checkout_revoked", revoked), alert]
    return _enter(status, SlotState.FAULT, actions, fault_reason=reason)


def _on_fault_cleared(status: SlotStatus, _event: FaultCleared) -> Result:
    if status.state is not SlotState.FAULT:
        return status, []
    return _enter(status, SlotState.IDENTIFYING, [])


#: Each event type's transition (an event of another type changes nothing).
_HANDLERS: dict[type, Callable[[SlotStatus, Any], Result]] = {
    Docked: _on_docked,
    Undocked: _on_undocked,
    Identified: _on_identified,
    IdentifyFailed: _on_identify_failed,
    OffloadStarted: _on_offload_started,
    OffloadDone: _on_offload_done,
    OffloadFailed: _on_offload_failed,
    ChecksPassed: _on_checks_passed,
    ChecksFailed: _on_checks_failed,
    Charging: _on_charging,
    CheckedOut: _on_checked_out,
    GrantWithdrawn: _on_grant_withdrawn,
    Fault: _on_fault,
    FaultCleared: _on_fault_cleared,
}
