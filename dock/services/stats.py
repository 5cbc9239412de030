"""Statistics as data (REQUIREMENTS §9: usage per officer and unit, gaps, late offloads,
failed checks; §2: recorders per officer): what the statistics page, its CSV exports and
``/api/v1/stats/...`` show, computed once here so the three cannot disagree.

Every table is over one period, chosen as local dates in the dock's zone (``from`` and
``to`` inclusive), at most :data:`MAX_DAYS` long, and grouped per officer or per unit.
The reads are :class:`~dock.storage.stats_tables.StatsReader`'s (read-only, bounded);
the offload deadline is :func:`dock.evidence.deadlines.episode_deadline`, applied with the
same rule as the dock's own deadline report, so a return late here is late there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dock.domain.fleet import ratio_verdict
from dock.domain.policy import Policy
from dock.evidence.deadlines import episode_deadline
from dock.services.errors import RequestError
from dock.storage.stats_tables import CARRYING_ROLES, StatsReader, StatsUnavailable

#: The longest period one request may ask for (a year and a bit: a leap year, a margin).
MAX_DAYS = 400
#: The period shown when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30

GROUPINGS = ("officer", "unit")
TABLES = ("checkouts", "refusals", "late_offloads", "gaps", "recorders")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

#: Count columns of each table grouped per officer or unit (the key columns come first).
COUNTS: dict[str, tuple[str, ...]] = {
    "checkouts": ("checkouts", "refused", "overrides"),
    "refusals": ("reason", "count"),
    "late_offloads": ("returns", "on_time", "late", "overdue", "pending"),
    "gaps": ("opened", "open", "closed", "accounted"),
}
RECORDER_COLUMNS = ("scope", "unit", "officers", "recorders", "per_officer", "minimum", "meets")


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC seconds, from local dates ``first`` to ``last`` inclusive."""

    first: date
    last: date
    zone: str
    start: float
    end: float

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "zone": self.zone}


def _day(text: str, what: str) -> date:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise RequestError(f"{what} must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise RequestError(f"{what} is not a date: {text}") from exc


def period(first: str | None, last: str | None, tz: str, now: float) -> Period:
    """The period from the two dates asked for (either may be left out: the last
    :data:`DEFAULT_DAYS` days up to today). Refused: a bad date, ``to`` before ``from``,
    more than :data:`MAX_DAYS` days."""
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(now, zone).date()
    end_day = _day(last, "to") if last else today
    start_day = _day(first, "from") if first else end_day - timedelta(days=DEFAULT_DAYS - 1)
    if end_day < start_day:
        raise RequestError("to is before from")
    if (end_day - start_day).days + 1 > MAX_DAYS:
        raise RequestError(f"a period is at most {MAX_DAYS} days")
    if start_day.year < 2000 or end_day.year > 9000:
        raise RequestError("the period is outside the years 2000 to 9000")

    def midnight(d: date) -> float:
        return datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()

    return Period(start_day, end_day, tz, midnight(start_day), midnight(end_day + timedelta(1)))


def grouping(by: str | None) -> str:
    if by in (None, ""):
        return "officer"
    if by not in GROUPINGS:
        raise RequestError(f"by must be one of {', '.join(GROUPINGS)}")
    return str(by)


@dataclass(frozen=True)
class Table:
    """One table: its columns in order, its rows (dicts over those columns), and whether
    a row cap cut it short (the page says so: a number from a cut table is a minimum)."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "columns": list(self.columns),
            "rows": self.rows,
            "truncated": self.truncated,
        }


class _People:
    """Officer number -> (name, unit); an actor not on record is nobody (None)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._by_id = {str(r["officer_id"]): r for r in rows}

    def key(self, officer_id: str | None, by: str) -> tuple[Any, ...]:
        row = self._by_id.get(str(officer_id)) if officer_id is not None else None
        unit = None if row is None else str(row["unit"])
        if by == "unit":
            return (unit,)
        if row is None:
            return (unit, None, None)
        return (unit, str(row["officer_id"]), str(row["name"]))

    def carrying_per_unit(self) -> dict[str, int]:
        """Enabled officers and supervisors (who carry recorders) per unit."""
        counts: dict[str, int] = {}
        for person in self._by_id.values():
            if not person["disabled"] and person["role"] in CARRYING_ROLES:
                counts[str(person["unit"])] = counts.get(str(person["unit"]), 0) + 1
        return counts


def _keys(by: str) -> tuple[str, ...]:
    return ("unit",) if by == "unit" else ("unit", "officer", "name")


def _sort_key(row: Mapping[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple((row[c] is None, "" if row[c] is None else str(row[c])) for c in columns)


def _sum_by_key(
    name: str,
    by: str,
    people: _People,
    source: list[dict[str, Any]],
    counts: tuple[str, ...],
    truncated: bool,
) -> Table:
    keys = _keys(by)
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in source:
        k = people.key(r.get("officer_id"), by)
        row = totals.setdefault(k, {**dict(zip(keys, k, strict=True)), **dict.fromkeys(counts, 0)})
        for c in counts:
            row[c] += int(r.get(c) or 0)
    rows = sorted(totals.values(), key=lambda r: _sort_key(r, keys))
    return Table(name, keys + counts, rows, truncated)


class Statistics:
    """The five tables for one period and grouping, read once from one snapshot."""

    def __init__(
        self,
        reader: StatsReader,
        policy: Policy,
        tz: str,
        now: float,
        span: Period,
        by: str,
    ) -> None:
        self.reader, self.policy, self.tz, self.now = reader, policy, tz, now
        self.period, self.by = span, by
        officers, cut = reader.officers()
        self.people = _People(officers)
        self.people_truncated = cut

    def table(self, name: str) -> Table:
        """One table by name (one of :data:`TABLES`)."""
        builders: dict[str, Callable[[], Table]] = {
            "checkouts": self.checkouts,
            "refusals": self.refusals,
            "late_offloads": self.late_offloads,
            "gaps": self.gaps,
            "recorders": self.recorders,
        }
        if name not in builders:
            raise RequestError(f"no statistics table {name!r}")
        return builders[name]()

    def checkouts(self) -> Table:
        p = self.period
        rows, cut = self.reader.checkouts(p.start, p.end)
        refused, cut2 = self.reader.refusals(p.start, p.end)
        per_actor = [
            {"officer_id": r["actor"], "refused": r["refusals"]}
            for r in refused
            if r["reason"] is None
        ]
        both = [dict(r) for r in rows] + per_actor
        counts = COUNTS["checkouts"]
        return _sum_by_key("checkouts", self.by, self.people, both, counts, cut or cut2)

    def refusals(self) -> Table:
        """Refused check-outs by reason: a refusal with two reasons counts once under each."""
        p = self.period
        found, cut = self.reader.refusals(p.start, p.end)
        keys = _keys(self.by)
        totals: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in found:
            if r["reason"] is None:
                continue
            k = (*self.people.key(r["actor"], self.by), str(r["reason"]))
            row = totals.setdefault(
                k, {**dict(zip(keys, k[:-1], strict=True)), "reason": k[-1], "count": 0}
            )
            row["count"] += int(r["refusals"])
        columns = (*keys, "reason", "count")
        rows = sorted(totals.values(), key=lambda r: _sort_key(r, columns))
        return Table("refusals", columns, rows, cut)

    def late_offloads(self) -> Table:
        """Returns in the period against their offload deadline (the rule of
        :func:`dock.evidence.deadlines.deadline_report`, from the moment the policy's
        ``offload_deadline_from`` names): offloaded by the deadline
        (``on_time``), after it (``late``), not yet and past it (``overdue``), not yet and
        still in time (``pending``)."""
        p = self.period
        found, cut = self.reader.returns(p.start, p.end, self.now)
        states: list[dict[str, Any]] = []
        for r in found:
            in_at = float(r["in_at"])
            offloaded = r["offloaded_at"]
            nxt = r["next_out_at"]
            # Its next check-out (by now, no override) passed footage_pending: nothing left.
            passed = nxt is not None and float(nxt) <= self.now and r["next_override_by"] is None
            nothing_pending = offloaded is None and passed
            if nothing_pending:
                offloaded = in_at
            ends = (
                ()
                if r["offloaded_at"] is None
                else (r["first_end_ms"] / 1000.0, r["last_end_ms"] / 1000.0)
            )
            found_deadline = episode_deadline(
                self.policy, self.tz, self.now, out_at=float(r["out_at"]), in_at=in_at,
                recording_ends=ends, offloaded_at=None if offloaded is None else float(offloaded),
                nothing_pending=nothing_pending,
            )  # fmt: skip
            state = "pending" if found_deadline is None else found_deadline.status.state
            column = {"done": "on_time", "done_late": "late", "overdue": "overdue"}
            states.append(
                {"officer_id": r["officer_id"], "returns": 1, column.get(state, "pending"): 1}
            )
        counts = COUNTS["late_offloads"]
        return _sum_by_key("late_offloads", self.by, self.people, states, counts, cut)

    def gaps(self) -> Table:
        p = self.period
        rows, cut = self.reader.gaps(p.start, p.end)
        return _sum_by_key("gaps", self.by, self.people, rows, COUNTS["gaps"], cut)

    def recorders(self) -> Table:
        """The dock's recorders per officer now, and per unit the recorders its people
        used in the period per officer of the unit, against the policy's minimum."""
        p, minimum = self.period, float(self.policy.min_recorders_per_officer)
        fleet = self.reader.fleet()
        used, cut = self.reader.recorders_used(p.start, p.end)
        officers = self.people.carrying_per_unit()
        by_unit = {str(r["unit"]): int(r["recorders"]) for r in used}

        def row(scope: str, unit: str | None, people: int, recorders: int) -> dict[str, Any]:
            # the one rule of dock status (001 art.18): unrounded, at the minimum is met
            verdict = ratio_verdict(recorders, people, minimum)
            per, short = verdict["recorders_per_officer"], verdict["shortfall"]
            meets = None if short is None else not short
            return {
                "scope": scope, "unit": unit, "officers": people, "recorders": recorders,
                "per_officer": per, "minimum": minimum, "meets": meets,
            }  # fmt: skip

        rows = [row("dock", None, fleet["officers"], fleet["recorders"])]
        for unit in sorted(set(officers) | set(by_unit)):
            rows.append(row("unit", unit, officers.get(unit, 0), by_unit.get(unit, 0)))
        return Table("recorders", RECORDER_COLUMNS, rows, cut or self.people_truncated)


def statistics(
    dock_db: str,
    audit_db: str,
    policy: Policy,
    tz: str,
    now: float,
    *,
    first: str | None = None,
    last: str | None = None,
    by: str | None = None,
    tables: tuple[str, ...] = TABLES,
) -> dict[str, Any]:
    """The tables asked for, JSON-ready: ``period``, ``by``, ``tables`` (name -> table).
    Raises RequestError for a bad period or grouping, StatsUnavailable when a database
    cannot be read."""
    span, how = period(first, last, tz, now), grouping(by)
    for name in tables:
        if name not in TABLES:
            raise RequestError(f"no statistics table {name!r}")
    with StatsReader(dock_db, audit_db) as reader:
        stats = Statistics(reader, policy, tz, now, span, how)
        out = {name: stats.table(name).as_dict() for name in tables}
    return {"period": span.as_dict(), "by": how, "tables": out}


__all__ = [
    "COUNTS",
    "DEFAULT_DAYS",
    "GROUPINGS",
    "MAX_DAYS",
    "TABLES",
    "Period",
    "Statistics",
    "StatsUnavailable",
    "Table",
    "grouping",
    "period",
    "statistics",
]
