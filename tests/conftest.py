"""Shared fixtures: emulated recorders served on real ptys and TCP sockets."""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dock.config import emulated_config
from dock.daemon.composition import build_service, open_transport
from dock.devices.recorder_client import RecorderClient
from firmware_protocol.messages import SUPPORTED_VERSIONS
from hardware.emulator.link_faults import LinkFaults
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec
from hardware.emulator.server import EmulatorServer
from hardware.screens import ConsoleScreen

from .hostile_content import hostile_dock, serve_hostile  # noqa: F401 - fixtures, issue 9

# The web site's fixtures (issue 12): a dock, its daemon socket and dock-web, a browser.
pytest_plugins = ["tests.web_harness"]

SECRET = bytes(range(32))
PIN = "246810"


@pytest.fixture(autouse=True)
def _root_logging_left_as_found() -> Iterator[None]:
    """A test that runs ``dock`` or ``dock run`` in-process sets up logging on that test's
    captured stderr; a later test's command would then log to a closed stream. Handlers a
    test added (other than pytest's own) and the root level are taken back afterwards."""
    import logging

    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    root.setLevel(level)


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
        protocol_versions: tuple[int, ...] | None = None,
        **spec: object,
    ) -> RunningRecorder:
        """``protocol_versions=(1,)`` serves an old recorder (PROTOCOL.md 6.7)."""
        spec.setdefault("serial", f"EMU{len(started) + 1:04d}")
        spec.setdefault("recording_mb", 0.25)
        spec.setdefault("recordings", 2)
        folder = data_dir or os.path.join(tmp_path, f"rec-{spec['serial']}-{len(started)}")
        model = RecorderModel.open(folder, RecorderSpec(**spec))  # type: ignore[arg-type]
        firmware = RecorderFirmware(model, versions=protocol_versions or SUPPORTED_VERSIONS)
        server = EmulatorServer(firmware, listen, link_faults).start()
        running = RunningRecorder(server, model, folder)
        started.append(running)
        return running

    yield start
    for r in started:
        r.server.stop()


@pytest.fixture
def make_dock(tmp_path, start_recorder) -> Callable[..., tuple[Any, list]]:
    made = []

    def make(*specs: dict, enrol: bool = True, policy: dict | None = None, clock=None):
        made.append(1)
        recorders = [
            start_recorder(listen="tcp://127.0.0.1:0", **{"recordings": 0, **spec})
            for spec in specs
        ]
        cfg = emulated_config(len(recorders), str(tmp_path / f"state{len(made)}"))
        slots = tuple(
            dataclasses.replace(slot, port=r.url)
            for slot, r in zip(cfg.slots, recorders, strict=True)
        )
        cfg = dataclasses.replace(cfg, slots=slots)
        if policy:
            cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, **policy))
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        if clock is not None:
            svc.clock = clock
        if enrol:
            for slot in svc.views:
                svc.enrol(slot, "admin")
        svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN, badge="BADGE-1001")
        svc.store.add_officer("1002", "Li Na", "Traffic 3", PIN)
        svc.store.add_officer("9001", "Zhao Min", "Traffic 3", "999000", role="supervisor")
        return svc, recorders

    return make


def write_dock_config(tmp_path: Any, url: str, dock_id: str = "d1") -> tuple[str, Any, Any]:
    """A minimal dock.toml with one slot on ``url``: (config path, state dir, evidence dir)."""
    state, evidence = tmp_path / "state", tmp_path / "evidence"
    cfg = tmp_path / "dock.toml"
    cfg.write_text(
        f'[dock]\nid = "{dock_id}"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{evidence}"\n\n[clock]\nsource = "trusted"\n\n'
        f'[[slot]]\nid = "1"\nport = "{url}"\n'
    )
    return str(cfg), state, evidence


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[Any]:
    """A real mosquitto (tests/broker.py Broker) of our own on a free 127.0.0.1 port."""
    from tests.broker import Broker, find_mosquitto

    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary: install the mosquitto package (scripts/bootstrap.sh)")
    with Broker(tmp_path) as broker:
        yield broker


def send_unsealed(client: Any, msg_type: Any, **fields: Any) -> dict:
    """Send a request as a dock without the session key would: no authenticator, no
    local refusal. Returns the reply's fields or raises RecorderRefused."""
    from firmware_protocol.messages import encode, request

    req_id = client._next_req
    client._next_req += 1
    wire, body = encode(request(msg_type, req_id, **fields))
    client.session.send(wire, body, client._mono())
    client._flush()
    return client.wait(req_id)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` (bounded: at most ``timeout`` seconds, 500 looks)."""
    import time

    end = time.monotonic() + timeout
    for _ in range(500):
        if condition():
            return True
        if time.monotonic() >= end:
            break
        time.sleep(timeout / 500)
    return condition()


@pytest.fixture
def small_tmpfs(tmp_path) -> Iterator[Callable[[str, str], str]]:
    """``small_tmpfs(name, size)``: a tmpfs of ``size`` (e.g. "2m") mounted at
    tmp_path/name, unmounted afterwards: a disk that really fills up. Root only; the test
    is skipped, saying why, where mounting is not allowed."""
    import contextlib
    import subprocess

    mounted: list[str] = []

    def mount(name: str, size: str) -> str:
        if os.geteuid() != 0:
            pytest.skip("mounting a small filesystem needs root")
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(str(where))
        return str(where)

    yield mount
    for where in reversed(mounted):
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", where], check=False)


def archived_bytes(svc) -> dict[str, bytes]:
    """What the archive holds: recording id -> its bytes as on disk."""
    root = svc.offloader.evidence_dir
    out = {}
    for e in svc.store.archive_entries():
        with open(os.path.join(root, e["path"]), "rb") as f:
            out[e["recording_id"]] = f.read()
    return out
