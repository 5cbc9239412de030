"""Gaps in recording (REQUIREMENTS.md §5): the rules as a table, the register, a real scan."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import dock.cli.gaps as cli_gaps
from dock.domain.explanations import State
from dock.evidence.gaps import (
    FAULT,
    INTERRUPTED,
    MANUAL_STOP,
    Gap,
    GapError,
    GapRegister,
    find_gaps,
    scan_episode,
)
from dock.storage.audit import AuditLog
from dock.storage.store import Store
from firmware_protocol.messages import EventKind as K
from firmware_protocol.messages import RecordingFlag, StopReason

SECRET = bytes(range(32))
PIN, SUP_PIN = "246810", "999000"
CUT = int(RecordingFlag.INTERRUPTED)
MAN, BAT, FULL, FLT = (int(StopReason.MANUAL), int(StopReason.BATTERY),
                       int(StopReason.STORAGE_FULL), int(StopReason.FAULT))  # fmt: skip


def ev(t: int, kind: K, reason: int | None = None, rid: str | None = None, detail: str = ""):
    e: dict[str, Any] = {"time_ms": t, "kind": int(kind)}
    if reason is not None:
        e["reason"] = reason
    if rid is not None:
        e["recording_id"] = rid
    if detail:
        e["detail"] = detail
    return e


@dataclass(frozen=True)
class Rec:
    id: str
    start_ms: int
    end_ms: int
    flags: int = 0
    stop_reason: int | None = MAN


def clip(rid: str, start: int, end: int, stop: int, reason: int = MAN) -> list[dict]:
    """A recording's two log lines, as the reference recorder writes them."""
    last = K.RECORD_STOP if reason == MAN else K.INTERRUPTED
    return [ev(start, K.RECORD_START, rid=rid), ev(end, last, reason, rid)][: 2 if stop else 1]


# (name, events, recordings, episode, expected (kind, reason, start, end, recording))
EP = (1_000, 100_000)
TABLE: list[tuple[str, list[dict], list[Rec], tuple[int | None, int | None], list[tuple]]] = [
    ("nothing logged", [], [], EP, []),
    (
        "battery cut, restarted: gap until the restart",
        [*clip("R1", 2_000, 5_000, 1, BAT), *clip("R2", 8_000, 9_000, 1)],
        [],
        EP,
        [(INTERRUPTED, "battery", 5_000, 8_000, "R1")],
    ),
    (
        "cut and never restarted: gap until the episode ends",
        clip("R1", 2_000, 5_000, 1, FULL),
        [],
        EP,
        [(INTERRUPTED, "storage_full", 5_000, 100_000, "R1")],
    ),
    (
        "cut while the episode is still open: no end yet",
        clip("R1", 2_000, 5_000, 1, BAT),
        [],
        (1_000, None),
        [(INTERRUPTED, "battery", 5_000, None, "R1")],
    ),
    (
        "restart only after the return: gap until the episode ends",
        [*clip("R1", 2_000, 5_000, 1, BAT), ev(150_000, K.RECORD_START, rid="R2")],
        [],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, "R1")],
    ),
    ("cut before the episode began", clip("R1", 100, 500, 1, BAT), [], EP, []),
    ("cut after the episode ended", clip("R1", 100_500, 101_000, 1, BAT), [], EP, []),
    (
        "RECORD_STOP with a reason other than manual is an interruption",
        [ev(2_000, K.RECORD_START, rid="R1"), ev(5_000, K.RECORD_STOP, FLT, "R1")],
        [],
        EP,
        [(INTERRUPTED, "fault", 5_000, 100_000, "R1")],
    ),
    (
        "a stop with no reason anywhere is asked about as 'other'",
        [ev(5_000, K.RECORD_STOP, rid="R1")],
        [Rec("R1", 2_000, 5_000, stop_reason=None)],
        EP,
        [(INTERRUPTED, "other", 5_000, 100_000, "R1")],
    ),
    (
        "a stop with no reason takes its recording's reason",
        [ev(5_000, K.RECORD_STOP, rid="R1")],
        [Rec("R1", 2_000, 5_000, stop_reason=MAN)],
        EP,
        [],
    ),
    (
        "unknown reason codes are 'other'",
        clip("R1", 2_000, 5_000, 1, 99),
        [],
        EP,
        [(INTERRUPTED, "other", 5_000, 100_000, "R1")],
    ),
    (
        "manual stop at the end of the episode: not an item",
        clip("R1", 2_000, 5_000, 1),
        [Rec("R1", 2_000, 5_000)],
        EP,
        [],
    ),
    (
        "manual stop and restart within the episode: an item when the policy asks",
        [*clip("R1", 2_000, 5_000, 1), *clip("R2", 65_000, 70_000, 1)],
        [Rec("R1", 2_000, 5_000), Rec("R2", 65_000, 70_000)],
        EP,
        [(MANUAL_STOP, "manual", 5_000, 65_000, "R1")],
    ),
    (
        "manual stop, restart only after the return: not an item",
        [*clip("R1", 2_000, 5_000, 1), *clip("R2", 120_000, 130_000, 1)],
        [],
        EP,
        [],
    ),
    (
        "recording flagged interrupted, nothing in the log: from its end",
        [],
        [Rec("R1", 2_000, 5_000, CUT, BAT), Rec("R2", 7_000, 9_000)],
        EP,
        [(INTERRUPTED, "battery", 5_000, 7_000, "R1")],
    ),
    (
        "stopped for a non-manual reason but not flagged: still reported",
        [],
        [Rec("R1", 2_000, 5_000, 0, FULL)],
        EP,
        [(INTERRUPTED, "storage_full", 5_000, 100_000, "R1")],
    ),
    (
        "event and recording flag are one item",
        clip("R1", 2_000, 5_000, 1, BAT),
        [Rec("R1", 2_000, 5_000, CUT, BAT)],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, "R1")],
    ),
    (
        "an event without a recording id still matches the flag by time",
        [ev(5_000, K.INTERRUPTED, BAT)],
        [Rec("R1", 2_000, 5_000, CUT, BAT)],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, None)],
    ),
    (
        "flag contradicting a manual stop: one interrupted item, no manual_stop",
        [*clip("R1", 2_000, 5_000, 1), *clip("R2", 8_000, 9_000, 1)],
        [Rec("R1", 2_000, 5_000, CUT, MAN), Rec("R2", 8_000, 9_000)],
        EP,
        [(INTERRUPTED, "other", 5_000, 8_000, "R1")],
    ),
    (
        "manual stop without a recording id at a flagged recording's end: one item",
        [ev(5_000, K.RECORD_STOP, MAN), ev(8_000, K.RECORD_START, rid="R2")],
        [Rec("R1", 2_000, 5_000, CUT, BAT)],
        EP,
        [(INTERRUPTED, "battery", 5_000, 8_000, "R1")],
    ),
    (
        "INTERRUPTED and a non-manual RECORD_STOP of one recording: one item",
        [*clip("R1", 2_000, 5_000, 1, BAT), ev(5_001, K.RECORD_STOP, BAT, "R1")],
        [],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, "R1")],
    ),
    (
        "a fault is an item of its own, also when it cut the recording",
        [
            ev(2_000, K.RECORD_START, rid="R1"),
            ev(4_000, K.FAULT, detail="sensor"),
            ev(5_000, K.FAULT, rid="R1", detail="storage"),
            ev(5_000, K.INTERRUPTED, FLT, "R1"),
            ev(500, K.FAULT, detail="before the episode"),
        ],
        [],
        EP,
        [
            (FAULT, FAULT, 4_000, 4_000, None),
            (FAULT, FAULT, 5_000, 5_000, "R1"),
            (INTERRUPTED, "fault", 5_000, 100_000, "R1"),
        ],
    ),
    (
        "the same log read twice opens nothing twice",
        [*clip("R1", 2_000, 5_000, 1, BAT), *clip("R1", 2_000, 5_000, 1, BAT)],
        [],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, "R1")],
    ),
    (
        "unbounded episode, items in time order",
        [
            *clip("R2", 20_000, 30_000, 1, FULL),
            *clip("R1", 2_000, 5_000, 1, BAT),
            *clip("R3", 40_000, 50_000, 1),
        ],
        [],
        (None, None),
        [
            (INTERRUPTED, "battery", 5_000, 20_000, "R1"),
            (INTERRUPTED, "storage_full", 30_000, 40_000, "R2"),
        ],
    ),
    (
        "malformed entries are skipped",
        [
            {"kind": int(K.INTERRUPTED)},
            {"time_ms": "x", "kind": 5},
            {"time_ms": 3, "kind": 77},
            "junk",
            None,
            ev(5_000, K.INTERRUPTED, BAT, "R1"),
        ],
        [SimpleNamespace(id=None), SimpleNamespace(id="R9", end_ms="late")],
        EP,
        [(INTERRUPTED, "battery", 5_000, 100_000, "R1")],
    ),
]


def _rows(gaps: list[Gap]) -> list[tuple]:
    return [(g.kind, g.reason, g.start_ms, g.end_ms, g.recording_id) for g in gaps]


@pytest.mark.parametrize(("events", "recs", "episode", "want"), [t[1:] for t in TABLE],
                         ids=[t[0] for t in TABLE])  # fmt: skip
def test_find_gaps_table(events, recs, episode, want) -> None:
    """002 art.19; 003 art.9, 11: the rules with manual stops asked about (policy
    explain_manual_stops = true)."""
    assert _rows(find_gaps(events, recs, *episode, report_manual_stops=True)) == want


def test_manual_stops_can_be_left_out_and_say_how_long() -> None:
    """002 art.19; 003 art.9: a manual stop is asked about only when the unit says so, and says
    how long the recorder was off."""
    events = [*clip("R1", 2_000, 5_000, 1), *clip("R2", 65_000, 70_000, 1)]
    (gap,) = find_gaps(events, [], *EP, report_manual_stops=True)
    assert gap.detail == "stopped by hand and restarted 60 s later"
    assert find_gaps(events, [], *EP, report_manual_stops=False) == []


def test_details_say_where_the_item_came_from() -> None:
    """002 art.20; 001 art.19(2): each explanation item says where it came from (the recorder's
    log, a recording cut short, a fault)."""
    logged = find_gaps(clip("R1", 2_000, 5_000, 1, BAT), [], *EP)
    assert logged[0].detail == "the recorder logged recording interrupted (battery)"
    flagged = find_gaps([], [Rec("R1", 2_000, 5_000, CUT, BAT)], *EP)
    assert "cut short" in flagged[0].detail and "no entry" in flagged[0].detail
    faults = [ev(4_000, K.FAULT, detail="sensor"), ev(4_000, K.FAULT, detail="clock")]
    assert find_gaps(faults * 2, [], *EP)[0].detail == "sensor; clock"


_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10, 200), st.text(max_size=4),
    st.floats(allow_nan=True), st.sampled_from(["R1", "R2", ""]),
)  # fmt: skip
_keys = st.sampled_from(["index", "time_ms", "kind", "reason", "recording_id", "detail", "x"])
_plausible = st.fixed_dictionaries(
    {
        "index": st.integers(0, 20),
        "time_ms": st.integers(0, 200),
        "kind": st.sampled_from([int(k) for k in K]),
        "reason": st.one_of(st.none(), st.integers(0, 6)),
        "recording_id": st.sampled_from([None, "R1", "R2", "R3"]),
        "detail": st.sampled_from(["", "a; b", "a"]),
    }
)
_events = st.lists(
    st.one_of(_plausible, st.dictionaries(_keys, _values), st.none(), st.integers(), st.text()),
    max_size=30,
)
_recs = st.lists(
    st.builds(
        SimpleNamespace,
        id=st.sampled_from(["R1", "R2", "R3", None, ""]),
        start_ms=st.one_of(st.integers(0, 200), st.none(), st.text(max_size=2)),
        end_ms=st.one_of(st.integers(0, 200), st.integers(), st.none()),
        flags=st.one_of(st.integers(-8, 8), st.none(), st.text(max_size=2)),
        stop_reason=st.one_of(st.integers(-1, 7), st.none()),
    ),
    max_size=6,
)
_bound = st.one_of(st.none(), st.integers(-10, 210))


@settings(max_examples=300, deadline=None)
@given(_events, _recs, _bound, _bound, st.booleans())
def test_find_gaps_never_raises_and_keeps_its_promises(
    events: list, recs: list, start: int | None, end: int | None, manual: bool
) -> None:
    """002 art.19; 003 art.9, 11: any event log gives each gap once, in order, within the custody
    episode, never an exception."""
    gaps = find_gaps(events, recs, start, end, report_manual_stops=manual)
    keys = [(g.kind, g.start_ms, g.recording_id or "") for g in gaps]
    assert len(set(keys)) == len(keys)  # the register's UNIQUE never drops one silently
    assert [(g.start_ms, g.kind) for g in gaps] == sorted((g.start_ms, g.kind) for g in gaps)
    for g in gaps:
        assert start is None or g.start_ms >= start
        assert end is None or g.start_ms <= end
        assert g.end_ms is None or g.end_ms >= g.start_ms
        assert g.kind in (INTERRUPTED, FAULT, MANUAL_STOP)
    if not manual:
        assert MANUAL_STOP not in {g.kind for g in gaps}
    assert find_gaps(events * 2, recs * 2, start, end, report_manual_stops=manual) == gaps


# --- the register ------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path) -> SimpleNamespace:
    store = Store(str(tmp_path / "dock.db"))
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    store.add_officer("1002", "Li Na", "Traffic 3", PIN)
    store.add_officer("9001", "Zhao Min", "Traffic 3", SUP_PIN, role="supervisor")
    yield SimpleNamespace(store=store, audit=audit, timezone="Asia/Shanghai")
    audit.close()
    store.close()


def _kinds(audit: AuditLog, kind: str) -> list:
    return [e for e in audit.entries() if e.kind == kind]


BATTERY = Gap(INTERRUPTED, "battery", 5_000, 8_000, "R1", "battery exhausted")
FLAG_ONLY = Gap(INTERRUPTED, "other", 9_000, None, None, "no id")
SENSOR = Gap(FAULT, FAULT, 4_000, 4_000, None, "sensor")


def test_register_opens_each_item_once_and_lists_per_officer(env) -> None:
    """001 art.19(2): each interruption opens one explanation item, audited, listed for its
    officer."""
    reg = GapRegister(env.store, env.audit)
    assert reg.open_items("EMU1", "1001", 7, [BATTERY, FLAG_ONLY, SENSOR]) == 3
    assert reg.open_items("EMU1", "1001", 7, [SENSOR, FLAG_ONLY, BATTERY]) == 0  # re-read
    assert GapRegister(env.store, env.audit).open_items("EMU2", "1002", 8, [BATTERY]) == 1
    assert len(_kinds(env.audit, "gap_opened")) == 4
    mine = reg.list_items("1001")
    assert [(i.kind, i.start_ms, i.recording_id, i.custody_id) for i in mine] == [
        (INTERRUPTED, 5_000, "R1", 7),
        (INTERRUPTED, 9_000, None, 7),
        (FAULT, 4_000, None, 7),
    ]
    assert all(i.is_open and i.serial == "EMU1" for i in mine)
    assert [i.serial for i in reg.list_items("1002")] == ["EMU2"]
    assert len(reg.list_items()) == 4
    first = _kinds(env.audit, "gap_opened")[0]
    assert first.subject == "EMU1" and first.data["reason"] == "battery"
    assert first.data["item"] == mine[0].id


def test_closing_needs_a_supervisor_pin_and_text_and_is_audited(env) -> None:
    """001 art.19(2): the unit head reviews the officer's account, on their own PIN, in
    writing, audited; once accepted, the item waits for the keeper (still not done)."""
    reg = GapRegister(env.store, env.audit)
    reg.open_items("EMU1", "1001", 7, [BATTERY, SENSOR])
    item = reg.list_items()[0].id
    reg.add_account(item, "1001", PIN, "The battery ran out during a long traffic stop.")
    text = "Battery ran out during a long traffic stop; spare recorder used."
    with pytest.raises(GapError, match="at least 10"):
        reg.close_item(item, "9001", SUP_PIN, "  tired   ")
    with pytest.raises(GapError, match="not verified"):
        reg.close_item(item, "9001", "000000", text)  # wrong PIN
    with pytest.raises(GapError, match="not verified"):
        reg.close_item(item, "1002", PIN, text)  # right PIN, not a supervisor
    with pytest.raises(GapError, match="not verified"):
        reg.close_item(item, "7777", PIN, text)  # nobody
    assert len(_kinds(env.audit, "gap_explain_refused")) == 3
    assert reg.item(item).is_open

    closed = reg.close_item(item, "9001", SUP_PIN, text)
    assert (closed.reviewed_by, closed.explanation) == ("9001", text)
    assert closed.reviewed_at is not None and closed.state is State.REVIEWED
    assert closed.is_open and closed.closed_at is None  # the keeper has still to file it
    (entry,) = _kinds(env.audit, "gap_explained")
    assert (entry.actor, entry.subject) == ("9001", "EMU1")
    assert entry.data["explanation"] == text and entry.data["item"] == item

    with pytest.raises(GapError, match="reviewed and waiting to be filed"):
        reg.close_item(item, "9001", SUP_PIN, "A second, different explanation.")
    with pytest.raises(GapError, match="no explanation item"):
        reg.close_item(999, "9001", SUP_PIN, text)
    assert reg.item(item).explanation == text
    assert [i.kind for i in reg.list_items()] == [INTERRUPTED, FAULT]
    assert len(reg.list_items(open_only=False)) == 2
    assert len(_kinds(env.audit, "gap_explained")) == 1
    assert env.audit.verify().ok


def test_cli_lists_and_explains(env, monkeypatch, capsys) -> None:
    """001 art.19(2), on the command line: the list says where an item is; the review
    waits for the officer's account, then accepts it."""
    monkeypatch.setattr(cli_gaps, "service_from", lambda args: env)
    GapRegister(env.store, env.audit).open_items("EMU1", "1001", 7, [BATTERY])
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    cli_gaps.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return args.func(args)

    assert run("gaps", "list", "--officer", "1001", "--json") == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["reason"] == "battery" and item["start_utc"] == "1970-01-01T00:00:05.000Z"
    assert item["state"] == "open"
    assert run("gaps", "explain", str(item["id"]), "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", "Battery ran out on patrol.") == 1  # fmt: skip
    assert "waiting for the officer's account" in capsys.readouterr().err
    assert run("gaps", "account", str(item["id"]), "--officer", "1001", "--pin", PIN,
               "--text", "The battery went flat at the crossing.") == 0  # fmt: skip
    capsys.readouterr()
    assert run("gaps", "explain", str(item["id"]), "--supervisor", "9001", "--pin", "1",
               "--text", "Battery ran out on patrol.") == 1  # fmt: skip
    assert "not verified" in capsys.readouterr().err
    assert run("gaps", "explain", str(item["id"]), "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", "Battery ran out on patrol.") == 0  # fmt: skip
    assert "reviewed by 9001" in capsys.readouterr().out
    assert run("gaps", "list") == 0
    out = capsys.readouterr().out
    assert "battery" in out and "reviewed by 9001: to file" in out and "3 s" in out


# --- a real recorder ---------------------------------------------------------------------


def _episode(store: Store, serial: str, out_at: float, in_at: float) -> Any:
    """A custody row from out_at to in_at, written through the store as the service does."""
    now = [out_at]
    clocked = Store(store.path, clock=lambda: now[0])
    if clocked.device(serial) is None:
        clocked.enrol_device(serial, "BWC-EMU-1", "1.4.2", SECRET)
    custody = clocked.open_custody(serial, "1001", "1")
    now[0] = in_at
    closed = clocked.close_custody(serial, "1")
    clocked.close()
    assert closed is not None and closed.id == custody.id
    return closed


def test_scan_episode_opens_one_battery_item_from_a_real_recorder(env, start_recorder) -> None:
    """002 art.20; 001 art.19(2); 003 art.11: a battery cut in a real recorder's log opens one
    explanation item at return."""
    r = start_recorder(serial="GAP0001", secret=SECRET, recordings=1, interrupted=1)
    now = time.time()
    episode = _episode(env.store, "GAP0001", now - 3 * 3600, now + 60)
    with r.client() as client:
        client.open()
        with pytest.raises(GapError, match="authenticated"):
            scan_episode(client, env.store, env.audit, "GAP0001", episode)
        client.authenticate(SECRET)
        assert scan_episode(client, env.store, env.audit, "GAP0001", episode) == 1
        assert scan_episode(client, env.store, env.audit, "GAP0001", episode) == 0
        later = _episode(env.store, "GAP0001", now + 120, now + 180)  # after the footage
        assert scan_episode(client, env.store, env.audit, "GAP0001", later) == 0
    (item,) = GapRegister(env.store, env.audit).list_items("1001")
    rec = r.model.recordings["REC000001"]
    assert (item.kind, item.reason, item.recording_id) == (INTERRUPTED, "battery", "REC000001")
    assert (item.start_ms, item.end_ms) == (rec.end_ms, round(episode.in_at * 1000))
    assert (item.serial, item.custody_id, item.detail) == (
        "GAP0001",
        episode.id,
        "battery exhausted",
    )
    assert len(_kinds(env.audit, "gap_opened")) == 1


# --- issue 10 §5: manual stops, several items at once, the officer's own account ---------


def _film_incidents(model: Any, count: int, battery_cut_at: int | None = None) -> None:
    """The officer out on patrol films ``count`` incidents, stopping by hand after each
    (the ``battery_cut_at``-th one, 0-based, cut by the battery instead): clips inside
    the custody episode that is open now, in the order filmed."""
    model._generate_recordings(count, 20_000, interrupted=0)
    time.sleep(0.05 + count * 0.002)
    end_ms = int(time.time() * 1000)
    clips = model.ordered_recordings()[-count:]
    for i, rec in enumerate(clips):
        rec.start_ms = end_ms - 2 * (count - i) - 1
        rec.end_ms = rec.start_ms + 1
        if i == battery_cut_at:
            rec.flags, rec.stop_reason = CUT, BAT
    for e in model.state["events"]:
        rec = next((r for r in clips if r.id == e.get("recording_id")), None)
        if rec is None:
            continue
        if e["kind"] == int(K.RECORD_START):
            e["time_ms"] = rec.start_ms
        else:
            e["time_ms"] = rec.end_ms
            if rec.stop_reason == BAT:
                e["kind"], e["reason"], e["detail"] = int(K.INTERRUPTED), BAT, "battery exhausted"
    model.save()


def _out_and_back(svc: Any, recs: list, count: int, battery_cut_at: int | None = None) -> list:
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    _film_incidents(recs[0].model, count, battery_cut_at)
    svc.inspect("1")  # docked again: custody closes, the event log is read
    assert svc.store.open_custody_of_officer("1001") is None
    return GapRegister(svc.store, svc.audit).list_items("1001")


def test_an_officer_who_films_twenty_incidents_leaves_no_items_by_default(make_dock) -> None:
    """002 art.20; 001 art.19(2): an explanation is owed for an interruption, not for an
    officer ending one incident and starting the next (REQUIREMENTS §5: a manual stop that
    ends one incident is not an interruption). Off by default: 20 clips, no item."""
    svc, recs = make_dock({"battery_percent": 95.0})
    assert svc.policy.explain_manual_stops is False
    assert _out_and_back(svc, recs, 20) == []
    assert not _kinds(svc.audit, "gap_opened")


def test_a_battery_cut_among_manual_stops_is_still_one_item(make_dock) -> None:
    """002 art.20; 001 art.19(2): the interruption for an objective cause (battery) is
    asked about even when manual stops are not."""
    svc, recs = make_dock({"battery_percent": 95.0})
    items = _out_and_back(svc, recs, 5, battery_cut_at=2)
    assert [(i.kind, i.reason) for i in items] == [(INTERRUPTED, "battery")]


def test_a_unit_that_wants_manual_stops_explained_gets_one_item_per_restart(make_dock) -> None:
    """002 art.19 (the whole action recorded): a unit may still ask about every manual
    stop followed by a restart (policy explain_manual_stops = true): 20 clips, 19 items."""
    svc, recs = make_dock({"battery_percent": 95.0}, policy={"explain_manual_stops": True})
    items = _out_and_back(svc, recs, 20)
    assert len(items) == 19 and {i.kind for i in items} == {MANUAL_STOP}


def test_find_gaps_leaves_manual_stops_out_unless_asked() -> None:
    """002 art.20: a manual stop that ends one incident is not an interruption, unless the unit
    asks."""
    events = [*clip("R1", 2_000, 5_000, 1), *clip("R2", 65_000, 70_000, 1)]
    assert find_gaps(events, [], *EP) == []
    (gap,) = find_gaps(events, [], *EP, report_manual_stops=True)
    assert gap.kind == MANUAL_STOP


def test_a_supervisor_closes_several_items_with_one_explanation(env) -> None:
    """001 art.19(2): the unit head reviews; one written explanation may cover several
    items (one incident, several cuts), each reviewed and audited on its own, all or none."""
    reg = GapRegister(env.store, env.audit)
    reg.open_items("EMU1", "1001", 7, [BATTERY, FLAG_ONLY, SENSOR])
    a, b, c = (i.id for i in reg.list_items())
    for i in (a, b, c):
        reg.add_account(i, "1001", PIN, "Rain got into the recorder on the bridge.")
    text = "Rainstorm on the bridge: the recorder was shielded, then failed."
    with pytest.raises(GapError, match="not verified"):
        reg.close_items([a, b], "9001", "000000", text)
    with pytest.raises(GapError, match="no explanation item 999"):
        reg.close_items([a, 999], "9001", SUP_PIN, text)
    assert all(i.state is State.ACCOUNTED for i in reg.list_items())  # all or none
    closed = reg.close_items([a, b, a], "9001", SUP_PIN, text)  # a twice: reviewed once
    assert [i.id for i in closed] == [a, b]
    assert all(i.explanation == text and i.reviewed_by == "9001" for i in closed)
    entries = _kinds(env.audit, "gap_explained")
    assert [e.data["item"] for e in entries] == [a, b]
    assert all(e.data["batch"] == [a, b] for e in entries)
    with pytest.raises(GapError, match=f"item {a} is reviewed and waiting to be filed"):
        reg.close_items([a, c], "9001", SUP_PIN, text)
    assert reg.item(c).state is State.ACCOUNTED


def test_the_officer_writes_their_own_account_on_their_pin(env) -> None:
    """001 art.19(2): the officer writes the account, the unit head reviews it: stored
    with the item, audited; only the item's own officer, on their own PIN, once (again
    only when the review returns it), before the review."""
    reg = GapRegister(env.store, env.audit)
    reg.open_items("EMU1", "1001", 7, [BATTERY])
    (item,) = reg.list_items()
    account = "Battery ran out at 14:10 during the market inspection; spare fitted at 14:25."
    with pytest.raises(GapError, match="at least 10"):
        reg.add_account(item.id, "1001", PIN, "flat")
    with pytest.raises(GapError, match="not recognised"):
        reg.add_account(item.id, "1001", "000000", account)  # wrong PIN
    with pytest.raises(GapError, match="not recognised"):
        reg.add_account(item.id, "7777", PIN, account)  # nobody: the same words
    with pytest.raises(GapError, match=r"item \d+ is officer 1001's"):
        reg.add_account(item.id, "1002", PIN, account)  # another officer
    assert reg.item(item.id).account is None
    done = reg.add_account(item.id, "1001", PIN, account)
    assert done.account == account and done.account_at is not None and done.is_open
    (entry,) = _kinds(env.audit, "gap_account")
    assert (entry.actor, entry.subject) == ("1001", "EMU1")
    assert entry.data["item"] == item.id and entry.data["account"] == account
    with pytest.raises(GapError, match="waiting for a supervisor's review"):
        reg.add_account(item.id, "1001", PIN, account + " Corrected.")
    reg.close_item(item.id, "9001", SUP_PIN, "Reviewed: account matches the battery log.")
    assert reg.item(item.id).account == account
    assert env.audit.verify().ok


def test_an_existing_register_gains_the_account_columns(tmp_path) -> None:
    """A dock database from before accounts existed opens, and keeps its items."""
    import sqlite3

    from dock.storage import schema

    path = str(tmp_path / "dock.db")
    table = schema.EXPLANATION_ITEMS[0]
    old = table.replace("    account TEXT,\n", "").replace("    account_at REAL,\n", "")
    assert "account" not in old
    with sqlite3.connect(path) as db:  # the table as an earlier release made it
        db.execute(old)
        db.execute(
            "INSERT INTO explanation_items (serial, officer_id, kind, reason, start_ms, "
            "opened_at) VALUES ('EMU1', '1001', 'interrupted', 'battery', 5, 1.0)"
        )
    db.close()
    store = Store(path)
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    (item,) = GapRegister(store, audit).list_items()
    assert item.account is None and item.reason == "battery"
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(explanation_items)")}
    assert {"account", "account_at"} <= columns
    audit.close()
    store.close()


def test_cli_explains_ranges_and_all_open_items_of_an_officer_and_takes_accounts(
    env, monkeypatch, capsys
) -> None:
    """001 art.19(2), on the command line: accounts, then reviews of several items at once
    (ranges, every account of an officer waiting for review), all or none."""
    monkeypatch.setattr(cli_gaps, "service_from", lambda args: env)
    reg = GapRegister(env.store, env.audit)
    gaps = [Gap(INTERRUPTED, "battery", 1_000 * n, None, f"R{n}", "cut") for n in range(1, 7)]
    reg.open_items("EMU1", "1001", 7, gaps[:5])
    reg.open_items("EMU2", "1002", 8, gaps[5:])
    ids = [i.id for i in reg.list_items()]
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    cli_gaps.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return args.func(args)

    text = "One storm, several cuts; checked the recorder."
    assert run("gaps", "account", str(ids[0]), "--officer", "1001", "--pin", PIN,
               "--text", "Rain got into the recorder at the crossing.") == 0  # fmt: skip
    assert "account added to item" in capsys.readouterr().out
    for i in ids[1:5]:
        reg.add_account(i, "1001", PIN, "Same storm, the same crossing.")
    assert run("gaps", "explain", f"{ids[0]}-{ids[2]}", str(ids[3]), "--supervisor", "9001",
               "--pin", SUP_PIN, "--text", text) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("reviewed by 9001") == 4, out
    waiting = [i.id for i in reg.list_items() if i.state is State.ACCOUNTED]
    assert waiting == [ids[4]]
    assert run("gaps", "explain", "--all-open-for", "1001", "--supervisor", "9001", "--pin",
               SUP_PIN, "--text", text) == 0  # fmt: skip
    assert reg.item(ids[4]).state is State.REVIEWED
    assert reg.item(ids[5]).state is State.OPEN  # 1002's item stays open
    assert run("gaps", "explain", "--all-open-for", "1001", "--supervisor", "9001", "--pin",
               SUP_PIN, "--text", text) == 1  # fmt: skip
    assert "no account of officer 1001 waits for review" in capsys.readouterr().err
    assert run("gaps", "explain", "5-2", "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", text) == 2  # fmt: skip
    assert "range" in capsys.readouterr().err
    assert run("gaps", "list", "--all", "--officer", "1001") == 0
    assert "account: Rain got into the recorder" in capsys.readouterr().out
