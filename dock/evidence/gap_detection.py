"""Finding gaps in recording in one custody episode: pure, the recorder's event log and
recording list in, the gaps out, in a deterministic order (:mod:`.gaps` keeps them as
explanation items).

What counts, and why:

* An INTERRUPTED event (battery, storage full, fault, other) inside the episode is a gap
  from the interruption to the next restart, or to the end of the episode if recording
  never resumed in it. A RECORD_STOP whose reason is not MANUAL is the same thing logged
  differently (and a stop without any reason cannot be told apart from one: it is asked
  about as ``other``).
* A recording flagged INTERRUPTED (or stopped for a reason other than MANUAL) with no such
  event is still reported, from its end: event logs roll over, recording lists do not lie
  about their own flags. An event and its recording's flag are one item.
* A FAULT event inside the episode is an item of its own: the fault needs a look even when
  recording went on, and a fault that also cut a recording gives two items because the
  device and the gap are answered by different people.
* A manual stop is not an interruption: it is the officer's decision at the end of an
  action, and §5 asks for explanations of interruptions for objective causes (battery,
  storage, fault, weather, obstruction), not of an officer ending one incident and
  starting the next. So by default a manual stop opens no item (an officer who films 20
  incidents would otherwise leave 19, and bury the real interruptions among them). A unit
  that wants every stop-and-restart within an episode looked at, since the dock cannot
  tell a stop between two actions from a stop in the middle of one (002 art.19 asks for
  the whole action), sets the policy's ``explain_manual_stops``
  (``report_manual_stops=True`` here): each is then a ``manual_stop`` item. The last stop
  of an episode is never an item.

Which interruptions mean recording could not continue (``could_not_continue``): the
battery ran out, the storage was full, or the device failed (stop reasons BATTERY,
STORAGE_FULL, FAULT). Then the head of the unit is told at once, not only asked to review
an item (002 art.20; 003 art.11; 004 att.1 art.3): :mod:`.gaps` raises the alert when it
opens the item. A stop for another or no stated reason (weather, obstruction, unknown) is
an item to explain, and a manual stop is none at all; a FAULT event with recording going
on is an item about the device, not an interruption.

Event times are the recorder's clock; the episode bounds are the dock's custody times
(here ms).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from firmware_protocol.messages import EventKind, RecordingFlag, StopReason

__all__ = [
    "COULD_NOT_CONTINUE",
    "FAULT",
    "INTERRUPTED",
    "KINDS",
    "MANUAL_STOP",
    "Gap",
    "RecordingLike",
    "could_not_continue",
    "find_gaps",
]

INTERRUPTED = "interrupted"
FAULT = "fault"
MANUAL_STOP = "manual_stop"
KINDS = (INTERRUPTED, FAULT, MANUAL_STOP)

#: The reasons (``_reason_name``) of an interruption where recording could not continue.
COULD_NOT_CONTINUE = frozenset({"battery", "storage_full", "fault"})


def could_not_continue(kind: str, reason: str) -> bool:
    """Whether an item of ``kind`` and ``reason`` is recording that could not continue
    (the head is told at once: 002 art.20; 003 art.11; 004 att.1 art.3)."""
    return kind == INTERRUPTED and reason in COULD_NOT_CONTINUE


_I64 = 1 << 63


class RecordingLike(Protocol):
    """What ``find_gaps`` reads of a recording (``RecordingInfo`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def stop_reason(self) -> int | None: ...


@dataclass(frozen=True)
class Gap:
    """One thing to explain. ``end_ms`` is None when the episode has no end yet."""

    kind: str
    reason: str
    start_ms: int
    end_ms: int | None
    recording_id: str | None
    detail: str = ""


@dataclass(frozen=True)
class _Event:
    order: tuple[int, int, int]
    time_ms: int
    kind: EventKind
    reason: int | None
    recording_id: str | None
    detail: str


@dataclass(frozen=True)
class _Rec:
    id: str
    start_ms: int | None
    end_ms: int
    flags: int
    stop_reason: int | None


def _int(value: Any) -> int | None:
    """An int that fits the protocol's I64, or None: malformed fields are ignored."""
    if isinstance(value, int) and not isinstance(value, bool) and -_I64 <= value < _I64:
        return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason_name(code: int | None) -> str:
    """battery / storage_full / fault / other; anything unknown (or MANUAL) is ``other``."""
    try:
        reason = StopReason(code) if code is not None else StopReason.OTHER
    except ValueError:
        return "other"
    return "other" if reason is StopReason.MANUAL else reason.name.lower()


def _parse_events(events: Iterable[Any]) -> list[_Event]:
    out = []
    for pos, e in enumerate(events):
        if not isinstance(e, Mapping):
            continue
        t, k = _int(e.get("time_ms")), _int(e.get("kind"))
        if t is None or k is None:
            continue
        try:
            kind = EventKind(k)
        except ValueError:
            continue
        index = _int(e.get("index"))
        out.append(
            _Event(
                (t, pos if index is None else index, pos),
                t,
                kind,
                _int(e.get("reason")),
                _text(e.get("recording_id")),
                _text(e.get("detail")) or "",
            )
        )
    return sorted(out, key=lambda ev: ev.order)


def _parse_recordings(recordings: Iterable[Any]) -> list[_Rec]:
    out = []
    for r in recordings:
        rid, end = _text(getattr(r, "id", None)), _int(getattr(r, "end_ms", None))
        if rid is None or end is None:
            continue
        flags = _int(getattr(r, "flags", 0)) or 0
        out.append(
            _Rec(
                rid,
                _int(getattr(r, "start_ms", None)),
                end,
                flags,
                _int(getattr(r, "stop_reason", None)),
            )
        )
    return sorted(out, key=lambda r: (r.end_ms, r.id))


def find_gaps(
    events: Sequence[Mapping[str, Any]],
    recordings: Sequence[RecordingLike],
    episode_start_ms: int | None,
    episode_end_ms: int | None,
    report_manual_stops: bool = False,
) -> list[Gap]:
    """The items to explain for one episode (bounds inclusive; None: unbounded).

    Never raises on malformed input: an event or recording missing what a rule needs is
    skipped. Sorted by (start_ms, kind, recording_id, reason, detail); no two items share
    the register's key (kind, start_ms, recording_id), and an event and its recording's
    INTERRUPTED flag give one item.
    """
    evs = _parse_events(events)
    recs = _parse_recordings(recordings)
    by_id = {r.id: r for r in recs}

    def inside(t: int) -> bool:
        return (episode_start_ms is None or t >= episode_start_ms) and (
            episode_end_ms is None or t <= episode_end_ms
        )

    # Every moment recording (re)started, from the log and from the recording list.
    restarts = sorted(
        {(e.time_ms, e.recording_id or "") for e in evs if e.kind is EventKind.RECORD_START}
        | {(r.start_ms, r.id) for r in recs if r.start_ms is not None}
    )

    def next_restart(t: int, own: str | None) -> int | None:
        i = bisect.bisect_left(restarts, (t, ""))
        for when, rid in restarts[i:]:
            if not own or rid != own:
                return when
        return None

    def gap_end(t: int, own: str | None) -> int | None:
        r = next_restart(t, own)
        if r is None or (episode_end_ms is not None and r > episode_end_ms):
            return episode_end_ms
        return r

    found: dict[tuple[str, Any], Gap] = {}
    cut: set[str] = set()  # recordings with an interruption item
    cut_at: set[int] = set()  # times of interruptions logged without a recording id
    cut_ends: set[int] = set()  # start times of every interruption item
    manual: list[_Event] = []
    fault_details: dict[tuple[str, Any], list[str]] = {}
    for e in evs:
        if not inside(e.time_ms):
            continue
        rid = e.recording_id
        if e.kind is EventKind.FAULT:
            key: tuple[str, Any] = (FAULT, (e.time_ms, rid or ""))
            details = fault_details.setdefault(key, [])
            detail = e.detail or "the recorder logged a fault"
            if detail not in details:  # faults in one millisecond: one item, every detail
                details.append(detail)
                found[key] = Gap(FAULT, FAULT, e.time_ms, e.time_ms, rid, "; ".join(details))
            continue
        if e.kind not in (EventKind.INTERRUPTED, EventKind.RECORD_STOP):
            continue
        reason = e.reason
        if reason is None and rid in by_id:
            reason = by_id[rid].stop_reason
        if e.kind is EventKind.RECORD_STOP and reason == StopReason.MANUAL:
            manual.append(e)
            continue
        key = (INTERRUPTED, rid) if rid else (INTERRUPTED, ("@", e.time_ms))
        if key in found:
            continue
        if rid:
            cut.add(rid)
        else:
            cut_at.add(e.time_ms)
        cut_ends.add(e.time_ms)
        name = _reason_name(reason)
        what = "interrupted" if e.kind is EventKind.INTERRUPTED else "stopped"
        detail = e.detail or f"the recorder logged recording {what} ({name})"
        found[key] = Gap(INTERRUPTED, name, e.time_ms, gap_end(e.time_ms, rid), rid, detail)

    for r in recs:
        flagged = bool(r.flags & RecordingFlag.INTERRUPTED)
        not_manual = r.stop_reason is not None and r.stop_reason != StopReason.MANUAL
        if not (flagged or not_manual) or not inside(r.end_ms):
            continue
        if r.id in cut or r.end_ms in cut_at:
            continue
        cut.add(r.id)
        cut_ends.add(r.end_ms)
        detail = "the recording list says it was cut short; the event log has no entry for it"
        found[(INTERRUPTED, r.id)] = Gap(
            INTERRUPTED,
            _reason_name(r.stop_reason),
            r.end_ms,
            gap_end(r.end_ms, r.id),
            r.id,
            detail,
        )

    for e in manual if report_manual_stops else []:
        rid = e.recording_id
        if rid in cut or (not rid and e.time_ms in cut_ends):
            continue  # the recording says it was cut: that item covers it
        restart = next_restart(e.time_ms, rid)
        if restart is None or not inside(restart):
            continue  # the end of the last action of the episode
        key = (MANUAL_STOP, rid) if rid else (MANUAL_STOP, ("@", e.time_ms))
        if key not in found:
            detail = f"stopped by hand and restarted {(restart - e.time_ms) / 1000:g} s later"
            found[key] = Gap(MANUAL_STOP, "manual", e.time_ms, restart, rid, detail)

    # Different rows of ``found`` may still share the register's key: keep the first.
    out: dict[tuple[str, int, str], Gap] = {}
    for g in sorted(found.values(), key=_sort_key):
        out.setdefault((g.kind, g.start_ms, g.recording_id or ""), g)
    return list(out.values())


def file_gaps(
    recordings: Sequence[RecordingLike],
    episode_start_ms: int,
    episode_end_ms: int | None,
    min_gap_ms: int,
) -> list[Gap]:
    """Pauses between consecutive files of a recorder that logs no events and states no
    stop reason (a mass-storage camera): from the end of one file to the start of the
    next, both inside the episode, when longer than ``min_gap_ms``. Its reason is
    ``other``: the camera cannot say whether it was stopped by hand or interrupted."""
    parsed = [r for r in _parse_recordings(recordings) if r.start_ms is not None]
    timed = sorted((r.start_ms or 0, r.id, r.end_ms) for r in parsed)
    out: list[Gap] = []
    for (_, rid, end_ms), (next_start, _, _) in itertools.pairwise(timed):
        late = episode_end_ms is not None and next_start > episode_end_ms
        if end_ms < episode_start_ms or late:
            continue
        pause = next_start - end_ms
        if pause > min_gap_ms:
            detail = (
                f"no footage for {pause / 1000:g} s between two files; the camera logs no "
                "events, so whether it was stopped or interrupted is not known"
            )
            out.append(Gap(INTERRUPTED, "other", end_ms, next_start, rid, detail))
    return out[:1000]  # bounded: a camera cannot open more items than this per episode


def _sort_key(g: Gap) -> tuple[int, str, str, str, str]:
    return (g.start_ms, g.kind, g.recording_id or "", g.reason, g.detail)
