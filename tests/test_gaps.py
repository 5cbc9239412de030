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

import dock.cli_gaps as cli_gaps
from dock.audit import AuditLog
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
from dock.store import Store
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
        "manual stop and restart within the episode: shown to the supervisor",
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
    assert _rows(find_gaps(events, recs, *episode)) == want


def test_manual_stops_can_be_left_out_and_say_how_long() -> None:
    events = [*clip("R1", 2_000, 5_000, 1), *clip("R2", 65_000, 70_000, 1)]
    (gap,) = find_gaps(events, [], *EP)
    assert gap.detail == "stopped by hand and restarted 60 s later"
    assert find_gaps(events, [], *EP, report_manual_stops=False) == []


def test_details_say_where_the_item_came_from() -> None:
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
    reg = GapRegister(env.store, env.audit)
    reg.open_items("EMU1", "1001", 7, [BATTERY, SENSOR])
    item = reg.list_items()[0].id
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
    assert (closed.closed_by, closed.explanation) == ("9001", text)
    assert closed.closed_at is not None and not closed.is_open
    (entry,) = _kinds(env.audit, "gap_explained")
    assert (entry.actor, entry.subject) == ("9001", "EMU1")
    assert entry.data["explanation"] == text and entry.data["item"] == item

    with pytest.raises(GapError, match="already closed by 9001"):
        reg.close_item(item, "9001", SUP_PIN, "A second, different explanation.")
    with pytest.raises(GapError, match="no explanation item"):
        reg.close_item(999, "9001", SUP_PIN, text)
    assert reg.item(item).explanation == text
    assert [i.kind for i in reg.list_items()] == [FAULT]
    assert len(reg.list_items(open_only=False)) == 2
    assert len(_kinds(env.audit, "gap_explained")) == 1
    assert env.audit.verify().ok


def test_cli_lists_and_explains(env, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_gaps, "service_from", lambda args: env)
    GapRegister(env.store, env.audit).open_items("EMU1", "1001", 7, [BATTERY])
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    cli_gaps.add_gap_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return args.func(args)

    assert run("gaps", "list", "--officer", "1001", "--json") == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["reason"] == "battery" and item["start_utc"] == "1970-01-01T00:00:05.000Z"
    assert run("gaps", "explain", str(item["id"]), "--supervisor", "9001", "--pin", "1",
               "--text", "Battery ran out on patrol.") == 1  # fmt: skip
    assert "not verified" in capsys.readouterr().err
    assert run("gaps", "explain", str(item["id"]), "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", "Battery ran out on patrol.") == 0  # fmt: skip
    assert "closed by 9001" in capsys.readouterr().out
    assert run("gaps", "list") == 0
    assert "no open explanation items" in capsys.readouterr().out
    assert run("gaps", "list", "--all") == 0
    out = capsys.readouterr().out
    assert "battery" in out and "closed by 9001" in out and "3 s" in out


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
