"""The dock's maintenance jobs: finish seals and purges, watch offload deadlines, and
sample the archive's fixity.

Each job runs in its own named, stoppable thread (``MaintenanceJob``), never under
the daemon's check-out path: a daily fixity sample reading the whole archive must not
keep an officer waiting at the dock. ``Maintenance.run_all`` runs them once, in this
thread, for tests and the command line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dock.daemon.parts import DockParts
from dock.domain.audit_kinds import AuditKind

if TYPE_CHECKING:
    from dock.evidence.fixity import FixityReport

log = logging.getLogger("dock.daemon.maintenance")

#: The audit kind for each deadline state ``overdue_or_at_risk`` reports.
_DEADLINE_KINDS = {"at_risk": AuditKind.DEADLINE_AT_RISK, "overdue": AuditKind.DEADLINE_OVERDUE}

#: How often the daemon looks at offload deadlines, and samples the archive's fixity.
DEADLINES_EVERY_S = 60.0
FIXITY_EVERY_S = 24 * 3600.0
FIXITY_SAMPLE = 0.05
#: How often working copies past their request's expiry are looked for and removed.
WORKING_COPIES_EVERY_S = 60.0
#: How often unfinished seals and purges are looked for when no interval is given.
SEALS_EVERY_S = 5.0
#: How often the replication queue is looked at (sealed packages to central storage).
REPLICATION_EVERY_S = 10.0
#: How long stopping waits for a job in the middle of its work.
STOP_WAIT_S = 60.0

#: ``hook(label, bytes_done, bytes_total)``: called at each progress point of a
#: fixity read; tests use it to hold a sample in the middle of reading.
ProgressHook = Callable[[str, int, int], None]


class JobStopped(Exception):
    """Raised at a progress point when the job was asked to stop."""


class MaintenanceJob(threading.Thread):
    """One maintenance job in its own thread: runs ``work(now)``, then waits
    ``every_s`` or until stopped; a failure is logged and tried again next time."""

    def __init__(
        self,
        name: str,
        work: Callable[[float], None],
        every_s: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        # A daemon thread: a stop that times out (a very large archive being read)
        # must not keep the process alive; every job is safe to cut off and resumes.
        super().__init__(name=f"maintenance-{name}", daemon=True)
        self.work = work
        self.every_s = every_s
        self.stopped = threading.Event()
        self._now = now

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.work(self._now())
            except JobStopped:
                log.info("%s: stopped in the middle of its work", self.name)
                return
            except Exception:  # a disk error, a bug: logged, tried again next time
                log.exception("%s failed; tried again in %.0f s", self.name, self.every_s)
            self.stopped.wait(self.every_s)

    def stop(self, timeout: float = STOP_WAIT_S) -> bool:
        """Ask the job to stop and wait for it (bounded); True if it has stopped."""
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        return not self.is_alive()


class Maintenance:
    """The jobs, each remembering when it last ran (so each runs no more often than it
    should, from its thread or from ``run_all``), and each run by one thread at a time."""

    def __init__(self, parts: DockParts) -> None:
        self.parts = parts
        self._last_deadlines = float("-inf")
        self._last_fixity = float("-inf")
        self._last_copies = float("-inf")
        self._copies_lock = threading.Lock()
        self._deadline_alerts: set[tuple[int, str]] = set()
        self._seals_lock = threading.Lock()
        self._deadlines_lock = threading.Lock()
        self._fixity_lock = threading.Lock()
        self._replication_lock = threading.Lock()
        self._stopping = threading.Event()
        self.jobs: list[MaintenanceJob] = []
        #: Test hook: called at each progress point of a fixity read.
        self.fixity_progress: ProgressHook | None = None

    # ------------------------------------------------------------------ threads
    def start(
        self,
        seals_every_s: float = SEALS_EVERY_S,
        replication_every_s: float = REPLICATION_EVERY_S,
    ) -> list[MaintenanceJob]:
        """Start each job in its own thread (once); ``dock run`` calls this."""
        if not self.jobs:
            self._stopping.clear()
            self.jobs = [
                MaintenanceJob("seals", self.finish_seals, seals_every_s),
                MaintenanceJob("deadlines", self.deadlines, DEADLINES_EVERY_S),
                MaintenanceJob("fixity", self.fixity, FIXITY_EVERY_S),
                MaintenanceJob("working-copies", self.working_copies, WORKING_COPIES_EVERY_S),
            ]
            engine = self.parts.replication
            if engine is not None:
                engine.stopping = self._stopping.is_set
                self.jobs.append(MaintenanceJob("replication", self.replicate, replication_every_s))
            for job in self.jobs:
                job.start()
        return self.jobs

    def stop(self, timeout: float = STOP_WAIT_S) -> list[str]:
        """Stop every job (a fixity read stops at its next progress point); the names
        of those still running after ``timeout`` seconds."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for job in self.jobs:
            job.stopped.set()
        left = [
            job.name for job in self.jobs if not job.stop(max(0.0, deadline - time.monotonic()))
        ]
        self.jobs = []
        return left

    def run_all(self, now: float) -> None:
        """Every job once, here and now (each still no more often than it should)."""
        self.finish_seals(now)
        self.deadlines(now)
        self.fixity(now)
        self.working_copies(now)
        self.replicate(now)

    # ------------------------------------------------------------------ the jobs
    def finish_seals(self, now: float) -> None:
        """Finish what an interrupted offload left (audit entries, seals) and what an
        interrupted purge left (evidence/purging.py)."""
        from dock.evidence.purging import complete as complete_purges

        offloader = self.parts.offloader
        if offloader is None:
            return
        audit = self.parts.audit
        with self._seals_lock:
            for why in offloader.complete_seals().failed:
                audit.append(AuditKind.SEAL_FAILED, "dock", "", {"error": why})
            done = complete_purges(self.parts.store, audit, offloader.seals, offloader.evidence_dir)
            for what in done.completed:
                log.info("finished an unfinished purge: %s", what)

    def deadlines(self, now: float) -> None:
        """Raise offload deadlines at risk or overdue (recorders away included), and
        recorders not back by the end of their shift: each once per custody episode and
        state, also across restarts (the audit log says what was raised)."""
        from dock.evidence.deadlines import deadline_report, overdue_or_at_risk
        from dock.evidence.shift_returns import not_returned

        parts = self.parts
        with self._deadlines_lock:
            if now - self._last_deadlines < DEADLINES_EVERY_S:
                return
            self._last_deadlines = now
            report = deadline_report(parts.store, parts.policy, parts.timezone, now)
            for row in overdue_or_at_risk(report):
                kind = _DEADLINE_KINDS[row["state"]]
                if self._raise_once(kind, row):
                    log.warning("offload deadline %s: %s", row["state"], row)
            for row in not_returned(parts.store, parts.policy, parts.timezone, now):
                if self._raise_once(AuditKind.RECORDER_NOT_RETURNED, row):
                    log.warning("recorder not returned by the end of its shift: %s", row)

    def _raise_once(self, kind: AuditKind, row: dict[str, Any]) -> bool:
        """Append ``kind`` about ``row``'s custody episode unless already raised (here or,
        before a restart, in the audit log); True when it was appended now."""
        key = (row["custody_id"], kind.value)
        if key in self._deadline_alerts:
            return False
        self._deadline_alerts.add(key)
        audit = self.parts.audit
        if audit.find(kind, row["serial"], custody_id=row["custody_id"]) is not None:
            return False
        audit.append(kind, "dock", row["serial"], row)
        return True

    def replicate(self, now: float) -> None:
        """Sealed packages to central storage: enqueue what is new, then send and verify
        what is due (dock/evidence/replication.py). Its own thread: a large upload never
        holds the check-out path; a stop is seen between files."""
        engine = self.parts.replication
        if engine is None:
            return
        with self._replication_lock:
            report = engine.run_once(now)
        for target, bag in report.replicated:
            log.info("replicated to %s and verified: %s", target, bag)
        self.free_local(now)

    def free_local(self, now: float) -> None:
        """Local copies whose packages every target holds verified for
        ``free_local_after_days`` and nothing else keeps: freed by a purge
        (evidence/replication_free.py); never when the setting is 0."""
        from dock.evidence.holds import HoldRegister
        from dock.evidence.replication_free import free_local

        engine, offloader = self.parts.replication, self.parts.offloader
        if engine is None or offloader is None or engine.config.free_local_after_days <= 0:
            return
        store, audit = self.parts.store, self.parts.audit
        with self._seals_lock:
            done = free_local(
                store, audit, HoldRegister(store, audit), offloader.seals,
                offloader.evidence_dir, self.parts.policy, engine.dock_id,
                [t.name for t in engine.targets], engine.config.free_local_after_days, now,
            )  # fmt: skip
        for name in done.purged:
            log.info("local copy freed after replication: %s", name)

    def working_copies(self, now: float) -> None:
        """Remove the views' and copies' files under ``<state_dir>/exports`` whose
        request has expired, each recorded (evidence/working_copies.py; 004 att.2 §5,
        002 art.26): a copy of evidence lives no longer than the approval allowing it."""
        from dock.evidence.working_copies import remove_expired

        offloader = self.parts.offloader
        if offloader is None:
            return
        with self._copies_lock:
            if now - self._last_copies < WORKING_COPIES_EVERY_S:
                return
            self._last_copies = now
            store = self.parts.store
            exports = os.path.join(os.path.dirname(os.path.abspath(store.path)), "exports")
            done = remove_expired(store, self.parts.audit, exports, offloader.evidence_dir, now)
        for row in done:
            log.info("working copy removed at its expiry: %s (%s)", row["path"], row["outcome"])

    def fixity(self, now: float) -> None:
        """Sample the archive's fixity, once a day. Reads the archive with no lock of
        the check-out path held; stops at a progress point when asked to."""
        from dock.evidence.fixity import verify_archive

        offloader = self.parts.offloader
        if offloader is None:
            return
        with self._fixity_lock:
            if now - self._last_fixity < FIXITY_EVERY_S:
                return
            self._last_fixity = now
            report = verify_archive(
                self.parts.store, offloader.evidence_dir, self.parts.audit,
                sample_fraction=FIXITY_SAMPLE, progress=self._fixity_progress,
            )  # fmt: skip
        log_fixity(report)

    def _fixity_progress(self, label: str, done: int, total: int) -> None:
        hook = self.fixity_progress
        if hook is not None:
            hook(label, done, total)
        if self._stopping.is_set():
            raise JobStopped(label)


def log_fixity(report: FixityReport) -> None:
    """The daily sample's outcome in the log (each problem is also audited, as
    ``fixity_failure``, by verify_archive): an error per problem, naming the file or
    bag; an empty archive is nothing to check, not a failure."""
    if report.nothing_to_check:
        log.info("fixity sample: nothing to check (the archive is empty)")
        return
    for p in report.bad:
        what = "bag" if p["kind"] == "bag" else f"{p['serial']} {p['recording']}"
        log.error("fixity sample: %s %s: %s", what, p["path"], p["problem"])
    log.log(
        logging.INFO if report.ok else logging.ERROR,
        "fixity sample: %d of %d file(s) checked, %d intact; %d bag(s) checked, %d bad",
        report.checked, report.archived, report.intact, report.bags_checked,
        report.bags_bad,
    )  # fmt: skip
