"""Body cameras that take the common vendor command set: ASCII commands on a USB bulk pipe.

Many Ambarella-based body cameras (most 执法记录仪 on the market) answer ASCII commands
on a vendor-specific USB interface, commonly VID 0x4255 PID 0x0001 with bulk OUT 0x01
and bulk IN 0x81. This driver speaks that set through pyusb (libusb on a dock; the tests
pass ``hardware.emulator.vendor_camera``'s backend, so the same code path runs).

Commands, each one frame ``@CMD;LEN;ARG;#`` (docs/VENDOR-CAMERAS.md):

=====  ===  ===============  ============================================
CMD    LEN  ARG              what it does
=====  ===  ===============  ============================================
Ver    8    the password     log in; the answer contains ``Ver;OK``
Gdv    8    the password     the device id (the last field of the answer)
Sdt    8    ``YYYYMMDD``     set the date (the camera keeps local time)
Stm    6    ``HHMMSS00``     set the time of day
ATH    8    the password     switch to disk mode (re-enumerates as a disk)
=====  ===  ===============  ============================================

How LEN is computed: it is NOT the length of the argument. It is the field's nominal
length from the model's table (:attr:`VendorModel.lengths`, default as listed above:
the password field is 8 wide whatever the password's length, and ``Stm`` says 6 for
the six digits HHMMSS although two padding digits follow). Vendors differ: some put
the argument's actual length there; a model with ``actual_lengths=True`` does that.

An answer starts with the command name (a leading ``@`` is accepted) and ends with
``#``: ``@Ver;OK;#``; fields in between are split on ``;``. It is read until ``#``, at
most :attr:`VendorModel.max_answer` bytes and :attr:`VendorModel.timeout_s` seconds;
anything else (another prefix, too long, bytes that are not printable ASCII, bytes after
the ``#``) is refused in one line, shown escaped. A first field ``ERR``/``FAIL``/``NG``
is the device refusing. Arguments (the password too) must be printable ASCII without
``;`` or ``#``: anything else is refused before a byte is sent, and no error message
ever repeats an argument (it may be the password).

Optional per model: a clock query (:attr:`VendorModel.time_query`, e.g. ``Gtm``
answering ``@Gtm;OK;YYYYMMDDHHMMSS;#``) so that drift can be measured; without one the
drift is "not reported". A battery query likewise (``@Gbt;OK;87;#``). Default: neither.

Failures are OSError subclasses (the dock catches them without importing this module):
:class:`VendorLinkError` (a ConnectionError: no device, unplugged, busy),
:class:`VendorTimeout` (a TimeoutError), :class:`VendorRefused` (a PermissionError: the
device said no, e.g. a wrong password) and :class:`VendorProtocolError` (an answer
refused); a refused argument is a ValueError.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import usb.core
import usb.util

from hardware.usb_errors import usb_failure
from hardware.usb_transport import format_port_path, parse_port_path

log = logging.getLogger("hardware.vendor_usb")

VENDOR_VID = 0x4255
VENDOR_PID = 0x0001
VENDOR_OUT_ENDPOINT = 0x01
VENDOR_IN_ENDPOINT = 0x81

LOGIN, DEVICE_ID, SET_DATE, SET_TIME, DISK_MODE = "Ver", "Gdv", "Sdt", "Stm", "ATH"
#: Each command's nominal LEN, as the common set lists it.
DEFAULT_LENGTHS: Mapping[str, int] = MappingProxyType(
    {LOGIN: 8, DEVICE_ID: 8, SET_DATE: 8, SET_TIME: 6, DISK_MODE: 8}
)
#: First fields by which a device refuses a command.
REFUSALS = frozenset({"ERR", "ERROR", "FAIL", "NG", "NO"})

MAX_ARG = 64
MAX_DEVICE_ID = 64
_COMMAND = re.compile(r"[A-Za-z][A-Za-z0-9]{1,7}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_READ_SIZE = 512


class VendorError(OSError):
    """A vendor camera could not do what was asked; the message is one line."""


class VendorLinkError(VendorError, ConnectionError):
    """No camera there, unplugged, in use by another program, or not permitted."""


class VendorTimeout(VendorError, TimeoutError):
    """No complete answer within the command's timeout."""


class VendorRefused(VendorError, PermissionError):
    """The camera answered no (a wrong password, a command it refuses)."""


class VendorProtocolError(VendorError):
    """An answer the driver refuses: another command's, too long, not printable ASCII."""


@dataclass(frozen=True)
class Query:
    """A per-model read command: ``@CMD;LEN;ARG;#`` whose answer's last field is the value.
    ARG is the password when ``with_password``, else ``arg``."""

    command: str
    length: int = 8
    with_password: bool = True
    arg: str = ""


@dataclass(frozen=True)
class VendorModel:
    """What differs between vendors: ids, endpoints, LEN values, optional queries."""

    name: str = "generic"
    vendor_id: int = VENDOR_VID
    product_id: int = VENDOR_PID
    ep_out: int = VENDOR_OUT_ENDPOINT
    ep_in: int = VENDOR_IN_ENDPOINT
    lengths: Mapping[str, int] = field(default_factory=lambda: DEFAULT_LENGTHS)
    #: LEN is the argument's own length (some vendors) instead of the nominal one.
    actual_lengths: bool = False
    timeout_s: float = 2.0
    max_answer: int = 512
    #: Reads the camera's clock (answer's last field in ``time_layout``); None: not reported.
    time_query: Query | None = None
    time_layout: str = "%Y%m%d%H%M%S"
    #: Reads the battery percentage (0..100); None: not reported.
    battery_query: Query | None = None
    #: The zone of the camera's wall clock (it stamps local time into file names).
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        if not 0 < self.timeout_s <= 60 or not 16 <= self.max_answer <= 65536:
            raise ValueError("timeout_s must be in (0, 60] and max_answer in 16..65536")


# ------------------------------------------------------------------------ the frames
def check_arg(arg: str, what: str = "argument") -> str:
    """``arg`` if it may go in a frame; ValueError (never repeating it) otherwise."""
    if not isinstance(arg, str):
        raise ValueError(f"{what} is not text")
    if len(arg) > MAX_ARG:
        raise ValueError(f"{what} is longer than {MAX_ARG} characters")
    for i, ch in enumerate(arg):
        if ch in ";#":
            raise ValueError(f"{what} contains {ch!r} (character {i + 1}), which ends a field")
        if not " " <= ch <= "~":
            raise ValueError(f"{what} has a character that is not printable ASCII ({i + 1})")
    return arg


def encode_command(command: str, length: int, arg: str, what: str = "argument") -> bytes:
    """``@CMD;LEN;ARG;#`` as bytes; ValueError for anything that cannot be sent as is."""
    if not isinstance(command, str) or not _COMMAND.fullmatch(command):
        raise ValueError(f"not a command name: {command!r}")
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= 999:
        raise ValueError(f"LEN must be 0..999, not {length!r}")
    check_arg(arg, what)
    return f"@{command};{length};{arg};#".encode("ascii")


def parse_answer(raw: bytes, command: str) -> tuple[str, ...]:
    """The fields of a complete answer to ``command`` (``@CMD;F1;F2;#``); ValueError with
    the answer shown escaped when it is not one."""
    if not raw.endswith(b"#"):
        raise ValueError(f"answer does not end with '#': {shown_bytes(raw)}")
    if raw.count(b"#") != 1:
        raise ValueError(f"bytes after the answer's '#': {shown_bytes(raw)}")
    if not all(0x20 <= b <= 0x7E for b in raw):
        raise ValueError(f"answer is not printable ASCII: {shown_bytes(raw)}")
    text = raw[:-1].decode("ascii")
    body = text.removeprefix("@")
    if body != command and not body.startswith(command + ";"):
        raise ValueError(f"answer is not to @{command}: {shown_bytes(raw)}")
    fields = body[len(command) + 1 :].split(";") if body != command else []
    if fields and fields[-1] == "":
        fields.pop()  # the ";" before "#"
    return tuple(fields)


def shown_bytes(raw: bytes, limit: int = 48) -> str:
    """Bytes from a device, safe on one line of a terminal or a log: escaped, shortened."""
    head = repr(bytes(raw[:limit]))
    return head + (f"... ({len(raw)} bytes)" if len(raw) > limit else "")


def _is_timeout(exc: usb.core.USBError) -> bool:
    return isinstance(exc, usb.core.USBTimeoutError) or exc.errno == errno.ETIMEDOUT


# ------------------------------------------------------------------------ the driver
class VendorUsbCamera:
    """One vendor camera on one USB device: log in, its id, its clock, disk mode.

    Fits the dock's ``VendorControl`` (dock/domain/interfaces.py). The password is kept
    in memory after a successful login (the id and disk-mode commands carry it) and
    never logged, shown or put in an error message.
    """

    def __init__(self, device: usb.core.Device, model: VendorModel | None = None) -> None:
        self.device = device
        self.model = model or VendorModel()
        try:
            self.port_path = format_port_path(device.bus, device.port_numbers)
        except (TypeError, AttributeError):
            self.port_path = f"bus{device.bus}-addr{device.address}"
        self.url = f"usb:{self.port_path}"
        self._password: str | None = None
        self._disk = False
        self._closed = False
        self._interface: int | None = None
        try:
            self._setup()
        except usb.core.USBError as exc:
            self._dispose()
            raise self._link_error(exc, "cannot open") from exc
        except VendorError:
            self._dispose()
            raise
        self.usb_serial = self._read_serial()

    def __repr__(self) -> str:  # never the password
        return f"<VendorUsbCamera {self.model.name} {self.url}>"

    # --------------------------------------------------------------- opening
    def _setup(self) -> None:
        dev, m = self.device, self.model
        try:
            cfg = dev.get_active_configuration()
        except usb.core.USBError:
            dev.set_configuration()
            cfg = dev.get_active_configuration()
        for intf in cfg:
            eps = {e.bEndpointAddress: e for e in intf}
            bulk = usb.util.ENDPOINT_TYPE_BULK
            if all(
                a in eps and usb.util.endpoint_type(eps[a].bmAttributes) == bulk
                for a in (m.ep_out, m.ep_in)
            ):
                break
        else:
            raise VendorLinkError(
                f"{self.url}: no interface with bulk endpoints "
                f"{m.ep_out:#04x}/{m.ep_in:#04x}: not a {m.name} camera"
            )
        number = intf.bInterfaceNumber
        with contextlib.suppress(NotImplementedError, usb.core.USBError):
            if dev.is_kernel_driver_active(number):
                dev.detach_kernel_driver(number)
        usb.util.claim_interface(dev, intf)
        self._interface = number
        packet = eps[m.ep_in].wMaxPacketSize or _READ_SIZE
        self._read_size = max(packet, _READ_SIZE // packet * packet)

    def _read_serial(self) -> str | None:
        """The USB serial string, when it is a plain id (the dock looks cameras up by it)."""
        try:
            text = usb.util.get_string(self.device, self.device.iSerialNumber)
        except (usb.core.USBError, ValueError, NotImplementedError) as exc:
            log.warning("%s: cannot read the USB serial: %s", self.url, exc)
            return None
        if not isinstance(text, str) or not _DEVICE_ID.fullmatch(text):
            if text:
                log.warning("%s: USB serial refused: %s", self.url, shown_bytes(text.encode()))
            return None
        return text

    # --------------------------------------------------------------- the commands
    def login(self, password: str) -> None:
        """``@Ver``: VendorRefused on a wrong password (nothing else is sent then)."""
        check_arg(password, "password")
        fields = self._exchange(LOGIN, password, what="password")
        if "OK" not in fields:
            raise VendorRefused(f"{self.url}: login refused")
        self._password = password

    def device_id(self) -> str:
        """``@Gdv``: the camera's id, 1..64 of ``A-Z a-z 0-9 . _ -`` (else refused)."""
        fields = self._exchange(DEVICE_ID, self._logged_in(), what="password")
        ident = fields[-1] if fields and fields[-1] != "OK" else ""  # "OK;ID", "8;ID", "ID"
        if not _DEVICE_ID.fullmatch(ident):
            raise VendorProtocolError(
                f"{self.url}: device id refused (1 to {MAX_DEVICE_ID} of A-Z a-z 0-9 . _ -): "
                f"{shown_bytes(ident.encode('ascii'))}"
            )
        return ident

    def clock_offset(self, now: Callable[[], float]) -> float | None:
        """The camera's clock minus the dock's, in seconds (to about half a second: it
        answers whole seconds); None when this model does not report its time."""
        q = self.model.time_query
        if q is None:
            return None
        t0 = now()
        value = self._query(q)
        t1 = now()
        try:
            wall = datetime.strptime(value, self.model.time_layout)
        except ValueError:
            raise VendorProtocolError(
                f"{self.url}: @{q.command}: not a time in {self.model.time_layout}: "
                f"{shown_bytes(value.encode('ascii'))}"
            ) from None
        device_t = wall.replace(tzinfo=ZoneInfo(self.model.timezone)).timestamp() + 0.5
        return device_t - (t0 + t1) / 2

    def set_clock(self, utc: float) -> None:
        """``@Sdt`` then ``@Stm``: the camera's wall clock to ``utc`` in the model's zone,
        to the nearest second."""
        self._logged_in()
        if not math.isfinite(utc):
            raise ValueError(f"not a time: {utc!r}")
        local = datetime.fromtimestamp(round(utc), ZoneInfo(self.model.timezone))
        for command, arg in ((SET_DATE, f"{local:%Y%m%d}"), (SET_TIME, f"{local:%H%M%S}00")):
            fields = self._exchange(command, arg)
            if fields and fields[0] != "OK":
                raise VendorRefused(f"{self.url}: @{command} not acknowledged")

    def battery(self) -> int | None:
        """The battery percentage; None when this model does not report it."""
        q = self.model.battery_query
        if q is None:
            return None
        value = self._query(q)
        if not value.isdigit() or not 0 <= int(value) <= 100:
            raise VendorProtocolError(
                f"{self.url}: @{q.command}: not a percentage: {shown_bytes(value.encode('ascii'))}"
            )
        return int(value)

    def disk_mode(self) -> None:
        """``@ATH``: the camera leaves this interface and comes back as a USB disk."""
        fields = self._exchange(DISK_MODE, self._logged_in(), what="password")
        if "OK" not in fields:
            raise VendorRefused(f"{self.url}: disk mode refused")
        self._disk = True
        self.close()  # the device is about to re-enumerate: nothing more to say to it

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._password = None
        self._dispose()

    def __enter__(self) -> VendorUsbCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------- the exchange
    def _logged_in(self) -> str:
        self._check_open()
        if self._password is None:
            raise VendorRefused(f"{self.url}: not logged in")
        return self._password

    def _check_open(self) -> None:
        if self._closed:
            raise VendorLinkError(f"{self.url}: closed" + (" (in disk mode)" if self._disk else ""))

    def _query(self, q: Query) -> str:
        arg = self._logged_in() if q.with_password else q.arg
        fields = self._exchange(q.command, arg, length=q.length, what="query argument")
        values = [f for f in fields if f != "OK"]
        if not values:
            raise VendorProtocolError(f"{self.url}: @{q.command}: answer has no value")
        return values[-1]

    def _exchange(
        self, command: str, arg: str, *, length: int | None = None, what: str = "argument"
    ) -> tuple[str, ...]:
        """Send one command, return its answer's fields (a refusal raises)."""
        self._check_open()
        if length is None:
            length = len(arg) if self.model.actual_lengths else self.model.lengths[command]
        frame = encode_command(command, length, arg, what)  # refused: nothing sent
        self._drain()
        self._write(frame, command)
        raw = self._read_answer(command)
        try:
            fields = parse_answer(raw, command)
        except ValueError as exc:
            raise VendorProtocolError(f"{self.url}: @{command}: {exc}") from None
        if fields and fields[0].upper() in REFUSALS:
            raise VendorRefused(f"{self.url}: @{command} refused ({fields[0]})")
        return fields

    def _write(self, frame: bytes, command: str) -> None:
        ms = max(1, math.ceil(self.model.timeout_s * 1000))
        try:
            sent = self.device.write(self.model.ep_out, frame, ms)
        except usb.core.USBError as exc:
            if _is_timeout(exc):
                raise VendorTimeout(f"{self.url}: @{command}: the camera took no command") from None
            raise self._link_error(exc, f"@{command}") from exc
        if sent != len(frame):
            raise VendorLinkError(f"{self.url}: @{command}: sent {sent} of {len(frame)} bytes")

    def _read_answer(self, command: str) -> bytes:
        """Bytes up to and including ``#``: bounded in size and in time."""
        m = self.model
        prefixes = tuple(f"{at}{command}{end}".encode() for at in ("@", "") for end in ";#")
        deadline = time.monotonic() + m.timeout_s
        buf = bytearray()
        # Each pass reads a packet or waits out the rest of the deadline.
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                chunk = self.device.read(m.ep_in, self._read_size, max(1, math.ceil(left * 1000)))
            except usb.core.USBError as exc:
                if _is_timeout(exc):
                    continue
                raise self._link_error(exc, f"@{command}") from exc
            buf += bytes(chunk)
            if len(buf) > m.max_answer:
                raise VendorProtocolError(
                    f"{self.url}: @{command}: answer longer than {m.max_answer} bytes: "
                    f"{shown_bytes(bytes(buf))}"
                )
            head = bytes(buf[:8])
            if not any(p.startswith(head) or head.startswith(p) for p in prefixes):
                raise VendorProtocolError(
                    f"{self.url}: @{command}: answer is not to @{command}: "
                    f"{shown_bytes(bytes(buf))}"
                )
            if b"#" in buf:
                return bytes(buf)
        raise VendorTimeout(
            f"{self.url}: @{command}: no complete answer within {m.timeout_s:g} s"
            + (f" ({len(buf)} bytes: {shown_bytes(bytes(buf))})" if buf else "")
        )

    def _drain(self) -> None:
        """Drop what a late answer to an earlier command left in the pipe (bounded)."""
        for _ in range(16):
            try:
                stale = self.device.read(self.model.ep_in, self._read_size, 1)
            except usb.core.USBError as exc:
                if _is_timeout(exc):
                    return
                raise self._link_error(exc, "reading") from exc
            if not stale:
                return
            log.debug("%s: dropped %d stale bytes", self.url, len(stale))

    def _dispose(self) -> None:
        if self._interface is not None:
            with contextlib.suppress(usb.core.USBError, ValueError):
                usb.util.release_interface(self.device, self._interface)
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(self.device)

    def _link_error(self, exc: usb.core.USBError, what: str) -> VendorLinkError:
        return VendorLinkError(usb_failure(self.url, what, exc, "camera"))


def open_vendor_camera(
    port_path: str, model: VendorModel | None = None, backend: Any = None
) -> VendorUsbCamera | None:
    """The vendor camera on one physical USB port (``"1-1.2"``); None when what is there
    is not this model's VID:PID (or nothing is there). VendorLinkError when it cannot be
    opened (busy, not permitted, no matching interface)."""
    model = model or VendorModel()
    bus, ports = parse_port_path(port_path)

    def on_port(d: usb.core.Device) -> bool:
        return d.bus == bus and tuple(getattr(d, "port_numbers", None) or ()) == ports

    try:
        found = list(usb.core.find(find_all=True, backend=backend, custom_match=on_port))
    except usb.core.NoBackendError as exc:
        raise VendorLinkError("no libusb backend: install libusb-1.0") from exc
    for dev in found:
        if (dev.idVendor, dev.idProduct) == (model.vendor_id, model.product_id):
            return VendorUsbCamera(dev, model)
    return None


__all__ = [
    "DEFAULT_LENGTHS",
    "VENDOR_IN_ENDPOINT",
    "VENDOR_OUT_ENDPOINT",
    "VENDOR_PID",
    "VENDOR_VID",
    "Query",
    "VendorError",
    "VendorLinkError",
    "VendorModel",
    "VendorProtocolError",
    "VendorRefused",
    "VendorTimeout",
    "VendorUsbCamera",
    "check_arg",
    "encode_command",
    "open_vendor_camera",
    "parse_answer",
    "shown_bytes",
]
