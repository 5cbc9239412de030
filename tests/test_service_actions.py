"""The daemon carries out every action the slot state machine returns, and its
maintenance jobs run beside check-outs, not in front of them (issue 11)."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import threading

import pytest

from dock.daemon.slot_machine import SlotMachine, missing_handlers
from dock.domain import slot_state as sm
from dock.domain.interfaces import LedPattern
from dock.domain.slot_state import SlotState

from .conftest import PIN, wait_until


def _action_classes() -> set[type]:
    """Every class slot_state defines that is neither an event nor the slot's status."""
    defined = {
        cls
        for _, cls in inspect.getmembers(sm, inspect.isclass)
        if cls.__module__ == sm.__name__ and dataclasses.is_dataclass(cls)
    }
    return defined - set(sm.EVENT_TYPES) - {sm.SlotStatus}


class Leds:
    def __init__(self) -> None:
        self.shown: list[LedPattern] = []

    def show(self, pattern: LedPattern) -> None:
        self.shown.append(pattern)


def test_every_action_the_state_machine_defines_has_a_handler(make_dock) -> None:
    svc, _ = make_dock({"battery_percent": 95.0})
    actions = _action_classes()
    assert actions == set(sm.ACTION_TYPES)  # no action class outside the Action union
    assert not [a for a in actions if issubclass(a, enum.Enum)]
    handlers = svc.action_handlers()
    assert actions <= set(handlers), actions - set(handlers)
    assert not missing_handlers(handlers)


def test_a_machine_missing_a_handler_refuses_to_start() -> None:
    handlers = {t: (lambda slot_id, action: None) for t in sm.ACTION_TYPES}
    del handlers[sm.RunChecks]
    with pytest.raises(ValueError, match="RunChecks"):
        SlotMachine(["1"], handlers)


def test_close_custody_records_the_return_once_and_frees_the_officer(make_dock) -> None:
    """003 art.21(2): CloseCustody: the returned recorder closes its own custody; the officer can
    take another one; a bounce in the slot does not record the return twice."""
    svc, recs = make_dock({"battery_percent": 95.0})
    serial = recs[0].model.serial
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")  # out on patrol
    assert svc.store.open_custody_of_officer("1001") is not None
    svc.inspect("1")  # back in the slot: Identified(in_custody) -> CloseCustody
    assert svc.store.open_custody_of_officer("1001") is None
    assert svc.store.open_custody_of_device(serial) is None
    checkins = [e for e in svc.audit.entries() if e.kind == "checkin"]
    assert len(checkins) == 1 and checkins[0].data["officer"] == "1001"
    svc.machine.feed("1", sm.Docked())  # a contact bounce: re-identified
    svc.inspect("1")
    assert len([e for e in svc.audit.entries() if e.kind == "checkin"]) == 1
    assert svc.slot_status["1"].state is SlotState.READY
    assert svc.checkout("1001", PIN).granted  # the same officer, the next shift


def test_run_checks_after_an_offload_makes_the_slot_ready_without_another_sweep(
    make_dock,
) -> None:
    """RunChecks after OffloadDone: the offloaded recorder is read again and judged at
    once; its LED turns green without waiting for the next sweep."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    leds = Leds()
    svc.indicators["1"] = leds
    svc.offload_concurrency = 2  # offloaded in a worker, as `dock run` does
    svc.sweep()
    svc.wait_offloads()
    assert recs[0].model.recordings == {}  # offloaded, verified, erased
    assert svc.slot_status["1"].state is SlotState.READY  # no second sweep
    assert leds.shown[-1] is LedPattern.READY
    assert LedPattern.FAILED_CHECK not in leds.shown  # never shown as failing meanwhile


def test_a_recorder_docked_with_footage_is_handed_out_once_it_is_offloaded(make_dock) -> None:
    """RunChecks inside a check-out's refresh: the footage is offloaded, the recorder
    judged again, and the officer gets it in the same check-out."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1})
    d = svc.checkout("1001", PIN)
    assert d.granted and d.slot == "1", d.reasons
    assert len(svc.store.archive_entries()) == 1 and recs[0].model.recordings == {}


def test_a_badge_checkout_completes_while_the_fixity_sample_is_reading(make_dock) -> None:
    """The daily fixity sample runs in its own thread: held in the middle of reading
    the archive, it does not keep an officer waiting; then it finishes."""
    import dock.daemon.maintenance as maintenance

    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()  # footage archived: something for the sample to read
    assert svc.slot_status["1"].state is SlotState.READY
    reading, release = threading.Event(), threading.Event()

    def hold(label: str, done: int, total: int) -> None:
        reading.set()
        release.wait(30)  # bounded: never hangs the test run

    svc.maintenance.fixity_progress = hold
    old = maintenance.FIXITY_SAMPLE
    maintenance.FIXITY_SAMPLE = 1.0
    try:
        jobs = svc.start_maintenance(seals_every_s=0.5)
        assert {j.name for j in jobs} >= {"maintenance-fixity", "maintenance-seals"}
        assert reading.wait(10), "the fixity sample never started reading"
        d = svc.checkout(badge="BADGE-1001", refresh=False)
        assert d.granted and d.slot == "1"
        assert not [e for e in svc.audit.entries() if e.kind == "fixity_check"]  # still reading
        release.set()
        assert wait_until(
            lambda: [e for e in svc.audit.entries() if e.kind == "fixity_check"], timeout=30
        )
    finally:
        release.set()
        maintenance.FIXITY_SAMPLE = old
        assert svc.stop_maintenance(timeout=10) == []
    (check,) = [e for e in svc.audit.entries() if e.kind == "fixity_check"]
    assert check.data["ok"] is True and check.data["checked"] == 2


def test_stopping_the_maintenance_jobs_stops_a_fixity_read_in_the_middle(make_dock) -> None:
    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()
    reading, release = threading.Event(), threading.Event()

    def hold(label: str, done: int, total: int) -> None:
        reading.set()
        release.wait(30)

    svc.maintenance.fixity_progress = hold
    svc.start_maintenance()
    assert reading.wait(10)
    stopper = threading.Thread(target=svc.stop_maintenance, kwargs={"timeout": 10})
    stopper.start()
    release.set()
    stopper.join(15)
    assert not stopper.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("maintenance-")]
    assert not [e for e in svc.audit.entries() if e.kind == "fixity_check"]  # cut short
