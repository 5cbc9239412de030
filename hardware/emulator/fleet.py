"""A fleet of reference recorders in this process, for `dock run --emulate N`.

Each recorder is served on its own pseudo-terminal, in a spread of states so a
newcomer sees every branch of the dock's flow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from firmware_protocol.messages import FaultFlag
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import LEGACY_CAPABILITIES, RecorderModel, RecorderSpec
from hardware.emulator.server import EmulatorServer


@dataclass
class EmulatedFleet:
    """Recorders emulated in this process, each on its own pseudo-terminal."""

    urls: list[str]
    descriptions: list[str]
    _servers: list[EmulatorServer]

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


#: The spread of states `dock run --emulate N` cycles through, so a newcomer sees
#: every branch of the flow: (description, emulator settings).
EMULATED_SPREAD: list[tuple[str, dict[str, Any]]] = [
    ("healthy", {"battery_percent": 96.0, "recordings": 0}),
    ("back with footage", {"battery_percent": 90.0, "recordings": 3, "interrupted": 1}),
    ("low battery", {"battery_percent": 11.0, "battery_health_percent": 61, "recordings": 2}),
    ("clock drifted 47 s", {"clock_offset_s": 47.0, "drift_ppm": 180.0, "recordings": 1}),
    ("older firmware", {"firmware": "1.1.0", "legacy": True, "recordings": 2}),
    ("storage nearly full", {"storage_free_mb": 180, "recordings": 4}),
    ("camera sensor fault", {"faults": "sensor", "recordings": 1}),
]


def start_emulated_recorders(count: int, data_dir: str) -> EmulatedFleet:
    """Start ``count`` reference recorders on ptys, in the spread above."""
    servers: list[EmulatorServer] = []
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
