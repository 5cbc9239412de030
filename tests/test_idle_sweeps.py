"""Issue 15: the idle dock's sweeps do less work, and still see every change.

Between full inspections a sweep only reads each recorder's STATUS and re-judges the
checks, reusing the last verdict when nothing the checks read has changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dock.domain.checks import run_checks
from dock.domain.slot_state import SlotState

pytestmark = pytest.mark.timeout(120)


def test_a_light_poll_sees_a_flag_a_locale_and_a_battery_change(make_dock: Any) -> None:
    svc, recs = make_dock({"battery_percent": 95.0})
    svc.sweep()  # docking: the full reading
    assert svc.slot_status["1"].state is SlotState.READY
    full_at = dict(svc.inspection.full_at)
    svc.sweep()  # a light poll, nothing changed: the same verdict
    assert svc.slot_status["1"].state is SlotState.READY

    svc.store.flag_device(recs[0].model.serial, maintenance=True)
    svc.sweep()
    assert svc.inspection.full_at == full_at  # still between full readings
    assert svc.slot_status["1"].state is SlotState.FAILED_CHECK
    assert [r.code for r in svc.views["1"].failures] == ["maintenance_flag"]

    svc.locale = "en"
    svc.sweep()
    view = svc.views["1"]
    assert view.snapshot is not None
    fresh = run_checks(view.snapshot, svc.policy, svc.clock.synchronised(), "en")
    assert view.results == fresh  # worded in the new locale, as a fresh judgement

    svc.store.flag_device(recs[0].model.serial, maintenance=False)
    recs[0].model.state["battery"] = 5.0  # drained while docked (a bad charger)
    svc.sweep()
    assert svc.inspection.full_at == full_at
    assert svc.slot_status["1"].state is SlotState.FAILED_CHECK
    assert "maintenance_flag" not in {r.code for r in svc.views["1"].failures}
    assert svc.views["1"].failures  # the low battery fails a check


def test_the_last_closed_episode_is_the_last_of_the_history(tmp_path: Path) -> None:
    """The slot table's handover (every sweep) reads one episode, the one the whole
    history ended with: withdrawn grants and the open episode are none."""
    from dock.storage.store import Store

    t = [1000.0]
    store = Store(str(tmp_path / "dock.db"), clock=lambda: t[0])
    store.add_officer("1001", "Wang Wei", "Traffic 3", "246810")
    store.keep_pending_secret("EMU1", b"k" * 32)
    store.commit_pending_secret("EMU1", "m", "1.0")
    assert store.last_closed_episode("EMU1") is None

    def last_of_history() -> int | None:
        closed = [e for e in store.custody_episodes("EMU1") if e.in_at is not None]
        return closed[-1].id if closed else None

    for i in range(5):
        t[0] += 60
        custody = store.open_custody("EMU1", "1001", "1")
        t[0] += 60
        if i == 3:  # a grant never taken: withdrawn, no episode
            assert store.withdraw_grant(custody.id, "expired") is not None
        else:
            store.mark_taken("1")
            t[0] += 60
            store.close_custody("EMU1", "2")
        last = store.last_closed_episode("EMU1")
        assert last is not None and last.id == last_of_history()
    store.open_custody("EMU1", "1001", "1")  # out again: the last closed one stays
    last = store.last_closed_episode("EMU1")
    assert last is not None and last.id == last_of_history()
