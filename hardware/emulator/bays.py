"""One bay of the emulated dock: a recorder, its named link, and what a wearer does
with it (take it out, film, put it back).

A recorder taken out of its bay loses its link, as a real one unplugged loses its USB
device: the dock sees an empty slot. Filming while away adds a recording the way the
recorder's own firmware does (numbered on, signed, logged), so the dock meets it on
return as it would a real shift's footage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from firmware_protocol.messages import EventKind
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import RecorderModel, Recording
from hardware.emulator.server import EmulatorServer

#: Bytes of footage per second filmed: about 4 Mbit/s, as the model's own clips.
BYTES_PER_SECOND = 500_000
#: How fast footage crosses a bay's link (bytes per second) when read over the protocol:
#: slow enough that an offload's progress can be followed, as at a dock on USB 1.1.
LINK_BYTES_PER_SECOND = 2_000_000
#: Longest recording one ``record`` makes (an hour; bounded so a typo fills no disk).
MAX_RECORD_S = 3600


class BayError(Exception):
    """A bay command that cannot be carried out now; the message says why, one line."""


@dataclass
class Bay:
    """Slot ``slot``'s recorder, served on ``link`` while it is in the bay."""

    slot: str
    description: str
    model: RecorderModel
    link: str
    server: EmulatorServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, slot: str, description: str, model: RecorderModel, link: str) -> Bay:
        bay = cls(slot, description, model, link)
        if model.state["docked"]:
            bay._serve()
        return bay

    @property
    def url(self) -> str:
        return f"emulated:{self.link}"

    @property
    def docked(self) -> bool:
        return bool(self.model.state["docked"])

    def _serve(self) -> None:
        firmware = RecorderFirmware(self.model, read_bytes_per_second=LINK_BYTES_PER_SECOND)
        self.server = EmulatorServer(firmware, self.url).start()

    def undock(self) -> None:
        """The recorder is taken out: its link disappears, the session (if any) ends."""
        with self.lock:
            if not self.docked:
                raise BayError(f"slot {self.slot}: {self.model.serial} is already out of its bay")
            if self.server is not None:
                self.server.stop()
                self.server = None
            self.model.battery_percent()  # charged until now, drains from now
            self.model.state["docked"] = False
            self.model.log(EventKind.UNDOCKED)
            self.model.save()

    def dock(self) -> None:
        """The recorder is put back in its bay: its link appears again."""
        with self.lock:
            if self.docked:
                raise BayError(f"slot {self.slot}: {self.model.serial} is already in its bay")
            self.model.battery_percent()
            self.model.state["docked"] = True
            self.model.log(EventKind.DOCKED)
            self.model.save()
            self._serve()

    def record(self, seconds: int) -> Recording:
        """The recorder, away from the dock, films ``seconds`` of footage ending now."""
        if not 1 <= seconds <= MAX_RECORD_S:
            raise BayError(f"seconds must be 1..{MAX_RECORD_S}, not {seconds}")
        with self.lock:
            if self.docked:
                raise BayError(
                    f"slot {self.slot}: {self.model.serial} is in its bay; take it out first "
                    f"(undock {self.slot})"
                )
            size = seconds * BYTES_PER_SECOND
            free = self.model.state["storage_free"]
            if size > free:
                raise BayError(f"slot {self.slot}: {self.model.serial} has room for "
                               f"{free // BYTES_PER_SECOND} s only")  # fmt: skip
            (rec,) = self.model.film(1, size=size, duration_ms=seconds * 1000)
            return rec

    def stop(self) -> None:
        with self.lock:
            if self.server is not None:
                self.server.stop()
                self.server = None

    def as_dict(self) -> dict[str, Any]:
        """What ``status`` says of the bay."""
        return {
            "slot": self.slot,
            "serial": self.model.serial,
            "description": self.description,
            "docked": self.docked,
            "link": self.url if self.docked else None,
            "officer": self.model.officer_id(),
            "recordings": len(self.model.recordings),
            "battery_percent": round(self.model.battery_percent(), 1),
        }

    def recording_dict(self, rec: Recording) -> dict[str, Any]:
        """A recording as ``record`` reports it: where it is and its capture hash."""
        return {
            "slot": self.slot,
            "serial": self.model.serial,
            "recording": rec.id,
            "bytes": rec.size,
            "seconds": (rec.end_ms - rec.start_ms) // 1000,
            "sha256": rec.sha256.hex(),
            "path": self.model.recording_path(rec.id),
        }
