"""What the kiosk shows of offloads: each running offload's progress as a whole (bytes
done of the offload's total, percent, an estimate of the time left) and, once a
returned recorder's footage is archived and verified, "footage safe: N recordings
verified" with the officer who brought it back; a return with nothing to offload (no
new footage on the recorder) says so with the officer's name, for as long.

The offload pool reports progress per recording; the offload's own total is its
``offload_start`` audit entry (written before the first byte is copied). Kept in memory:
a daemon that restarts shows progress again from the next offload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dock.daemon.parts import DockParts
from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.evidence.offload import OffloadReport

#: An offload that begins within this long of a custody's close is that return's.
RETURN_S = 3600.0

#: ``progress(recording, bytes_done, bytes_total)`` of one recording.
Progress = Callable[[str, int, int], None]


@dataclass
class _Running:
    serial: str | None
    started: float  # time.monotonic(): a rate, not a time of day
    began_at: float  # the store's clock, to match the return's custody to this offload
    total_bytes: int | None = None
    recordings: int | None = None
    total_looked_up: bool = False  # the audit log is asked once, not on every chunk
    finished_bytes: int = 0  # recordings copied in full
    current: tuple[str, int, int] | None = None  # (recording, done, total)
    seen: set[str] = field(default_factory=set)


class Returns:
    """Offload progress as a whole, and the last outcome per slot."""

    def __init__(self, parts: DockParts) -> None:
        self.parts = parts
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        #: slot -> what the last offload there achieved (see ``finished``)
        self.last: dict[str, dict[str, Any]] = {}

    def start(self, slot_id: str, serial: str | None, progress: Progress | None) -> Progress:
        """An offload begins in ``slot_id``: the progress callback to hand the pool."""
        with self._lock:
            began = self.parts.store.clock()
            self._running[slot_id] = _Running(serial, time.monotonic(), began)
            self.last.pop(slot_id, None)

        def track(recording: str, done: int, total: int) -> None:
            self._progress(slot_id, recording, done, total)
            if progress is not None:
                progress(recording, done, total)

        return track

    def _progress(self, slot_id: str, recording: str, done: int, total: int) -> None:
        with self._lock:
            run = self._running.get(slot_id)
            if run is None:
                return
            if not run.total_looked_up and run.serial:
                run.total_looked_up = True
                self._read_total(run)
            if run.current is not None and run.current[0] != recording:
                run.finished_bytes += run.current[2]  # the previous one is copied
            run.current = (recording, done, total)
            run.seen.add(recording)

    def _read_total(self, run: _Running) -> None:
        """The offload's bytes and recordings from its ``offload_start`` entry."""
        audit = self.parts.audit
        assert run.serial is not None
        seq = audit.find(AuditKind.OFFLOAD_START, run.serial)
        if seq is None:
            return
        entries = audit.entries(since=seq - 1)
        try:
            entry = next(entries, None)
        finally:
            entries.close()  # type: ignore[attr-defined]
        if entry is not None:
            data = entry.data
            if isinstance(data.get("bytes"), int) and isinstance(data.get("recordings"), int):
                run.total_bytes, run.recordings = data["bytes"], data["recordings"]

    def progress(self, slot_id: str) -> dict[str, Any] | None:
        """The running offload of ``slot_id`` as a whole, or None."""
        with self._lock:
            run = self._running.get(slot_id)
            if run is None or run.current is None:
                return None
            recording, done, total = run.current
            out: dict[str, Any] = {"recording": recording, "done": done, "total": total}
            out["recordings_done"] = len(run.seen) - (0 if done >= total else 1)
            out["recordings"] = run.recordings
            if run.total_bytes:
                copied = min(run.finished_bytes + done, run.total_bytes)
                out["bytes_done"], out["bytes_total"] = copied, run.total_bytes
                out["percent"] = round(100 * copied / run.total_bytes, 1)
                elapsed = time.monotonic() - run.started
                rate = copied / elapsed if elapsed > 0 else 0
                left = (run.total_bytes - copied) / rate if rate > 0 else None
                out["seconds_left"] = None if left is None else round(left)
            return out

    def nothing_to_offload(self, slot_id: str, serial: str) -> None:
        """A recorder owed an offload had nothing to copy nor erase: when that follows its
        return (a custody just closed), keep "returned: no new footage" with the officer."""
        store = self.parts.store
        episodes = store.custody_episodes(serial)
        last = episodes[-1] if episodes else None
        if last is None or last.in_at is None or not 0 <= store.clock() - last.in_at < RETURN_S:
            return  # not a return: nothing to tell whoever stands at the dock
        who = store.officer(last.officer_id)
        with self._lock:
            if slot_id in self._running:
                return  # an offload began meanwhile: its outcome is the news
            self.last[slot_id] = {
                "serial": serial,
                "officer": last.officer_id,
                "officer_name": who.name if who else None,
                "verified": 0,
                "failed": 0,
                "not_enough_room": False,
                "safe": True,
                "nothing_new": True,
                "at_utc": utc_iso(self.parts.clock.now()),
            }

    def finished(self, slot_id: str, report: OffloadReport | None) -> None:
        """The offload ended: keep what it achieved, with the officer whose return it
        was (the custody the recorder's docking closed), for the kiosk."""
        with self._lock:
            run = self._running.pop(slot_id, None)
        if report is None or run is None:
            return
        store = self.parts.store
        episodes = store.custody_episodes(report.serial)
        last = episodes[-1] if episodes else None
        officer = None  # whose return this offload follows: closed just before it began
        if (
            last is not None
            and last.in_at is not None
            and 0 <= run.began_at - last.in_at < RETURN_S
        ):
            officer = last.officer_id
        who = store.officer(officer) if officer else None
        failed = len(report.failed) + len(report.damaged)
        self.last[slot_id] = {
            "serial": report.serial,
            "officer": officer,
            "officer_name": who.name if who else None,
            "verified": len(report.archived) + len(report.already_archived),
            "failed": failed,
            "not_enough_room": bool(report.not_enough_room),
            "safe": failed == 0 and not report.not_enough_room,
            "at_utc": utc_iso(self.parts.clock.now()),
        }
