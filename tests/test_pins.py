"""PINs (issue 10 §5): wrong PINs lock an officer number after PIN_TRIES in a row, a
supervisor unlocks it, trivial PINs are refused when set, and a stranger cannot tell an
officer number that exists from one that does not. REQUIREMENTS §2: check-out to one
named officer (003 art.21(2)), who proves who they are."""

from __future__ import annotations

import argparse
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import dock.cli.officers as cli_officers
import dock.storage.store_officers as officers_mod
from dock.daemon.service import Override
from dock.evidence.gaps import INTERRUPTED, Gap, GapError, GapRegister
from dock.storage.audit import AuditLog
from dock.storage.store import PIN_TRIES, Store, StoreError, pin_problem

from .conftest import PIN

SUP_PIN = "999000"


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def kinds(audit, kind: str) -> list:
    return [e for e in audit.entries() if e.kind == kind]


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "dock.db"))
    s.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    s.add_officer("9001", "Zhao Min", "Traffic 3", SUP_PIN, role="supervisor")
    yield s
    s.close()


# --- the store: counting, locking, equal work --------------------------------------------


def test_five_wrong_pins_in_a_row_lock_the_pin_until_unlocked(store, tmp_path) -> None:
    """003 art.21(2): five wrong PINs in a row lock the PIN until a supervisor unlocks it."""
    assert PIN_TRIES == 5
    lefts = [store.verify_pin("1001", "000000").tries_left for _ in range(PIN_TRIES - 1)]
    assert lefts == [4, 3, 2, 1]
    last = store.verify_pin("1001", "000000")
    assert (last.ok, last.locked, last.just_locked, last.tries_left) == (False, True, True, 0)
    right = store.verify_pin("1001", PIN)  # the right PIN no longer opens it
    assert (right.ok, right.locked, right.just_locked) == (False, True, False)
    assert not store.check_pin("1001", PIN)
    reopened = Store(store.path)  # the lock lives in the database
    assert reopened.verify_pin("1001", PIN).locked
    assert reopened.pin_locked("1001") and reopened.locked_pins() == {"1001"}
    assert reopened.unlock_pin("1001") is True
    assert reopened.verify_pin("1001", PIN).ok and not reopened.pin_locked("1001")
    assert reopened.unlock_pin("1001") is False  # nothing to unlock
    reopened.close()


def test_a_right_pin_before_the_last_try_starts_the_count_again(store) -> None:
    """003 art.21(2): a right PIN before the last try starts the count of wrong ones again."""
    for _ in range(PIN_TRIES - 1):
        store.verify_pin("1001", "000000")
    assert store.verify_pin("1001", PIN).ok
    assert store.verify_pin("1001", "000000").tries_left == PIN_TRIES - 1  # in a row


def test_an_unknown_number_answers_exactly_like_a_known_one(store, monkeypatch) -> None:
    """A stranger learns nothing from trying numbers: the same tries left, the same lock,
    one scrypt each time."""
    calls = []
    real = officers_mod.hash_pin
    monkeypatch.setattr(
        officers_mod, "hash_pin", lambda pin, salt: calls.append(1) or real(pin, salt)
    )
    known = [store.verify_pin("1001", "000000") for _ in range(PIN_TRIES + 1)]
    unknown = [store.verify_pin("7777", "000000") for _ in range(PIN_TRIES + 1)]
    shape = [(c.ok, c.locked, c.just_locked, c.tries_left) for c in known]
    assert [(c.ok, c.locked, c.just_locked, c.tries_left) for c in unknown] == shape
    assert len(calls) == 2 * (PIN_TRIES + 1)
    assert [c.known for c in known] == [True] * 6 and not any(c.known for c in unknown)


def test_a_database_from_before_the_lockout_opens(tmp_path) -> None:
    path = str(tmp_path / "dock.db")
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE pin_failures")
    db.commit()
    db.close()
    s = Store(path)
    s.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    assert s.verify_pin("1001", PIN).ok
    s.close()


@pytest.mark.parametrize(
    ("pin", "why"),
    [
        ("000000", "one digit repeated"),
        ("777777", "one digit repeated"),
        ("123456", "run of digits"),
        ("654321", "run of digits"),
        ("890123", "run of digits"),
        ("3456789", "run of digits"),
        ("121212", "repeats a short pattern"),
        ("123123", "repeats a short pattern"),
        ("12345", "at least 6 digits"),
        ("100100", "repeats a short pattern"),
        ("24681a", "digits only"),
        ("", "at least 6 digits"),
    ],
)
def test_trivial_pins_are_refused_when_set(store, pin, why) -> None:
    assert why in (pin_problem(pin, 6, "5005") or "")
    with pytest.raises(StoreError, match=why):
        store.add_officer("5005", "Sun Li", "Traffic 3", pin)
    assert store.officer("5005") is None


def test_the_officer_number_is_not_a_pin_and_good_pins_pass(store) -> None:
    assert "officer number" in pin_problem("100123", 6, "100123")
    for good in (PIN, SUP_PIN, "135790", "482915", "102938"):
        assert pin_problem(good, 6, "5005") is None, good


def test_a_new_officer_does_not_inherit_the_tries_on_their_number(store) -> None:
    for _ in range(PIN_TRIES):
        store.verify_pin("5005", "000000")  # someone tried the number before it existed
    store.add_officer("5005", "Sun Li", "Traffic 3", "482915")
    assert store.verify_pin("5005", "482915").ok


# --- check-out ----------------------------------------------------------------------------


def test_check_out_says_the_same_for_a_wrong_pin_and_an_unknown_number(make_dock) -> None:
    """003 art.21(2), REQUIREMENTS §2: a stranger cannot tell whether an officer number
    exists; the officer still sees how many tries are left."""
    svc, _ = make_dock({"battery_percent": 95.0})
    svc.locale = "en"
    wrong = svc.checkout("1001", "000000", refresh=False)
    nobody = svc.checkout("7777", "000000", refresh=False)
    assert codes(wrong) == codes(nobody) == ["officer_unknown"]
    assert wrong.reasons[0].message == nobody.reasons[0].message == "Wrong ID/PIN: 4 left"


def test_check_out_locks_after_five_wrong_pins_and_a_supervisor_unlocks(
    make_dock, monkeypatch, capsys
) -> None:
    """003 art.21(2), REQUIREMENTS §2: five wrong PINs in a row lock the officer's PIN
    (audited once), the right PIN is refused while locked, a badge still identifies the
    officer, and a supervisor unlocks with their own PIN (audited with both names)."""
    svc, _ = make_dock({"battery_percent": 95.0})
    svc.locale = "en"
    for _ in range(PIN_TRIES):
        last = svc.checkout("1001", "000000", refresh=False)
    assert codes(last) == ["pin_locked"]
    assert last.reasons[0].message == "PIN locked: ask a supervisor"
    assert codes(svc.checkout("1001", PIN, refresh=False)) == ["pin_locked"]
    (locked,) = kinds(svc.audit, "pin_locked")
    assert locked.subject == "1001" and locked.data["purpose"] == "checkout"
    refused = kinds(svc.audit, "checkout_refused")
    assert [e.data["reasons"] for e in refused][-2:] == [["pin_locked"], ["pin_locked"]]
    for _ in range(PIN_TRIES):  # a stranger trying a number that does not exist: the same
        stranger = svc.checkout("7777", "000000", refresh=False)
    assert codes(stranger) == ["pin_locked"]

    monkeypatch.setattr(cli_officers, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    parser.add_argument("--actor", default="admin")
    cli_officers.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return args.func(args)

    assert run("officer", "list") == 0
    assert "PIN locked" in capsys.readouterr().out
    not_a_supervisor = ("--supervisor", "1002", "--supervisor-pin", PIN)
    assert run("officer", "unlock", "1001", *not_a_supervisor) == 1
    assert run("officer", "unlock", "1001", "--supervisor", "9001", "--supervisor-pin",
               "000000") == 1  # fmt: skip
    assert "not verified" in capsys.readouterr().err
    assert svc.store.pin_locked("1001")
    assert run("officer", "unlock", "1001", "--supervisor", "9001", "--supervisor-pin",
               SUP_PIN) == 0  # fmt: skip
    assert "unlocked" in capsys.readouterr().out
    (unlocked,) = kinds(svc.audit, "pin_unlocked")
    assert (unlocked.actor, unlocked.subject) == ("9001", "1001")
    assert unlocked.data["supervisor"] == "9001" and unlocked.data["officer"] == "1001"
    assert unlocked.data["by"] == "admin"
    assert svc.checkout("1001", PIN).granted


def test_a_locked_pin_does_not_stop_the_badge(make_dock) -> None:
    svc, _ = make_dock({"battery_percent": 95.0})
    for _ in range(PIN_TRIES):
        svc.checkout("1001", "000000", refresh=False)
    assert svc.checkout(badge="BADGE-1001").granted


def test_supervisor_override_credentials_go_through_the_same_lockout(make_dock) -> None:
    """REQUIREMENTS §1: an override needs a supervisor, audited; guessing their PIN
    locks it like any other."""
    svc, _ = make_dock({"battery_percent": 60.0})
    for _ in range(PIN_TRIES):
        d = svc.checkout("1001", PIN, override=Override("9001", "000000", "riot response"))
    assert codes(d) == ["override_pin_locked"]
    right = svc.checkout("1001", PIN, override=Override("9001", SUP_PIN, "riot response"))
    assert codes(right) == ["override_pin_locked"] and not right.granted
    (locked,) = kinds(svc.audit, "pin_locked")
    assert locked.subject == "9001" and locked.data["purpose"] == "override"


def test_unlocking_an_unknown_number_or_an_unlocked_pin_says_so(make_dock, monkeypatch,
                                                               capsys) -> None:  # fmt: skip
    svc, _ = make_dock({"battery_percent": 95.0})
    monkeypatch.setattr(cli_officers, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    parser.add_argument("--actor", default="admin")
    cli_officers.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["officer", "unlock", "7777", "--supervisor", "9001",
                              "--supervisor-pin", SUP_PIN])  # fmt: skip
    assert args.func(args) == 2 and "no officer 7777" in capsys.readouterr().err
    args = parser.parse_args(["officer", "unlock", "1001", "--supervisor", "9001",
                              "--supervisor-pin", SUP_PIN])  # fmt: skip
    assert args.func(args) == 0 and "was not locked" in capsys.readouterr().out


# --- every other PIN goes through the lockout too ----------------------------------------


def test_gap_and_account_pins_count_towards_the_lockout(store, tmp_path) -> None:
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    reg = GapRegister(store, audit)
    reg.open_items("EMU1", "1001", 7, [Gap(INTERRUPTED, "battery", 5, None, "R1", "cut")])
    (item,) = reg.list_items()
    text = "Battery ran out during a long traffic stop."
    for left in range(PIN_TRIES - 1, 0, -1):
        with pytest.raises(GapError, match="not verified"):
            reg.close_item(item.id, "9001", "000000", text)
        with pytest.raises(GapError, match=f"not recognised \\({left} tries left\\)"):
            reg.add_account(item.id, "1001", "000000", text)
    for pin in ("000000", SUP_PIN):  # the try that locks says so; then even the right PIN
        with pytest.raises(GapError, match="PIN locked"):
            reg.close_item(item.id, "9001", pin, text)
    for pin in ("000000", PIN):
        with pytest.raises(GapError, match="PIN locked"):
            reg.add_account(item.id, "1001", pin, text)
    assert [(e.subject, e.data["purpose"]) for e in kinds(audit, "pin_locked")] == [
        ("9001", "gap_explain"), ("1001", "gap_account"),
    ]  # fmt: skip
    audit.close()


def test_the_cli_refuses_a_trivial_pin_in_one_line(make_dock, monkeypatch, capsys) -> None:
    svc, _ = make_dock({"battery_percent": 95.0})
    monkeypatch.setattr(cli_officers, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    parser.add_argument("--actor", default="admin")
    cli_officers.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["officer", "add", "5005", "--name", "Sun Li", "--unit", "T3",
                              "--pin", "123456"])  # fmt: skip
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "run of digits" in err, err
    assert svc.store.officer("5005") is None
