"""A fleet of reference recorders in this process, for `dock run --emulate N`.

Each recorder sits in its own bay, served on a named link (``emulated:PATH``, a Unix
socket in the fleet's folder: hardware/emulator/links.py), in a spread of states so a
newcomer sees every branch of the dock's flow. The fleet takes commands on its control
socket (hardware/emulator/control.py): take a recorder out, film, put it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from firmware_protocol.messages import Capability, FaultFlag
from hardware.emulator.bays import Bay
from hardware.emulator.control import FleetControl
from hardware.emulator.links import control_path, link_path
from hardware.emulator.recorder_model import (
    ALL_CAPABILITIES,
    LEGACY_CAPABILITIES,
    RecorderModel,
    RecorderSpec,
)


@dataclass
class EmulatedFleet:
    """Recorders emulated in this process, each in its bay, and the control socket."""

    bays: dict[str, Bay]
    control: FleetControl

    @property
    def urls(self) -> list[str]:
        return [bay.url for bay in self.bays.values()]

    @property
    def descriptions(self) -> list[str]:
        return [bay.description for bay in self.bays.values()]

    def stop(self) -> None:
        self.control.stop()  # first: a stale configuration then finds no fleet at all
        for bay in self.bays.values():
            bay.stop()


#: The spread of states `dock run --emulate N` cycles through, so a newcomer sees
#: every branch of the flow: (description, emulator settings).
EMULATED_SPREAD: list[tuple[str, dict[str, Any]]] = [
    # no USB volume: its footage crosses the (slow) link, so an offload shows progress
    ("healthy", {"battery_percent": 96.0, "recordings": 0, "mass_storage": False}),
    ("back with footage", {"battery_percent": 90.0, "recordings": 3, "interrupted": 1}),
    ("low battery", {"battery_percent": 11.0, "battery_health_percent": 61, "recordings": 2}),
    ("clock drifted 47 s", {"clock_offset_s": 47.0, "drift_ppm": 180.0, "recordings": 1}),
    ("older firmware", {"firmware": "1.1.0", "legacy": True, "recordings": 2}),
    ("storage nearly full", {"storage_free_mb": 180, "recordings": 4}),
    ("camera sensor fault", {"faults": "sensor", "recordings": 1}),
]


def start_emulated_recorders(count: int, data_dir: str) -> EmulatedFleet:
    """Start ``count`` reference recorders in bays "1".."N", in the spread above, with
    their links and the control socket in ``data_dir``."""
    bays: dict[str, Bay] = {}
    for i in range(count):
        description, settings = EMULATED_SPREAD[i % len(EMULATED_SPREAD)]
        settings = dict(settings)
        if settings.pop("legacy", False):
            settings["capabilities"] = LEGACY_CAPABILITIES
        if not settings.pop("mass_storage", True):
            settings["capabilities"] = ALL_CAPABILITIES & ~Capability.MASS_STORAGE
        if "faults" in settings:
            settings["faults"] = FaultFlag[settings["faults"].upper()]
        spec = RecorderSpec(serial=f"EMU{i + 1:04d}", recording_mb=1.0, **settings)
        model = RecorderModel.open(os.path.join(data_dir, spec.serial), spec)
        slot = str(i + 1)
        bays[slot] = Bay.start(slot, description, model, link_path(data_dir, slot))
    try:
        control = FleetControl(bays, control_path(data_dir)).start()
    except BaseException:
        for bay in bays.values():
            bay.stop()
        raise
    return EmulatedFleet(bays, control)
