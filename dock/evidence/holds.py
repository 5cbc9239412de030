"""Holds on archived footage, kept in the dock database (REQUIREMENTS.md §6).

``retention.decide`` says whether a recording may go; this module tells it which holds
cover the recording. :class:`HoldRegister` keeps holds: a hold is placed on one
recording, or on a *scope* that covers recordings now and later: a case (every
recording attached to it, also those attached after the hold), an officer (their
recordings, optionally between two times) or a custody episode. A hold is never
deleted or edited, only released, once, by a supervisor with their own PIN and a
reason (the schema's triggers refuse anything else); every change is in the audit log.
Purges are :mod:`.purging`'s, offload deadlines :mod:`.deadlines`'.

Over 400 lines on purpose: placing a hold, what each scope covers (now and later) and
releasing it are one register, read together to trust that no held recording is purged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.hold_kinds import parse_kind
from dock.evidence.purge_records import purge_state
from dock.evidence.retention import Hold, HoldKind
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import HoldTable
from dock.storage.pins import verify as verify_pin
from dock.storage.store import Custody, Store

#: What a hold can be placed on.
SCOPES = ("recording", "case", "officer", "episode")


class HoldError(Exception):
    """A hold request the data or the credentials do not allow."""


# --------------------------------------------------------------------------- holds


@dataclass(frozen=True)
class HoldRecord:
    """One row of the holds table, as stored (``kind`` may be a kind this version does not
    know, ``scope`` a scope it does not know; ``retention.decide`` then keeps).

    ``scope`` is what the hold is on: ``recording`` (``serial``/``recording_id``),
    ``case`` (``case_number``), ``officer`` (``officer_id``, recordings starting in
    [``from_at``, ``to_at``), either end open) or ``episode`` (``custody_id``)."""

    id: int
    serial: str
    recording_id: str
    kind: str
    reference: str
    placed_at: float
    placed_by: str
    until: float | None
    released_at: float | None
    released_by: str | None
    release_reason: str | None
    scope: str = "recording"
    case_number: str | None = None
    officer_id: str | None = None
    from_at: float | None = None
    to_at: float | None = None
    custody_id: int | None = None

    def as_hold(self) -> Hold:
        try:
            kind: Any = HoldKind(self.kind)
        except ValueError:
            kind = self.kind  # decide() reports it as invalid and keeps
        if self.scope not in SCOPES:
            kind = f"{self.kind} on unknown scope {self.scope}"  # invalid: keeps
        return Hold(
            kind=kind,
            reference=self.reference,
            placed_at=self.placed_at,
            placed_by=self.placed_by,
            released_at=self.released_at,
            release_reason=self.release_reason,
            until=self.until,
            scope="" if self.scope == "recording" else self.target(),
        )

    def target(self) -> str:
        """What the hold is on, in words: ``S/R``, ``case C``, ``officer O from .. to ..``,
        ``episode N``."""
        if self.scope == "recording":
            return f"{self.serial}/{self.recording_id}"
        if self.scope == "case":
            return f"case {self.case_number}"
        if self.scope == "officer":
            span = ""
            if self.from_at is not None:
                span += f" from {utc_iso(self.from_at)}"
            if self.to_at is not None:
                span += f" to {utc_iso(self.to_at)}"
            return f"officer {self.officer_id}{span}"
        if self.scope == "episode":
            return f"episode {self.custody_id}"
        return f"unknown scope {self.scope!r}"

    def active(self, now: float) -> bool:
        if self.released_at is not None:
            return False
        return self.until is None or now < self.until

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("placed_at", "until", "released_at", "from_at", "to_at"):
            d[key] = None if d[key] is None else utc_iso(d[key])
        d["on"] = self.target()
        return d


class HoldRegister:
    """Holds on archived recordings, in the dock database; every change audited.

    A change and its audit entry go together: the audit entry is appended inside the
    database transaction, so a failed append rolls the change back. A crash between the
    two commits can leave an audited release that did not take effect -- the safe side.
    """

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.table = HoldTable(store)

    # ------------------------------------------------------------------ placing
    def place(
        self,
        serial: str,
        recording_id: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold one archived recording (permanent unless ``until``, epoch seconds).

        Only recordings in the archive and not purged: a hold on a mistyped id would
        protect nothing while looking as if it did."""
        if self.store.archived(serial, recording_id) is None:
            raise HoldError(f"recording {serial}/{recording_id} is not in the archive")

        def check() -> None:
            gone = purge_state(self.store, serial, recording_id)
            if gone is not None:
                raise HoldError(f"recording {serial}/{recording_id} {gone}")

        return self._insert(
            {"scope": "recording", "serial": serial, "recording_id": recording_id},
            kind, reference, placed_by, until, check,
        )  # fmt: skip

    def place_case(
        self,
        case_number: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold every recording attached to a case: those attached now and those
        attached later, until the hold is released (or ``until``)."""
        case_number = case_number.strip()
        if not case_number:
            raise HoldError("a hold on a case needs the case number")
        return self._insert(
            {"scope": "case", "case_number": case_number}, kind, reference, placed_by, until
        )

    def place_officer(
        self,
        officer_id: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        from_at: float | None = None,
        to_at: float | None = None,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold an officer's recordings (named as theirs by the recorder, or made in a
        custody episode of theirs) that start in [``from_at``, ``to_at``); an end left
        out is open: also recordings archived later."""
        officer_id = officer_id.strip()
        known = self.store.officer(officer_id) is not None or self.store.officer_on_record(
            officer_id
        )
        if not officer_id or not known:
            raise HoldError(f"no officer {officer_id!r} is known to this dock")
        for t in (from_at, to_at):
            if t is not None and not math.isfinite(t):
                raise HoldError("--from and --to must be times")
        if from_at is not None and to_at is not None and to_at <= from_at:
            raise HoldError("the hold's period ends before it starts")
        return self._insert(
            {"scope": "officer", "officer_id": officer_id, "from_at": from_at, "to_at": to_at},
            kind, reference, placed_by, until,
        )  # fmt: skip

    def place_episode(
        self,
        custody_id: int,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold every recording of one custody episode (check-out to return, and the
        offload after the return): see :func:`episode_recordings`."""
        if self.store.custody(custody_id) is None:
            raise HoldError(f"no custody episode {custody_id}")
        return self._insert(
            {"scope": "episode", "custody_id": custody_id}, kind, reference, placed_by, until
        )

    def _insert(
        self,
        target: dict[str, Any],
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None,
        check: Callable[[], None] | None = None,
    ) -> HoldRecord:
        try:
            hold_kind = parse_kind(kind)
        except ValueError as exc:
            raise HoldError(str(exc)) from None
        if not reference.strip() or not placed_by.strip():
            raise HoldError("a hold needs a reference (case, complaint, ...) and who places it")
        placed_at = float(self.clock())
        if until is not None and not (math.isfinite(until) and until > placed_at):
            raise HoldError(f"until {until!r} is not a time after now")
        row = {"serial": "", "recording_id": "", **target}
        values = {"kind": hold_kind.value, "reference": reference, "placed_at": placed_at,
                  "placed_by": placed_by, "until": until, **row}  # fmt: skip
        with self.table.transaction():  # the hold and its audit entry commit together
            if check is not None:
                check()
            hold_id = self.table.insert(values)
            record = self.record(hold_id)
            data: dict[str, Any] = {
                "hold": hold_id,
                "scope": record.scope,
                "on": record.target(),
                "kind": hold_kind.value,
                "reference": reference,
                "until": None if until is None else utc_iso(until),
            }
            if record.scope == "recording":
                data["recording"] = record.recording_id
            else:
                data["recordings_now"] = len(self.covered(record))
            self.audit.append(
                AuditKind.HOLD_PLACED, placed_by, record.serial or record.target(), data
            )
        return record

    # ------------------------------------------------------------------ releasing
    def release(
        self, hold_id: int, released_by: str, supervisor_pin: str, reason: str, by: str = ""
    ) -> HoldRecord:
        """End a hold early: only a supervisor, with their own PIN, giving a reason.
        A refusal is audited too (``hold_release_refused``). ``by``: who typed the
        command (the login), recorded beside the supervisor."""
        check = verify_pin(self.store, self.audit, released_by, supervisor_pin, "hold_release")
        officer = self.store.officer(released_by)
        why = None
        if not reason.strip():
            why = "a release needs a reason"
        elif check.locked:
            why = "supervisor PIN locked: another supervisor unlocks it"
        elif not check.ok or officer is None or officer.disabled:
            why = "unknown supervisor or wrong PIN"
        elif officer.role != "supervisor":
            why = f"{released_by} is not a supervisor"
        if why is not None:
            self.audit.append(
                AuditKind.HOLD_RELEASE_REFUSED,
                released_by,
                "",
                {"hold": hold_id, "why": why, "by": by},
            )
            raise HoldError(f"release refused: {why}")
        with self.table.transaction():  # the release and its audit entry commit together
            row = self.table.get(hold_id)
            if row is None:
                raise HoldError(f"no hold {hold_id}")
            if row["released_at"] is not None:
                raise HoldError(f"hold {hold_id} was already released")
            self.table.release(hold_id, float(self.clock()), released_by, reason)
            record = self.record(hold_id)
            data: dict[str, Any] = {
                "hold": hold_id,
                "scope": record.scope,
                "on": record.target(),
                "kind": row["kind"],
                "reference": row["reference"],
                "reason": reason,
                "supervisor": released_by,
                "by": by,
            }
            if record.scope == "recording":
                data["recording"] = row["recording_id"]
            self.audit.append(
                AuditKind.HOLD_RELEASED, released_by, row["serial"] or record.target(), data
            )
        return record

    # ------------------------------------------------------------------ reading
    def record(self, hold_id: int) -> HoldRecord:
        row = self.table.get(hold_id)
        if row is None:
            raise HoldError(f"no hold {hold_id}")
        return HoldRecord(**row)

    def records(
        self, serial: str | None = None, recording_id: str | None = None
    ) -> list[HoldRecord]:
        """Every hold (released ones too), oldest first; or those that cover one
        recording (on it, or on a case, officer or episode it belongs to)."""
        if serial is None:
            return [HoldRecord(**r) for r in self.table.every()]
        return self.covering(serial, recording_id or "")

    def covering(self, serial: str, recording_id: str) -> list[HoldRecord]:
        """Every hold ever placed that covers the recording, oldest first. A hold of a
        scope this version does not know covers every recording (any doubt keeps)."""
        found: dict[int, HoldRecord] = {}
        for r in self.table.on_recording(serial, recording_id):
            found[r["id"]] = HoldRecord(**r)
        for r in self.table.on_cases_of(serial, recording_id):
            found[r["id"]] = HoldRecord(**r)
        scoped = self.table.on_other_scopes()
        if scoped:
            row = self.store.archived(serial, recording_id)
            episodes = episodes_of(self.store, row) if row is not None else []
            officers = {e.officer_id for e in episodes}
            if row is not None and row["officer_id"]:
                officers.add(row["officer_id"])
            start = row["start_ms"] / 1000 if row is not None else None
            for r in scoped:
                h = HoldRecord(**r)
                if h.scope == "episode":
                    hit = h.custody_id in {e.id for e in episodes}
                elif h.scope == "officer":
                    hit = h.officer_id in officers and _within(start, h.from_at, h.to_at)
                else:
                    hit = True  # a scope from a later version: any doubt keeps
                if hit:
                    found[h.id] = h
        return [found[k] for k in sorted(found)]

    def holds_for(self, serial: str, recording_id: str) -> list[Hold]:
        """Every hold ever placed that covers the recording, for ``retention.decide``."""
        return [r.as_hold() for r in self.covering(serial, recording_id)]

    def covered(self, hold: HoldRecord) -> list[tuple[str, str]]:
        """(serial, recording id) of the archived recordings a hold covers now."""
        if hold.scope == "recording":
            return [(hold.serial, hold.recording_id)]
        if hold.scope == "case":
            rows = self.store.case_recordings(hold.case_number or "")
            return [(r["serial"], r["recording_id"]) for r in rows]
        if hold.scope == "episode":
            episode = None if hold.custody_id is None else self.store.custody(hold.custody_id)
            if episode is None:
                return []
            rows = episode_recordings(self.store, episode)
            return [(r["serial"], r["recording_id"]) for r in rows]
        out = []
        for r in self.store.archive_by_start():
            if any(h.id == hold.id for h in self.covering(r["serial"], r["recording_id"])):
                out.append((r["serial"], r["recording_id"]))
        return out


def episodes_of(store: Store, row: dict[str, Any]) -> list[Custody]:
    """The custody episodes an archived recording belongs to: those of its recorder
    during which it started (check-out to return), and the one whose return it was
    offloaded after (before the recorder's next check-out). Both, where they differ: a
    hold on either covers it."""
    start_s = row["start_ms"] / 1000
    episodes = store.custody_episodes(row["serial"])
    found: list[Custody] = []
    for i, e in enumerate(episodes):
        during = e.out_at <= start_s and (e.in_at is None or start_s <= e.in_at)
        nxt = episodes[i + 1].out_at if i + 1 < len(episodes) else None
        after_return = (
            e.in_at is not None
            and row["archived_at"] >= e.in_at
            and (nxt is None or row["archived_at"] < nxt)
        )
        if during or after_return:
            found.append(e)
    return found


def episode_recordings(store: Store, episode: Custody) -> list[dict[str, Any]]:
    """The archived recordings of one custody episode (see :func:`episodes_of`)."""
    rows = store.archive_by_start(episode.serial)
    return [r for r in rows if any(e.id == episode.id for e in episodes_of(store, r))]


def _within(start: float | None, from_at: float | None, to_at: float | None) -> bool:
    """Whether a recording's start lies in [from_at, to_at); unknown start: yes (keeps)."""
    if start is None or start <= 0:
        return True
    return (from_at is None or start >= from_at) and (to_at is None or start < to_at)


__all__ = [
    "SCOPES",
    "HoldError",
    "HoldRecord",
    "HoldRegister",
    "episode_recordings",
    "episodes_of",
]
