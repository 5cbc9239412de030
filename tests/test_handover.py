"""The handover on return (REQUIREMENTS.md §4 and §2), end to end through the daemon's
service with emulated recorders over TCP, real SQLite and the real audit log: a return
is signed for by badge or by number and PIN, a return by someone else is recorded as
such and flagged, a return nobody signs for is recorded unsigned, and none of it ever
holds up the offload. Moments come from the dock's own steps (a sweep, a signature) and
the window's end from a clock the test drives; nothing sleeps on the wall clock."""

from __future__ import annotations

import io
import sqlite3
from contextlib import redirect_stdout
from typing import Any

import pytest

from dock.cli.custody import print_status
from dock.daemon.model import Decision
from dock.domain.audit_kinds import AuditKind
from dock.services import requests
from dock.services.status import status_report
from dock.storage.handover_table import HandoverTable

from .conftest import PIN


class StoreClock:
    """The clock the dock's database stamps returns with, driven by the test."""

    def __init__(self) -> None:
        import time

        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def kinds(svc: Any, kind: AuditKind) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def register(svc: Any) -> list[dict[str, Any]]:
    return list(reversed(HandoverTable(svc.store).entries()))


def out_and_back(svc: Any, rec: Any, start_recorder: Any, recordings: int = 2) -> Any:
    """Check the recorder out to 1001, take it on patrol, record, dock it again; the
    recorder as it serves again."""
    assert svc.checkout("1001", PIN).granted
    port = rec.url.rsplit(":", 1)[1]
    rec.server.stop()  # taken out of the slot ...
    svc.sweep()
    if recordings:
        rec.model._generate_recordings(recordings, 40_000, 0)  # ... recorded on shift ...
        rec.model.save()
    back = start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=rec.data_dir)  # ... back
    svc.sweep()  # the return: custody closed, the handover asked for, the offload run
    svc.wait_offloads(timeout=60)
    assert svc.store.open_custody_of_officer("1001") is None
    return back


def status_text(svc: Any) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        print_status(status_report(svc, list(svc.views.values())))
    return out.getvalue()


def test_the_custodian_signs_the_handover_with_the_badge_at_the_dock(
    make_dock, start_recorder
) -> None:
    """001 art.19(3): on return the officer signs the handover register; the dock takes
    the badge read at its reader as the signature and writes who, whose, which recorder,
    which slot, when and how, with its audit entry."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder)
    (waiting,) = HandoverTable(svc.store).pending()
    assert waiting["custodian"] == "1001" and waiting["slot_id"] == "1"
    assert status_report(svc, svc.views.values())["slots"][0]["handover"]["state"] == "waiting"

    signed = svc.badge_read("BADGE-1001")  # the officer badges at the dock
    assert signed.as_dict()["how"] == "badge" and signed.by_custodian is True
    (row,) = register(svc)
    assert (row["returned_by"], row["custodian"], row["serial"], row["slot_id"], row["how"],
            row["by_custodian"]) == ("1001", "1001", "EMU0001", "1", "badge", 1)  # fmt: skip
    (entry,) = kinds(svc, AuditKind.HANDOVER)
    assert entry.actor == "1001" and entry.subject == "EMU0001"
    assert entry.data["entry"] == row["id"] and entry.data["how"] == "badge"
    assert HandoverTable(svc.store).pending() == []
    assert svc.badge_decision["handover"]["returned_by"] == "1001"  # the kiosk shows it
    state = status_report(svc, svc.views.values())["slots"][0]["handover"]
    assert state["state"] == "signed" and state["returned_by_name"] == "Wang Wei"
    # signed once: the same badge again is a check-out decision, not a second signature
    assert isinstance(svc.badge_read("BADGE-1001"), Decision)
    assert len(register(svc)) == 1 and len(kinds(svc, AuditKind.HANDOVER)) == 1


def test_the_custodian_signs_with_number_and_pin_under_the_checkout_lockout(
    make_dock, start_recorder
) -> None:
    """001 art.19(3): the handover signed with officer number and PIN (the kiosk's
    keypad); a wrong PIN counts against the same lockout as a check-out's."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    wrong = svc.sign_handover("1", "1001", "000000")
    assert wrong["signed"] is False and wrong["code"] == "not_verified"
    assert wrong["tries_left"] == 4
    assert not svc.checkout("1001", "111111").granted  # one wrong try at check-out ...
    wrong = svc.sign_handover("1", "1001", "222222")
    assert wrong["tries_left"] == 2  # ... counted with the handover's: one lockout
    assert register(svc) == [] and len(kinds(svc, AuditKind.HANDOVER_REFUSED)) == 2

    signed = svc.sign_handover("1", "1001", PIN)
    assert signed["signed"] is True and signed["how"] == "pin" and signed["by_custodian"]
    assert signed["returned_by_name"] == "Wang Wei"
    (row,) = register(svc)
    assert row["how"] == "pin" and row["returned_by"] == "1001" and row["by_custodian"] == 1
    assert len(kinds(svc, AuditKind.HANDOVER)) == 1
    again = svc.sign_handover("1", "1001", PIN)
    assert again["signed"] is False and again["code"] == "nothing_pending"


def test_a_pin_locked_at_checkout_cannot_sign_the_handover(make_dock, start_recorder) -> None:
    """001 art.19(3): one lockout for every PIN at the dock: five wrong tries at check-out
    lock the handover too (and the return waits, later recorded unsigned)."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    for _ in range(5):
        assert not svc.checkout("1001", "000000").granted
    locked = svc.sign_handover("1", "1001", PIN)
    assert locked["signed"] is False and locked["code"] == "locked"
    assert register(svc) == []


def test_a_return_by_another_officer_is_recorded_as_such_and_flagged(
    make_dock, start_recorder
) -> None:
    """003 art.21(2): no lending; 001 art.19(3): the register says who handed the recorder
    back. Another officer signing for 1001's recorder is written as a return by someone
    else (its own audit kind), and ``dock status`` says so."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder)
    signed = svc.sign_handover("1", "1002", PIN)
    assert signed["signed"] is True and signed["by_custodian"] is False
    assert (signed["returned_by"], signed["custodian"]) == ("1002", "1001")
    (row,) = register(svc)
    assert row["returned_by"] == "1002" and row["custodian"] == "1001" and row["by_custodian"] == 0
    (flag,) = kinds(svc, AuditKind.HANDOVER_BY_OTHER)
    assert flag.actor == "1002" and flag.data["custodian"] == "1001"
    assert kinds(svc, AuditKind.HANDOVER) == []
    said = status_text(svc)
    assert "slot 1: RETURNED BY 1002, not by its custodian 1001" in said


def test_another_officer_signs_by_badge_after_the_kiosk_asks_for_it(
    make_dock, start_recorder
) -> None:
    """003 art.21(2), 001 art.19(3): a badge that is not the custodian's signs a return
    only when the kiosk armed the reader for that slot; otherwise it is a check-out."""
    svc, recs = make_dock(
        {"serial": "EMU0001", "battery_percent": 95.0},
        {"serial": "EMU0002", "battery_percent": 96.0},
    )
    svc.store.add_officer("1003", "Chen Yu", "Traffic 3", PIN, badge="BADGE-1003")
    assert svc.checkout("1001", PIN).device == "EMU0002"  # the better charged one
    port = recs[1].url.rsplit(":", 1)[1]
    recs[1].server.stop()
    svc.sweep()
    start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=recs[1].data_dir)
    svc.sweep()
    assert svc.arm_handover("1") == {"armed": False, "code": "nothing_pending", "slot": "1"}
    assert svc.arm_handover("2")["armed"] is True
    signed = svc.badge_read("BADGE-1003")
    assert signed.returned_by == "1003" and signed.by_custodian is False and signed.how == "badge"
    (flag,) = kinds(svc, AuditKind.HANDOVER_BY_OTHER)
    assert flag.data["how"] == "badge" and flag.data["slot"] == "2"
    assert svc.store.open_custody_of_officer("1003") is None  # not a check-out


def test_an_unsigned_return_is_recorded_and_the_footage_was_offloaded_regardless(
    make_dock, start_recorder
) -> None:
    """001 art.19(3): a return nobody signs for within the window is written to the
    register as unsigned (flagged in ``dock status``); the offload never waited for it:
    the footage is archived, verified and erased from the recorder before any signature."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    clock = StoreClock()
    svc.store._clock = clock
    out_and_back(svc, recs[0], start_recorder, recordings=3)
    archived = svc.store.archive_entries()
    assert len(archived) == 3  # offloaded, verified and erased while the return waits
    assert all(r["erased_at"] is not None for r in archived)
    assert kinds(svc, AuditKind.OFFLOAD_DONE) and HandoverTable(svc.store).pending()
    assert "waits to be signed for" in status_text(svc)

    clock.t += svc.parts.handover_window_s - 1
    svc.sweep()
    assert register(svc) == []  # still within the window
    clock.t += 2
    svc.sweep()
    (row,) = register(svc)
    assert row["how"] == "none" and row["returned_by"] is None and row["by_custodian"] is None
    (entry,) = kinds(svc, AuditKind.HANDOVER_UNSIGNED)
    assert entry.actor == "dock" and entry.data["custodian"] == "1001"
    assert HandoverTable(svc.store).pending() == []
    assert "slot 1: return of 1001's recorder NOT SIGNED FOR" in status_text(svc)
    late = svc.sign_handover("1", "1001", PIN)  # too late: recorded once, as it was
    assert late["signed"] is False and len(register(svc)) == 1


def test_the_handover_register_refuses_updates_and_deletes(make_dock, start_recorder) -> None:
    """001 art.19(3): the handover register is append-only (a trigger refuses changing or
    deleting an entry, whoever opens the database)."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    assert svc.sign_handover("1", "1002", PIN)["signed"]
    db = sqlite3.connect(svc.store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE handovers SET returned_by = '1001', by_custodian = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM handovers")
    finally:
        db.close()
    (row,) = register(svc)
    assert row["returned_by"] == "1002"


def test_the_handover_is_a_request_of_the_one_table(make_dock, start_recorder) -> None:
    """001 art.19(3): front ends sign through dock/services/requests.py (the kiosk's
    control request calls it); a bad slot is a one-line refusal."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    said = requests.call(
        svc, "custody.handover", {"slot": "9", "officer": "1001", "pin": PIN}, actor="1001"
    )
    assert said["signed"] is False and said["code"] == "no_slot"
    said = requests.call(
        svc, "custody.handover", {"slot": "1", "officer": "1001", "pin": PIN}, actor="1001"
    )
    assert said["signed"] is True and said["by_custodian"] is True


def test_a_register_that_fails_never_holds_up_the_offload(
    make_dock, start_recorder, monkeypatch
) -> None:
    """001 art.19(3) beside 001 art.19(4): the handover is recorded beside the offload,
    never in front of it; a handover register that cannot be written (a database error)
    still leaves the footage archived, verified and erased from the recorder."""
    from dock.evidence.handovers import HandoverRegister

    def broken(*_: Any) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    monkeypatch.setattr(HandoverRegister, "awaiting", broken)
    out_and_back(svc, recs[0], start_recorder, recordings=2)
    archived = svc.store.archive_entries()
    assert len(archived) == 2 and all(r["erased_at"] is not None for r in archived)
    assert HandoverTable(svc.store).pending() == []


def test_dock_handover_signs_and_lists_the_register_on_the_command_line(
    tmp_path, start_recorder, capsys
) -> None:
    """001 art.19(3), 003 art.21(2): ``dock handover sign`` (the request table, no daemon
    running) signs for a return, a wrong PIN refused in one line with the tries left;
    ``dock handover list`` shows the register with a return by someone else flagged."""
    from dock.cli.main import main
    from dock.config import load_config
    from dock.daemon.composition import build_service

    from .conftest import write_dock_config

    rec = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, serial="EMU0001")
    path, _state, _evidence = write_dock_config(tmp_path, rec.url)
    svc = build_service(load_config(path))
    svc.enrol("1", "admin")
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.store.add_officer("1002", "Li Na", "Traffic 3", PIN)
    svc.sweep()
    out_and_back(svc, rec, start_recorder, recordings=0)
    capsys.readouterr()

    base = ["--config", str(path), "handover"]
    assert main([*base, "sign", "--slot", "1", "--officer", "1002", "--pin", "000000"]) == 1
    said = capsys.readouterr().out
    assert said == "not signed: officer number or PIN not recognised (4 tries left)\n"
    assert main([*base, "sign", "--slot", "1", "--officer", "1002", "--pin", PIN]) == 0
    said = capsys.readouterr().out
    assert said == "signed: EMU0001 in slot 1 handed back by 1002, NOT its custodian 1001\n"
    assert main([*base, "list"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "EMU0001" in line and "custodian 1001  returned by 1002 (pin)  BY OTHER" in line
    (entry,) = kinds(svc, AuditKind.HANDOVER_BY_OTHER)
    assert entry.actor == "1002"


def test_the_register_row_and_its_audit_entry_are_written_together(
    make_dock, start_recorder, monkeypatch
) -> None:
    """001 art.19(3): a handover's register row commits with its audit entry or not at
    all: an audit log that cannot take the entry leaves the return waiting, unregistered."""
    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    append = svc.audit.append

    def failing(kind: Any, *rest: Any) -> int:
        if kind == AuditKind.HANDOVER:
            raise OSError("audit disk full")
        return int(append(kind, *rest))

    monkeypatch.setattr(svc.audit, "append", failing)
    with pytest.raises(OSError):
        svc.sign_handover("1", "1001", PIN)
    assert register(svc) == [] and len(HandoverTable(svc.store).pending()) == 1
    monkeypatch.setattr(svc.audit, "append", append)
    assert svc.sign_handover("1", "1001", PIN)["signed"] is True
    assert len(register(svc)) == 1 and len(kinds(svc, AuditKind.HANDOVER)) == 1


def test_two_signers_at_once_make_one_register_row(make_dock, start_recorder) -> None:
    """001 art.19(3): a return is signed once. Two signers who both saw it waiting (the
    badge at the dock and the kiosk's PIN at the same moment): the second is refused in
    one line and neither a second row nor a second audit entry is written."""
    from dock.evidence.handovers import HandoverError

    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    out_and_back(svc, recs[0], start_recorder, recordings=0)
    reg = svc.handovers.register
    (seen,) = reg.table.pending()  # both signers read the waiting return ...
    officer = svc.store.officer("1001")
    assert officer is not None
    reg.sign_with_badge(seen, officer)  # ... the first signs
    with pytest.raises(HandoverError, match="no return waits to be signed"):
        reg.sign_with_badge(seen, officer)  # ... the second finds it signed
    assert len(register(svc)) == 1 and len(kinds(svc, AuditKind.HANDOVER)) == 1


def test_a_flagged_return_is_told_to_headquarters_and_a_proper_one_is_not(
    make_dock, start_recorder, tmp_path
) -> None:
    """003 art.21(2): no lending; 001 art.19(3): headquarters hears of a return signed for
    by someone other than its custodian, and of one nobody signed for, as
    ``handover.flagged`` (queued in the outbox from the audit log), and opens an alert;
    a return its custodian signed is not sent (the ``checkin`` is the return)."""
    import json

    from dock.reporting.feed import feed
    from dock.reporting.outbox import Outbox
    from hq.alerts import AlertKind, event_rule
    from mqtt_contract.contract import EventType

    svc, recs = make_dock({"serial": "EMU0001", "battery_percent": 95.0})
    clock = StoreClock()
    svc.store._clock = clock
    outbox = Outbox(str(tmp_path / "outbox.db"))
    feed(svc.audit, outbox, "boot1", 1.0)  # reporting starts here
    rec = out_and_back(svc, recs[0], start_recorder, recordings=0)
    assert svc.sign_handover("1", "1001", PIN)["signed"]  # its custodian: not sent
    rec = out_and_back(svc, rec, start_recorder, recordings=0)
    assert svc.sign_handover("1", "1002", PIN)["signed"]  # another officer
    out_and_back(svc, rec, start_recorder, recordings=0)
    clock.t += svc.parts.handover_window_s + 1
    svc.sweep()  # nobody signed within the window
    for _ in range(100):
        if feed(svc.audit, outbox, "boot1", 1.0) == 0:
            break
    events = [json.loads(p.payload) for p in outbox.pending(1000)]
    flagged = [e["data"] for e in events if e["type"] == EventType.HANDOVER_FLAGGED]
    assert [(d["flag"], d["returned_by"], d["custodian"]) for d in flagged] == [
        ("by_other", "1002", "1001"),
        ("unsigned", "", "1001"),
    ]
    for data in flagged:
        decision = event_rule("s1", "d1", {"type": EventType.HANDOVER_FLAGGED, "data": data})
        assert [a.key.kind for a in decision.open] == [AlertKind.HANDOVER_FLAGGED]
    outbox.close()
