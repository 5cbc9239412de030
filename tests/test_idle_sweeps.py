"""Issue 15: the idle dock's sweeps do less work, and still see every change.

Between full inspections a sweep only reads each recorder's STATUS and re-judges the
checks, reusing the last verdict when nothing the checks read has changed."""

from __future__ import annotations

import pytest

from dock.domain.checks import run_checks
from dock.domain.slot_state import SlotState

pytestmark = pytest.mark.timeout(120)


def test_a_light_poll_sees_a_flag_a_locale_and_a_battery_change(make_dock) -> None:
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
