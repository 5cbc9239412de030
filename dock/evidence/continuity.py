"""Continuity of a recorder's footage: what the officer may not have done to it.

REQUIREMENTS §4: no selective keeping, after-the-fact recording or inserted footage, and
officers may not keep, copy or delete footage themselves (003 art.11, 13; 001 art.19(3);
002 art.23). The dock cannot see what happened in the street, but each docking shows
three things the footage says about itself, and each is flagged:

* ``missing``: the recorder numbers its recordings (LIST_RECORDINGS ``sequence``,
  PROTOCOL.md 4.5.5). The dock remembers the highest number it has seen listed on each
  recorder (``continuity_marks``); numbers skipped since, or between two listed
  recordings, are recordings that were on the device and are gone before it came back:
  deleted before docking? A recorder that numbers nothing cannot be judged this way.
* ``outside_episode``: a recording not yet archived that does not lie within any custody
  episode of its recorder (from check-out to return, ``continuity_tolerance_s`` either
  side for the recorder's clock): made before the check-out or after the return, so
  after-the-fact recording or inserted footage. A recorder never checked out has no
  episode to compare with, so its first footage is not judged.
* ``unsigned``: a recording without a signature from a recorder that signs (it announces
  a device key, or the dock archived a signed recording of it before). A signature that
  does not verify is refused by the offload itself (:mod:`.offload`).

Each flag is an explanation item of the register :mod:`.gaps` keeps (same table, kinds
above), so the supervisor's queue and the officer's page show it and a supervisor closes
it; each is audited with its own kind (``recording_missing``, ...), which headquarters
hears as ``continuity.flagged``. Nothing here stops an offload: footage is always
archived, flagged or not. The judgement is made when the offload lists the recordings,
before anything is copied or erased, in one transaction with the mark it moves on.

``find_breaks`` is pure (a table test per rule); ``ContinuityRegister`` stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dock.domain.audit_kinds import AuditKind
from dock.storage.audit import AuditLog
from dock.storage.continuity_table import ContinuityTable
from dock.storage.register_tables import GapTable
from dock.storage.store import Custody, Store
from firmware_protocol.messages import EventKind

__all__ = [
    "KINDS",
    "MISSING",
    "OUTSIDE_EPISODE",
    "UNSIGNED",
    "Break",
    "ContinuityRegister",
    "Mark",
    "find_breaks",
]

MISSING = "missing"
OUTSIDE_EPISODE = "outside_episode"
UNSIGNED = "unsigned"
KINDS = (MISSING, OUTSIDE_EPISODE, UNSIGNED)

#: The audit kind of each flag.
AUDIT_KINDS = {
    MISSING: AuditKind.RECORDING_MISSING,
    OUTSIDE_EPISODE: AuditKind.RECORDING_OUTSIDE_EPISODE,
    UNSIGNED: AuditKind.RECORDING_UNSIGNED,
}

_U32 = 1 << 32


class Listed(Protocol):
    """What the rules read of a listed recording (``RecordingInfo`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def signature(self) -> bytes | None: ...
    @property
    def sequence(self) -> int | None: ...


@dataclass(frozen=True)
class Mark:
    """What the dock remembers of a recorder from its earlier dockings."""

    last_sequence: int | None = None
    last_end_ms: int | None = None
    signs: bool = False


@dataclass(frozen=True)
class Break:
    """One flag: an explanation item to open (register key: serial, kind, start_ms,
    recording_id)."""

    kind: str
    reason: str
    start_ms: int
    end_ms: int | None
    recording_id: str
    detail: str
    officer_id: str
    custody_id: int | None
    #: For ``missing``: the first and last numbers missing.
    numbers: tuple[int, int] | None = None


def _seq(r: Listed) -> int | None:
    s = getattr(r, "sequence", None)
    if isinstance(s, int) and not isinstance(s, bool) and 0 <= s < _U32:
        return s
    return None


def _utc(ms: int) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ms / 1000))
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def _episode_of(episodes: Sequence[Custody], t_ms: int) -> Custody | None:
    """The episode around ``t_ms``, else the last one that began before it, else the
    first one: whose officer is asked about a flag at that moment."""
    before = [e for e in episodes if e.out_at * 1000 <= t_ms]
    for e in reversed(before):
        if e.in_at is None or t_ms <= e.in_at * 1000:
            return e
    if before:
        return before[-1]
    return episodes[0] if episodes else None


def find_breaks(
    recordings: Sequence[Listed],
    new_ids: Iterable[str],
    mark: Mark,
    episodes: Sequence[Custody],
    device_signs: bool,
    tolerance_ms: int,
    bad_signatures: Collection[str] = (),
) -> list[Break]:
    """The flags of one docking. ``recordings``: every recording the recorder listed;
    ``new_ids``: those not archived before (only they are judged for episode and
    signature: the archived ones were judged when they came); ``episodes``: the
    recorder's custody episodes by check-out time (the one just closed among them);
    ``bad_signatures``: new recordings whose signature does not verify against the
    device key (the offload refuses them; the supervisor hears of them here).
    Never raises on odd values: a recording without a usable number is left out of the
    numbering."""
    new = set(new_ids)
    eps = sorted(episodes, key=lambda e: (e.out_at, e.id))

    def who(t_ms: int) -> tuple[str, int | None]:
        e = _episode_of(eps, t_ms)
        return (e.officer_id, e.id) if e is not None else ("", None)

    found: list[Break] = []
    numbered = sorted(((s, r) for r in recordings if (s := _seq(r)) is not None),
                      key=lambda p: (p[0], p[1].id))  # fmt: skip
    floor = mark.last_sequence
    prev_end = mark.last_end_ms
    if floor is None and numbered:  # first docking: only holes between listed ones
        floor, prev_end = numbered[0][0], numbered[0][1].end_ms
    for s, r in numbered:
        if floor is None or s <= floor:
            continue
        if s > floor + 1:
            first, last = floor + 1, s - 1
            what = f"recording {first}" if first == last else f"recordings {first}..{last}"
            start = prev_end if prev_end is not None else r.start_ms
            officer, custody = who(r.start_ms)
            found.append(Break(
                MISSING, "deleted_before_docking", start, r.start_ms, r.id,
                f"{what} missing from the recorder's numbering (before {r.id}, "
                f"number {s}): deleted before docking?",
                officer, custody, (first, last),
            ))  # fmt: skip
        floor, prev_end = s, r.end_ms

    for r in recordings:
        if r.id not in new:
            continue
        if eps and not any(
            e.out_at * 1000 - tolerance_ms <= r.start_ms
            and (e.in_at is None or r.end_ms <= e.in_at * 1000 + tolerance_ms)
            for e in eps
        ):
            episode = _episode_of(eps, r.start_ms)
            assert episode is not None
            before = r.start_ms < episode.out_at * 1000 - tolerance_ms
            back = "still out" if episode.in_at is None else _utc(round(episode.in_at * 1000))
            doubt = getattr(r, "time_doubt", None)  # the recorder's clock, not the footage?
            clock = f"; its times cannot be right: {doubt}" if doubt else ""
            found.append(Break(
                OUTSIDE_EPISODE, "before_checkout" if before else "after_return",
                r.start_ms, r.end_ms, r.id,
                f"recorded {_utc(r.start_ms)} to {_utc(r.end_ms)}, outside the custody "
                f"episode {episode.id} (out {_utc(round(episode.out_at * 1000))}, back "
                f"{back}; {tolerance_ms / 1000:g} s allowed for the clock): after-the-fact "
                f"recording or inserted footage?{clock}",
                episode.officer_id, episode.id,
            ))  # fmt: skip
        if (device_signs or mark.signs) and not r.signature:
            officer, custody = who(r.start_ms)
            why = "announces a device key" if device_signs else "signed its earlier recordings"
            found.append(Break(
                UNSIGNED, "no_signature", r.start_ms, r.end_ms, r.id,
                f"the recorder {why}, but {r.id} carries no signature: footage the "
                "device did not sign (inserted?)",
                officer, custody,
            ))  # fmt: skip
        elif r.id in bad_signatures:
            officer, custody = who(r.start_ms)
            found.append(Break(
                UNSIGNED, "bad_signature", r.start_ms, r.end_ms, r.id,
                f"the signature of {r.id} does not verify against the recorder's device "
                "key: footage the device did not sign (inserted or altered?); not "
                "archived, left on the recorder",
                officer, custody,
            ))  # fmt: skip
    return found


_RECORD_START = int(EventKind.RECORD_START)


def find_unlisted(
    events: Sequence[Mapping[str, Any]],
    recordings: Sequence[Listed],
    archived: Callable[[str], bool],
    episode: Custody,
    mark: Mark,
    tolerance_ms: int,
) -> list[Break]:
    """Recordings the recorder's own log says were started during ``episode`` that are
    neither listed on it nor in the archive: deleted before docking. This sees what the
    numbering cannot: the last recordings of an episode (no later number shows the hole),
    the first ones at a recorder's first docking, and recorders that number nothing.
    Where the numbering shows the hole (a numbered recording listed after it, and the
    remembered number or an earlier listed one before it), its item covers it."""
    listed = {r.id for r in recordings}
    listed |= {bad.recording_id for bad in getattr(recordings, "refused", [])}  # still there
    numbered = [r.start_ms for r in recordings if _seq(r) is not None]  # their starts
    lo = round(episode.out_at * 1000) - tolerance_ms
    hi = None if episode.in_at is None else round(episode.in_at * 1000) + tolerance_ms
    found: list[Break] = []
    seen: set[str] = set()
    for e in events:
        rid, t = e.get("recording_id"), e.get("time_ms")
        if e.get("kind") != _RECORD_START or not isinstance(rid, str) or not rid:
            continue
        if not isinstance(t, int) or isinstance(t, bool) or t < lo or (hi is not None and t > hi):
            continue
        if rid in listed or rid in seen or archived(rid):
            continue
        later = any(start > t for start in numbered)
        earlier = mark.last_sequence is not None or any(start < t for start in numbered)
        if later and earlier:
            continue  # a hole in the numbering: flagged from there
        seen.add(rid)
        found.append(Break(
            MISSING, "deleted_before_docking", t, None, rid[:200],
            f"recording {rid[:64]} (started {_utc(t)}, by the recorder's log) is neither on "
            "the recorder nor in the archive: deleted before docking?",
            episode.officer_id, episode.id,
        ))  # fmt: skip
    return found


class ContinuityRegister:
    """The flags as explanation items, each with its audit entry, and the marks."""

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] | None = None
    ) -> None:
        self.store = store
        self.audit = audit
        fallback: Callable[[], float] = getattr(store, "clock", time.time)
        self._clock: Callable[[], float] = clock or fallback
        self.items = GapTable(store)
        self.marks = ContinuityTable(store)

    def check_log(
        self,
        serial: str,
        episode: Custody,
        events: Sequence[Mapping[str, Any]],
        recordings: Sequence[Listed],
        tolerance_s: float,
    ) -> list[int]:
        """At the return, from the event log the gap scan read: recordings started in the
        episode that are gone (``find_unlisted``); the ids of the items opened."""
        breaks = find_unlisted(
            events, recordings, lambda rid: self.store.archived(serial, rid) is not None,
            episode, self.mark(serial), round(tolerance_s * 1000),
        )  # fmt: skip
        with self.items.transaction():
            return self._open(serial, breaks, self._clock())

    def mark(self, serial: str) -> Mark:
        row = self.marks.mark(serial)
        if row is None:
            return Mark()
        return Mark(row["last_sequence"], row["last_end_ms"], bool(row["signs"]))

    def check(
        self,
        serial: str,
        recordings: Sequence[Listed],
        new_ids: Iterable[str],
        device_signs: bool,
        tolerance_s: float,
        bad_signatures: Collection[str] = (),
    ) -> list[int]:
        """Judge one docking's listing, open an item per new flag (audited), and move the
        mark on, in one transaction; returns the ids of the items opened."""
        new = list(new_ids)
        mark = self.mark(serial)
        episodes = self.store.custody_episodes(serial)
        breaks = find_breaks(
            recordings, new, mark, episodes, device_signs, round(tolerance_s * 1000),
            bad_signatures,
        )  # fmt: skip
        numbered = [(s, r) for r in recordings if (s := _seq(r)) is not None]
        top = max(numbered, key=lambda p: p[0], default=None)
        signed = any(r.signature for r in recordings)
        with self.items.transaction():  # every item with its entry, and the mark, or none
            now = self._clock()
            opened = self._open(serial, breaks, now)
            self.marks.set_mark(
                serial,
                None if top is None else top[0],
                None if top is None else top[1].end_ms,
                device_signs or signed,
                now,
            )
        return opened

    def _open(self, serial: str, breaks: Iterable[Break], now: float) -> list[int]:
        """An item per break not in the register yet, each with its audit entry (inside
        the caller's transaction)."""
        opened: list[int] = []
        for b in breaks:
            item = self.items.open_item(
                {"serial": serial, "officer_id": b.officer_id, "custody_id": b.custody_id,
                 "kind": b.kind, "reason": b.reason, "start_ms": b.start_ms,
                 "end_ms": b.end_ms, "recording_id": b.recording_id,
                 "detail": b.detail, "opened_at": now}
            )  # fmt: skip
            if item is None:
                continue  # flagged at an earlier docking
            opened.append(item)
            data: dict[str, Any] = {
                "item": item, "officer": b.officer_id, "custody": b.custody_id,
                "kind": b.kind, "reason": b.reason, "recording": b.recording_id,
                "start_ms": b.start_ms, "end_ms": b.end_ms, "detail": b.detail,
            }  # fmt: skip
            if b.numbers is not None:
                data["missing"] = list(b.numbers)
            self.audit.append(AUDIT_KINDS[b.kind], "dock", serial, data)
        return opened
