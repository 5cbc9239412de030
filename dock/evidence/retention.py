"""Whether a recording may be purged: retention minimums, case files and holds.

REQUIREMENTS.md §6: nothing is purged before its retention ends or while a hold is on it
(000 §14.3-14.4; 001 art.20; 003 art.15; 004 att.1 art.5). This module only decides; the
store purges and records the purge. It reads no clock and touches no storage, so every
branch is a row of the table in tests/test_retention.py.

Any doubt keeps. Data that is missing or contradicts itself (a hold without ``placed_at``,
``now`` before the recording started, a naive datetime, a release without a reason) gives
``keep=True`` with a reason starting ``invalid:`` that says what is wrong -- never an
exception and never a purge, because a purge cannot be undone and a wrong keep can.

Times are aware datetimes or UTC seconds since the epoch (the store's REAL columns).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dock.domain.hold_kinds import HoldKind

#: An aware datetime, or UTC seconds since the epoch.
Instant = datetime | float

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Hold:
    """A hold on one recording. Permanent unless ``until`` is set (the regulations say
    "long-term / permanently"); it ends early only by a release with a reason."""

    kind: HoldKind
    #: Case, complaint or petition number the hold refers to.
    reference: str
    placed_at: Instant | None
    placed_by: str
    released_at: Instant | None = None
    release_reason: str | None = None
    until: Instant | None = None
    #: What the hold was placed on when not on this recording alone ("case C-1",
    #: "officer 1001 ...", "episode 12"): named in the reason, decides nothing.
    scope: str = ""


@dataclass(frozen=True)
class RetentionClass:
    """Standard footage keeps the policy's minimum; a named class (a unit's own rule, e.g.
    traffic accidents) keeps its own minimum. A class can only lengthen retention: the
    policy's number is the regulation's floor."""

    name: str = "standard"
    #: None: the policy's ``retention_days``.
    minimum_days: int | None = None

    def days(self, policy_days: int) -> int:
        if self.minimum_days is None:
            return policy_days
        return max(policy_days, self.minimum_days)


STANDARD = RetentionClass()


@dataclass(frozen=True)
class Decision:
    """``purge_after``: the instant from which purging is (or will be, if nothing changes)
    allowed; None when that cannot be foreseen (open case, permanent hold, invalid data)."""

    keep: bool
    reason: str
    purge_after: datetime | None


def decide(
    recording_start: Instant,
    retention_days: int,
    holds: Iterable[Hold],
    now: Instant,
    *,
    case_closed_at: Instant | None = None,
    case_retention_days: int | None = None,
    retention_class: RetentionClass = STANDARD,
) -> Decision:
    """Keep or purge one recording at ``now``.

    Keep while its retention runs: ``retention_days`` (or its class's longer minimum) from
    the recording's start. Footage used as evidence is kept as long as its case file
    (000 §14.3; 003 art.15): pass ``case_retention_days``; while ``case_closed_at`` is None
    the case is open and the footage is kept indefinitely, afterwards until
    ``case_closed_at + case_retention_days`` (a permanent case file is a permanent
    ``evidence_case`` hold instead). Keep while any hold is active: placed, not released,
    ``until`` not reached. Otherwise purging is allowed.

    Reasons start with a code: ``invalid:``, ``case_open:``, ``hold:``, ``retention:``,
    ``case_retention:`` (keep) or ``purge:``; several keep reasons are joined by "; ".
    """
    start = _utc(recording_start)
    at = _utc(now)
    if start is None:
        return _invalid("recording_start is missing or not an aware time")
    if at is None:
        return _invalid("now is missing or not an aware time")
    if at < start:
        return _invalid(f"now {_iso(at)} is before the recording started {_iso(start)}")
    policy_days = _days(retention_days)
    if policy_days is None:
        return _invalid(f"retention_days {retention_days!r} is not a whole number >= 0")
    if retention_class.minimum_days is not None and _days(retention_class.minimum_days) is None:
        return _invalid(f"retention class {retention_class.name!r} has a bad minimum")

    problems: list[str] = []
    # (reason, end); end None = no foreseeable end.
    keeps: list[tuple[str, datetime | None]] = []
    ended: list[datetime] = []

    days = retention_class.days(policy_days)
    end = _plus_days(start, days)
    label = "" if retention_class == STANDARD else f" ({retention_class.name})"
    if end is None:
        keeps.append((f"retention: {days} days{label} reach beyond the calendar", None))
    elif at < end:
        keeps.append((f"retention: {days} days{label} run until {_iso(end)}", end))
    else:
        ended.append(end)

    _case(start, at, case_closed_at, case_retention_days, problems, keeps, ended)
    for hold in holds:
        _hold(hold, at, problems, keeps, ended)

    if problems:
        return _invalid("; ".join(problems))
    if keeps:
        endless = [reason for reason, until in keeps if until is None]
        if endless:
            return Decision(True, "; ".join(endless + [r for r, u in keeps if u]), None)
        # The binding (latest-ending) reason first.
        keeps.sort(key=lambda k: k[1] or at, reverse=True)
        return Decision(True, "; ".join(r for r, _ in keeps), keeps[0][1])
    allowed = max(ended)
    return Decision(False, f"purge: retention ended, no active hold since {_iso(allowed)}", allowed)


def _case(
    start: datetime,
    at: datetime,
    closed_at: Instant | None,
    case_days: int | None,
    problems: list[str],
    keeps: list[tuple[str, datetime | None]],
    ended: list[datetime],
) -> None:
    """Footage used as evidence follows its case file's retention."""
    if closed_at is None and case_days is None:
        return
    if case_days is None:
        problems.append("case closed but its case file's retention is unknown")
        return
    days = _days(case_days)
    if days is None:
        problems.append(f"case_retention_days {case_days!r} is not a whole number >= 0")
        return
    if closed_at is None:
        keeps.append(("case_open: evidence in an open case", None))
        return
    closed = _utc(closed_at)
    if closed is None:
        problems.append("case_closed_at is not an aware time")
    elif closed > at:
        problems.append(f"case closed in the future ({_iso(closed)})")
    elif closed < start:
        problems.append(f"case closed ({_iso(closed)}) before the recording started")
    else:
        end = _plus_days(closed, days)
        if end is None:
            keeps.append((f"case_retention: {days} days reach beyond the calendar", None))
        elif at < end:
            keeps.append((f"case_retention: case file kept until {_iso(end)}", end))
        else:
            ended.append(end)


def _hold(
    hold: Hold,
    at: datetime,
    problems: list[str],
    keeps: list[tuple[str, datetime | None]],
    ended: list[datetime],
) -> None:
    """One hold: a problem, an active keep, or an end (release or expiry) in the past."""
    try:
        kind = HoldKind(hold.kind)
    except ValueError:
        problems.append(f"hold of unknown kind {hold.kind!r}")
        return
    name = f"{kind.value} {hold.reference!r}" + (f" on {hold.scope}" if hold.scope else "")
    if not hold.reference or not hold.placed_by:
        problems.append(f"hold {name} lacks a reference or who placed it")
        return
    placed = _utc(hold.placed_at)
    if placed is None:
        problems.append(f"hold {name} has no valid placed_at")
        return
    if placed > at:
        problems.append(f"hold {name} placed in the future ({_iso(placed)})")
        return
    until = None
    if hold.until is not None:
        until = _utc(hold.until)
        if until is None:
            problems.append(f"hold {name} has an invalid until")
            return
        if until <= placed:
            problems.append(f"hold {name} ends ({_iso(until)}) before it was placed")
            return
    if hold.released_at is not None:
        released = _utc(hold.released_at)
        if released is None:
            problems.append(f"hold {name} has an invalid released_at")
        elif released < placed:
            problems.append(f"hold {name} released before it was placed")
        elif released > at:
            problems.append(f"hold {name} released in the future ({_iso(released)})")
        elif not hold.release_reason:
            problems.append(f"hold {name} released without a reason")
        else:
            ended.append(released)
        return
    if hold.release_reason:
        problems.append(f"hold {name} has a release reason but no released_at")
        return
    if until is None:
        keeps.append((f"hold: {name} placed by {hold.placed_by}, permanent", None))
    elif at < until:
        keeps.append((f"hold: {name} placed by {hold.placed_by}, until {_iso(until)}", until))
    else:
        ended.append(until)


def _invalid(why: str) -> Decision:
    return Decision(True, f"invalid: {why}", None)


def _utc(t: object) -> datetime | None:
    """An aware datetime or epoch seconds as aware UTC; None for anything else."""
    if isinstance(t, datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            return None
        return t.astimezone(UTC)
    if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
        try:
            return _EPOCH + timedelta(seconds=t)
        except OverflowError:
            return None
    return None


def _days(n: object) -> int | None:
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    return None


def _plus_days(t: datetime, days: int) -> datetime | None:
    """None past the end of the calendar: effectively permanent."""
    try:
        return t + timedelta(days=days)
    except OverflowError:
        return None


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


__all__ = [
    "STANDARD",
    "Decision",
    "Hold",
    "HoldKind",
    "Instant",
    "RetentionClass",
    "decide",
]
