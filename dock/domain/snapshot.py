"""What the dock knows about one docked recorder at one moment: the input to checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSnapshot:
    serial: str
    firmware: str
    battery_percent: int
    #: None when the recorder does not report battery health (older firmware).
    battery_health_percent: int | None
    storage_free_bytes: int
    #: Device clock minus trusted UTC after the dock's last clock set, or as measured
    #: when the recorder's clock cannot be set (``clock_not_set_reason``); None when
    #: the dock clock is untrusted or the device is not enrolled.
    clock_offset_after_sync_s: float | None
    #: Recordings still on the device that the dock has not offloaded and verified.
    recordings_pending: int
    fault_flags: int
    #: None when the recorder has no self-test capability.
    self_test_passed: bool | None
    #: The device is in the dock's enrolment table and authenticated with its secret.
    enrolled: bool
    reported_lost: bool
    maintenance_flag: bool
    #: Why the dock could not set the recorder's clock (protocol version 1, or it
    #: refused SET_TIME); None when it was set, or not due.
    clock_not_set_reason: str | None = None
    #: The local date the recorder's maintenance fell due, when that has passed
    #: (000 §14.1; 002 art.22): it fails the maintenance check. None: not overdue.
    maintenance_overdue_since: str | None = None
