"""The sweeps' worker threads (issue 15): a few kept across sweeps, one more only for a
slot that waits behind a slow one."""

from __future__ import annotations

import threading

import pytest

import dock.daemon.sweep_workers as sweep_workers
from dock.daemon.sweep_workers import KEPT, SweepWorkers

from .conftest import wait_until

pytestmark = pytest.mark.timeout(60)

SLOTS = [str(i) for i in range(1, 21)]


def test_sweeps_reuse_the_kept_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_workers, "HANDOFF_S", 30.0)  # no slot here is slow
    seen: dict[str, set[int]] = {}
    lock = threading.Lock()

    def inspect(sid: str) -> None:
        with lock:
            seen.setdefault(sid, set()).add(threading.get_ident())

    workers = SweepWorkers(inspect, len(SLOTS))
    for _ in range(5):
        workers.run(SLOTS, wait_s=30)
    assert set(seen) == set(SLOTS)
    threads = set().union(*seen.values())
    assert len(threads) <= KEPT  # not a thread per slot per sweep


def test_a_held_slot_delays_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    held_started = threading.Event()
    done: list[str] = []

    def inspect(sid: str) -> None:
        if sid in ("1", "2"):  # both kept workers held by their slots
            held_started.set()
            assert release.wait(30)
        done.append(sid)

    workers = SweepWorkers(inspect, len(SLOTS))
    sweep = threading.Thread(target=workers.run, args=(SLOTS, 30))
    sweep.start()
    try:
        assert held_started.wait(10)
        # the other 18 slots are handed workers of their own and finish meanwhile
        for _ in range(1000):
            if len(done) == len(SLOTS) - 2:
                break
            release.wait(0.01)
        assert sorted(done, key=int) == SLOTS[2:]
    finally:
        release.set()
        sweep.join(timeout=30)
    assert sorted(done, key=int) == SLOTS
    assert workers.workers() > KEPT  # one more for each slot that waited
    # once idle, the workers started for the wait end: later sweeps are the kept ones'
    assert wait_until(lambda: workers.workers() == KEPT, timeout=20)
    threads: set[int] = set()

    def note(sid: str) -> None:
        threads.add(threading.get_ident())

    workers._inspect = note
    monkeypatch.setattr(sweep_workers, "HANDOFF_S", 30.0)  # none is slow now
    for _ in range(5):
        workers.run(SLOTS, wait_s=30)
    assert len(threads) <= KEPT


def test_a_failing_inspection_loses_no_worker() -> None:
    calls: list[str] = []

    def inspect(sid: str) -> None:
        calls.append(sid)
        raise RuntimeError("boom")

    workers = SweepWorkers(inspect, len(SLOTS))
    workers.run(SLOTS[:4], wait_s=30)
    workers.run(SLOTS[:4], wait_s=30)
    assert sorted(calls) == sorted(SLOTS[:4] * 2)


def test_idle_workers_end_and_the_next_sweep_starts_them_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dock whose sweeps stopped (or a service thrown away) keeps no threads, nor
    their database connections, for long."""
    monkeypatch.setattr(sweep_workers, "KEEP_IDLE_S", 0.05)
    seen: list[str] = []
    workers = SweepWorkers(seen.append, len(SLOTS))
    workers.run(SLOTS, wait_s=30)
    assert wait_until(lambda: workers.workers() == 0, timeout=10)
    workers.run(SLOTS, wait_s=30)
    assert sorted(seen, key=int) == sorted(SLOTS * 2, key=int)
