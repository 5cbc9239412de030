"""Explanation items in three steps, and the at-once alert (REQUIREMENTS.md §5).

001 art.19(2): when recording was not used or is incomplete, the officer writes an
account, the head of the unit reviews it, the unit's recorder keeper files it.
002 art.20; 003 art.11; 004 att.1 art.3: when recording truly could not continue, the head
is told at once. The order and who may take each step are one table
(dock/domain/explanations.py); the register (dock/evidence/gaps.py) stores and audits each
step; the alert is an audit entry, shown to supervisors and sent to headquarters.
"""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings, target
from hypothesis import strategies as st

from dock.domain import explanations as ex
from dock.domain.audit_kinds import AuditKind
from dock.domain.explanations import State, Step
from dock.evidence.gap_detection import (
    COULD_NOT_CONTINUE,
    FAULT,
    INTERRUPTED,
    MANUAL_STOP,
    Gap,
    could_not_continue,
    find_gaps,
)
from dock.evidence.gaps import TEXT_MAX, GapError, GapRegister
from dock.reporting.events import AuditView, event_for
from dock.reporting.feed import feed
from dock.reporting.outbox import Outbox
from dock.services import requests
from dock.storage import store_officers
from dock.storage.audit import AuditLog
from dock.storage.store import Store
from firmware_protocol.messages import EventKind
from hq.alerts import AlertKind, event_rule
from mqtt_contract.contract import EventType
from web_status import daemon_words

from .test_gaps import BAT, EP, FLT, FULL, PIN, SUP_PIN, _out_and_back, clip, ev

KEEPER_PIN = "135790"
ACCOUNT = "The battery ran out at 14:10 during the market inspection; spare fitted at 14:25."
REVIEW = "Reviewed against the battery log: the account matches."


@pytest.fixture
def env(tmp_path) -> Any:
    store = Store(str(tmp_path / "dock.db"))
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    store.add_officer("1002", "Li Na", "Traffic 3", PIN)
    store.add_officer("9001", "Zhao Min", "Traffic 3", SUP_PIN, role="supervisor")
    store.add_officer("9002", "Qian Lei", "Traffic 3", SUP_PIN, role="supervisor")
    store.add_officer("5001", "Sun Mei", "Records", KEEPER_PIN, role="keeper")
    reg = GapRegister(store, audit)
    yield SimpleNamespace(store=store, audit=audit, reg=reg, timezone="Asia/Shanghai")
    audit.close()
    store.close()


def kinds(audit: AuditLog, kind: AuditKind) -> list[Any]:
    return [e for e in audit.entries() if e.kind == kind]


BATTERY = Gap(INTERRUPTED, "battery", 5_000, 8_000, "R1", "battery exhausted")
OTHER = Gap(INTERRUPTED, "other", 9_000, 12_000, "R2", "stopped, no reason given")


def one_item(env: Any, officer: str = "1001", gap: Gap = BATTERY) -> int:
    env.reg.open_items("EMU1", officer, 7, [gap])
    return max(i.id for i in env.reg.list_items(officer))


# --- the three steps -----------------------------------------------------------------


def test_the_officer_accounts_the_supervisor_reviews_the_keeper_files(env) -> None:
    """001 art.19(2): the officer writes the account, the unit head reviews it, the keeper
    files it; each step stored (who, when, text) and audited with it, in that order."""
    item = one_item(env)
    assert env.reg.item(item).state is State.OPEN
    done = env.reg.add_account(item, "1001", PIN, ACCOUNT)
    assert done.state is State.ACCOUNTED and done.account == ACCOUNT and done.account_at
    done = env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    assert done[0].state is State.REVIEWED
    assert (done[0].reviewed_by, done[0].explanation) == ("9001", REVIEW)
    assert done[0].is_open  # not done until it is filed
    (filed,) = env.reg.file_items([item], "5001", KEEPER_PIN, "cabinet 3, folder 2026-11")
    assert filed.state is State.FILED and not filed.is_open
    assert (filed.filed_by, filed.filing) == ("5001", "cabinet 3, folder 2026-11")
    assert filed.filed_at is not None and filed.filed_at >= filed.reviewed_at
    steps = [
        (e.kind, e.actor)
        for e in env.audit.entries()
        if e.kind in (AuditKind.GAP_ACCOUNT, AuditKind.GAP_EXPLAINED, AuditKind.GAP_FILED)
    ]
    assert steps == [
        (AuditKind.GAP_ACCOUNT, "1001"),
        (AuditKind.GAP_EXPLAINED, "9001"),
        (AuditKind.GAP_FILED, "5001"),
    ]
    (entry,) = kinds(env.audit, AuditKind.GAP_FILED)
    assert entry.data["item"] == item and entry.data["reviewed_by"] == "9001"
    assert env.reg.list_items("1001") == []  # filed: out of the open lists
    assert env.audit.verify().ok


def test_only_the_items_officer_writes_its_account(env) -> None:
    """001 art.19(2): the officer the item belongs to writes the account, nobody else
    (another officer, a supervisor, the keeper), and the refusal is audited."""
    item = one_item(env)
    for who, pin in (("1002", PIN), ("9001", SUP_PIN), ("5001", KEEPER_PIN)):
        with pytest.raises(GapError, match=rf"^item {item} is officer 1001's: only they write"):
            env.reg.add_account(item, who, pin, ACCOUNT)
    assert env.reg.item(item).account is None
    refused = kinds(env.audit, AuditKind.GAP_STEP_REFUSED)
    assert [e.actor for e in refused] == ["1002", "9001", "5001"]
    assert all(e.data["step"] == "account" for e in refused)


def test_the_reviewer_is_a_supervisor_and_not_the_officer(env) -> None:
    """001 art.19(2): the unit head reviews the officer's account: a supervisor, and never
    their own item (a supervisor carries a recorder too); nor an officer or the keeper."""
    own = one_item(env, officer="9001")
    env.reg.add_account(own, "9001", SUP_PIN, ACCOUNT)
    with pytest.raises(GapError, match=rf"^item {own} is 9001's own: another supervisor"):
        env.reg.close_items([own], "9001", SUP_PIN, REVIEW)
    with pytest.raises(GapError, match=rf"^item {own} is 9001's own: another supervisor"):
        env.reg.review_items([own], "9001", SUP_PIN, "not good enough", accept=False)
    for who, pin in (("1002", PIN), ("5001", KEEPER_PIN)):
        with pytest.raises(GapError, match="supervisor not verified"):
            env.reg.close_items([own], who, pin, REVIEW)
    assert env.reg.item(own).state is State.ACCOUNTED
    assert env.reg.close_items([own], "9002", SUP_PIN, REVIEW)[0].reviewed_by == "9002"


def test_a_returned_account_goes_back_to_its_officer_with_the_reason(env) -> None:
    """001 art.19(2): the head reviews, and may send the account back: the officer sees
    why and writes it again; the returned text stays in the audit log."""
    item = one_item(env)
    env.reg.add_account(item, "1001", PIN, "Battery.      And then some.")
    (back,) = env.reg.review_items([item], "9001", SUP_PIN, "Say when and where.", accept=False)
    assert back.state is State.OPEN and back.account is None
    assert (back.returned_by, back.return_reason) == ("9001", "Say when and where.")
    (entry,) = kinds(env.audit, AuditKind.GAP_RETURNED)
    assert entry.data["account"] == "Battery.      And then some."
    assert entry.data["return_reason"] == "Say when and where."
    with pytest.raises(GapError, match="waiting for the officer's account: a supervisor"):
        env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    assert env.reg.add_account(item, "1001", PIN, ACCOUNT).state is State.ACCOUNTED
    env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    assert env.reg.file_items([item], "5001", KEEPER_PIN)[0].state is State.FILED
    assert [e.data["returned"] for e in kinds(env.audit, AuditKind.GAP_ACCOUNT)] == [False, True]


def test_the_keeper_files_only_after_the_review_and_only_a_keeper_files(env) -> None:
    """001 art.19(2): the keeper files what the head reviewed: not before the account,
    not before the review; a supervisor or an officer does not file."""
    item = one_item(env)
    with pytest.raises(GapError, match="waiting for the officer's account: the keeper files"):
        env.reg.file_items([item], "5001", KEEPER_PIN)
    env.reg.add_account(item, "1001", PIN, ACCOUNT)
    with pytest.raises(GapError, match="waiting for a supervisor's review: the keeper files"):
        env.reg.file_items([item], "5001", KEEPER_PIN)
    env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    for who, pin in (("9002", SUP_PIN), ("1001", PIN)):
        with pytest.raises(GapError, match="only a records keeper files"):
            env.reg.file_items([item], who, pin)
    assert env.reg.item(item).state is State.REVIEWED
    env.reg.file_items([item], "5001", KEEPER_PIN)
    with pytest.raises(GapError, match=rf"^item {item} is filed: the keeper files only"):
        env.reg.file_items([item], "5001", KEEPER_PIN)
    with pytest.raises(GapError, match=rf"^item {item} is filed: an account is written only"):
        env.reg.add_account(item, "1001", PIN, ACCOUNT)
    refused = kinds(env.audit, AuditKind.GAP_STEP_REFUSED)
    assert [e.data["step"] for e in refused] == ["file"] * 5 + ["account"]


def test_a_wrong_keeper_pin_is_refused_and_audited(env) -> None:
    """001 art.19(2): the keeper files on their own PIN; a wrong one changes nothing."""
    item = one_item(env)
    env.reg.add_account(item, "1001", PIN, ACCOUNT)
    env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    with pytest.raises(GapError, match=r"not recognised \(4 tries left\)"):
        env.reg.file_items([item], "5001", "000000")
    assert env.reg.item(item).state is State.REVIEWED
    (entry,) = kinds(env.audit, AuditKind.GAP_STEP_REFUSED)
    assert entry.data == {"why": "not verified", "items": [item], "step": "file"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("x" * (TEXT_MAX + 1), f"the account must be at most {TEXT_MAX} characters"),
        ("Battery ran out \x1b[2J at the crossing", "the account holds a control character"),
        ("Battery ran out\u202e at the crossing", "the account holds a control character"),
        ("   short   ", "the account must be at least 10 characters"),
    ],
)
def test_bad_text_is_refused_in_one_line(env, text: str, said: str) -> None:
    """001 art.19(2) (a written account): too long, control characters or too short is
    refused in one line before anything is stored; line breaks are text."""
    item = one_item(env)
    with pytest.raises(GapError) as exc:
        env.reg.add_account(item, "1001", PIN, text)
    assert str(exc.value).startswith(said) and "\n" not in str(exc.value)
    assert env.reg.item(item).account is None
    two_lines = "The battery ran out.\r\nSpare fitted at 14:25."
    assert env.reg.add_account(item, "1001", PIN, two_lines).account == two_lines.replace("\r", "")
    with pytest.raises(GapError, match="the explanation holds a control character"):
        env.reg.close_items([item], "9001", SUP_PIN, "Reviewed \x00 fine, thanks.")
    with pytest.raises(GapError, match="the filing note must be at most"):
        env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
        env.reg.file_items([item], "5001", KEEPER_PIN, "n" * (TEXT_MAX + 1))


def test_items_closed_before_the_three_steps_keep_their_state(tmp_path) -> None:
    """001 art.19(2): an item a supervisor closed before the keeper's step existed stays
    closed (who closed it, their explanation), and no step applies to it; an open one
    from then goes through the three steps."""
    path = str(tmp_path / "dock.db")
    Store(path).close()  # today's tables, then the columns of the three steps removed
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO explanation_items (serial, officer_id, kind, reason, start_ms, opened_at, "
        "closed_at, closed_by, explanation) VALUES ('EMU1', '1001', 'interrupted', 'battery', "
        "5, 1.0, 2.0, '9001', 'Battery: spare fitted, checked.')"
    )
    db.execute(
        "INSERT INTO explanation_items (serial, officer_id, kind, reason, start_ms, opened_at) "
        "VALUES ('EMU1', '1001', 'interrupted', 'battery', 6, 1.0)"
    )
    for column in ("reviewed_at", "filed_at", "alerted_at", "return_reason"):
        db.execute(f"ALTER TABLE explanation_items DROP COLUMN {column}")
    db.commit()
    db.close()
    store = Store(path)  # the columns come back, rows kept
    store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    store.add_officer("9001", "Zhao Min", "Traffic 3", SUP_PIN, role="supervisor")
    store.add_officer("5001", "Sun Mei", "Records", KEEPER_PIN, role="keeper")
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    reg = GapRegister(store, audit)
    old, new = reg.list_items(open_only=False)
    assert old.state is State.CLOSED and not old.is_open
    assert (old.closed_by, old.explanation) == ("9001", "Battery: spare fitted, checked.")
    assert new.state is State.OPEN and reg.list_items() == [new]
    with pytest.raises(GapError, match="closed before the three steps: the keeper files"):
        reg.file_items([old.id], "5001", KEEPER_PIN)
    with pytest.raises(GapError, match="closed before the three steps: an account"):
        reg.add_account(old.id, "1001", PIN, ACCOUNT)
    reg.add_account(new.id, "1001", PIN, ACCOUNT)
    reg.close_items([new.id], "9001", SUP_PIN, REVIEW)
    assert reg.file_items([new.id], "5001", KEEPER_PIN)[0].state is State.FILED
    audit.close()
    store.close()


def test_the_table_allows_exactly_the_three_steps_and_a_return() -> None:
    """001 art.19(2): one table: account, then review (accepted, or returned to the
    account), then filing; nothing else, and nothing from a closed or filed item."""
    assert dict(ex.TRANSITIONS) == {
        (State.OPEN, Step.ACCOUNT): State.ACCOUNTED,
        (State.ACCOUNTED, Step.ACCEPT): State.REVIEWED,
        (State.ACCOUNTED, Step.RETURN): State.OPEN,
        (State.REVIEWED, Step.FILE): State.FILED,
    }
    assert {w.role for w in ex.WHO.values()} == {"officer", "supervisor", "keeper"}


def test_every_refusal_of_a_step_reads_in_chinese() -> None:
    """001 art.19(2): the refusals of the three steps are said on zh pages in Chinese,
    with their numbers (web_status/daemon_words.py)."""
    said = []
    for state in State:
        for step in Step:
            said.append(ex.OUT_OF_ORDER[step].format(item=41, state=ex.STATE_WORDS[state]))
    for step in Step:
        said.append(ex.NOT_THEIRS[step].format(item=41, officer="1042", actor="9043"))
        said.append(ex.WRONG_ROLE[step])
    for text in said:
        zh = daemon_words.refusal(text, "zh")
        assert zh != text and not any(w in zh for w in ("item", "waiting", "keeper")), zh
        assert all(n in zh for n in ("41", "1042", "9043") if n in text), (text, zh)


# --- a state machine over random steps and people --------------------------------------

PEOPLE = {  # who -> PIN
    "1001": PIN,  # the item's officer
    "1002": PIN,  # another officer
    "9001": SUP_PIN,  # a supervisor
    "9002": SUP_PIN,  # another supervisor
    "5001": KEEPER_PIN,  # the keeper
}
ACTIONS = st.lists(
    st.tuples(st.sampled_from(list(Step)), st.sampled_from(sorted(PEOPLE))), max_size=8
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ACTIONS)
@example(
    [(Step.FILE, "5001"), (Step.ACCOUNT, "1002"), (Step.ACCOUNT, "1001"), (Step.ACCEPT, "1001"),
     (Step.RETURN, "9001"), (Step.ACCOUNT, "1001"), (Step.ACCEPT, "9002"), (Step.FILE, "9001"),
     (Step.FILE, "5001"), (Step.ACCOUNT, "1001")]
)  # fmt: skip
def test_random_steps_by_random_people_keep_the_order(tmp_path_factory, monkeypatch, steps):
    """001 art.19(2), as a property: whatever steps anyone tries in whatever order, an
    item is filed only by the keeper after a supervisor other than its officer accepted
    the account its officer wrote last; every step taken is audited once, every refused
    one changes nothing and is audited as refused."""
    monkeypatch.setitem(store_officers.PIN_SCRYPT, "n", 2)  # cheap PINs: many examples
    tmp = tmp_path_factory.mktemp("sm")
    store = Store(str(tmp / "dock.db"))
    audit = AuditLog(str(tmp / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    roles = {"1001": "officer", "1002": "officer", "9001": "supervisor",
             "9002": "supervisor", "5001": "keeper"}  # fmt: skip
    for who, role in roles.items():
        store.add_officer(who, who, "Traffic 3", PEOPLE[who], role=role)
    reg = GapRegister(store, audit)
    reg.open_items("EMU1", "1001", 7, [BATTERY])
    (item,) = (i.id for i in reg.list_items())
    model, author, reviewer = State.OPEN, None, None
    taken = refused = 0
    for step, who in steps:
        before = reg.item(item)
        try:
            if step is Step.ACCOUNT:
                reg.add_account(item, who, PEOPLE[who], ACCOUNT)
            elif step is Step.FILE:
                reg.file_items([item], who, PEOPLE[who])
            else:
                reg.review_items([item], who, PEOPLE[who], REVIEW, step is Step.ACCEPT)
        except GapError:
            refused += 1
            assert reg.item(item) == before  # nothing changed
            continue
        taken += 1
        # the model: what was allowed, and by whom
        assert (model, step) in ex.TRANSITIONS, (model, step)
        if step is Step.ACCOUNT:
            assert who == "1001"
            author = who
        elif step in (Step.ACCEPT, Step.RETURN):
            assert roles[who] == "supervisor" and who != "1001"
            reviewer = who if step is Step.ACCEPT else None
        else:
            assert roles[who] == "keeper" and reviewer is not None and author == "1001"
        model = ex.after(model, step)
        assert reg.item(item).state is model
    target(float(taken))  # towards sequences that get further through the steps
    stepped = [AuditKind.GAP_ACCOUNT, AuditKind.GAP_EXPLAINED, AuditKind.GAP_RETURNED,
               AuditKind.GAP_FILED]  # fmt: skip
    assert sum(1 for e in audit.entries() if e.kind in stepped) == taken
    no = [AuditKind.GAP_STEP_REFUSED, AuditKind.GAP_EXPLAIN_REFUSED]
    assert sum(1 for e in audit.entries() if e.kind in no) == refused
    audit.close()
    store.close()


# --- the alert at once ----------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(COULD_NOT_CONTINUE))
def test_recording_that_could_not_continue_alerts_the_head_at_once(env, reason) -> None:
    """002 art.20; 003 art.11; 004 att.1 art.3: when recording truly could not continue
    (battery exhausted, storage full, device fault) the head is told at once: an alert
    entry in the transaction that opens the item, once per item, shown to supervisors."""
    gap = Gap(INTERRUPTED, reason, 5_000, 8_000, "R1", "cut")
    env.reg.open_items("EMU1", "1001", 7, [gap, OTHER])
    env.reg.open_items("EMU1", "1001", 7, [gap, OTHER])  # read again: nothing twice
    (alert,) = kinds(env.audit, AuditKind.GAP_ALERT)
    (item,) = [i for i in env.reg.list_items() if i.reason == reason]
    assert (alert.subject, alert.data["item"], alert.data["reason"]) == ("EMU1", item.id, reason)
    assert alert.data["officer"] == "1001" and item.alerted_at is not None
    assert [i.id for i in env.reg.alerts()] == [item.id]
    env.reg.add_account(item.id, "1001", PIN, ACCOUNT)
    assert [i.id for i in env.reg.alerts()] == [item.id]  # until the head has reviewed it
    env.reg.close_items([item.id], "9001", SUP_PIN, REVIEW)
    assert env.reg.alerts() == []


def test_no_alert_where_recording_could_go_on_and_no_item_for_a_manual_stop(env) -> None:
    """002 art.20 (an alert only where recording could not continue); REQUIREMENTS §5: a
    manual stop that ends one incident is not an interruption: no item, no alert. A stop
    for another reason is an item to explain; a device fault with recording going on an
    item about the device; neither an alert."""
    manual = [*clip("R1", 2_000, 5_000, 1), *clip("R2", 65_000, 70_000, 1)]
    assert find_gaps(manual, [], *EP) == []
    asked = find_gaps(manual, [], *EP, report_manual_stops=True)
    assert [g.kind for g in asked] == [MANUAL_STOP]
    fault = Gap(FAULT, FAULT, 4_000, 4_000, None, "sensor")
    assert env.reg.open_items("EMU1", "1001", 7, [*asked, OTHER, fault]) == 3
    assert kinds(env.audit, AuditKind.GAP_ALERT) == [] and env.reg.alerts() == []
    assert not could_not_continue(MANUAL_STOP, "manual")
    assert not could_not_continue(FAULT, FAULT) and not could_not_continue(INTERRUPTED, "other")


def test_what_the_recorder_logs_decides_the_alert() -> None:
    """002 art.20; 003 art.11; 004 att.1 art.3: battery, storage full and fault stops
    read from a recorder's log are could-not-continue; a manual stop is no gap at all."""
    log = [
        *clip("R1", 2_000, 5_000, 1, BAT),
        *clip("R2", 8_000, 9_000, 1, FULL),
        *clip("R3", 12_000, 13_000, 1, FLT),
        *clip("R4", 20_000, 21_000, 1),
        ev(30_000, EventKind.INTERRUPTED, 5, "R5"),
    ]
    gaps = find_gaps(log, [], *EP)
    assert [(g.reason, could_not_continue(g.kind, g.reason)) for g in gaps] == [
        ("battery", True),
        ("storage_full", True),
        ("fault", True),
        ("other", False),
    ]


def test_the_alert_reaches_headquarters_once_per_item(env, tmp_path) -> None:
    """002 art.20; 003 art.11; 004 att.1 art.3: headquarters hears of the alert as
    ``gap.alert`` (queued in the outbox from the audit log), once per item, and raises
    its alert for the head; a stop for another reason is only ``gap.found``."""
    outbox = Outbox(str(tmp_path / "outbox.db"))
    feed(env.audit, outbox, "boot1", 1.0)  # reporting starts here
    env.reg.open_items("EMU1", "1001", 7, [BATTERY, OTHER])
    env.reg.open_items("EMU1", "1001", 7, [BATTERY, OTHER])
    for _ in range(10):
        if feed(env.audit, outbox, "boot1", 1.0) == 0:
            break
    events = [json.loads(p.payload) for p in outbox.pending(100)]
    alerts = [e for e in events if e["type"] == EventType.GAP_ALERT]
    found = [e for e in events if e["type"] == EventType.GAP_FOUND]
    battery = next(i for i in env.reg.list_items() if i.reason == "battery")
    assert len(found) == 2 and len(alerts) == 1
    assert alerts[0]["data"] == {
        "serial": "EMU1",
        "item": battery.id,
        "officer": "1001",
        "kind": INTERRUPTED,
        "reason": "battery",
        "start_ms": 5_000,
    }
    assert alerts[0]["subject"] == "EMU1"
    (opened,) = event_rule("s1", "d1", alerts[0]).open  # headquarters raises it
    assert opened.key.kind == AlertKind.RECORDING_INTERRUPTED
    assert opened.key.subject == f"EMU1/{battery.id}" and "at once" in opened.detail
    outbox.close()


def test_a_battery_cut_on_patrol_alerts_when_the_recorder_docks(make_dock) -> None:
    """002 art.20; 003 art.11; 004 att.1 art.3: a recorder back from patrol whose log shows
    the battery cut recording: an item for the officer's account and, at the docking that
    reads the log, the alert; twenty incidents stopped by hand raise none."""
    svc, recs = make_dock({"battery_percent": 95.0})
    items = _out_and_back(svc, recs, 5, battery_cut_at=2)
    assert [(i.kind, i.reason) for i in items] == [(INTERRUPTED, "battery")]
    (alert,) = kinds(svc.audit, AuditKind.GAP_ALERT)
    assert alert.data["item"] == items[0].id and alert.data["officer"] == "1001"
    view = AuditView(alert.seq, alert.time, alert.kind, alert.actor, alert.subject, alert.data)
    assert event_for(view, 1.0)[0] is EventType.GAP_ALERT  # type: ignore[index]
    svc2, recs2 = make_dock({"battery_percent": 95.0})
    assert _out_and_back(svc2, recs2, 20) == []
    assert kinds(svc2.audit, AuditKind.GAP_ALERT) == []


def test_the_steps_are_requests_with_their_roles() -> None:
    """001 art.19(2): every front end takes the steps through the request table: the
    account (the officer), the review and a return (a supervisor), filing (the keeper)."""
    table = requests.TABLE
    assert table["gaps.account"].allowed(("officer",))
    assert table["gaps.explain"].allowed(("supervisor",))
    assert table["gaps.return"].allowed(("supervisor",))
    assert table["gaps.file"].roles == ("keeper",)
    assert not table["gaps.file"].allowed(("officer", "supervisor"))
    assert not table["gaps.explain"].allowed(("officer", "keeper"))


def test_the_command_line_takes_the_three_steps_in_order(env, monkeypatch, capsys) -> None:
    """001 art.19(2), on the command line: ``dock gaps account``, ``return`` (the reason
    shown in ``list``), ``explain`` (the review), ``file`` by the keeper; a step out of
    order exits 1 with its one-line reason."""
    import argparse

    import dock.cli.gaps as cli_gaps

    monkeypatch.setattr(cli_gaps, "service_from", lambda args: env)
    item = one_item(env)
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    cli_gaps.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return int(args.func(args))

    n = str(item)
    assert run("gaps", "file", n, "--keeper", "5001", "--pin", KEEPER_PIN) == 1
    err = capsys.readouterr().err
    assert "waiting for the officer's account: the keeper files only" in err
    assert len(err.strip().splitlines()) == 1
    assert run("gaps", "account", n, "--officer", "1001", "--pin", PIN, "--text", ACCOUNT) == 0
    assert run("gaps", "return", n, "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", "Which battery?") == 0  # fmt: skip
    assert "returned to officer 1001" in capsys.readouterr().out
    assert run("gaps", "list") == 0
    out = capsys.readouterr().out
    assert "returned: account needed" in out and "returned by 9001: Which battery?" in out
    assert run("gaps", "account", n, "--officer", "1001", "--pin", PIN, "--text", ACCOUNT) == 0
    assert run("gaps", "explain", n, "--supervisor", "9001", "--pin", SUP_PIN,
               "--text", REVIEW) == 0  # fmt: skip
    assert run("gaps", "file", n, "--keeper", "5001", "--pin", KEEPER_PIN,
               "--note", "cabinet 3", "--json") == 0  # fmt: skip
    capsys.readouterr()
    assert run("gaps", "list", "--all", "--json") == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["filed_by"], shown["filing"]) == ("filed", "5001", "cabinet 3")


def test_nothing_to_review_or_file_is_said_in_one_line(env) -> None:
    """001 art.19(2): a review or a filing names its items; none given is refused in one
    line before any PIN is checked (no try spent, nothing audited as a step)."""
    with pytest.raises(GapError, match=r"^no item to review$"):
        env.reg.close_items([], "9001", SUP_PIN, REVIEW)
    with pytest.raises(GapError, match=r"^no item to review$"):
        env.reg.review_items([], "9001", SUP_PIN, "not good enough", accept=False)
    with pytest.raises(GapError, match=r"^no item to file$"):
        env.reg.file_items([], "5001", KEEPER_PIN)
    assert list(env.audit.entries()) == []


def test_a_scan_opens_items_only_for_the_recorder_of_the_episode(env, start_recorder) -> None:
    """001 art.19(2); 002 art.20: the items of an episode are its officer's: a scan that
    reads one recorder's log for another recorder's custody episode is refused."""
    import time

    from dock.evidence.gaps import scan_episode

    from .test_gaps import SECRET, _episode

    r = start_recorder(serial="GAP0002", secret=SECRET, recordings=1, interrupted=1)
    now = time.time()
    other = _episode(env.store, "GAP0009", now - 3600, now + 60)
    with r.client() as client:
        client.open()
        client.authenticate(SECRET)
        with pytest.raises(GapError, match=f"custody {other.id} is of GAP0009, client of GAP0002"):
            scan_episode(client, env.store, env.audit, "GAP0002", other)
        with pytest.raises(GapError, match=f"custody {other.id} is of GAP0009, client of GAP0002"):
            scan_episode(client, env.store, env.audit, "GAP0009", other)
    assert env.reg.list_items(open_only=False) == []


def test_a_locked_pin_is_named_at_the_review_and_at_the_filing(env) -> None:
    """001 art.19(2): the review and the filing are signed by the person's own PIN; after
    too many wrong ones it locks, and the refusal says so (audited as pin_locked)."""
    from dock.storage.store import PIN_TRIES

    item = one_item(env)
    env.reg.add_account(item, "1001", PIN, ACCOUNT)
    for _ in range(PIN_TRIES - 1):
        with pytest.raises(GapError, match="supervisor not verified"):
            env.reg.close_items([item], "9001", "000000", REVIEW)
    with pytest.raises(GapError, match="supervisor PIN locked"):  # the last try locks it
        env.reg.close_items([item], "9001", "000000", REVIEW)
    with pytest.raises(GapError, match=r"^supervisor PIN locked: another supervisor unlocks it$"):
        env.reg.close_items([item], "9001", SUP_PIN, REVIEW)
    env.reg.close_items([item], "9002", SUP_PIN, REVIEW)
    for _ in range(PIN_TRIES - 1):
        with pytest.raises(GapError, match="not recognised"):
            env.reg.file_items([item], "5001", "000000")
    with pytest.raises(GapError, match="PIN locked"):
        env.reg.file_items([item], "5001", "000000")
    with pytest.raises(GapError, match=r"^PIN locked: ask a supervisor \(dock officer unlock\)$"):
        env.reg.file_items([item], "5001", KEEPER_PIN)
    assert env.reg.item(item).state is State.REVIEWED
    assert [e.subject for e in kinds(env.audit, AuditKind.PIN_LOCKED)] == ["9001", "5001"]
