"""Setting a docked recorder's clock, only from a trusted dock clock, audited."""

from __future__ import annotations

from dock.daemon.parts import DockParts
from dock.devices.recorder_client import RecorderClient, RecorderRefused
from dock.domain.audit_kinds import AuditKind
from firmware_protocol.messages import MsgType

#: A recorder's clock is set again when it is further off than this.
CLOCK_SET_THRESHOLD_S = 0.05


class ClockSetting:
    """Which recorders this run has set, and why others were left as they are."""

    def __init__(self, parts: DockParts) -> None:
        self.parts = parts
        self._set: set[str] = set()  # recorders whose clock this run has set
        self._not_set: dict[str, str] = {}  # serial -> why its clock was not set

    def settle(
        self, slot_id: str, serial: str, client: RecorderClient, source: str, drift: float
    ) -> tuple[float, str | None]:
        """Set the clock of an enrolled recorder when it needs it, the dock's own clock
        being trusted: (its offset afterwards, why it was not set)."""
        if abs(drift) <= CLOCK_SET_THRESHOLD_S and serial in self._set:
            return drift, None  # set earlier in this run and still within bounds
        not_set = self._set_clock(client, source)
        if not_set is None:
            after = client.status().clock_offset_s
            self._set.add(serial)
            self._not_set.pop(serial, None)
            self.parts.audit.append(
                AuditKind.CLOCK_SET,
                "dock",
                serial,
                {"slot": slot_id, "drift_before_s": drift, "after_s": after},
            )
            return after, None
        # Strictest reading: the clock must be within the limit at check-out; one the
        # dock cannot set passes only if it already is (PROTOCOL.md 6.7).
        self._note_not_set(slot_id, serial, not_set, drift)
        return drift, not_set

    def _set_clock(self, client: RecorderClient, source: str) -> str | None:
        """Set the recorder's clock from the dock's; why not, where it cannot be set."""
        why_not = client.why_not(MsgType.SET_TIME)
        if why_not is not None:  # a version 1 recorder: nothing is sent
            return why_not
        try:
            client.set_time(self.parts.clock.now(), source=source)
        except RecorderRefused as exc:
            return f"recorder refused SET_TIME ({exc})"
        return None

    def _note_not_set(self, slot_id: str, serial: str, why: str, offset: float) -> None:
        """Audit a clock left as it is: once per recorder and reason in this run."""
        if self._not_set.get(serial) == why:
            return
        self._not_set[serial] = why
        limit = self.parts.policy.max_clock_drift_after_sync_s
        self.parts.audit.append(
            AuditKind.CLOCK_NOT_SET,
            "dock",
            serial,
            {"slot": slot_id, "reason": why, "offset_s": offset, "max_s": limit,
             "within_limit": abs(offset) <= limit},
        )  # fmt: skip
