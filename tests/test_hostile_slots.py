"""Issue 9, hostile peers: one slot's misbehaving recorder must not hold up the others.

Two docked recorders over TCP, slot 1 hostile, slot 2 honest. The assertions are on
order and progress, not on wall-clock numbers: the honest slot's state is decided
while the hostile one is still busy.
"""

from __future__ import annotations

import threading

import pytest

import dock.devices.recorder_client as rc
import dock.devices.recorder_client.link as rc_link
from dock.domain.slot_state import SlotState
from firmware_protocol.messages import MsgType

from .conftest import wait_until
from .hostile_recorder import Hold, HostileFirmware, answer_with, one_byte_reads

pytestmark = pytest.mark.timeout(120)


def test_a_recorder_holding_back_its_status_does_not_delay_the_other_slot(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 95.0}, {"battery_percent": 95.0})
    gate = threading.Event()
    hostile = HostileFirmware(
        recs[0].model, answer_with(MsgType.STATUS, lambda q, a: Hold([a], gate=gate))
    )
    recs[0].server.firmware = hostile  # the next connection meets it
    sweep = threading.Thread(target=svc.sweep)
    sweep.start()
    try:
        # Slot 1 comes first in the sweep, and answers every STATUS just before the
        # dock's reply timeout: slot 2 is decided all the same, and slot 1 is not.
        assert wait_until(lambda: svc.slot_status["2"].state is SlotState.READY, timeout=10)
        assert hostile.held, "slot 1 has had its answer already"
        assert svc.slot_status["1"].state is SlotState.EMPTY
    finally:
        gate.set()
        sweep.join(timeout=60)
    assert wait_until(lambda: svc.slot_status["1"].state is SlotState.READY, timeout=30)


def test_one_byte_reads_in_one_slot_do_not_delay_the_other_slot(make_dock, monkeypatch) -> None:
    # the session reads its default bounds where it is defined: patch them there
    monkeypatch.setattr(rc_link, "DEFAULT_BOUNDS", rc.Bounds(read_window_s=8.0))
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 1},
        {"battery_percent": 95.0},
    )
    svc.offloader.use_mass_storage = False  # the footage must come over READ
    hostile = HostileFirmware(recs[0].model, answer_with(MsgType.READ, one_byte_reads))
    recs[0].server.firmware = hostile
    svc.sweep()
    # The offload of slot 1 failed on the goodput floor; its footage stays on the device.
    assert wait_until(lambda: svc.slot_status["1"].state is SlotState.FAULT, timeout=30)
    assert svc.slot_status["2"].state is SlotState.READY
    assert len(recs[0].model.recordings) == 1 and svc.store.archive_entries() == []
    entries = list(svc.audit.entries())
    failed = [i for i, e in enumerate(entries) if e.kind == "offload_failed"]
    assert failed and "bytes/s" in entries[failed[-1]].data["error"]
    (checked,) = [i for i, e in enumerate(entries) if e.kind == "checks" and e.data["slot"] == "2"]
    # Slot 1 comes first in the sweep, yet slot 2 was checked before its offload ended.
    assert checked < failed[0]
