"""The threads that inspect slots for the sweeps: a few kept, more only while one is slow.

A thread per slot per sweep cost the idle dock most of its CPU (issue 15): each new
thread opened its own SQLite connection (the store keeps one per thread) and twenty of
them fought for the interpreter at once. The sweeps' slots now go to ``KEPT`` long-lived
workers, which keep their connections between sweeps. So that a slow or hostile
recorder still delays only its own slot, the sweep starts one more worker whenever a
slot has waited ``HANDOFF_S`` with every worker busy (at most one per slot); such a
worker ends once idle ``EXTRA_IDLE_S``, the kept ones after ``KEEP_IDLE_S``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("dock.daemon.service")

#: Workers kept between sweeps (the idle dock's CPU is lowest with about one per core).
KEPT = 2

#: Longest a slot waits for a busy worker before one more is started for it.
HANDOFF_S = 0.05

#: A kept worker with nothing to do for this long ends, with its database connection
#: (a dock whose sweeps stopped or come further apart, a service a test threw away); the
#: next sweep starts it again.
KEEP_IDLE_S = 30.0

#: A worker started for a waiting slot ends after this long with nothing to do: it
#: carries a slow sweep, then leaves the next sweeps to the kept ones (more threads
#: than needed cost every sweep CPU, contending for the interpreter).
EXTRA_IDLE_S = 0.5


class _Batch:
    """One sweep's slots: how many are still to finish."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.lock = threading.Lock()
        self.done = threading.Event()
        if n == 0:
            self.done.set()

    def finished_one(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left <= 0:
                self.done.set()


class SweepWorkers:
    """Runs ``inspect(slot_id)`` for each slot of a sweep on kept worker threads."""

    def __init__(self, inspect: Callable[[str], None], slots: int, kept: int = KEPT) -> None:
        self._inspect = inspect
        self._kept = kept
        self._most = max(1, slots)  # a slot is inspected by one worker at a time
        self._queue: queue.SimpleQueue[tuple[str, _Batch]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._alive = 0  # workers started and not ended
        self._alive_kept = 0  # of which kept ones
        self._idle = 0  # workers waiting for a slot
        self._names = itertools.count(1)

    def run(self, slot_ids: Iterable[str], wait_s: float) -> None:
        """Inspect ``slot_ids``; return when all are done or after ``wait_s`` (the rest
        go on). A slot that waited HANDOFF_S with every worker busy gets one more worker
        (at most one per slot of the dock), which ends once idle EXTRA_IDLE_S."""
        ids = list(slot_ids)
        batch = _Batch(len(ids))
        for sid in ids:
            self._queue.put((sid, batch))
        with self._lock:
            while self._alive_kept < min(self._kept, len(ids)):
                self._start(kept=True)
        deadline = time.monotonic() + wait_s
        while not batch.done.wait(min(HANDOFF_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            with self._lock:  # every worker busy (a slow slot?) and a slot waits
                if self._idle == 0 and not self._queue.empty() and self._alive < self._most:
                    self._start(kept=False)

    def workers(self) -> int:
        """Worker threads alive now."""
        with self._lock:
            return self._alive

    def _start(self, kept: bool) -> None:
        """One more worker (under the lock)."""
        self._count(kept, +1)
        name = f"inspect-{next(self._names)}"
        try:
            threading.Thread(target=self._work, args=(kept,), name=name, daemon=True).start()
        except BaseException:
            self._count(kept, -1)
            raise

    def _count(self, kept: bool, n: int) -> None:
        self._alive += n
        if kept:
            self._alive_kept += n

    def _work(self, kept: bool) -> None:
        """Inspect queued slots; end after KEEP_IDLE_S (kept) or EXTRA_IDLE_S idle."""
        try:
            while self._one(kept):
                pass
        except BaseException:
            with self._lock:
                self._count(kept, -1)
            raise

    def _one(self, kept: bool) -> bool:
        """Inspect the next queued slot; False when this worker has ended."""
        with self._lock:
            self._idle += 1
        try:
            sid, batch = self._queue.get(timeout=KEEP_IDLE_S if kept else EXTRA_IDLE_S)
        except queue.Empty:
            with self._lock:
                self._idle -= 1
                if not self._queue.empty():
                    return True
                self._count(kept, -1)  # counted out under the lock a sweep counts them in
                return False
        with self._lock:
            self._idle -= 1
        try:
            self._inspect(sid)
        except Exception:  # inspect logs its own failures; a worker is never lost to one
            log.exception("slot %s: inspection failed", sid)
        finally:
            batch.finished_one()
        return True
