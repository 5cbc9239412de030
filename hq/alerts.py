"""Alert rules: what in the fleet's messages deserves a person's attention. Pure.

Every rule takes what headquarters knows (a payload, a count, the last time a dock was
heard) and returns a :class:`Decision`: alerts to open and alerts to close. The store
applies decisions; nothing here reads a clock, a file or the network, so the rules are
table-tested on their own.

An alert is identified by ``(site, dock, kind, subject)``; at most one is open per key
(opening it again counts a repeat). Kinds in :data:`CLEARING` describe a condition and
close by themselves when it ends (the dock is back, the battery is replaced, the offload
is done); the others record something that happened and stay open until acknowledged.

| kind | opened by | closed by |
|---|---|---|
| dock_lost | state ``lost`` (the dock's Last Will) | state ``ready`` or ``stopped`` |
| dock_silent | state not lost/stopped and no health for 3 x 60 s | the next health |
| battery_health | a slot's ``battery_health_pct`` < 80 | that device's health >= 80 |
| clock_drift_now | a slot's ``abs(drift_s)`` > 1 s | that device's drift within 1 s |
| clock_drift | a ``clock.drift`` event | acknowledgement |
| offload_overdue | ``deadline.overdue`` | ``offload.done`` without failures |
| recorder_not_returned | ``recorder.not_returned`` (subject serial) | that recorder's ``checkin`` |
| handover_flagged | ``handover.flagged`` (subject serial/custody) | acknowledgement |
| checks_failing | 3 ``checks.failed`` (with codes) of one device in 1 h | acknowledgement |
| refusals | 5 ``checkout.refused`` at one dock in 1 h | acknowledgement |
| scanner_hit | ``scanner.hit`` (subject serial/recording) | acknowledgement |
| fixity_failed | ``fixity.failed`` (subject path) | acknowledgement |
| recording_interrupted | ``gap.alert``; ``gap.found`` interrupted/fault | acknowledgement |
| pin_locked | ``pin.locked`` (subject the officer number) | ``pin.unlocked`` |
| footage_continuity | ``continuity.flagged`` (serial/item) | acknowledgement |
| events_missing | a hole in seq, or ``last_event`` ahead with an empty outbox | all received |
| audit_backwards | ``audit.rewound``; a checkpoint the log went back from | acknowledgement |
| audit_fork | a checkpoint whose head differs from one held at its entry | acknowledgement |
| audit_bad_checkpoint | a checkpoint not signed by the dock's key | acknowledgement |
| replication_backlog | health: oldest waiting package past ``deadline_hours`` | health within it |
| replication_failed | ``replication.failed`` (subject target/package) | acknowledgement |

The numbers are :class:`Thresholds` defaults, each a ``dock-hq run`` option.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mqtt_contract import contract
from mqtt_contract.contract import DockState, EventType


class AlertKind(StrEnum):
    DOCK_LOST = "dock_lost"  # state "lost": the broker published the dock's Last Will
    DOCK_SILENT = "dock_silent"  # no health for silent_intervals x health_interval_s
    BATTERY_HEALTH = "battery_health"  # a device's battery health below the bound
    OFFLOAD_OVERDUE = "offload_overdue"  # deadline.overdue, until offload.done
    CLOCK_DRIFT = "clock_drift"  # clock.drift event: footage before the sync was off
    CLOCK_DRIFT_NOW = "clock_drift_now"  # a slot's drift_s in health above the bound
    CHECKS_FAILING = "checks_failing"  # a device failed its checks repeatedly
    REFUSALS = "refusals"  # a dock refused check-outs repeatedly
    SCANNER_HIT = "scanner_hit"
    FIXITY_FAILED = "fixity_failed"
    EVENTS_MISSING = "events_missing"  # holes in seq or last_event ahead of what arrived
    AUDIT_BACKWARDS = "audit_backwards"  # the dock's audit log went back (cut, emptied)
    AUDIT_FORK = "audit_fork"  # the dock's audit log was rewritten (a head changed)
    AUDIT_BAD_CHECKPOINT = "audit_bad_checkpoint"  # not signed by the dock's key
    # recording stopped for battery, storage or a fault: the head is told at once
    # (002 art.20; 003 art.11; 004 att.1 art.3), not only an explanation item
    RECORDING_INTERRUPTED = "recording_interrupted"
    PIN_LOCKED = "pin_locked"  # someone tried five wrong PINs for one officer number
    # a recorder not docked by the end of its shift (000 §14.1; 002 art.22; 003 art.21)
    RECORDER_NOT_RETURNED = "recorder_not_returned"
    # footage deleted before docking, made outside custody, or unsigned (003 art.11, 13;
    # 001 art.19(3); 002 art.23): the supervisor's item at the dock, an alert here
    FOOTAGE_CONTINUITY = "footage_continuity"
    # a return signed for by someone other than its custodian (lending? 003 art.21(2)),
    # or by nobody (001 art.19(3)): the dock's register marks it, the unit looks at it
    HANDOVER_FLAGGED = "handover_flagged"
    # footage not at the unit's central storage within the dock's deadline (issue 16)
    REPLICATION_BACKLOG = "replication_backlog"
    REPLICATION_FAILED = "replication_failed"  # a package could not be copied to a target


#: Conditions: closed by the rules when the condition ends, not by acknowledging them.
CLEARING = frozenset(
    {
        AlertKind.DOCK_LOST,
        AlertKind.DOCK_SILENT,
        AlertKind.BATTERY_HEALTH,
        AlertKind.OFFLOAD_OVERDUE,
        AlertKind.CLOCK_DRIFT_NOW,
        AlertKind.EVENTS_MISSING,
        AlertKind.PIN_LOCKED,
        AlertKind.RECORDER_NOT_RETURNED,
        AlertKind.REPLICATION_BACKLOG,
    }
)


@dataclass(frozen=True)
class Thresholds:
    """Bounds of the rules; every one is a ``dock-hq run`` option and a config key."""

    #: The docks' health interval (contract default 60 s).
    health_interval_s: float = 60.0
    #: A dock in state ready with no health for this many intervals is "silent".
    silent_intervals: float = 3.0
    #: Battery health (capacity against new) below this is worth replacing.
    battery_health_min_pct: float = 80.0
    #: A docked recorder's clock off by more than this (after the dock's sync) is a fault;
    #: the dock's strictest policy allows 1 s after a sync (max_clock_drift_after_sync_s).
    drift_max_s: float = 1.0
    #: checks.failed (with failing codes) for one device within the window.
    device_failures: int = 3
    #: checkout.refused on one dock within the window (people turned away at a dock).
    dock_refusals: int = 5
    failure_window_s: float = 3600.0

    @property
    def silent_after_s(self) -> float:
        return self.silent_intervals * self.health_interval_s


@dataclass(frozen=True)
class AlertKey:
    site: str
    dock: str
    kind: AlertKind
    subject: str = ""


@dataclass(frozen=True)
class Alert:
    key: AlertKey
    detail: str


@dataclass
class Decision:
    open: list[Alert] = field(default_factory=list)
    close: list[AlertKey] = field(default_factory=list)

    def raise_(self, site: str, dock: str, kind: AlertKind, subject: str, detail: str) -> None:
        self.open.append(Alert(AlertKey(site, dock, kind, subject), detail))

    def clear(self, site: str, dock: str, kind: AlertKind, subject: str = "") -> None:
        self.close.append(AlertKey(site, dock, kind, subject))

    def extend(self, other: Decision) -> None:
        self.open.extend(other.open)
        self.close.extend(other.close)

    def __bool__(self) -> bool:
        return bool(self.open or self.close)


def state_rule(site: str, dock: str, state: dict[str, Any]) -> Decision:
    """``lost`` opens DOCK_LOST; ``ready`` closes it (and silence). ``stopped`` is a clean
    stop somebody chose: it closes both, and silent_rule leaves a stopped dock alone."""
    d = Decision()
    if state.get("state") == DockState.LOST:
        d.raise_(site, dock, AlertKind.DOCK_LOST, "", f"Last Will (connected {state.get('time')})")
    else:
        d.clear(site, dock, AlertKind.DOCK_LOST)
        d.clear(site, dock, AlertKind.DOCK_SILENT)
    return d


def health_rule(site: str, dock: str, health: dict[str, Any], th: Thresholds) -> Decision:
    """Health proves the dock alive; each docked device's battery health and clock drift
    open or close that device's alert (a device that left keeps its alert)."""
    d = Decision()
    d.clear(site, dock, AlertKind.DOCK_SILENT)
    for slot in health.get("slots") or []:
        if not isinstance(slot, dict):
            continue
        subject = _device(slot)
        if subject is None:
            continue
        battery = _number(slot.get("battery_health_pct"))
        if battery is not None:
            if battery < th.battery_health_min_pct:
                d.raise_(
                    site,
                    dock,
                    AlertKind.BATTERY_HEALTH,
                    subject,
                    f"battery health {battery:g}% < {th.battery_health_min_pct:g}% "
                    f"(slot {slot.get('slot')})",
                )
            else:
                d.clear(site, dock, AlertKind.BATTERY_HEALTH, subject)
        drift = _number(slot.get("drift_s"))
        if drift is not None:
            if abs(drift) > th.drift_max_s:
                d.raise_(
                    site,
                    dock,
                    AlertKind.CLOCK_DRIFT_NOW,
                    subject,
                    f"clock off by {drift:g} s > {th.drift_max_s:g} s (slot {slot.get('slot')})",
                )
            else:
                d.clear(site, dock, AlertKind.CLOCK_DRIFT_NOW, subject)
    return d


def replication_rule(site: str, dock: str, health: dict[str, Any]) -> Decision:
    """REPLICATION_BACKLOG (one per dock) while some target's oldest waiting package was
    sealed longer ago than the dock's ``deadline_hours``, measured by the health's own
    ``time`` (the dock's clock on both ends); closed by a health where none is, or one
    without ``replication`` (the dock no longer replicates)."""
    d = Decision()
    rep = health.get("replication")
    late: list[str] = []
    hours = ""
    if isinstance(rep, dict):
        hours = f"{float(rep['deadline_hours']):g}"
        now = contract.parse_utc(health["time"])
        deadline_s = float(rep["deadline_hours"]) * 3600.0
        for t in rep["targets"]:
            oldest = t.get("oldest_pending_at")
            if oldest is not None and now - contract.parse_utc(oldest) > deadline_s:
                late.append(
                    f"{t['name']}: {t['pending']} waiting, oldest sealed {oldest}"
                    + (f" ({t['failed']} failed)" if t["failed"] else "")
                )
    if late:
        d.raise_(
            site,
            dock,
            AlertKind.REPLICATION_BACKLOG,
            "",
            f"footage not at central storage within {hours} h: " + "; ".join(late),
        )
    else:
        d.clear(site, dock, AlertKind.REPLICATION_BACKLOG)
    return d


def event_rule(site: str, dock: str, event: dict[str, Any]) -> Decision:
    """Alerts one event opens or closes by itself (counting rules: :func:`failure_rule`)."""
    d = Decision()
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = event.get("type")
    serial = str(data.get("serial") or event.get("subject") or "")
    if kind == EventType.DEADLINE_OVERDUE:
        d.raise_(
            site,
            dock,
            AlertKind.OFFLOAD_OVERDUE,
            serial,
            f"offload overdue since {data.get('due')} (officer {data.get('officer')})",
        )
    elif kind == EventType.OFFLOAD_DONE and not data.get("failed"):
        d.clear(site, dock, AlertKind.OFFLOAD_OVERDUE, serial)
    elif kind == EventType.RECORDER_NOT_RETURNED:
        d.raise_(
            site,
            dock,
            AlertKind.RECORDER_NOT_RETURNED,
            serial,
            f"recorder not returned by the end of its shift (due {data.get('due')}, "
            f"officer {data.get('officer')}, checked out {data.get('out_at')})",
        )
    elif kind == EventType.CHECKIN:
        d.clear(site, dock, AlertKind.RECORDER_NOT_RETURNED, serial)
    elif kind == EventType.HANDOVER_FLAGGED:
        by = data.get("returned_by") or "nobody"
        d.raise_(
            site,
            dock,
            AlertKind.HANDOVER_FLAGGED,
            f"{serial}/{data.get('custody', '')}",
            f"recorder of officer {data.get('custodian')} handed back by {by} "
            f"({data.get('flag')}, {data.get('how')}) in slot {data.get('slot')}",
        )
    elif kind == EventType.CLOCK_DRIFT:
        d.raise_(
            site,
            dock,
            AlertKind.CLOCK_DRIFT,
            serial,
            f"clock was off by {data.get('drift_before_s')} s (bound {data.get('bound_s')} s, "
            f"{data.get('after_s')} s after sync, slot {data.get('slot')})",
        )
    elif kind == EventType.SCANNER_HIT:
        d.raise_(
            site,
            dock,
            AlertKind.SCANNER_HIT,
            f"{serial}/{data.get('recording', '')}",
            f"scanner: {data.get('detail')}",
        )
    elif kind == EventType.AUDIT_REWOUND:
        d.raise_(
            site,
            dock,
            AlertKind.AUDIT_BACKWARDS,
            "",
            f"audit log went backwards (the dock says): {data.get('detail')}; it ends at entry "
            f"{data.get('head_seq')}, entries up to {data.get('reported_seq')} were reported",
        )
    elif kind == EventType.GAP_FOUND and data.get("kind") in ("interrupted", "fault"):
        d.raise_(
            site,
            dock,
            AlertKind.RECORDING_INTERRUPTED,
            f"{serial}/{data.get('item', '')}",
            f"recording could not go on ({data.get('kind')}: {data.get('reason')}), "
            f"officer {data.get('officer')}: explanation item {data.get('item')}",
        )
    elif kind == EventType.GAP_ALERT:  # the dock's own word: recording could not continue
        d.raise_(
            site,
            dock,
            AlertKind.RECORDING_INTERRUPTED,
            f"{serial}/{data.get('item', '')}",
            f"recording could not continue ({data.get('reason')}), officer "
            f"{data.get('officer')}: tell the head at once (explanation item {data.get('item')})",
        )
    elif kind == EventType.CONTINUITY_FLAGGED:
        d.raise_(
            site,
            dock,
            AlertKind.FOOTAGE_CONTINUITY,
            f"{serial}/{data.get('item', '')}",
            f"footage continuity ({data.get('kind')}): {data.get('detail')} (officer "
            f"{data.get('officer')}, explanation item {data.get('item')})",
        )
    elif kind == EventType.PIN_LOCKED:
        d.raise_(
            site,
            dock,
            AlertKind.PIN_LOCKED,
            str(data.get("officer", "")),
            f"PIN of officer number {data.get('officer')} locked after {data.get('tries')} "
            f"wrong tries ({data.get('purpose')}; number known: {data.get('known')})",
        )
    elif kind == EventType.PIN_UNLOCKED:
        d.clear(site, dock, AlertKind.PIN_LOCKED, str(data.get("officer", "")))
    elif kind == EventType.REPLICATION_FAILED:
        d.raise_(
            site,
            dock,
            AlertKind.REPLICATION_FAILED,
            f"{data.get('target', '')}/{data.get('package', '')}",
            f"package {data.get('package')} not copied to {data.get('target')} after "
            f"{data.get('attempts')} attempt(s): {data.get('reason')}",
        )
    elif kind == EventType.FIXITY_FAILED:
        d.raise_(
            site,
            dock,
            AlertKind.FIXITY_FAILED,
            str(data.get("path") or serial),
            f"fixity failed: {data.get('detail')} (device {serial or '?'})",
        )
    return d


def failure_of(event: dict[str, Any]) -> tuple[AlertKind, str] | None:
    """The counter an event adds to, as (kind, subject): a device's failed checks (only
    when some check fails: the event also reports checks that pass again) or a dock's
    refused check-outs."""
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if event.get("type") == EventType.CHECKS_FAILED and data.get("failed"):
        return AlertKind.CHECKS_FAILING, str(data.get("serial") or "")
    if event.get("type") == EventType.CHECKOUT_REFUSED:
        return AlertKind.REFUSALS, ""
    return None


def failure_rule(
    site: str, dock: str, kind: AlertKind, subject: str, count: int, th: Thresholds
) -> Decision:
    """``count``: such events for (site, dock, kind, subject) within the window, this one
    included."""
    d = Decision()
    bound = th.device_failures if kind is AlertKind.CHECKS_FAILING else th.dock_refusals
    if count >= bound:
        what = "failed checks" if kind is AlertKind.CHECKS_FAILING else "refused check-outs"
        d.raise_(
            site, dock, kind, subject, f"{count} {what} within {th.failure_window_s / 60:g} min"
        )
    return d


def missing_rule(site: str, dock: str, boot: str, received: int, expected: int) -> Decision:
    """Events of one boot: ``received`` distinct seqs out of 1..``expected`` (the highest
    seq seen, or the dock's last_event when its outbox is empty)."""
    d = Decision()
    if received < expected:
        d.raise_(
            site,
            dock,
            AlertKind.EVENTS_MISSING,
            boot,
            f"{expected - received} of {expected} events of boot {boot} not received",
        )
    else:
        d.clear(site, dock, AlertKind.EVENTS_MISSING, boot)
    return d


@dataclass(frozen=True)
class DockSeen:
    """When headquarters last heard a dock's health (its own clock, epoch seconds)."""

    site: str
    dock: str
    state: str | None
    last_health_at: float | None


def silent_rule(docks: Iterable[DockSeen], now: float, since: float, th: Thresholds) -> Decision:
    """Docks that say they run but sent no health for ``th.silent_after_s``.

    ``since``: when headquarters started listening; silence is counted from then at the
    earliest, so a restart of headquarters does not find the whole fleet silent while
    the broker's queue drains. Lost and stopped docks are left to their state.
    """
    d = Decision()
    for seen in docks:
        if seen.state in (DockState.LOST, DockState.STOPPED):
            continue
        heard = max(seen.last_health_at or since, since)
        if now - heard > th.silent_after_s:
            d.raise_(
                seen.site,
                seen.dock,
                AlertKind.DOCK_SILENT,
                "",
                f"no health for more than {th.silent_after_s:g} s",
            )
    return d


def _device(slot: dict[str, Any]) -> str | None:
    serial = slot.get("serial")
    if isinstance(serial, str) and serial:
        return serial
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
