"""Recorders over USB: find them by physical port and talk to them over bulk endpoints.

A dock knows a slot by the USB port its cradle is wired to, not by the serial of
whichever recorder sits in it, so everything here speaks Linux sysfs port paths
("1-1.2": bus 1, port 2 of the hub on root port 1). pyusb does the I/O; with no
backend given it picks libusb, and tests pass ``EmulatedUsbBackend`` instead, so
the same code path is exercised either way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import usb.core
import usb.util

from hardware.transports import LinkClosed
from hardware.usb_errors import usb_failure

log = logging.getLogger("hardware.usb")

#: pid.codes' vendor id, which it shares out to open-source hardware projects.
RECORDER_VID = 0x1209
RECORDER_PID = 0xB0C7
#: The recorder's protocol interface is vendor specific: no kernel driver binds to it.
RECORDER_INTERFACE_CLASS = 0xFF
BULK_OUT_ENDPOINT = 0x01
BULK_IN_ENDPOINT = 0x81
MAX_PACKET_SIZE = 512

#: USB allows at most 7 tiers of hubs, so a port path has at most 7 port numbers.
_PORT_PATH = re.compile(r"(\d{1,3})-(\d{1,3}(?:\.\d{1,3}){0,6})")


def parse_port_path(port_path: str) -> tuple[int, tuple[int, ...]]:
    """``"1-1.2"`` -> ``(1, (1, 2))``; ValueError for anything that is not a port path."""
    m = _PORT_PATH.fullmatch(port_path.strip())
    if m is None:
        raise ValueError(f"not a USB port path (expected BUS-PORT[.PORT...]): {port_path!r}")
    bus = int(m.group(1))
    ports = tuple(int(p) for p in m.group(2).split("."))
    if not 1 <= bus <= 255 or not all(1 <= p <= 255 for p in ports):
        raise ValueError(f"USB bus and port numbers are 1..255: {port_path!r}")
    return bus, ports


def format_port_path(bus: int, port_numbers: Sequence[int]) -> str:
    return f"{bus}-{'.'.join(str(p) for p in port_numbers)}"


def port_path(dev: usb.core.Device) -> str:
    """The device's physical port as Linux names it in sysfs, e.g. ``"1-1.2"``."""
    ports = getattr(dev, "port_numbers", None)
    if dev.bus is None or not ports:
        raise ValueError("this USB backend does not report port numbers (libusb >= 1.0.16 does)")
    return format_port_path(dev.bus, ports)


def slot_for_port(port_path: str, slot_ports: dict[str, str]) -> str | None:
    """The dock slot whose configured port (slot id -> port) is ``port_path``, if any.

    Configured ports may be bare paths or ``usb:`` URLs; entries that are not USB
    ports (a slot wired to a serial device) are skipped. Two slots on one port is a
    configuration mistake that must not silently pick one, so it raises ValueError.
    """
    wanted = parse_port_path(port_path)
    matches = []
    for slot, configured in slot_ports.items():
        try:
            if parse_port_path(configured.removeprefix("usb:")) == wanted:
                matches.append(slot)
        except ValueError:
            continue
    if len(matches) > 1:
        raise ValueError(f"USB port {port_path} is configured for several slots: {matches}")
    return matches[0] if matches else None


@dataclass(frozen=True)
class UsbRecorder:
    """A recorder found on the bus; ``device`` is the pyusb device to open it with."""

    port_path: str
    serial: str | None
    vendor_id: int
    product_id: int
    device: usb.core.Device = field(repr=False, compare=False)


def _find_all(backend: Any, **match: Any) -> list[usb.core.Device]:
    try:
        return list(usb.core.find(find_all=True, backend=backend, **match))
    except usb.core.NoBackendError as exc:
        raise usb.core.NoBackendError(
            "no libusb backend found: install libusb-1.0 to reach recorders over USB"
        ) from exc


def _read_serial(dev: usb.core.Device) -> str | None:
    """The serial string descriptor, or None when the device will not give it (permissions)."""
    try:
        return usb.util.get_string(dev, dev.iSerialNumber)
    except (usb.core.USBError, ValueError, NotImplementedError) as exc:
        log.warning("cannot read the serial of the USB device on bus %s: %s", dev.bus, exc)
        return None
    finally:
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(dev)  # reading it opened the device: do not keep it


def discover_recorders(backend: Any = None) -> list[UsbRecorder]:
    """Every recorder on the bus (by our VID/PID), in port order."""
    found: list[tuple[tuple[int, tuple[int, ...]], UsbRecorder]] = []
    for dev in _find_all(backend, idVendor=RECORDER_VID, idProduct=RECORDER_PID):
        try:
            path = port_path(dev)
        except ValueError as exc:
            log.warning("skipping a recorder with no port information: %s", exc)
            continue
        rec = UsbRecorder(path, _read_serial(dev), dev.idVendor, dev.idProduct, dev)
        found.append((parse_port_path(path), rec))
    return [rec for _, rec in sorted(found, key=lambda item: item[0])]


def open_usb_port(port_path: str, backend: Any = None) -> UsbTransport:
    """Open the recorder on one physical port; LinkClosed if there is none there."""
    bus, ports = parse_port_path(port_path)
    path = format_port_path(bus, ports)

    def on_port(d: usb.core.Device) -> bool:
        return d.bus == bus and tuple(getattr(d, "port_numbers", None) or ()) == ports

    devices = _find_all(backend, custom_match=on_port)
    if not devices:
        blind = _find_all(backend, custom_match=lambda d: not getattr(d, "port_numbers", None))
        if blind:
            raise LinkClosed(f"usb:{path}: this USB backend does not report port numbers")
        raise LinkClosed(f"usb:{path}: no USB device on this port (is a recorder docked?)")
    dev = devices[0]
    if (dev.idVendor, dev.idProduct) != (RECORDER_VID, RECORDER_PID):
        raise LinkClosed(
            f"usb:{path}: the device there is {dev.idVendor:04x}:{dev.idProduct:04x}, "
            f"not a recorder ({RECORDER_VID:04x}:{RECORDER_PID:04x})"
        )
    return UsbTransport(dev)


def _is_timeout(exc: usb.core.USBError) -> bool:
    # libusb1 raises USBTimeoutError; older pyusb and other backends only set errno.
    return isinstance(exc, usb.core.USBTimeoutError) or exc.errno == errno.ETIMEDOUT


class UsbTransport:
    """The dock's Transport over a recorder's bulk endpoints.

    Reads ask for whole packets into a private buffer (a bulk IN shorter than the
    device's packet would overflow on real hardware) and hand out ``max_bytes`` at a
    time. Safe for one reading and one writing thread.
    """

    def __init__(
        self,
        device: usb.core.Device,
        *,
        transfer_size: int = 256 * 1024,
        write_timeout: float = 10.0,
    ) -> None:
        self.device = device
        try:
            self.port_path = port_path(device)
        except ValueError:
            self.port_path = f"bus{device.bus}-addr{device.address}"
        self.url = f"usb:{self.port_path}"
        self.write_timeout = write_timeout
        self._closed = False
        self._rx = bytearray()
        try:
            self._setup()
        except LinkClosed:
            self._dispose()
            raise
        except usb.core.USBError as exc:
            self._dispose()
            raise self._link_closed(exc, "cannot open") from exc
        packet = self._ep_in.wMaxPacketSize or MAX_PACKET_SIZE
        self._buf = usb.util.create_buffer(max(packet, transfer_size // packet * packet))

    def _setup(self) -> None:
        dev = self.device
        try:
            cfg = dev.get_active_configuration()
        except usb.core.USBError:  # unconfigured: choose the first (and only) one
            dev.set_configuration()
            cfg = dev.get_active_configuration()
        intf = usb.util.find_descriptor(cfg, bInterfaceClass=RECORDER_INTERFACE_CLASS)
        if intf is None:
            raise LinkClosed(f"{self.url}: no vendor-specific interface: not a recorder")
        number = intf.bInterfaceNumber
        with contextlib.suppress(NotImplementedError, usb.core.USBError):
            if dev.is_kernel_driver_active(number):
                dev.detach_kernel_driver(number)
        usb.util.claim_interface(dev, intf)
        self._interface = number
        self._ep_out = self._bulk_endpoint(intf, usb.util.ENDPOINT_OUT)
        self._ep_in = self._bulk_endpoint(intf, usb.util.ENDPOINT_IN)

    def _bulk_endpoint(self, intf: usb.core.Interface, direction: int) -> usb.core.Endpoint:
        ep = usb.util.find_descriptor(
            intf,
            custom_match=lambda e: (
                usb.util.endpoint_direction(e.bEndpointAddress) == direction
                and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
            ),
        )
        if ep is None:
            name = "IN" if direction == usb.util.ENDPOINT_IN else "OUT"
            raise LinkClosed(f"{self.url}: the recorder interface has no bulk {name} endpoint")
        return ep

    # ------------------------------------------------------------------ Transport
    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._closed:
            raise LinkClosed(f"{self.url}: transport closed")
        if max_bytes <= 0:
            return b""
        if not self._rx:
            # libusb reads 0 ms as "wait forever": a poll must still be at least 1 ms.
            ms = max(1, math.ceil(timeout * 1000))
            try:
                n = self._ep_in.read(self._buf, ms)
            except usb.core.USBError as exc:
                if _is_timeout(exc):
                    return b""
                raise self._link_closed(exc, "read failed") from exc
            with memoryview(self._buf) as view:
                if n <= max_bytes:
                    return bytes(view[:n])
                self._rx += view[max_bytes:n]
                return bytes(view[:max_bytes])
        out = bytes(self._rx[:max_bytes])
        del self._rx[:max_bytes]
        return out

    def write(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed(f"{self.url}: transport closed")
        deadline = time.monotonic() + self.write_timeout
        sent, total = 0, len(data)
        # Each pass either moves bytes or uses up time until the deadline.
        for _ in range(1_000_000):
            if sent >= total:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                sent += self._ep_out.write(data[sent:], max(1, math.ceil(left * 1000)))
            except usb.core.USBError as exc:
                if _is_timeout(exc):
                    break
                raise self._link_closed(exc, "write failed") from exc
        raise LinkClosed(f"{self.url}: write timed out after {sent} of {total} bytes")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dispose()

    def _dispose(self) -> None:
        with contextlib.suppress(usb.core.USBError, ValueError, AttributeError):
            usb.util.release_interface(self.device, self._interface)
        with contextlib.suppress(usb.core.USBError):
            usb.util.dispose_resources(self.device)

    def __enter__(self) -> UsbTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _link_closed(self, exc: usb.core.USBError, what: str) -> LinkClosed:
        if self._closed:
            return LinkClosed(f"{self.url}: transport closed")
        return LinkClosed(usb_failure(self.url, what, exc, "recorder"))
