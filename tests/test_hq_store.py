"""The fleet database on its own: events stored once, boots' progress, alert life cycle."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hq.alerts import AlertKind, Decision
from hq.store import Store

T = "2026-11-22T09:05:53.120Z"


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "fleet.sqlite3"))
    yield s
    s.close()


def ev(seq: int, boot: str = "b1", kind: str = "checkin") -> dict:
    return {"schema": 1, "type": kind, "boot": boot, "seq": seq, "time": T, "data": {}}


def test_wal_and_schema(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_event_stored_once(store):
    with store.transaction():
        assert store.insert_event("s", "d", ev(1), 1.0)
        assert not store.insert_event("s", "d", ev(1), 2.0)
        assert store.insert_event("s", "d", ev(1, boot="b2"), 2.0)
        assert store.insert_event("s", "d2", ev(1), 2.0)
    assert store.db.execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_boot_progress_and_gaps(store):
    with store.transaction():
        for seq in (1, 2, 5, 9):
            store.insert_event("s", "d", ev(seq), 1.0)
        store.add_received("s", "d", "b1", 4, 9)
        store.note_last_event("s", "d", "b1", 11)
    assert store.boot_progress("s", "d", "b1") == (4, 11)
    assert store.gaps("s", "d", "b1", 11) == [(3, 4), (6, 8), (10, 11)]
    assert store.gaps("s", "d", "b1", 11, limit=1) == [(3, 4)]
    assert store.boot_progress("s", "d", "unknown") == (0, 0)


@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=50)
@given(present=st.sets(st.integers(1, 60)), upto=st.integers(0, 70))
def test_gaps_are_exactly_the_missing_seqs(tmp_path_factory, present, upto):
    s = Store(str(tmp_path_factory.mktemp("g") / "f.sqlite3"))
    try:
        with s.transaction():
            for seq in present:
                s.insert_event("s", "d", ev(seq), 1.0)
        gaps = s.gaps("s", "d", "b1", upto, limit=1000)
        missing = {n for a, b in gaps for n in range(a, b + 1)}
        assert missing == set(range(1, upto + 1)) - present
        assert all(a <= b for a, b in gaps)
    finally:
        s.close()


def test_alert_opens_once_repeats_and_clears(store):
    d = Decision()
    d.raise_("s", "d", AlertKind.DOCK_LOST, "", "Last Will")
    with store.transaction():
        first = store.apply(d, 10.0)
    with store.transaction():
        again = store.apply(d, 11.0)  # still lost: no new alert, no write
    assert len(first) == 1 and again == []
    assert len(store.alerts()) == 1
    back = Decision()
    back.clear("s", "d", AlertKind.DOCK_LOST)
    with store.transaction():
        store.apply(back, 12.0)
    assert store.alerts() == []
    [row] = store.alerts(include_closed=True)
    assert row["closed_at"] == 12.0
    with store.transaction():
        assert len(store.apply(d, 13.0)) == 1  # lost again: a new alert
    assert len(store.alerts(include_closed=True)) == 2


def test_event_alert_counts_repeats_and_closes_when_acknowledged(store):
    d = Decision()
    d.raise_("s", "d", AlertKind.SCANNER_HIT, "X/R1", "EICAR")
    with store.transaction():
        store.apply(d, 1.0)
        store.apply(d, 2.0)
    [row] = store.alerts()
    assert row["count"] == 2
    assert store.ack(row["id"], "duty officer", 3.0) == "acked"
    assert store.ack(row["id"], "duty officer", 4.0) == "already"
    assert store.ack(9999, "x", 4.0) == "unknown"
    assert store.alerts() == []
    with store.transaction():
        store.apply(d, 5.0)  # a new hit after the acknowledgement is a new alert
    assert [a["count"] for a in store.alerts()] == [1]


def test_acknowledged_condition_stays_open_until_it_ends(store):
    d = Decision()
    d.raise_("s", "d", AlertKind.BATTERY_HEALTH, "X", "70%")
    with store.transaction():
        store.apply(d, 1.0)
    [row] = store.alerts()
    store.ack(row["id"], "tech", 2.0)
    [row] = store.alerts()
    assert row["acked_by"] == "tech" and row["closed_at"] is None
    with store.transaction():
        store.apply(d, 3.0)
    assert len(store.alerts(include_closed=True)) == 1  # not raised again


def test_only_one_open_alert_per_key_even_from_two_connections(store, tmp_path):
    other = Store(store.path)
    try:
        with other.transaction():
            other.db.execute(
                "INSERT INTO alerts (site, dock, kind, subject, detail, opened_at, last_at) "
                "VALUES ('s','d','scanner_hit','x','',1,1)"
            )
        with pytest.raises(sqlite3.IntegrityError), other.transaction():
            other.db.execute(
                "INSERT INTO alerts (site, dock, kind, subject, detail, opened_at, last_at) "
                "VALUES ('s','d','scanner_hit','x','',1,1)"
            )
    finally:
        other.close()


def test_rollback_restores_alert_cache(store):
    d = Decision()
    d.raise_("s", "d", AlertKind.DOCK_LOST, "", "Last Will")
    with pytest.raises(RuntimeError), store.transaction():
        store.apply(d, 1.0)
        raise RuntimeError
    with store.transaction():
        assert len(store.apply(d, 2.0)) == 1  # the rolled-back alert is opened for real


def test_failures_window(store):
    with store.transaction():
        counts = [
            store.count_failure("s", "d", AlertKind.CHECKS_FAILING, "X", t, 3600)
            for t in (0, 1000, 3000, 4000, 8000)
        ]
    assert counts == [1, 2, 3, 3, 1]


def test_fleet_view(store):
    with store.transaction():
        store.set_state("s", "d", {"state": "ready", "boot": "b", "time": T}, 5.0)
        store.set_birth(
            "s",
            "d",
            {
                "boot": "b",
                "time": T,
                "started": T,
                "software": "0.1.0",
                "config_hash": "h",
                "slots": ["1", "2"],
                "policy": "strict",
            },
            5.0,
        )
        store.set_slot("s", "d", {"slot": "1", "state": "ready", "time": T, "serial": "X"}, 5.0)
        health = {
            "boot": "b",
            "seq": 2,
            "time": T,
            "dock": {"outbox_pending": 4},
            "slots": [{"slot": "1", "state": "ready", "serial": "X", "battery_health_pct": 70}],
        }
        assert store.set_health("s", "d", health, 6.0)
        assert not store.set_health("s", "d", {**health, "seq": 1}, 7.0)  # older
    [dock] = store.fleet()
    assert dock["state"] == "ready" and dock["software"] == "0.1.0"
    assert dock["outbox_pending"] == 4 and dock["slot_ids"] == ["1", "2"]
    assert dock["slots"][0]["battery_health_pct"] == 70
    assert dock["slots"][0]["failed"] == []
    assert dock["last_seen_at"] == 7.0 and dock["last_health_at"] == 6.0
