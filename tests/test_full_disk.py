"""A really full evidence disk: a 2 MiB tmpfs as the destination (root only; skipped
where mounting is not allowed). Nothing is lost: the footage stays on the recorder."""

from __future__ import annotations

import os

import pytest

from dock.domain.slot_state import SlotState
from dock.evidence import offload as offload_mod


@pytest.fixture
def small_disk(small_tmpfs) -> str:
    return small_tmpfs("small", "2m")


def test_offload_does_not_start_without_room(make_dock, small_disk, monkeypatch) -> None:
    """001 art.19(4): an offload does not start without room; the footage stays on the recorder."""
    monkeypatch.setattr(offload_mod, "ROOM_MARGIN", 0)
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 1.0})
    svc.offloader.evidence_dir = small_disk
    svc.sweep()
    assert len(recs[0].model.recordings) == 3  # everything still on the recorder
    assert svc.store.archive_entries() == []
    assert svc.slot_status["1"].state is SlotState.FAULT
    assert [e for e in svc.audit.entries() if e.kind == "offload_refused"]


def test_disk_filling_up_during_an_offload_loses_nothing(
    make_dock, small_disk, monkeypatch
) -> None:
    """001 art.19(4): a disk filling up during an offload loses nothing and erases nothing
    unverified."""
    monkeypatch.setattr(offload_mod, "ensure_room", lambda *a, **k: 0)  # the check is fooled
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.9})
    svc.offloader.evidence_dir = small_disk
    svc.offloader.use_mass_storage = False
    svc.sweep()
    model = recs[0].model
    archived = {e["recording_id"] for e in svc.store.archive_entries()}
    assert 1 <= len(archived) < 3  # the disk took some, then ran out (ENOSPC)
    assert set(model.recordings) == {"REC000001", "REC000002", "REC000003"} - archived
    failed = [e for e in svc.audit.entries() if e.kind == "offload_failed"]
    assert failed and "ENOSPC" in failed[0].data["error"]
    leftovers = [f for _, _, names in os.walk(small_disk) for f in names if ".partial-" in f]
    assert leftovers == []  # no half-written file left behind
