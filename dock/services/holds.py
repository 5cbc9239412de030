"""Holds: placed on one recording, a case, an officer (optionally a period) or a custody
episode; released by a supervisor. ``dock.evidence.holds.HoldRegister`` writes each
with its audit entry; this picks the scope and reads the dates as the dock's local time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dock.evidence.holds import HoldRecord, HoldRegister
from dock.services.context import DockContext
from dock.services.errors import RequestError


def register(dock: DockContext) -> HoldRegister:
    return HoldRegister(dock.store, dock.audit, dock.clock.now)


def parse_until(text: str, tz: str, flag: str = "--until") -> float:
    """``--until`` (and ``--to``): a date holds through the end of that local day (the
    longer reading); a date-time without a zone is local to the dock; one with a zone is
    taken as given."""
    zone = ZoneInfo(tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1)
            return datetime.combine(day, time(), zone).timestamp()
        t = datetime.fromisoformat(text)
    except ValueError:
        raise RequestError(
            f"{flag} {text!r} is not an ISO date (2027-01-31) or date-time"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return t.timestamp()


def parse_from(text: str, tz: str) -> float:
    """``--from``: a date starts at the beginning of that local day (the longer reading);
    a date-time as for :func:`parse_until`."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise RequestError(f"--from {text!r} is not an ISO date (2027-01-31)") from None
        return datetime.combine(day, time(), ZoneInfo(tz)).timestamp()
    return parse_until(text, tz, "--from")


def place(
    dock: DockContext,
    actor: str,
    kind: str,
    reference: str,
    serial: str | None = None,
    recording: str | None = None,
    case: str | None = None,
    officer: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    episode: int | None = None,
    until: str | None = None,
) -> HoldRecord:
    """One hold, on exactly one of: SERIAL RECORDING, a case, an officer, an episode."""
    scopes = [
        name
        for name, given in (
            ("recording", serial is not None),
            ("case", case is not None),
            ("officer", officer is not None),
            ("episode", episode is not None),
        )
        if given
    ]
    if len(scopes) != 1 or (serial is not None and recording is None):
        raise RequestError(
            "give one of: SERIAL RECORDING, --case CASE, --officer ID [--from D] [--to D], "
            "--episode CUSTODY_ID"
        )
    if (date_from or date_to) and scopes != ["officer"]:
        raise RequestError("--from and --to go with --officer")
    tz = dock.timezone
    end = None if until is None else parse_until(until, tz)
    holds = register(dock)
    common = (kind, reference, actor)
    if case is not None:
        return holds.place_case(case, *common, until=end)
    if officer is not None:
        from_at = None if date_from is None else parse_from(date_from, tz)
        to_at = None if date_to is None else parse_until(date_to, tz, "--to")
        return holds.place_officer(officer, *common, from_at, to_at, end)
    if episode is not None:
        return holds.place_episode(episode, *common, until=end)
    assert serial is not None and recording is not None
    return holds.place(serial, recording, *common, end)


def release(
    dock: DockContext, actor: str, hold_id: int, supervisor: str, pin: str, reason: str
) -> HoldRecord:
    """A supervisor ends a hold with their PIN and a reason (refusals audited too)."""
    return register(dock).release(hold_id, supervisor, pin, reason, by=actor)
