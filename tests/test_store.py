"""The dock database: custody rules the schema itself enforces, PINs, durability."""

from __future__ import annotations

import sqlite3

import pytest

from dock.storage.store import Store, StoreError


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(str(tmp_path / "dock.db"))
    s.add_officer("1001", "Wang Wei", "Traffic 3", "246810", badge="BADGE-1")
    s.add_officer("1002", "Li Na", "Traffic 3", "135790")
    s.add_officer("9001", "Zhao Min", "Traffic 3", "999000", role="supervisor")
    s.enrol_device("EMU0001", "BWC", "1.4.2", bytes(32))
    s.enrol_device("EMU0002", "BWC", "1.4.2", bytes(32))
    return s


def test_database_is_wal_and_fully_synchronous(store: Store) -> None:
    db = store._db()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_pin_is_checked_and_never_stored_in_clear(store: Store, tmp_path) -> None:
    assert store.check_pin("1001", "246810")
    assert not store.check_pin("1001", "246811")
    assert not store.check_pin("nobody", "246810")
    raw = (tmp_path / "dock.db").read_bytes() + (tmp_path / "dock.db-wal").read_bytes()
    assert b"246810" not in raw


def test_short_or_non_digit_pin_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="at least 6 digits"):
        store.add_officer("1003", "Sun Li", "T3", "123")
    with pytest.raises(StoreError, match="digits only"):
        store.add_officer("1003", "Sun Li", "T3", "abcdef")


def test_one_device_per_officer_and_one_officer_per_device(store: Store) -> None:
    """003 art.21(2): the database itself holds one recorder per officer and one officer per
    recorder."""
    store.open_custody("EMU0001", "1001", "1")
    with pytest.raises(StoreError):
        store.open_custody("EMU0002", "1001", "2")  # no second device for one officer
    with pytest.raises(StoreError):
        store.open_custody("EMU0001", "1002", "1")  # no lending: the device is out
    # the rule lives in the schema, so even a raw insert is refused
    with pytest.raises(sqlite3.IntegrityError):
        store._db().execute(
            "INSERT INTO custody (serial, officer_id, slot_id, out_at) VALUES (?,?,?,?)",
            ("EMU0002", "1001", "2", 0.0),
        )


def test_custody_closes_on_return_and_frees_both_sides(store: Store) -> None:
    """003 art.21(2): custody closes on return and frees both the officer and the recorder."""
    c = store.open_custody("EMU0001", "1001", "1")
    assert store.awaiting_takeaway("1") == "EMU0001"
    store.mark_taken("1")
    assert store.awaiting_takeaway("1") is None
    closed = store.close_custody("EMU0001", "2")
    assert closed is not None and closed.id == c.id and closed.in_at is not None
    assert store.close_custody("EMU0001", "2") is None  # nothing closed twice
    store.open_custody("EMU0001", "1002", "2")  # available again


def test_custody_survives_reopening_the_database(store: Store, tmp_path) -> None:
    """003 art.21(2): the custody chain (device, officer, time) survives reopening the database."""
    store.open_custody("EMU0002", "1002", "3")
    store.close()
    again = Store(str(tmp_path / "dock.db"))
    held = again.open_custody_of_officer("1002")
    assert held is not None and held.serial == "EMU0002"


def test_flags_disable_and_ratio(store: Store) -> None:
    """001 art.18; 000 §14.1: a recorder flagged lost, an officer disabled, and the ratio of
    recorders per officer reported."""
    store.flag_device("EMU0002", lost=True, note="reported lost on patrol")
    assert store.device("EMU0002").lost  # type: ignore[union-attr]
    store.set_officer_disabled("1002", True)
    assert store.officer("1002").disabled  # type: ignore[union-attr]
    assert store.ratio() == {"officers": 2, "recorders": 1, "recorders_per_officer": 0.5}
    with pytest.raises(StoreError):
        store.flag_device("NOPE", lost=True)


def test_status_history_is_kept_per_device(store: Store) -> None:
    """004 att.3 art.9; 004 att.3 art.16: each recorder's status history (battery, the drift found)
    is kept."""
    for pct in (90, 80, 70):
        store.record_status("EMU0001", battery_percent=pct, drift_before_s=0.4)
    hist = store.status_history("EMU0001")
    assert [h["battery_percent"] for h in hist] == [70, 80, 90]
    with pytest.raises(ValueError):
        store.record_status("EMU0001", voltage=4.2)
