"""One emulated recorder as a USB device: its descriptors, claims and bulk pipes.

The device side of :mod:`hardware.emulator.usb_backend` (which is the pyusb backend: the
bus that enumerates devices and hands each call to one); errors are raised with the
exception classes, libusb error codes and errno values pyusb's libusb1 backend uses.
"""

from __future__ import annotations

import array
import errno
import struct
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from usb.backend.libusb1 import (
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
)
from usb.core import USBError, USBTimeoutError

from hardware.emulator.recorder import RecorderFirmware
from hardware.usb_transport import (
    BULK_IN_ENDPOINT,
    BULK_OUT_ENDPOINT,
    MAX_PACKET_SIZE,
    RECORDER_INTERFACE_CLASS,
    RECORDER_PID,
    RECORDER_VID,
    format_port_path,
)

# Message and errno for each libusb error, as pyusb's libusb1 backend reports them.
_ERRORS: dict[int, tuple[str, int]] = {
    LIBUSB_ERROR_IO: ("Input/output error", errno.EIO),
    LIBUSB_ERROR_INVALID_PARAM: ("Invalid parameter", errno.EINVAL),
    LIBUSB_ERROR_NO_DEVICE: ("No such device (it may have been disconnected)", errno.ENODEV),
    LIBUSB_ERROR_NOT_FOUND: ("Entity not found", errno.ENOENT),
    LIBUSB_ERROR_BUSY: ("Resource busy", errno.EBUSY),
    LIBUSB_ERROR_TIMEOUT: ("Operation timed out", errno.ETIMEDOUT),
    LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
}


def usb_error(code: int) -> USBError:
    text, err = _ERRORS[code]
    cls = USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else USBError
    return cls(text, code, err)


DT_DEVICE, DT_CONFIG, DT_STRING, DT_INTERFACE, DT_ENDPOINT = 1, 2, 3, 4, 5
LANGID_EN_US = 0x0409
LIBUSB_SPEED_HIGH = 3
STRING_MANUFACTURER, STRING_PRODUCT, STRING_SERIAL = 1, 2, 3

# Wire layouts; the dicts below list their fields in wire order, so they pack as-is.
_DEVICE_LAYOUT = struct.Struct("<BBHBBBBHHHBBBB")
_CONFIG_LAYOUT = struct.Struct("<BBHBBBBB")
_INTERFACE_LAYOUT = struct.Struct("<9B")
_ENDPOINT_LAYOUT = struct.Struct("<BBBBHB")

_DEVICE = {
    "bLength": 18,
    "bDescriptorType": DT_DEVICE,
    "bcdUSB": 0x0200,
    "bDeviceClass": 0,  # class given per interface
    "bDeviceSubClass": 0,
    "bDeviceProtocol": 0,
    "bMaxPacketSize0": 64,
    "idVendor": RECORDER_VID,
    "idProduct": RECORDER_PID,
    "bcdDevice": 0x0100,
    "iManufacturer": STRING_MANUFACTURER,
    "iProduct": STRING_PRODUCT,
    "iSerialNumber": STRING_SERIAL,
    "bNumConfigurations": 1,
}
ENDPOINTS = tuple(
    {
        "bLength": 7,
        "bDescriptorType": DT_ENDPOINT,
        "bEndpointAddress": address,
        "bmAttributes": 0x02,  # bulk
        "wMaxPacketSize": MAX_PACKET_SIZE,
        "bInterval": 0,
    }
    for address in (BULK_OUT_ENDPOINT, BULK_IN_ENDPOINT)
)
INTERFACE = {
    "bLength": 9,
    "bDescriptorType": DT_INTERFACE,
    "bInterfaceNumber": 0,
    "bAlternateSetting": 0,
    "bNumEndpoints": len(ENDPOINTS),
    "bInterfaceClass": RECORDER_INTERFACE_CLASS,
    "bInterfaceSubClass": 0,
    "bInterfaceProtocol": 0,
    "iInterface": 0,
}
CONFIG = {
    "bLength": 9,
    "bDescriptorType": DT_CONFIG,
    "wTotalLength": 9 + 9 + 7 * len(ENDPOINTS),
    "bNumInterfaces": 1,
    "bConfigurationValue": 1,
    "iConfiguration": 0,
    "bmAttributes": 0x80,  # bus powered
    "bMaxPower": 250,  # 500 mA, in 2 mA units
}


def _pack(layout: struct.Struct, values: dict[str, int]) -> bytes:
    return layout.pack(*values.values())


def descriptor_namespace(values: dict[str, int], **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(**values, extra_descriptors=[], **extra)


_CONFIG_BYTES = (
    _pack(_CONFIG_LAYOUT, CONFIG)
    + _pack(_INTERFACE_LAYOUT, INTERFACE)
    + b"".join(_pack(_ENDPOINT_LAYOUT, e) for e in ENDPOINTS)
)


def _string_descriptor(text: str) -> bytes:
    raw = text.encode("utf-16-le")[:252]
    return bytes((2 + len(raw), DT_STRING)) + raw


class Handle:
    """What open_device returns: one program's open of one device."""

    def __init__(self, device: EmulatedRecorder) -> None:
        self.device = device
        self.open = True


class EmulatedRecorder:
    """One emulated recorder plugged into one USB port: descriptors plus its firmware.

    ``clock`` must be the firmware's monotonic clock: it decides when the firmware's
    retransmission deadlines are due.
    """

    def __init__(
        self,
        firmware: RecorderFirmware,
        bus: int,
        port_numbers: tuple[int, ...],
        address: int,
        serial: str,
        manufacturer: str,
        product: str,
        clock: Callable[[], float],
    ) -> None:
        self.firmware = firmware
        self.bus = bus
        self.port_numbers = port_numbers
        self.address = address
        self.serial = serial
        self.strings = {
            STRING_MANUFACTURER: manufacturer,
            STRING_PRODUCT: product,
            STRING_SERIAL: serial,
        }
        self.connected = True
        self.configuration = 1  # as the kernel leaves a device after enumeration
        self._clock = clock
        self._cond = threading.Condition()
        self._pending = bytearray()  # firmware output not yet taken by a bulk IN
        self._claims: dict[int, Handle] = {}

    @property
    def port_path(self) -> str:
        return format_port_path(self.bus, self.port_numbers)

    def __repr__(self) -> str:
        state = "plugged" if self.connected else "unplugged"
        return f"<EmulatedRecorder {self.serial} usb:{self.port_path} addr {self.address} {state}>"

    # ------------------------------------------------------------------ descriptors
    def device_descriptor(self) -> SimpleNamespace:
        return descriptor_namespace(
            _DEVICE,
            bus=self.bus,
            address=self.address,
            port_number=self.port_numbers[-1],
            port_numbers=self.port_numbers,
            speed=LIBUSB_SPEED_HIGH,
        )

    def descriptor_bytes(self, kind: int, index: int, langid: int) -> bytes:
        """What GET_DESCRIPTOR answers; USBError (a stall) for what the device lacks."""
        if kind == DT_DEVICE and index == 0:
            return _pack(_DEVICE_LAYOUT, _DEVICE)
        if kind == DT_CONFIG and index == 0:
            return _CONFIG_BYTES
        if kind == DT_STRING and index == 0:
            return bytes((4, DT_STRING)) + LANGID_EN_US.to_bytes(2, "little")
        if kind == DT_STRING and index in self.strings and langid == LANGID_EN_US:
            return _string_descriptor(self.strings[index])
        raise usb_error(LIBUSB_ERROR_PIPE)

    # ------------------------------------------------------------------ state
    def _check(self, handle: Handle) -> None:
        """Called with the lock held: is this handle still good for I/O?"""
        if not self.connected:
            raise usb_error(LIBUSB_ERROR_NO_DEVICE)
        if not handle.open:
            raise usb_error(LIBUSB_ERROR_IO)

    def check(self, handle: Handle) -> None:
        with self._cond:
            self._check(handle)

    def disconnect(self) -> None:
        with self._cond:
            self.connected = False
            self._pending.clear()
            self._claims.clear()
            self.firmware.link_lost()  # the session and its authority end with the cable
            self._cond.notify_all()  # blocked transfers fail at once, as on a real unplug

    def close_handle(self, handle: Handle) -> None:
        with self._cond:
            handle.open = False
            for intf in [i for i, h in self._claims.items() if h is handle]:
                del self._claims[intf]
            self._cond.notify_all()

    def claim(self, handle: Handle, intf: int) -> None:
        with self._cond:
            self._check(handle)
            if intf != INTERFACE["bInterfaceNumber"]:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            owner = self._claims.get(intf)
            if owner is not None and owner is not handle and owner.open:
                raise usb_error(LIBUSB_ERROR_BUSY)
            self._claims[intf] = handle

    def release(self, handle: Handle, intf: int) -> None:
        with self._cond:
            self._check(handle)
            if self._claims.get(intf) is not handle:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            del self._claims[intf]

    def set_configuration(self, handle: Handle, value: int) -> None:
        with self._cond:
            self._check(handle)
            if value not in (0, CONFIG["bConfigurationValue"]):
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            if any(h is not handle and h.open for h in self._claims.values()):
                raise usb_error(LIBUSB_ERROR_BUSY)
            if value != self.configuration:
                self.firmware.link_lost()  # a new configuration is a new link
            self.configuration = value

    def reset(self, handle: Handle) -> None:
        with self._cond:
            self._check(handle)
            self._pending.clear()
            self.firmware.link_lost()  # a bus reset ends the session (PROTOCOL.md 5.2)

    # ------------------------------------------------------------------ transfers
    def _claim_for_io(self, handle: Handle) -> None:
        # Linux usbfs claims a free interface implicitly on I/O; another owner is EBUSY.
        intf = INTERFACE["bInterfaceNumber"]
        owner = self._claims.get(intf)
        if owner is not None and owner is not handle and owner.open:
            raise usb_error(LIBUSB_ERROR_BUSY)
        if self.configuration == 0:
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        self._claims[intf] = handle

    def bulk_out(self, handle: Handle, data: array.array) -> int:
        with self._cond:
            self._check(handle)
            self._claim_for_io(handle)
            self.firmware.receive(data.tobytes())
            self._cond.notify_all()
        return len(data) * data.itemsize

    def bulk_in(self, handle: Handle, buff: array.array, timeout_ms: int) -> int:
        """Fill ``buff`` from the firmware's output; waits up to the timeout for some.

        Like libusb, a timeout of 0 means no limit; an unplug or a close ends the wait.
        """
        size = len(buff) * buff.itemsize
        limit = None if timeout_ms == 0 else self._clock() + timeout_ms / 1000
        with self._cond:
            self._check(handle)
            self._claim_for_io(handle)
            # Each pass returns data, raises, fires an overdue firmware timer (which
            # moves its deadline on), or sleeps until the next deadline or a wake-up.
            while True:
                self._check(handle)
                if not self._pending:
                    self._pending += self.firmware.outgoing()
                if self._pending:
                    n = min(size, len(self._pending))
                    with memoryview(buff) as raw, raw.cast("B") as view:
                        view[:n] = self._pending[:n]
                    del self._pending[:n]
                    return n
                now = self._clock()
                due = self.firmware.next_deadline()
                if due is not None and now >= due:
                    self.firmware.on_timer()
                    continue
                if limit is not None and now >= limit:
                    raise usb_error(LIBUSB_ERROR_TIMEOUT)
                wake = min((t for t in (limit, due) if t is not None), default=None)
                self._cond.wait(None if wake is None else wake - now)
