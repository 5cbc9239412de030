"""When a recorder's footage must be offloaded, and how close that deadline is.

REQUIREMENTS.md §4: footage must reach the unit's storage within 24 h of the recording
being made (002 art.23), 24 h of the return to the unit (003 art.13), one working day
after the enforcement activity ended (001 art.19(3)) or 2 days after the recording was
made (004 att.1 art.5, att.3 art.13; the ``jingzhou`` preset ships it as 48 h); the
policy's ``offload_deadline_from`` says which moment (:func:`clock_start`). A recorder
its officer keeps for days is late before it is docked, and the dock alerts when a
deadline is at risk. The rules (:func:`offload_deadline`, :func:`deadline_status`,
:func:`episode_deadline`) are pure: the caller passes every time in, so they are
table-tested without a clock. :func:`deadline_report` applies them to the custody
episodes in the dock's database, the recorders still away included.

Times are aware datetimes or UTC seconds since the epoch; every datetime returned is aware
UTC. Bad input (a naive datetime, a nonsensical policy) raises ValueError: a deadline
computed from it would be wrong, and a wrong deadline silently hides an overdue offload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dock.devices.clock import local_display, utc_iso
from dock.domain.policy import DEADLINE_STARTS, Policy
from dock.storage.store import Custody, Store

#: An aware datetime, or UTC seconds since the epoch.
Instant = datetime | float
State = Literal["done", "done_late", "on_time", "at_risk", "overdue"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_DATES: frozenset[date] = frozenset()


@dataclass(frozen=True)
class DeadlineState:
    """``remaining``: for an offload still to do, the time left until the deadline from
    ``now`` (negative once overdue); for a finished one, the margin it was done with
    (``deadline - offloaded_at``, negative when late)."""

    state: State
    deadline: datetime
    remaining: timedelta


def offload_deadline(
    returned_at: Instant,
    policy: Policy,
    tz: str | tzinfo,
    holidays: frozenset[date] = _NO_DATES,
    *,
    makeup_workdays: frozenset[date] = _NO_DATES,
) -> datetime:
    """The instant (aware UTC) by which footage of a recorder returned at ``returned_at``
    must be offloaded; an offload at exactly this instant is on time.

    Hours (``policy.offload_deadline_hours``, used when ``offload_deadline_working_days``
    is None): elapsed time, ``returned_at + hours``. The zone does not matter and a DST
    change does not stretch or shrink it: "within 24 hours" is 24 real hours.

    Working days (``policy.offload_deadline_working_days`` = N), after 001 art.19(3)
    (REQUIREMENTS.md §4: "在执法活动结束后一个工作日内" -- within one working day after
    the activity ends). The rule, exactly:

    1. Take the calendar date of the return in the dock's zone ``tz`` (local, not UTC:
       a return at 07:30 in Shanghai is that local day even though UTC still shows the
       day before).
    2. The day of return never counts, whatever the hour ("after" the activity; the
       usual Chinese rule for periods counted in days, where the first day is not
       counted -- Civil Code art.201).
    3. Count forward N working days: Monday to Friday, minus ``holidays``, plus
       ``makeup_workdays`` (weekend days worked in exchange for a holiday, 调休). The dock
       does not know public holidays; the caller passes them, as local dates.
    4. The deadline is the end of the Nth working day, i.e. local 00:00 at the start of
       the next calendar day (the last day ends at 24:00 -- Civil Code art.203),
       converted to UTC. Where a DST change makes local midnight not exist, that day
       starts at the first instant after the jump; where midnight occurs twice, at the
       first occurrence (the previous day does not recur).

    So a return on Friday evening is due by the end of Monday, and a return at 23:59 on
    Monday by the end of Tuesday, just like a return at 00:01 on Monday.
    """
    start = _utc(returned_at, "returned_at")
    zone = _zone(tz)
    days = policy.offload_deadline_working_days
    if days is None:
        hours = policy.offload_deadline_hours
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise ValueError(f"offload_deadline_hours {hours!r} is not a number")
        if not math.isfinite(hours) or hours <= 0:
            raise ValueError(f"offload_deadline_hours {hours!r} must be finite and > 0")
        return start + timedelta(hours=hours)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"offload_deadline_working_days {days!r} must be a whole number >= 1")
    if holidays & makeup_workdays:
        raise ValueError(
            f"dates both holiday and working day: {sorted(holidays & makeup_workdays)}"
        )
    day = start.astimezone(zone).date()
    while days:
        day += timedelta(days=1)
        if _working(day, holidays, makeup_workdays):
            days -= 1
    # fold=0: for a midnight that does not exist zoneinfo uses the offset before the jump,
    # which lands on the jump itself; for a repeated midnight it is the first occurrence.
    next_day = day + timedelta(days=1)
    return datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone).astimezone(UTC)


def deadline_status(
    returned_at: Instant,
    offloaded_at: Instant | None,
    now: Instant,
    policy: Policy,
    tz: str | tzinfo,
    at_risk_fraction: float = 0.75,
    *,
    holidays: frozenset[date] = _NO_DATES,
    makeup_workdays: frozenset[date] = _NO_DATES,
) -> DeadlineState:
    """Where one returned recorder stands against its offload deadline, for the alert.

    Offloaded: ``done`` when at or before the deadline, else ``done_late`` (``now`` is not
    looked at). Not offloaded: ``overdue`` once ``now`` is past the deadline; ``at_risk``
    once ``at_risk_fraction`` of the time from return to deadline has elapsed (real time,
    so a Friday-evening return under the working-day rule turns at risk on Monday
    morning); ``on_time`` before that.
    """
    if isinstance(at_risk_fraction, bool) or not 0 < at_risk_fraction <= 1:
        raise ValueError(f"at_risk_fraction {at_risk_fraction!r} must be in (0, 1]")
    start = _utc(returned_at, "returned_at")
    at = _utc(now, "now")
    deadline = offload_deadline(start, policy, tz, holidays, makeup_workdays=makeup_workdays)
    if offloaded_at is not None:
        done = _utc(offloaded_at, "offloaded_at")
        margin = deadline - done
        return DeadlineState("done" if done <= deadline else "done_late", deadline, margin)
    remaining = deadline - at
    if at > deadline:
        return DeadlineState("overdue", deadline, remaining)
    if at - start >= (deadline - start) * at_risk_fraction:
        return DeadlineState("at_risk", deadline, remaining)
    return DeadlineState("on_time", deadline, remaining)


@dataclass(frozen=True)
class EpisodeDeadline:
    """One custody episode against its offload deadline: ``status`` as
    :func:`deadline_status` says it, and ``started`` (aware UTC), the moment the
    deadline ran from."""

    status: DeadlineState
    started: datetime


def clock_start(
    start_from: str,
    out_at: Instant,
    in_at: Instant | None,
    recording_ends: Sequence[Instant] = (),
) -> datetime | None:
    """The moment a custody episode's offload deadline runs from (aware UTC), after
    ``policy.offload_deadline_from`` (``start_from``); None: no deadline runs yet.

    - ``"recording"`` (002 art.23; 004 att.1 art.5, att.3 art.13: "after the recording
      was made"): the end of the episode's first recording. Footage of one episode is
      offloaded together, so the first recording's deadline binds the episode.
    - ``"activity_end"`` (001 art.19(3): "after the enforcement activity ended"): the end
      of the episode's last recording, the dock's best knowledge of when the officer's
      last activity of the episode ended (recording runs from arrival to departure,
      002 art.19; 003 art.9). Not the return: the officer may take hours to come back.
    - ``"return"`` (003 art.13: "after returning to the unit"): the return (``in_at``);
      None while the recorder is away.

    ``recording_ends``: when the episode's recordings ended, as far as the dock knows
    them (from the archive once offloaded). While the recorder is away, or docked but
    not yet offloaded, the dock does not know them: the earliest moment a recording of
    the episode could have been made, the check-out (``out_at``), is the conservative
    start. A recording's time is taken as the recorder's clock gave it, but kept within
    the episode (from the check-out to the return): a recorder's clock gone wrong cannot
    move a deadline before the officer had the recorder, or after it came back (the
    recording outside its episode is flagged elsewhere).
    """
    if start_from not in DEADLINE_STARTS:
        raise ValueError(f"offload_deadline_from {start_from!r} is not one of {DEADLINE_STARTS}")
    out = _utc(out_at, "out_at")
    back = None if in_at is None else _utc(in_at, "in_at")
    if back is not None and back < out:
        raise ValueError("in_at is before out_at")
    if start_from == "return":
        return back
    ends = [_utc(t, "recording end") for t in recording_ends]
    if not ends:
        return out
    end = min(ends) if start_from == "recording" else max(ends)
    end = max(end, out)
    return end if back is None else min(end, back)


def episode_deadline(
    policy: Policy,
    tz: str | tzinfo,
    now: Instant,
    *,
    out_at: Instant,
    in_at: Instant | None,
    recording_ends: Sequence[Instant] = (),
    offloaded_at: Instant | None = None,
    nothing_pending: bool = False,
    at_risk_fraction: float = 0.75,
    holidays: frozenset[date] = _NO_DATES,
    makeup_workdays: frozenset[date] = _NO_DATES,
) -> EpisodeDeadline | None:
    """Where one custody episode stands against its offload deadline (None: no deadline
    runs yet, a recorder away under ``offload_deadline_from = "return"``).

    The deadline runs from :func:`clock_start`; the state is :func:`deadline_status`'s,
    with one exception: ``nothing_pending`` (the recorder came back with nothing to
    offload, so ``offloaded_at`` is its return) is ``done`` whatever the deadline, since
    no footage was late; its margin is then not below zero. A recorder still away
    (``in_at`` None) is never done: it turns ``at_risk`` and ``overdue`` from the check-out,
    before it is docked.
    """
    start = clock_start(policy.offload_deadline_from, out_at, in_at, recording_ends)
    if start is None:
        return None
    done = None if in_at is None else offloaded_at
    ds = deadline_status(
        start, done, now, policy, tz, at_risk_fraction,
        holidays=holidays, makeup_workdays=makeup_workdays,
    )  # fmt: skip
    if nothing_pending and ds.state == "done_late":
        ds = DeadlineState("done", ds.deadline, timedelta(0))
    return EpisodeDeadline(ds, start)


def _working(day: date, holidays: frozenset[date], makeup: frozenset[date]) -> bool:
    if day in makeup:
        return True
    return day.weekday() < 5 and day not in holidays


def _zone(tz: str | tzinfo) -> tzinfo:
    """Raises zoneinfo.ZoneInfoNotFoundError (a KeyError) for an unknown name."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _utc(t: Instant, what: str) -> datetime:
    if isinstance(t, datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"{what} is a naive datetime; pass an aware one or epoch seconds")
        return t.astimezone(UTC)
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"{what} {t!r} is neither an aware datetime nor epoch seconds")
    return _EPOCH + timedelta(seconds=t)


# --------------------------------------------------------------------------- the report
# The rules above are pure; the report below feeds them from the dock's database.


def deadline_report(store: Store, policy: Policy, tz: str, now: Instant) -> list[dict[str, Any]]:
    """Every custody episode against its offload deadline, the recorders still away
    included (``away``: true), by the moment each deadline started, oldest first.

    When an episode counts as offloaded (the store knows archive rows, not which footage
    was on the recorder at its return), the rule is:

    1. ``offloaded_at`` = the latest ``archived_at`` of the serial's archive rows archived
       at or after the return (``in_at``), up to ``now`` and before the serial's next
       check-out (later rows belong to a later episode) -- basis ``archive``; those rows'
       recording times start the deadline where it runs from the recordings
       (:func:`clock_start`);
    2. else, when the serial's next check-out happened (by ``now``) without a supervisor
       override, it passed the ``footage_pending`` check, so nothing of this episode was
       left to offload: done at its return -- basis ``nothing_pending``;
    3. else not offloaded (``offloaded_at`` None): ``on_time``, ``at_risk`` or ``overdue``,
       from the check-out while the recordings' times are not known (away, or docked and
       not yet offloaded).

    An episode away under ``offload_deadline_from = "return"`` has no deadline yet and
    is not listed (a recorder kept past its shift is raised by
    :func:`dock.evidence.shift_returns.not_returned`).

    Limits: an offload that archived only part of the footage counts as an offload
    (the failure shows on the slot and in the audit log); a recorder returned with no
    footage shows as due until its next check-out. Public holidays are not known to the
    dock, so working-day deadlines count Monday to Friday.
    """
    at = epoch_seconds(now)
    episodes = store.custody_episodes()
    by_serial: dict[str, list[Custody]] = {}
    for e in episodes:
        by_serial.setdefault(e.serial, []).append(e)
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for e in episodes:
        if e.out_at > at:
            continue  # not yet checked out at ``now``
        in_at = None if e.in_at is None or e.in_at > at else float(e.in_at)
        basis: str | None = None
        offloaded_at: float | None = None
        ends: tuple[float, ...] = ()
        if in_at is not None:
            later = [n for n in by_serial[e.serial] if n.id != e.id and n.out_at >= in_at]
            nxt = later[0] if later else None
            span = store.archived_span(
                e.serial, in_at, at, None if nxt is None else float(nxt.out_at)
            )
            if span is not None:
                offloaded_at, basis, ends = span[0], "archive", span[1:]
            elif nxt is not None and nxt.out_at <= at and nxt.override_by is None:
                offloaded_at, basis = in_at, "nothing_pending"
        found = episode_deadline(
            policy, tz, at, out_at=float(e.out_at), in_at=in_at, recording_ends=ends,
            offloaded_at=offloaded_at, nothing_pending=basis == "nothing_pending",
        )  # fmt: skip
        if found is None:
            continue
        ds = found.status
        deadline = ds.deadline.timestamp()
        row = {
            "custody_id": e.id,
            "serial": e.serial,
            "officer_id": e.officer_id,
            "away": in_at is None,
            "out_at": utc_iso(e.out_at),
            "returned_at": None if in_at is None else utc_iso(in_at),
            "deadline_from": policy.offload_deadline_from,
            "started_at": utc_iso(found.started.timestamp()),
            "deadline_utc": utc_iso(deadline),
            "deadline_local": local_display(deadline, tz),
            "offloaded_at": None if offloaded_at is None else utc_iso(offloaded_at),
            "offload_basis": basis,
            "state": ds.state,
            "remaining_s": round(ds.remaining.total_seconds(), 3),
        }
        rows.append((found.started.timestamp(), e.id, row))
    rows.sort(key=lambda r: r[:2])
    return [r[2] for r in rows]


def overdue_or_at_risk(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that need someone to act: the alert of REQUIREMENTS.md §4."""
    return [r for r in report if r["state"] in ("overdue", "at_risk")]


def epoch_seconds(t: Instant) -> float:
    """Epoch seconds from an aware datetime or a number; a naive datetime is refused."""
    if isinstance(t, datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("now is a naive datetime; pass an aware one or epoch seconds")
        return t.astimezone(UTC).timestamp()
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"now {t!r} is neither an aware datetime nor epoch seconds")
    return float(t)


__all__ = [
    "DeadlineState",
    "EpisodeDeadline",
    "Instant",
    "State",
    "clock_start",
    "deadline_report",
    "deadline_status",
    "episode_deadline",
    "epoch_seconds",
    "offload_deadline",
    "overdue_or_at_risk",
]
