"""A recorder that answers within the protocol, with hostile content (issue 9).

:class:`HostileFirmware` is the reference firmware with some replies rewritten: the
recording ids it lists (and maps back on READ/ERASE), fields of listed recordings,
STATUS fields, and the mass-storage volume it announces. Identity texts (serial,
model, firmware, vendor) are set in the model's state with :func:`hostile_model`,
so the authentication the firmware computes over the serial still agrees.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dock.config import emulated_config
from dock.daemon.composition import build_service
from firmware_protocol.messages import ErrorCode
from hardware.emulator.recorder import RecorderError, RecorderFirmware
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.server import EmulatorServer
from hardware.screens import ConsoleScreen

#: ESC[2J (clear screen), BEL, C1 CSI, NUL and a right-to-left override.
HOSTILE = "\x1b[2J\x07\x9b\x00\u202e"


class HostileFirmware(RecorderFirmware):
    def __init__(self, model: RecorderModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        #: model recording id -> the id put on the wire
        self.ids: dict[str, str] = {}
        #: model recording id -> fields of its LIST_RECORDINGS entry to replace
        self.listing: dict[str, dict[str, Any]] = {}
        #: STATUS fields to replace
        self.status: dict[str, Any] = {}
        #: the mass-storage ``local_path`` to announce (None: the emulator's own)
        self.volume: str | None = None
        #: when set, every ERASE is refused with this message
        self.erase_refusal: str | None = None

    def _real(self, wire_id: str) -> str:
        return next((mid for mid, wid in self.ids.items() if wid == wire_id), wire_id)

    def _on_list_recordings(self, **kwargs: Any) -> dict:
        fields = super()._on_list_recordings(**kwargs)
        for entry in fields["recordings"]:
            mid = entry["id"]
            entry.update(self.listing.get(mid, {}))
            entry["id"] = self.ids.get(mid, mid)
        return fields

    def _on_read(self, id: str, offset: int, length: int) -> dict:
        return super()._on_read(self._real(id), offset, length)

    def _queue_stream(self, req_id: int, id: str, offset: int, length: int, chunk: int) -> None:
        super()._queue_stream(req_id, self._real(id), offset, length, chunk)

    def _on_erase(self, id: str, sha256: bytes) -> dict:
        if self.erase_refusal is not None:
            raise RecorderError(ErrorCode.HASH_MISMATCH, self.erase_refusal)
        return super()._on_erase(self._real(id), sha256)

    def _on_status(self) -> dict:
        return {**super()._on_status(), **self.status}

    def _on_mass_storage(self, enable: bool) -> dict:
        if enable and self.volume is not None:
            super()._on_mass_storage(True)  # the emulator's own volume exists too
            return {"enabled": True, "volume_label": "HOSTILE", "local_path": self.volume}
        return super()._on_mass_storage(enable)


def hostile_model(folder: str, texts: dict[str, str] | None = None, **spec: Any) -> RecorderModel:
    """A reference recorder whose identity texts (serial, model, firmware, vendor) are
    replaced by ``texts`` after its footage was made."""
    spec.setdefault("recordings", 2)
    spec.setdefault("recording_mb", 0.1)
    spec.setdefault("battery_percent", 95.0)
    model = RecorderModel.open(folder, RecorderSpec(**spec))
    for key, value in (texts or {}).items():
        assert key in ("serial", "model", "firmware", "vendor"), key
        model.state[key] = value
    model.save()
    return model


@dataclass
class Hostile:
    model: RecorderModel
    firmware: HostileFirmware
    server: EmulatorServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def serve_hostile(tmp_path) -> Iterator[Callable[..., Hostile]]:
    """Start a hostile recorder on a TCP port (in this process, in a thread)."""
    started: list[Hostile] = []

    def start(texts: dict[str, str] | None = None, **spec: Any) -> Hostile:
        folder = os.path.join(tmp_path, f"hostile-{len(started)}")
        model = hostile_model(folder, texts, **spec)
        firmware = HostileFirmware(model)
        server = EmulatorServer(firmware, "tcp://127.0.0.1:0").start()
        started.append(Hostile(model, firmware, server))
        return started[-1]

    yield start
    for h in started:
        h.server.stop()


@pytest.fixture
def hostile_dock(tmp_path, serve_hostile) -> Callable[..., tuple[Any, Hostile]]:
    """A dock service with one slot, a hostile recorder in it (enrolled by default)."""
    made: list[int] = []

    def make(texts: dict[str, str] | None = None, enrol: bool = True, **spec: Any):
        made.append(1)
        h = serve_hostile(texts, **spec)
        cfg = emulated_config(1, str(tmp_path / f"state{len(made)}"))
        cfg = dataclasses.replace(cfg, slots=(dataclasses.replace(cfg.slots[0], port=h.url),))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        if enrol:
            svc.enrol("1", "admin")
        return svc, h

    return make
