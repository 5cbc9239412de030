"""Shared fixtures: emulated recorders served on real ptys and TCP sockets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from dock.composition import open_transport
from dock.recorder_client import RecorderClient
from hardware.emulator_server import EmulatorServer
from hardware.link_faults import LinkFaults
from hardware.recorder import RecorderFirmware
from hardware.recorder_model import RecorderModel, RecorderSpec

SECRET = bytes(range(32))


@dataclass
class RunningRecorder:
    server: EmulatorServer
    model: RecorderModel
    data_dir: str

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, timeout: float = 15.0) -> RecorderClient:
        return RecorderClient(open_transport(self.url), timeout=timeout)


@pytest.fixture
def start_recorder(tmp_path) -> Iterator[Callable[..., RunningRecorder]]:
    started: list[RunningRecorder] = []

    def start(
        listen: str = "pty",
        link_faults: LinkFaults | None = None,
        data_dir: str | None = None,
        **spec: object,
    ) -> RunningRecorder:
        spec.setdefault("serial", f"EMU{len(started) + 1:04d}")
        spec.setdefault("recording_mb", 0.25)
        spec.setdefault("recordings", 2)
        folder = data_dir or os.path.join(tmp_path, f"rec-{spec['serial']}-{len(started)}")
        model = RecorderModel.open(folder, RecorderSpec(**spec))  # type: ignore[arg-type]
        server = EmulatorServer(RecorderFirmware(model), listen, link_faults).start()
        running = RunningRecorder(server, model, folder)
        started.append(running)
        return running

    yield start
    for r in started:
        r.server.stop()
