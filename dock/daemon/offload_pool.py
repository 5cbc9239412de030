"""Offloading returned recorders: a queue, at most N workers, and each slot's progress.

Carries out the state machine's QueueOffload. Each QueueOffload is answered by exactly
one OffloadDone or OffloadFailed, from a worker that never leaves a slot marked busy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dock.daemon.model import SlotView
from dock.daemon.parts import DockParts
from dock.daemon.slot_access import SlotAccess
from dock.daemon.slot_machine import SlotMachine
from dock.devices.recorder_client import AuthenticationFailed, LinkError, RecorderRefused
from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.evidence.offload import OffloadReport

log = logging.getLogger("dock.daemon.service")

#: ``progress(recording, bytes_done, bytes_total)`` while a recording is copied.
Progress = Callable[[str, int, int], None]


class OffloadPool:
    """Offloads now (one at a time) or in workers, ``concurrency`` recorders together:
    the disk, not a lock of ours, should be the limit."""

    def __init__(
        self,
        parts: DockParts,
        access: SlotAccess,
        views: dict[str, SlotView],
        changed: Callable[[str], None],
        run: Callable[[str], object],
        concurrency: int = 1,
    ) -> None:
        self.parts = parts
        self.access = access
        self.views = views
        self.machine: SlotMachine  # set by the service once the action table is built
        self._changed = changed  # what is on the recorder changed: read it in full again
        self._run = run  # the service's offload(slot), what a worker runs
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._inline = threading.RLock()  # concurrency 1: one at a time (re-entrant:
        # a re-read after an offload may find another recorder, and offload it too)
        self.running: dict[str, threading.Thread] = {}
        self._queue: list[str] = []
        #: slot -> {"recording", "done", "total"} of the offload running there
        self.progress: dict[str, dict[str, Any]] = {}
        #: told (slot, serial) when a recorder owed an offload had nothing to copy nor erase
        self.nothing_to_offload: Callable[[str, str], None] | None = None

    def busy(self) -> set[str]:
        with self._lock:
            return set(self.running)

    def is_running(self, slot_id: str) -> bool:
        return slot_id in self.running

    # ------------------------------------------------------------------ the action
    def queue_offload(self, slot_id: str, action: sm.QueueOffload) -> None:
        """QueueOffload: a recorder with nothing to copy nor erase is done at once; with
        no evidence store its footage waits on it; otherwise it is offloaded."""
        view = self.views[slot_id]
        nothing = view.snapshot is not None and view.snapshot.recordings_pending == 0
        if nothing and view.erasures_owed == 0:
            if self.nothing_to_offload is not None:  # said before the slot is judged again
                self.nothing_to_offload(slot_id, action.serial)
            self.machine.feed(slot_id, sm.OffloadStarted(), sm.OffloadDone())
        elif self.parts.offloader is None:
            log.info("slot %s: footage waits: no evidence store configured", slot_id)
        else:
            self._queue_offload(slot_id)

    def _queue_offload(self, slot_id: str) -> None:
        if self.concurrency <= 1:
            with self._inline:  # inside this slot's inspection thread
                self._run(slot_id)
            return
        with self._lock:
            if slot_id in self.running or slot_id in self._queue:
                return
            self._queue.append(slot_id)
        self._start_workers()

    def _start_workers(self) -> None:
        with self._lock:
            while self._queue and len(self.running) < self.concurrency:
                slot_id = self._queue.pop(0)
                worker = threading.Thread(
                    target=self._worker, args=(slot_id,), name=f"offload-{slot_id}"
                )
                self.running[slot_id] = worker
                worker.start()

    def _worker(self, slot_id: str) -> None:
        try:
            self._run(slot_id)
        except Exception:  # never leave a slot marked busy for ever
            log.exception("slot %s: offload worker failed", slot_id)
            self.machine.feed(slot_id, sm.OffloadFailed("internal error"))
            if self.parts.feedback.display is not None:
                self.parts.feedback.display.offload_failed(slot_id)
        finally:
            with self._lock:
                self.running.pop(slot_id, None)
            self._start_workers()

    def wait(self, timeout: float = 600.0) -> None:
        """Block until every queued and running offload has finished (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                workers = list(self.running.values())
                if not workers and not self._queue:
                    return
            for w in workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ one offload
    def _tracker(self, slot_id: str, progress: Progress | None, sizes: dict[str, int]) -> Progress:
        """Keep each slot's offload progress for the status page and JSON, and each
        recording's size in ``sizes`` (for the log line at the end)."""

        display = self.parts.feedback.display

        def track(recording: str, done: int, total: int) -> None:
            self.progress[slot_id] = {"recording": recording, "done": done, "total": total}
            sizes[recording] = total
            if display is not None:
                display.offload_progress(slot_id, recording, done, total)
            if progress is not None:
                progress(recording, done, total)

        return track

    def offload(self, slot_id: str, progress: Progress | None = None) -> OffloadReport | None:
        """Offload, verify and erase every recording on the recorder in ``slot_id``."""
        offloader = self.parts.offloader
        if offloader is None:
            raise RuntimeError("no evidence store configured: nothing can be offloaded")
        view = self.views[slot_id]
        serial = view.serial
        feed = self.machine.feed
        feed(slot_id, sm.OffloadStarted())
        display = self.parts.feedback.display
        pending = view.snapshot.recordings_pending if view.snapshot is not None else 0
        log.info("slot %s: offload of %s started: %d recording(s) to copy", slot_id, serial,
                 pending)  # fmt: skip
        if display is not None:
            display.offload_started(slot_id, expected=pending)
        sizes: dict[str, int] = {}
        try:
            with self.access.session(slot_id) as client:
                ident = client.identity
                device = self.parts.store.device(ident.serial) if ident else None
                if device is None:
                    raise LinkError(f"slot {slot_id}: recorder is not enrolled")
                client.authenticate(device.secret)
                report = offloader.offload(client, slot_id, self._tracker(slot_id, progress, sizes))
        except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
            log.warning("slot %s: offload stopped: %s", slot_id, exc)
            feed(slot_id, sm.OffloadFailed(str(exc)))
            if display is not None:
                display.offload_failed(slot_id)
            self.parts.audit.append(
                AuditKind.OFFLOAD_FAILED, "dock", serial or "", {"error": str(exc)}
            )
            return None
        self.progress.pop(slot_id, None)
        self._changed(slot_id)
        for why in report.seal_failed:  # footage archived and verified: the seal is retried
            log.error("slot %s: %s", slot_id, why)
        log_outcome(slot_id, report, sum(sizes.get(r, 0) for r in report.archived))
        if display is not None:  # "done" only when nothing failed: footage safe
            if report.failed or report.not_enough_room or report.damaged:
                display.offload_failed(slot_id)
            else:
                display.offload_done(slot_id, len(report.archived) + len(report.already_archived))
        if not (report.failed or report.not_enough_room or report.damaged):
            feed(slot_id, sm.OffloadDone())  # RunChecks: the slot is judged again at once
        elif report.not_enough_room:
            feed(slot_id, sm.OffloadFailed("not enough room in the evidence store"))
            self.parts.show([self.parts.screen_msg("no_room"), f"{slot_id}: {serial}"])
        else:
            problems = [*report.failed.values(), *report.damaged.values()]
            feed(slot_id, sm.OffloadFailed("; ".join(problems)))
        return report


def log_outcome(slot_id: str, report: OffloadReport, copied_bytes: int) -> None:
    """One line for an offload's end: INFO with "footage safe" when every recording is
    archived and verified, else ERROR saying what is not (a person must look)."""
    archived, before = len(report.archived), len(report.already_archived)
    said = (f"{archived} recording(s) copied and verified ({copied_bytes / 2**20:.1f} MiB), "
            f"{before} archived before, {len(report.erased)} erased from the recorder")  # fmt: skip
    if not (report.failed or report.not_enough_room or report.damaged):
        log.info("slot %s: offload of %s finished: %s: footage safe", slot_id, report.serial,
                 said)  # fmt: skip
        return
    problems = [*report.failed.values(), *report.damaged.values()]
    if report.not_enough_room:
        problems.insert(0, "not enough room in the evidence store")
    log.error("slot %s: offload of %s NOT finished (%s): %s; what is not verified stays on "
              "the recorder", slot_id, report.serial, said, "; ".join(problems))  # fmt: skip
