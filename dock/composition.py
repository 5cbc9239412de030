"""The composition root: the one place where the dock meets real hardware.

Everything else in ``dock`` depends on the interfaces in ``dock.interfaces``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .interfaces import Transport


def open_transport(url: str) -> Transport:
    """Open a link to a recorder from a port URL.

    ``tcp://HOST:PORT`` is plain TCP; ``usb:BUS-PORT[.PORT...]`` is a recorder on
    that physical USB port; anything else goes to pyserial (a device path such
    as ``/dev/ttyACM0``, ``socket://``, ``loop://``, ``rfc2217://``).
    """
    from hardware.transports import SerialTransport, TcpTransport

    if url.startswith("tcp://"):
        return TcpTransport(url)
    if url.startswith("usb:"):
        from hardware.usb_transport import open_usb_port

        return open_usb_port(url.removeprefix("usb:"))
    return SerialTransport(url)


@dataclass
class EmulatedFleet:
    """Recorders emulated in this process, each on its own pseudo-terminal."""

    urls: list[str]
    descriptions: list[str]
    _servers: list[Any]

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


#: The spread of states `dock run --emulate N` cycles through, so a newcomer sees
#: every branch of the flow: (description, emulator settings).
EMULATED_SPREAD: list[tuple[str, dict[str, Any]]] = [
    ("healthy", {"battery_percent": 96.0, "recordings": 3}),
    ("low battery", {"battery_percent": 11.0, "battery_health_percent": 61, "recordings": 2}),
    ("clock drifted 47 s", {"clock_offset_s": 47.0, "drift_ppm": 180.0, "recordings": 1}),
    ("older firmware", {"firmware": "1.1.0", "legacy": True, "recordings": 2}),
    ("storage nearly full", {"storage_free_mb": 180, "recordings": 4}),
    ("camera sensor fault", {"faults": "sensor", "recordings": 1}),
]


def start_emulated_recorders(count: int, data_dir: str) -> EmulatedFleet:
    """Start ``count`` reference recorders on ptys, in the spread above."""
    from firmware_protocol.messages import FaultFlag
    from hardware.emulator_server import EmulatorServer
    from hardware.recorder import RecorderFirmware
    from hardware.recorder_model import LEGACY_CAPABILITIES, RecorderModel, RecorderSpec

    servers: list[Any] = []
    descriptions: list[str] = []
    for i in range(count):
        description, settings = EMULATED_SPREAD[i % len(EMULATED_SPREAD)]
        settings = dict(settings)
        if settings.pop("legacy", False):
            settings["capabilities"] = LEGACY_CAPABILITIES
        if "faults" in settings:
            settings["faults"] = FaultFlag[settings["faults"].upper()]
        spec = RecorderSpec(serial=f"EMU{i + 1:04d}", recording_mb=1.0, **settings)
        model = RecorderModel.open(os.path.join(data_dir, spec.serial), spec)
        servers.append(EmulatorServer(RecorderFirmware(model)).start())
        descriptions.append(description)
    return EmulatedFleet([s.url for s in servers], descriptions, servers)
