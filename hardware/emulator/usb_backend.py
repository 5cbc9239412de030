"""A pyusb backend that presents emulated recorders as USB devices.

Pass it to ``usb.core.find(backend=...)`` (or to ``hardware.usb_transport``) and the
dock's USB code runs through pyusb itself: descriptors, string descriptors,
claiming, bulk transfers, timeouts and unplugging behave, and fail, as they do with
the libusb backends, with the same exception classes, libusb error codes and errno
values. Bulk OUT transfers feed a :class:`RecorderFirmware`; bulk IN transfers
return what it sends back.
"""

from __future__ import annotations

import array
import errno
import struct
import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import usb.backend
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
    parse_port_path,
)

__all__ = [
    "RECORDER_PID",
    "RECORDER_VID",
    "EmulatedRecorder",
    "EmulatedUsbBackend",
]

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


def _usb_error(code: int) -> USBError:
    text, err = _ERRORS[code]
    cls = USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else USBError
    return cls(text, code, err)


DT_DEVICE, DT_CONFIG, DT_STRING, DT_INTERFACE, DT_ENDPOINT = 1, 2, 3, 4, 5
LANGID_EN_US = 0x0409
LIBUSB_SPEED_HIGH = 3
STRING_MANUFACTURER, STRING_PRODUCT, STRING_SERIAL = 1, 2, 3
_GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION = 0x06, 0x08, 0x09
_STANDARD_DEVICE_IN, _STANDARD_DEVICE_OUT = 0x80, 0x00

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
_ENDPOINTS = tuple(
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
_INTERFACE = {
    "bLength": 9,
    "bDescriptorType": DT_INTERFACE,
    "bInterfaceNumber": 0,
    "bAlternateSetting": 0,
    "bNumEndpoints": len(_ENDPOINTS),
    "bInterfaceClass": RECORDER_INTERFACE_CLASS,
    "bInterfaceSubClass": 0,
    "bInterfaceProtocol": 0,
    "iInterface": 0,
}
_CONFIG = {
    "bLength": 9,
    "bDescriptorType": DT_CONFIG,
    "wTotalLength": 9 + 9 + 7 * len(_ENDPOINTS),
    "bNumInterfaces": 1,
    "bConfigurationValue": 1,
    "iConfiguration": 0,
    "bmAttributes": 0x80,  # bus powered
    "bMaxPower": 250,  # 500 mA, in 2 mA units
}


def _pack(layout: struct.Struct, values: dict[str, int]) -> bytes:
    return layout.pack(*values.values())


def _namespace(values: dict[str, int], **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(**values, extra_descriptors=[], **extra)


_CONFIG_BYTES = (
    _pack(_CONFIG_LAYOUT, _CONFIG)
    + _pack(_INTERFACE_LAYOUT, _INTERFACE)
    + b"".join(_pack(_ENDPOINT_LAYOUT, e) for e in _ENDPOINTS)
)


def _string_descriptor(text: str) -> bytes:
    raw = text.encode("utf-16-le")[:252]
    return bytes((2 + len(raw), DT_STRING)) + raw


class _Handle:
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
        self._claims: dict[int, _Handle] = {}

    @property
    def port_path(self) -> str:
        return format_port_path(self.bus, self.port_numbers)

    def __repr__(self) -> str:
        state = "plugged" if self.connected else "unplugged"
        return f"<EmulatedRecorder {self.serial} usb:{self.port_path} addr {self.address} {state}>"

    # ------------------------------------------------------------------ descriptors
    def device_descriptor(self) -> SimpleNamespace:
        return _namespace(
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
        raise _usb_error(LIBUSB_ERROR_PIPE)

    # ------------------------------------------------------------------ state
    def _check(self, handle: _Handle) -> None:
        """Called with the lock held: is this handle still good for I/O?"""
        if not self.connected:
            raise _usb_error(LIBUSB_ERROR_NO_DEVICE)
        if not handle.open:
            raise _usb_error(LIBUSB_ERROR_IO)

    def check(self, handle: _Handle) -> None:
        with self._cond:
            self._check(handle)

    def disconnect(self) -> None:
        with self._cond:
            self.connected = False
            self._pending.clear()
            self._claims.clear()
            self.firmware.link_lost()  # the session and its authority end with the cable
            self._cond.notify_all()  # blocked transfers fail at once, as on a real unplug

    def close_handle(self, handle: _Handle) -> None:
        with self._cond:
            handle.open = False
            for intf in [i for i, h in self._claims.items() if h is handle]:
                del self._claims[intf]
            self._cond.notify_all()

    def claim(self, handle: _Handle, intf: int) -> None:
        with self._cond:
            self._check(handle)
            if intf != _INTERFACE["bInterfaceNumber"]:
                raise _usb_error(LIBUSB_ERROR_NOT_FOUND)
            owner = self._claims.get(intf)
            if owner is not None and owner is not handle and owner.open:
                raise _usb_error(LIBUSB_ERROR_BUSY)
            self._claims[intf] = handle

    def release(self, handle: _Handle, intf: int) -> None:
        with self._cond:
            self._check(handle)
            if self._claims.get(intf) is not handle:
                raise _usb_error(LIBUSB_ERROR_NOT_FOUND)
            del self._claims[intf]

    def set_configuration(self, handle: _Handle, value: int) -> None:
        with self._cond:
            self._check(handle)
            if value not in (0, _CONFIG["bConfigurationValue"]):
                raise _usb_error(LIBUSB_ERROR_NOT_FOUND)
            if any(h is not handle and h.open for h in self._claims.values()):
                raise _usb_error(LIBUSB_ERROR_BUSY)
            if value != self.configuration:
                self.firmware.link_lost()  # a new configuration is a new link
            self.configuration = value

    def reset(self, handle: _Handle) -> None:
        with self._cond:
            self._check(handle)
            self._pending.clear()
            self.firmware.link_lost()  # a bus reset ends the session (PROTOCOL.md 5.2)

    # ------------------------------------------------------------------ transfers
    def _claim_for_io(self, handle: _Handle) -> None:
        # Linux usbfs claims a free interface implicitly on I/O; another owner is EBUSY.
        intf = _INTERFACE["bInterfaceNumber"]
        owner = self._claims.get(intf)
        if owner is not None and owner is not handle and owner.open:
            raise _usb_error(LIBUSB_ERROR_BUSY)
        if self.configuration == 0:
            raise _usb_error(LIBUSB_ERROR_NOT_FOUND)
        self._claims[intf] = handle

    def bulk_out(self, handle: _Handle, data: array.array) -> int:
        with self._cond:
            self._check(handle)
            self._claim_for_io(handle)
            self.firmware.receive(data.tobytes())
            self._cond.notify_all()
        return len(data) * data.itemsize

    def bulk_in(self, handle: _Handle, buff: array.array, timeout_ms: int) -> int:
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
                    raise _usb_error(LIBUSB_ERROR_TIMEOUT)
                wake = min((t for t in (limit, due) if t is not None), default=None)
                self._cond.wait(None if wake is None else wake - now)


class EmulatedUsbBackend(usb.backend.IBackend):
    """A USB bus with emulated recorders on it; ``plug``/``unplug`` change what is there."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._devices: list[EmulatedRecorder] = []
        self._next_address: dict[int, int] = {}

    # ------------------------------------------------------------------ the test API
    def plug(
        self,
        firmware: RecorderFirmware,
        port: str = "1-1",
        *,
        serial: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> EmulatedRecorder:
        """Plug a recorder into ``port`` (a sysfs port path such as ``"1-1.2"``)."""
        bus, ports = parse_port_path(port)
        state = firmware.model.state
        with self._lock:
            for d in self._devices:
                if (d.bus, d.port_numbers) == (bus, ports):
                    raise ValueError(f"USB port {port} already has {d.serial} in it")
            # Addresses count up per bus, skipping 1 (the root hub), as the kernel does.
            address = self._next_address.get(bus, 2)
            self._next_address[bus] = address + 1 if address < 127 else 2
            device = EmulatedRecorder(
                firmware,
                bus,
                ports,
                address,
                serial if serial is not None else firmware.model.serial,
                str(state.get("vendor") or "Open Dock Reference"),
                str(state.get("model") or "Body-worn recorder"),
                clock,
            )
            self._devices.append(device)
        return device

    def unplug(self, device: EmulatedRecorder | str) -> EmulatedRecorder:
        """Pull a recorder (or whatever is on a port path) out; its transfers fail ENODEV."""
        with self._lock:
            if isinstance(device, str):
                wanted = parse_port_path(device)
                found = [d for d in self._devices if (d.bus, d.port_numbers) == wanted]
                if not found:
                    raise ValueError(f"nothing plugged into USB port {device}")
                device = found[0]
            if device in self._devices:
                self._devices.remove(device)
        device.disconnect()
        return device

    @property
    def devices(self) -> list[EmulatedRecorder]:
        with self._lock:
            return list(self._devices)

    # ------------------------------------------------------------------ IBackend
    def enumerate_devices(self) -> list[EmulatedRecorder]:
        return self.devices

    def get_parent(self, dev: EmulatedRecorder) -> None:
        return None  # hubs are not emulated

    def get_device_descriptor(self, dev: EmulatedRecorder) -> SimpleNamespace:
        return dev.device_descriptor()

    def get_configuration_descriptor(self, dev: EmulatedRecorder, config: int) -> SimpleNamespace:
        if config != 0:
            raise _usb_error(LIBUSB_ERROR_NOT_FOUND)
        return _namespace(_CONFIG)

    def get_interface_descriptor(
        self, dev: EmulatedRecorder, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("invalid interface or alternate setting index")
        return _namespace(_INTERFACE)

    def get_endpoint_descriptor(
        self, dev: EmulatedRecorder, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(_ENDPOINTS):
            raise IndexError("invalid endpoint index")
        return _namespace(_ENDPOINTS[ep], bRefresh=0, bSynchAddress=0)

    def open_device(self, dev: EmulatedRecorder) -> _Handle:
        if not dev.connected:
            raise _usb_error(LIBUSB_ERROR_NO_DEVICE)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.device.close_handle(dev_handle)

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        dev_handle.device.set_configuration(dev_handle, config_value)

    def get_configuration(self, dev_handle: _Handle) -> int:
        dev_handle.device.check(dev_handle)
        return dev_handle.device.configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        dev_handle.device.check(dev_handle)
        if (intf, altsetting) != (0, 0):
            raise _usb_error(LIBUSB_ERROR_NOT_FOUND)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.device.claim(dev_handle, intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.device.release(dev_handle, intf)

    def bulk_write(
        self, dev_handle: _Handle, ep: int, intf: int, data: array.array, timeout: int
    ) -> int:
        if ep != BULK_OUT_ENDPOINT:
            raise _usb_error(LIBUSB_ERROR_INVALID_PARAM)
        return dev_handle.device.bulk_out(dev_handle, data)

    def bulk_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array, timeout: int
    ) -> int:
        if ep != BULK_IN_ENDPOINT:
            raise _usb_error(LIBUSB_ERROR_INVALID_PARAM)
        return dev_handle.device.bulk_in(dev_handle, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array,
        timeout: int,
    ) -> int:
        dev = dev_handle.device
        dev.check(dev_handle)
        request = (bmRequestType, bRequest)
        if request == (_STANDARD_DEVICE_IN, _GET_DESCRIPTOR):
            raw = dev.descriptor_bytes(wValue >> 8, wValue & 0xFF, wIndex)
            return _copy_into(data, raw)
        if request == (_STANDARD_DEVICE_IN, _GET_CONFIGURATION):
            return _copy_into(data, bytes((dev.configuration,)))
        if request == (_STANDARD_DEVICE_OUT, _SET_CONFIGURATION):
            dev.set_configuration(dev_handle, wValue & 0xFF)
            return 0
        raise _usb_error(LIBUSB_ERROR_PIPE)  # a device stalls requests it does not know

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        dev_handle.device.check(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        dev_handle.device.reset(dev_handle)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        dev_handle.device.check(dev_handle)
        return False  # nothing binds to a vendor-specific interface

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.device.check(dev_handle)
        raise _usb_error(LIBUSB_ERROR_NOT_FOUND)  # libusb's answer when no driver is bound

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        dev_handle.device.check(dev_handle)
        raise _usb_error(LIBUSB_ERROR_NOT_FOUND)


def _copy_into(data: array.array, raw: bytes | Sequence[int]) -> int:
    n = min(len(raw), len(data) * data.itemsize)
    with memoryview(data) as whole, whole.cast("B") as view:
        view[:n] = bytes(raw[:n])
    return n
