"""A docked camera of the common vendor command set: who it is, its clock, then disk mode.

Such a camera (docs/VENDOR-CAMERAS.md) is reached through a ``VendorControl``
(dock/domain/interfaces.py; built by ``composition.open_vendor_control``). For a slot
holding one, :func:`prepare_vendor_camera`

1. finds its enrolment by the USB serial it shows (``vendor_cameras``): no enrolment,
   no password sent: it is refused as unknown, in one line;
2. logs in with that device's own password (the ``devices`` row's secret; never a
   default), reads its id and checks that it is the enrolled one;
3. sets its clock only while the dock's own clock is synchronised, as for our
   protocol: the drift before (where the camera reports its time, else "drift not
   reported") in the ``clock_set`` audit entry and the status history; an untrusted
   dock clock sends the camera nothing and is audited ``clock_not_set``;
4. says what it learnt to the bay's mass-storage side (``UmsSlot.vouch``: the id, the
   battery, the clock's offset and whether the dock set it), then switches it to disk
   mode: the disk that appears in the bay is offloaded as that camera's.

:class:`VendorBays` is the daemon's step (dock/daemon/slot_access.py): in a bay
whose ``[[model]]`` has ``driver = "vendor"``, a session that finds no disk there yet
and the vendor device present runs it under the slot's lock; a refusal is raised as the
recorder-client error of its kind, so the inspection shows it as the slot's fault in
one line and counts it once.

:func:`enrol_vendor` is ``dock device enrol-vendor``: the password, given by a person,
becomes the device's secret once the camera accepted it. Neither ever logs or shows it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dock.daemon.parts import DockParts
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NoReply,
    ProtocolViolation,
    RecorderRefused,
)
from dock.devices.ums.attach import UmsSlot
from dock.devices.ums.recorder import Vouched
from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import VendorControl
from dock.storage.maintenance_tables import SlotErrorTable
from dock.storage.store import StoreError
from dock.storage.vendor_table import VendorCameraTable
from dock.support.text import shown
from firmware_protocol.messages import ErrorCode

log = logging.getLogger("dock.daemon.vendor_cameras")

#: ``devices.model`` of a vendor camera starts with this (then ``:`` and the model name).
VENDOR_MODEL = "vendor-usb"
MAX_PASSWORD = 64
#: The audit entry's words where the camera does not report its time.
DRIFT_NOT_REPORTED = "drift not reported"


class VendorRefusal(Exception):
    """The camera is refused or failed; the message is one line, already escaped.
    ``counter``: the slot error counter it goes to (SLOT_ERROR_KINDS)."""

    def __init__(self, message: str, counter: str = "refused") -> None:
        super().__init__(message)
        self.counter = counter


def check_password(password: str) -> str:
    """A vendor password the dock will store and send: 1..64 printable ASCII, no ``;``
    or ``#`` (they end a field). ValueError otherwise, never repeating it."""
    if not password:
        raise ValueError("the password is empty")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"the password is longer than {MAX_PASSWORD} characters")
    for i, ch in enumerate(password, start=1):
        if ch in ";#" or not " " <= ch <= "~":
            raise ValueError(
                f"the password's character {i} is not allowed (printable ASCII, no ';' or '#')"
            )
    return password


@dataclass(frozen=True)
class VendorOutcome:
    """What :func:`prepare_vendor_camera` did with the camera in one slot."""

    slot: str
    #: The enrolled id, once the camera proved it (logged in and stated it).
    serial: str | None
    #: Switched to disk mode: the mass-storage side may take it from here.
    disk_mode: bool
    clock_set: bool
    #: The camera's clock minus the dock's before setting; None: not reported or not read.
    drift_s: float | None
    after_s: float | None
    #: Why the clock was not set, when it was not.
    clock_not_set: str | None
    battery_percent: int | None
    #: Why the camera was refused or failed (one line, escaped); None when it was not.
    refused: str | None = None


class CameraRefused(RecorderRefused):
    """A vendor camera refused by the dock (unknown, another id): counted "refused"."""

    def __init__(self, message: str) -> None:
        super().__init__(int(ErrorCode.NOT_ENROLLED), message)
        self.args = (message,)  # shown as the one line, without the code's name


def as_slot_error(slot_id: str, exc: VendorRefusal) -> Exception:
    """The recorder-client error of the refusal's kind, so the inspection counts it under
    that kind and shows it as the slot's fault (one line)."""
    line = f"slot {slot_id}: vendor camera: {exc}"
    if exc.counter == "auth":
        return AuthenticationFailed(line)
    if exc.counter == "timeout":
        return NoReply(line)
    if exc.counter == "protocol":
        return ProtocolViolation(line)
    if exc.counter == "link":
        return LinkError(line)
    return CameraRefused(line)


def _kind(exc: OSError) -> str:
    """The slot error counter an exception from a VendorControl goes to."""
    if isinstance(exc, PermissionError):
        return "auth"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "link"
    return "protocol"


def _step(what: str, exc: OSError | ValueError) -> VendorRefusal:
    kind = _kind(exc) if isinstance(exc, OSError) else "protocol"
    return VendorRefusal(f"{what}: {shown(str(exc), 300)}", kind)


@contextmanager
def slot_lock(parts: DockParts, slot_id: str, timeout: float = 10.0) -> Iterator[None]:
    """The slot's lock file, as the daemon's sessions take it (dock/daemon/slot_access.py):
    a sweep and a command in another process never talk to one port at once."""
    path = os.path.join(parts.slots.lock_dir, f"slot-{slot_id}.lock")
    os.makedirs(parts.slots.lock_dir, exist_ok=True)
    with open(path, "a+") as lock:
        deadline = time.monotonic() + timeout
        while True:  # each pass takes the lock or sleeps 10 ms until the deadline
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VendorRefusal(f"slot {slot_id} is busy", "link") from None
                time.sleep(0.01)
        yield


def enrol_vendor(
    parts: DockParts,
    slot_id: str,
    control: VendorControl,
    password: str,
    actor: str,
    model: str = "generic",
) -> str:
    """Enrol the camera in ``slot_id`` with ``password`` (audited ``enrol``): it must
    accept the password and state a plain id, and show a USB serial no other enrolled
    camera shows. Its id; VendorRefusal (one line) or StoreError otherwise."""
    check_password(password)
    usb = control.usb_serial
    if usb is None:
        raise VendorRefusal(
            "the camera shows no usable USB serial: the dock could not find its password "
            "before a login, so it cannot be enrolled"
        )
    try:
        control.login(password)
    except (OSError, ValueError) as exc:
        raise _step("login", exc) from None
    try:
        serial = control.device_id()
    except (OSError, ValueError) as exc:
        raise _step("device id", exc) from None
    store = parts.store
    if store.device(serial) is not None:
        raise StoreError(f"device {shown(serial)} is already enrolled")
    model_name = f"{VENDOR_MODEL}:{model}"
    VendorCameraTable(store).link(serial, usb, model_name)
    store.enrol_device(serial, model_name, "", password.encode("ascii"))
    data = {"slot": slot_id, "model": model_name, "usb_serial": usb}
    parts.audit.append(AuditKind.ENROL, actor, serial, data)
    return serial


def enrol_in_slot(parts: DockParts, slot_id: str, actor: str, password: str, model: str) -> str:
    """:func:`enrol_vendor` for the camera in ``slot_id``, opened under the slot's lock
    through the wiring's ``open_vendor``. VendorRefusal when there is none."""
    check_password(password)
    opener = parts.slots.open_vendor
    with slot_lock(parts, slot_id):
        try:
            control = opener(slot_id) if opener is not None else None
        except (OSError, ValueError) as exc:
            raise _step(f"slot {slot_id}", exc) from None
        if control is None:
            raise VendorRefusal(
                f"slot {slot_id}: no camera of the vendor command set there", "link"
            )
        try:
            return enrol_vendor(parts, slot_id, control, password, actor, model)
        finally:
            control.close()


def prepare_vendor_camera(
    parts: DockParts, slot_id: str, control: VendorControl, disk_mode: bool = True
) -> VendorOutcome:
    """Identify the camera in ``slot_id``, set its clock when the dock's is trusted, and
    switch it to disk mode. Never raises for what the camera does: a refusal or a
    failure is the outcome's ``refused`` (and counted in the slot's errors). The caller
    holds the slot's lock (:func:`slot_lock`) and closes ``control`` afterwards."""
    try:
        return _prepare(parts, slot_id, control, disk_mode)
    except VendorRefusal as exc:
        SlotErrorTable(parts.store).count(slot_id, exc.counter, parts.clock.now(), str(exc))
        log.warning("slot %s: vendor camera: %s", slot_id, exc)
        return VendorOutcome(slot_id, None, False, False, None, None, None, None, str(exc))


class VendorBays:
    """The daemon's vendor step (dock/daemon/slot_access.py calls it for a vendor bay with
    no disk in it yet, holding the slot's lock): the camera there, if any, is identified,
    its clock set, vouched for to the bay's ``UmsSlot`` and switched to disk mode.

    A camera that refused its stored password is not sent it again while it stays in the
    bay and its enrolment is unchanged (many cameras lock themselves after a few wrong
    passwords): the same fault is raised without a byte sent, until it is taken out or
    re-enrolled."""

    def __init__(self, parts: DockParts) -> None:
        self.parts = parts
        #: slot -> (USB serial, digest of the password tried, the refusal)
        self._refused: dict[str, tuple[str, bytes, VendorRefusal]] = {}

    def __call__(self, slot_id: str, ums: UmsSlot) -> VendorOutcome | None:
        """The outcome; None: no camera of the command set there. A refusal or failure
        raises :func:`as_slot_error`'s error (nothing vouched)."""
        opener = self.parts.slots.open_vendor
        if opener is None:
            return None
        try:
            control = opener(slot_id)
        except (OSError, ValueError) as exc:
            raise as_slot_error(slot_id, _step("cannot open it", exc)) from None
        if control is None:
            self._refused.pop(slot_id, None)  # taken out: the next one is tried afresh
            return None
        try:
            key = self._key(control)
            held = self._refused.get(slot_id)
            if held is not None and key is not None and held[:2] == key:
                raise as_slot_error(slot_id, held[2])
            try:
                outcome = _prepare(self.parts, slot_id, control, True, before_disk=ums.vouch)
            except VendorRefusal as exc:
                ums.unvouch()  # disk mode was refused or failed: its disk is not coming
                log.warning("slot %s: vendor camera: %s", slot_id, exc)
                if exc.counter == "auth" and key is not None:
                    note = f"{exc} (not tried again while it stays docked)"
                    self._refused[slot_id] = (*key, VendorRefusal(note, exc.counter))
                raise as_slot_error(slot_id, exc) from None
        finally:
            control.close()
        self._refused.pop(slot_id, None)
        log.info("slot %s: vendor camera %s switched to disk mode", slot_id, outcome.serial)
        return outcome

    def _key(self, control: VendorControl) -> tuple[str, bytes] | None:
        """(USB serial, digest of its stored password); None: not enrolled."""
        usb = control.usb_serial
        device = VendorCameraTable(self.parts.store).device_for(usb) if usb else None
        if usb is None or device is None:
            return None
        return usb, hashlib.sha256(bytes(device.secret)).digest()


def _enrolled(parts: DockParts, control: VendorControl) -> tuple[str, str]:
    """(enrolled id, its password) for the camera's USB serial; VendorRefusal if none."""
    usb = control.usb_serial
    if usb is None:
        raise VendorRefusal("unknown camera: it shows no usable USB serial (not enrolled)")
    device = VendorCameraTable(parts.store).device_for(usb)
    if device is None:
        raise VendorRefusal(
            f"unknown camera (USB serial {shown(usb)}): not enrolled; "
            "see `dock device enrol-vendor`"
        )
    try:
        password = check_password(bytes(device.secret).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise VendorRefusal(
            f"device {shown(device.serial)}: its stored secret is not a vendor password"
        ) from None
    return device.serial, password


def _prepare(
    parts: DockParts,
    slot_id: str,
    control: VendorControl,
    disk_mode: bool,
    before_disk: Callable[[Vouched], None] | None = None,
) -> VendorOutcome:
    serial, password = _enrolled(parts, control)
    try:
        control.login(password)
    except (OSError, ValueError) as exc:
        raise _step(f"login as {shown(serial)}", exc) from None
    try:
        stated = control.device_id()
    except (OSError, ValueError) as exc:
        raise _step("device id", exc) from None
    if stated != serial:
        raise VendorRefusal(
            f"the camera states id {shown(stated)}, enrolled as {shown(serial)} under "
            "its USB serial: refused"
        )
    drift, after, not_set = _set_clock(parts, slot_id, serial, control)
    try:
        battery = control.battery()
    except (OSError, ValueError) as exc:
        log.warning("slot %s: battery of %s not read: %s", slot_id, shown(serial), shown(exc))
        battery = None
    parts.store.record_status(
        serial,
        battery_percent=battery,
        drift_before_s=drift,
        drift_after_s=after,
        state="disk_mode" if disk_mode else "vendor_docked",
    )
    if disk_mode:
        if before_disk is not None:  # the bay's disk is this camera's, once it appears
            offset = after if not_set is None else drift
            before_disk(Vouched(serial, battery, offset, "set" if not_set is None else "read"))
        try:
            control.disk_mode()
        except (OSError, ValueError) as exc:
            raise _step(f"disk mode of {shown(serial)}", exc) from None
    return VendorOutcome(
        slot_id, serial, disk_mode, not_set is None, drift, after, not_set, battery
    )


def _set_clock(
    parts: DockParts, slot_id: str, serial: str, control: VendorControl
) -> tuple[float | None, float | None, str | None]:
    """(drift before, offset after, why not set): the camera is sent nothing at all
    unless the dock's own clock is synchronised (fail closed, as for our protocol)."""
    trusted, why = parts.clock.synchronised()
    limit = parts.policy.max_clock_drift_after_sync_s
    if not trusted:
        reason = f"dock clock not trusted: {why}"
        parts.audit.append(
            AuditKind.CLOCK_NOT_SET,
            "dock",
            serial,
            {"slot": slot_id, "reason": reason, "offset_s": None, "max_s": limit,
             "within_limit": None, "drift": DRIFT_NOT_REPORTED},
        )  # fmt: skip
        return None, None, reason
    try:
        drift = control.clock_offset(parts.clock.now)
        control.set_clock(parts.clock.now())
        after = control.clock_offset(parts.clock.now)
    except (OSError, ValueError) as exc:
        reason = f"camera clock not set: {shown(str(exc), 300)}"
        parts.audit.append(
            AuditKind.CLOCK_NOT_SET,
            "dock",
            serial,
            {"slot": slot_id, "reason": reason, "offset_s": None, "max_s": limit,
             "within_limit": None},
        )  # fmt: skip
        return None, None, reason
    data: dict[str, object] = {"slot": slot_id, "drift_before_s": drift, "after_s": after,
                               "source": why, "driver": VENDOR_MODEL}  # fmt: skip
    if drift is None:
        data["drift"] = DRIFT_NOT_REPORTED
    parts.audit.append(AuditKind.CLOCK_SET, "dock", serial, data)
    return drift, after, None
