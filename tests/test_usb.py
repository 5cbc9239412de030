"""The USB side of ``hardware``, driven through pyusb itself with the emulated backend.

Nothing here stubs pyusb: ``usb.core`` and ``usb.util`` run for real, and only the
bottom layer (the backend libusb would be) is emulated, so claiming, descriptors,
timeouts and unplugs take the same paths as on a dock.
"""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from pathlib import Path

import pytest
import usb.core
import usb.util

from dock.devices.recorder_client import LinkError, RecorderClient
from hardware.emulator.footage import expected_sha256
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.usb_backend import EmulatedRecorder, EmulatedUsbBackend
from hardware.transports import LinkClosed
from hardware.usb_transport import (
    BULK_IN_ENDPOINT,
    BULK_OUT_ENDPOINT,
    MAX_PACKET_SIZE,
    RECORDER_PID,
    RECORDER_VID,
    UsbTransport,
    discover_recorders,
    open_usb_port,
    parse_port_path,
    port_path,
    slot_for_port,
)

pytestmark = pytest.mark.timeout(20)

SERIAL_A = "BWC-A-0001"
SERIAL_B = "BWC-B-0002"
PORT_A = "1-1.3"  # behind a hub on bus 1
PORT_B = "2-4"  # straight on bus 2's root hub


def make_firmware(root: Path, serial: str) -> RecorderFirmware:
    spec = RecorderSpec(serial=serial, recordings=2, recording_mb=1)
    return RecorderFirmware(RecorderModel.open(str(root / serial), spec))


@pytest.fixture
def bus(tmp_path: Path) -> tuple[EmulatedUsbBackend, EmulatedRecorder, EmulatedRecorder]:
    backend = EmulatedUsbBackend()
    b = backend.plug(make_firmware(tmp_path, SERIAL_B), PORT_B)  # out of port order on purpose
    a = backend.plug(make_firmware(tmp_path, SERIAL_A), PORT_A)
    return backend, a, b


def open_client(backend: EmulatedUsbBackend, port: str, **kw: float) -> RecorderClient:
    client = RecorderClient(open_usb_port(port, backend=backend), **kw)
    client.open(timeout=5.0)
    return client


# --------------------------------------------------------------------- pyusb view
def test_pyusb_sees_the_devices_as_described(bus) -> None:
    backend, a, _ = bus
    found = list(usb.core.find(find_all=True, backend=backend, idVendor=RECORDER_VID))
    assert len(found) == 2
    dev = usb.core.find(backend=backend, custom_match=lambda d: d.port_numbers == (1, 3))
    assert dev is not None
    assert (dev.idVendor, dev.idProduct, dev.bus, dev.address) == (
        RECORDER_VID,
        RECORDER_PID,
        1,
        a.address,
    )
    assert usb.util.get_string(dev, dev.iSerialNumber) == SERIAL_A
    assert dev.serial_number == SERIAL_A
    assert dev.manufacturer == "Open Dock Reference"
    cfg = dev.get_active_configuration()
    assert cfg.bConfigurationValue == 1 and cfg.bNumInterfaces == 1
    intf = cfg[(0, 0)]
    assert intf.bInterfaceClass == 0xFF
    eps = {e.bEndpointAddress: e for e in intf}
    assert set(eps) == {BULK_OUT_ENDPOINT, BULK_IN_ENDPOINT}
    for e in eps.values():
        assert usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
        assert e.wMaxPacketSize == MAX_PACKET_SIZE
    # The raw descriptor a GET_DESCRIPTOR returns agrees with the parsed one.
    raw = dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18)
    assert bytes(raw[8:12]) == RECORDER_VID.to_bytes(2, "little") + RECORDER_PID.to_bytes(
        2, "little"
    )
    usb.util.dispose_resources(dev)


def test_idle_bulk_read_times_out_like_libusb(bus) -> None:
    backend, _, _ = bus
    dev = usb.core.find(backend=backend, custom_match=lambda d: d.port_numbers == (4,))
    t0 = time.monotonic()
    with pytest.raises(usb.core.USBTimeoutError) as info:
        dev.read(BULK_IN_ENDPOINT, MAX_PACKET_SIZE, timeout=50)
    assert 0.04 <= time.monotonic() - t0 < 1.0
    assert info.value.errno == errno.ETIMEDOUT
    assert info.value.backend_error_code == -7  # LIBUSB_ERROR_TIMEOUT
    usb.util.dispose_resources(dev)


# --------------------------------------------------------------------- discovery
def test_discovery_finds_both_recorders_by_port(bus) -> None:
    backend, a, b = bus
    found = discover_recorders(backend)
    assert [(r.port_path, r.serial) for r in found] == [(PORT_A, SERIAL_A), (PORT_B, SERIAL_B)]
    assert all((r.vendor_id, r.product_id) == (RECORDER_VID, RECORDER_PID) for r in found)
    assert port_path(found[0].device) == a.port_path == PORT_A
    assert found[1].device.port_numbers == b.port_numbers == (4,)


def test_port_paths_parse_strictly() -> None:
    assert parse_port_path("1-1.2") == (1, (1, 2))
    assert parse_port_path("3-10.4.1") == (3, (10, 4, 1))
    for bad in (
        "",
        "1",
        "1-",
        "usb1",
        "1-1..2",
        "1-1.2.",
        "0-1",
        "1-0",
        "a-1",
        "1-1.2.3.4.5.6.7.8",
    ):
        with pytest.raises(ValueError):
            parse_port_path(bad)


def test_slot_for_port() -> None:
    slots = {"A1": "usb:1-1.3", "A2": "2-4", "S1": "/dev/ttyACM0", "S2": "tcp://10.0.0.5:7000"}
    assert slot_for_port("1-1.3", slots) == "A1"
    assert slot_for_port("2-4", slots) == "A2"
    assert slot_for_port("1-1.4", slots) is None
    assert slot_for_port("1-1.3", {}) is None
    with pytest.raises(ValueError, match="several slots"):
        slot_for_port("2-4", {**slots, "A3": "usb:2-4"})
    with pytest.raises(ValueError):
        slot_for_port("not-a-port", slots)


def test_discovered_recorders_map_to_slots(bus) -> None:
    backend, _, _ = bus
    slots = {"left": f"usb:{PORT_A}", "right": f"usb:{PORT_B}"}
    by_slot = {slot_for_port(r.port_path, slots): r.serial for r in discover_recorders(backend)}
    assert by_slot == {"left": SERIAL_A, "right": SERIAL_B}


# --------------------------------------------------------------------- the dock client
def test_client_over_usb_downloads_a_recording_intact(bus) -> None:
    backend, _, _ = bus
    with open_client(backend, PORT_A) as client:
        assert client.identity is not None and client.identity.serial == SERIAL_A
        assert client.status().recording_count == 2
        recs = client.list_recordings()
        assert len(recs) == 2
        rec = recs[-1]
        h = hashlib.sha256()
        offsets: list[int] = []

        def sink(offset: int, data: bytes) -> None:
            assert offset == sum(offsets)  # in order, no gaps
            offsets.append(len(data))
            h.update(data)

        assert client.read_recording(rec, sink) == rec.size == 1 << 20
        assert rec.sequence is not None
        assert h.digest() == rec.sha256 == expected_sha256(SERIAL_A, rec.sequence, rec.size)
    # The port decides which recorder answers.
    with open_client(backend, PORT_B) as other:
        assert other.identity is not None and other.identity.serial == SERIAL_B


def test_unplug_mid_transfer_raises_link_error(bus) -> None:
    backend, a, _ = bus
    with open_client(backend, PORT_A, timeout=5.0) as client:
        rec = client.list_recordings()[0]
        got: list[int] = []

        def progress(delivered: int) -> None:
            got.append(delivered)
            if len(got) == 1:
                backend.unplug(a)

        t0 = time.monotonic()
        with pytest.raises(LinkError, match="unplugged"):
            client.read_recording(rec, lambda off, data: None, progress=progress)
        assert time.monotonic() - t0 < 2.0
        assert 0 < got[-1] < rec.size
    assert [r.port_path for r in discover_recorders(backend)] == [PORT_B]


def test_unplug_wakes_a_blocked_reader(bus) -> None:
    backend, a, _ = bus
    transport = open_usb_port(PORT_A, backend=backend)
    outcome: list[BaseException | bytes] = []

    def reader() -> None:
        try:
            outcome.append(transport.read(4096, timeout=10.0))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.05)  # let it block in the bulk read
    t0 = time.monotonic()
    backend.unplug(a)
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], LinkClosed)
    with pytest.raises(LinkClosed, match="unplugged"):
        transport.write(b"hello")
    transport.close()


def test_close_wakes_a_blocked_reader(bus) -> None:
    backend, _, _ = bus
    transport = open_usb_port(PORT_B, backend=backend)
    outcome: list[BaseException | bytes] = []

    def reader() -> None:
        try:
            outcome.append(transport.read(4096, timeout=10.0))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.05)  # let it block in the bulk read
    transport.close()
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], LinkClosed)
    assert "closed" in str(outcome[0])
    open_usb_port(PORT_B, backend=backend).close()  # the claim went with the close


def test_raw_io_on_an_unplugged_device_fails_enodev(bus) -> None:
    backend, _, b = bus
    dev = usb.core.find(backend=backend, custom_match=lambda d: d.port_numbers == (4,))
    backend.unplug(PORT_B)
    assert not b.connected
    with pytest.raises(usb.core.USBError) as info:
        dev.write(BULK_OUT_ENDPOINT, b"x", timeout=100)
    assert info.value.errno == errno.ENODEV
    assert not isinstance(info.value, usb.core.USBTimeoutError)
    usb.util.dispose_resources(dev)


def test_transport_read_returns_empty_on_timeout_and_honours_max_bytes(bus) -> None:
    backend, _, _ = bus
    with open_usb_port(PORT_B, backend=backend) as transport:
        t0 = time.monotonic()
        assert transport.read(100, timeout=0.03) == b""
        assert transport.read(100, timeout=0.0) == b""  # a poll, not "forever"
        assert time.monotonic() - t0 < 1.0
        # A session open draws a SYN_ACK; take it a few bytes at a time.
        client = RecorderClient(transport)
        client.session.connect(1, time.monotonic())
        transport.write(client.session.outgoing())
        for _ in range(100):
            piece = transport.read(5, timeout=1.0)
            assert 0 < len(piece) <= 5
            client.session.receive(piece, time.monotonic())
            if client.session.state.value == "open":
                break
        assert client.session.state.value == "open"


def test_interface_is_claimed_exclusively(bus) -> None:
    backend, _, _ = bus
    first = open_usb_port(PORT_A, backend=backend)
    with pytest.raises(LinkClosed, match="in use"):
        open_usb_port(PORT_A, backend=backend)
    first.close()
    open_usb_port(PORT_A, backend=backend).close()  # free again once closed


def test_open_usb_port_on_an_empty_port_is_a_clear_error(bus) -> None:
    backend, _, _ = bus
    with pytest.raises(LinkClosed, match=r"usb:1-1\.4: no USB device on this port"):
        open_usb_port("1-1.4", backend=backend)
    with pytest.raises(ValueError, match="not a USB port path"):
        open_usb_port("/dev/ttyACM0", backend=backend)
    backend.unplug(PORT_A)
    with pytest.raises(LinkClosed, match="no USB device"):
        open_usb_port(PORT_A, backend=backend)


def test_replugged_recorder_gets_a_new_address_and_works(bus, tmp_path: Path) -> None:
    backend, a, _ = bus
    backend.unplug(a)
    again = backend.plug(make_firmware(tmp_path, SERIAL_A), PORT_A)
    assert again.address != a.address
    with pytest.raises(ValueError, match="already has"):
        backend.plug(make_firmware(tmp_path, "BWC-C-0003"), PORT_A)
    with open_client(backend, PORT_A) as client:
        assert client.status().recording_count == 2


def test_composition_opens_usb_urls(bus, monkeypatch: pytest.MonkeyPatch) -> None:
    import hardware.usb_transport as usb_transport
    from dock.daemon.composition import open_transport

    backend, _, _ = bus
    real = usb_transport.open_usb_port
    seen: list[str] = []

    def with_emulated_bus(path: str, backend_arg: object = None) -> UsbTransport:
        seen.append(path)
        return real(path, backend=backend)

    monkeypatch.setattr(usb_transport, "open_usb_port", with_emulated_bus)
    transport = open_transport(f"usb:{PORT_B}")
    assert isinstance(transport, UsbTransport) and seen == [PORT_B]
    transport.close()


def test_unplug_and_bus_reset_end_the_sessions_authority(tmp_path: Path) -> None:
    """PROTOCOL.md 5.2: a link loss the recorder sees drops authority and the volume."""
    backend = EmulatedUsbBackend()
    secret = bytes(range(32))
    spec = RecorderSpec(serial=SERIAL_A, recordings=1, recording_mb=0.1, secret=secret)
    firmware = RecorderFirmware(RecorderModel.open(str(tmp_path / SERIAL_A), spec))
    device = backend.plug(firmware, PORT_A)
    volume = tmp_path / SERIAL_A / "mass-storage"
    with open_client(backend, PORT_A) as client:
        client.authenticate(secret)
        client.mass_storage(True)
        assert volume.is_dir() and firmware.authenticated
        backend.unplug(device)
    assert not volume.exists() and not firmware.authenticated
    backend.plug(firmware, PORT_A)
    with open_client(backend, PORT_A) as client:
        client.authenticate(secret)
        client.mass_storage(True)
        assert volume.is_dir()
        client.transport.device.reset()  # a bus reset, as the kernel may do
    assert not volume.exists() and not firmware.authenticated
