"""A reference body camera that speaks the common vendor command set, on the pyusb backend.

The tests reach it through pyusb itself (``VendorUsbBus`` is an
:class:`~hardware.emulator.usb_backend.EmulatedUsbBackend` that can also plug cameras),
so ``hardware.vendor_usb`` runs its real code path. What it answers
(docs/VENDOR-CAMERAS.md):

- ``@Ver;8;PW;#`` -> ``@Ver;OK;#``, or ``@Ver;ERR;#`` for a wrong password;
- ``@Gdv;8;PW;#`` -> ``@Gdv;OK;<device id>;#`` (``ERR`` before a login or with a wrong PW);
- ``@Sdt;8;YYYYMMDD;#`` / ``@Stm;6;HHMMSS00;#`` -> ``OK`` and its wall clock set;
- ``@ATH;8;PW;#`` -> ``@ATH;OK;#``, then disk mode: it answers nothing more (a real one
  re-enumerates as a USB disk), :attr:`VendorCamera.disk_mode` is set and
  :attr:`VendorCamera.entered_disk_mode` fires (and ``on_disk_mode`` is called), for
  the mass-storage side's tests;
- optional ``@Gtm;8;PW;#`` -> ``@Gtm;OK;YYYYMMDDHHMMSS;#`` and ``@Gbt;8;PW;#`` ->
  ``@Gbt;OK;<percent>;#`` when ``reports_time`` / ``battery`` are set;
- anything else -> ``@CMD;ERR;#``.

Its clock is the true time plus ``drift_s`` (settable, kept as local wall time in
``timezone``). Faults (``fault``): ``"silent"`` never answers, ``"garbage"`` answers
another command's frame, ``"oversize"`` an answer longer than any driver should take,
``"binary"`` bytes that are not ASCII, ``"control"`` an id with control characters,
``"long_id"`` a 300-character id, ``"slow"`` answers after ``slow_s`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from hardware.emulator.usb_backend import EmulatedUsbBackend
from hardware.emulator.usb_device import DT_DEVICE, EmulatedRecorder
from hardware.usb_transport import parse_port_path
from hardware.vendor_usb import VENDOR_PID, VENDOR_VID

if TYPE_CHECKING:
    from hardware.emulator.recorder import RecorderFirmware

FAULTS = ("silent", "garbage", "oversize", "binary", "control", "long_id", "slow")


@dataclass
class VendorCamera:
    """The camera's firmware: parses frames, answers them, keeps its clock and state."""

    password: str
    device_id: str
    usb_serial: str | None = None  # default: the device id, as many cameras report it
    drift_s: float = 0.0
    timezone: str = "UTC"
    reports_time: bool = False
    battery: int | None = None
    fault: str | None = None
    slow_s: float = 0.0
    #: The true time (UTC seconds) the camera's clock drifts from.
    now: Callable[[], float] = time.time
    #: The clock deciding when a slow answer is due (the bus's: monotonic).
    monotonic: Callable[[], float] = time.monotonic
    logged_in: bool = False
    disk_mode: bool = False
    entered_disk_mode: threading.Event = field(default_factory=threading.Event)
    #: Called as it enters disk mode (a test presents the camera's disk there).
    on_disk_mode: Callable[[], None] | None = None
    #: Every frame received, in order, as (command, LEN, argument).
    received: list[tuple[str, str, str]] = field(default_factory=list)
    _inbox: bytearray = field(default_factory=bytearray)
    _out: bytearray = field(default_factory=bytearray)
    _delayed: list[tuple[float, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}: one of {', '.join(FAULTS)}")

    # --------------------------------------------------------------- the clock
    def clock(self) -> float:
        """What the camera's clock says now, in UTC seconds."""
        return self.now() + self.drift_s

    def _wall(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), ZoneInfo(self.timezone))

    def _set_wall(self, wall: datetime) -> None:
        self.drift_s = wall.timestamp() - self.now()

    # --------------------------------------------------------------- the firmware API
    def receive(self, data: bytes) -> None:
        """Bytes from a bulk OUT: each complete ``@...#`` frame is answered."""
        self._inbox += data
        for _ in range(len(self._inbox)):  # bounded: each pass takes a frame
            end = self._inbox.find(b"#")
            if end < 0:
                break
            frame = bytes(self._inbox[: end + 1])
            del self._inbox[: end + 1]
            self._frame(frame)
        if len(self._inbox) > 4096:
            self._inbox.clear()  # no frame end in sight: a real camera drops it too

    def outgoing(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_deadline(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def on_timer(self) -> None:
        now = self.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            self._out += self._delayed.pop(0)[1]

    def link_lost(self) -> None:
        self.logged_in = False
        self._inbox.clear()
        self._out.clear()
        self._delayed.clear()

    # --------------------------------------------------------------- the commands
    def _frame(self, frame: bytes) -> None:
        try:
            text = frame.decode("ascii")
        except UnicodeDecodeError:
            return
        parts = text.removeprefix("@").removesuffix("#").split(";")
        if len(parts) < 3 or not text.startswith("@"):
            return
        command, length, arg = parts[0], parts[1], parts[2]
        self.received.append((command, length, arg))
        if self.disk_mode or self.fault == "silent":
            return
        answer = self._answer(command, arg)
        if self.fault == "garbage":
            answer = "@Xyz;OK;#"
        elif self.fault == "oversize":
            answer = f"@{command};OK;{'9' * 2000};#"
        raw = answer.encode("ascii")
        if self.fault == "binary":
            raw = f"@{command};OK;".encode() + b"\xff\xfe\x00" + b";#"
        if self.fault == "slow":
            self._delayed.append((self.monotonic() + self.slow_s, raw))
        else:
            self._out += raw

    def _answer(self, command: str, arg: str) -> str:
        ok, err = f"@{command};OK;#", f"@{command};ERR;#"
        if command == "Ver":
            self.logged_in = arg == self.password
            return ok if self.logged_in else err
        if not self.logged_in:
            return err
        if command == "Gdv":
            if arg != self.password:
                return err
            ident = self.device_id
            if self.fault == "control":
                ident = "BWC\x1b[2J\x07" + ident
            elif self.fault == "long_id":
                ident = "X" * 300
            return f"@Gdv;OK;{ident};#"
        if command == "Sdt":
            try:
                day = datetime.strptime(arg, "%Y%m%d")
            except ValueError:
                return err
            wall = self._wall()
            self._set_wall(wall.replace(year=day.year, month=day.month, day=day.day))
            return ok
        if command == "Stm":
            if len(arg) != 8 or not arg.isdigit():
                return err
            h, m, s, cs = int(arg[:2]), int(arg[2:4]), int(arg[4:6]), int(arg[6:])
            if h > 23 or m > 59 or s > 59:
                return err
            wall = self._wall().replace(hour=h, minute=m, second=s, microsecond=0)
            self._set_wall(wall + timedelta(milliseconds=10 * cs))
            return ok
        if command == "ATH" and arg == self.password:
            self.disk_mode = True
            self.entered_disk_mode.set()
            if self.on_disk_mode is not None:
                self.on_disk_mode()
            return ok
        if command == "Gtm" and self.reports_time and arg == self.password:
            return f"@Gtm;OK;{self._wall():%Y%m%d%H%M%S};#"
        if command == "Gbt" and self.battery is not None and arg == self.password:
            return f"@Gbt;OK;{self.battery};#"
        return err


class EmulatedVendorDevice(EmulatedRecorder):
    """A vendor camera as a USB device: the recorder's descriptors under the vendor's ids."""

    def device_descriptor(self) -> SimpleNamespace:
        desc = super().device_descriptor()
        desc.idVendor, desc.idProduct = self.vendor_id, self.product_id
        return desc

    def descriptor_bytes(self, kind: int, index: int, langid: int) -> bytes:
        raw = super().descriptor_bytes(kind, index, langid)
        if kind == DT_DEVICE and index == 0:
            ids = self.vendor_id.to_bytes(2, "little") + self.product_id.to_bytes(2, "little")
            raw = raw[:8] + ids + raw[12:]
        return raw

    vendor_id = VENDOR_VID
    product_id = VENDOR_PID

    @property
    def camera(self) -> VendorCamera:
        return cast(VendorCamera, self.firmware)


class VendorUsbBus(EmulatedUsbBackend):
    """A USB bus for tests on which vendor cameras (and our recorders) can be plugged."""

    def plug_camera(
        self, camera: VendorCamera, port: str = "1-1", *, clock: Callable[[], float] | None = None
    ) -> EmulatedVendorDevice:
        """Plug ``camera`` into ``port`` (a sysfs port path such as ``"1-1.2"``)."""
        bus, ports = parse_port_path(port)
        with self._lock:
            for d in self._devices:
                if (d.bus, d.port_numbers) == (bus, ports):
                    raise ValueError(f"USB port {port} already has {d.serial} in it")
            address = self._next_address.get(bus, 2)
            self._next_address[bus] = address + 1 if address < 127 else 2
            serial = camera.usb_serial if camera.usb_serial is not None else camera.device_id
            device = EmulatedVendorDevice(
                cast("RecorderFirmware", camera),  # the same firmware calls, another protocol
                bus,
                ports,
                address,
                serial,
                "Generic",
                "Body camera (vendor command set)",
                clock or camera.monotonic,
            )
            self._devices.append(device)
        return device


__all__ = ["FAULTS", "EmulatedVendorDevice", "VendorCamera", "VendorUsbBus"]
