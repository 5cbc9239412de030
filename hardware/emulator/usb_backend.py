"""A pyusb backend that presents emulated recorders as USB devices.

Pass it to ``usb.core.find(backend=...)`` (or to ``hardware.usb_transport``) and the
dock's USB code runs through pyusb itself: descriptors, string descriptors,
claiming, bulk transfers, timeouts and unplugging behave, and fail, as they do with
the libusb backends, with the same exception classes, libusb error codes and errno
values. Bulk OUT transfers feed a :class:`RecorderFirmware`; bulk IN transfers
return what it sends back. Each device (descriptors, claims, pipes) is in
:mod:`hardware.emulator.usb_device`.
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import usb.backend
from usb.backend.libusb1 import (
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_PIPE,
)

from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.usb_device import (
    CONFIG,
    ENDPOINTS,
    INTERFACE,
    EmulatedRecorder,
    Handle,
    descriptor_namespace,
    usb_error,
)
from hardware.usb_transport import (
    BULK_IN_ENDPOINT,
    BULK_OUT_ENDPOINT,
    RECORDER_PID,
    RECORDER_VID,
    parse_port_path,
)

__all__ = [
    "RECORDER_PID",
    "RECORDER_VID",
    "EmulatedRecorder",
    "EmulatedUsbBackend",
]

_GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION = 0x06, 0x08, 0x09
_STANDARD_DEVICE_IN, _STANDARD_DEVICE_OUT = 0x80, 0x00


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
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)
        return descriptor_namespace(CONFIG)

    def get_interface_descriptor(
        self, dev: EmulatedRecorder, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("invalid interface or alternate setting index")
        return descriptor_namespace(INTERFACE)

    def get_endpoint_descriptor(
        self, dev: EmulatedRecorder, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(ENDPOINTS):
            raise IndexError("invalid endpoint index")
        return descriptor_namespace(ENDPOINTS[ep], bRefresh=0, bSynchAddress=0)

    def open_device(self, dev: EmulatedRecorder) -> Handle:
        if not dev.connected:
            raise usb_error(LIBUSB_ERROR_NO_DEVICE)
        return Handle(dev)

    def close_device(self, dev_handle: Handle) -> None:
        dev_handle.device.close_handle(dev_handle)

    def set_configuration(self, dev_handle: Handle, config_value: int) -> None:
        dev_handle.device.set_configuration(dev_handle, config_value)

    def get_configuration(self, dev_handle: Handle) -> int:
        dev_handle.device.check(dev_handle)
        return dev_handle.device.configuration

    def set_interface_altsetting(self, dev_handle: Handle, intf: int, altsetting: int) -> None:
        dev_handle.device.check(dev_handle)
        if (intf, altsetting) != (0, 0):
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)

    def claim_interface(self, dev_handle: Handle, intf: int) -> None:
        dev_handle.device.claim(dev_handle, intf)

    def release_interface(self, dev_handle: Handle, intf: int) -> None:
        dev_handle.device.release(dev_handle, intf)

    def bulk_write(
        self, dev_handle: Handle, ep: int, intf: int, data: array.array, timeout: int
    ) -> int:
        if ep != BULK_OUT_ENDPOINT:
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM)
        return dev_handle.device.bulk_out(dev_handle, data)

    def bulk_read(
        self, dev_handle: Handle, ep: int, intf: int, buff: array.array, timeout: int
    ) -> int:
        if ep != BULK_IN_ENDPOINT:
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM)
        return dev_handle.device.bulk_in(dev_handle, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: Handle,
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
        raise usb_error(LIBUSB_ERROR_PIPE)  # a device stalls requests it does not know

    def clear_halt(self, dev_handle: Handle, ep: int) -> None:
        dev_handle.device.check(dev_handle)

    def reset_device(self, dev_handle: Handle) -> None:
        dev_handle.device.reset(dev_handle)

    def is_kernel_driver_active(self, dev_handle: Handle, intf: int) -> bool:
        dev_handle.device.check(dev_handle)
        return False  # nothing binds to a vendor-specific interface

    def detach_kernel_driver(self, dev_handle: Handle, intf: int) -> None:
        dev_handle.device.check(dev_handle)
        raise usb_error(LIBUSB_ERROR_NOT_FOUND)  # libusb's answer when no driver is bound

    def attach_kernel_driver(self, dev_handle: Handle, intf: int) -> None:
        dev_handle.device.check(dev_handle)
        raise usb_error(LIBUSB_ERROR_NOT_FOUND)


def _copy_into(data: array.array, raw: bytes | Sequence[int]) -> int:
    n = min(len(raw), len(data) * data.itemsize)
    with memoryview(data) as whole, whole.cast("B") as view:
        view[:n] = bytes(raw[:n])
    return n
