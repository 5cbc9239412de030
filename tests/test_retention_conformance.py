"""REQUIREMENTS.md §6 (issue 17): every long-term trigger a hold kind that keeps footage
from a purge (000 §14.4; 001 art.20; 004 att.1 art.5), destruction only after an approved
appraisal (004 att.2 §6), and the yearly hand-over to the archivist (004 att.2 §7).

Over a real dock (make_dock: real SQLite, archived files, sealed BagIt packages, audit
log). Each test names the article it enforces, so ``grep`` from an article finds it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dock.domain.hold_kinds import KINDS, HoldKind
from dock.evidence.holds import HoldError, HoldRegister
from dock.evidence.purging import purge
from dock.services.requests import call

SUP1, SUP1_PIN = "9001", "999000"
SUP2, SUP2_PIN = "9002", "808541"
KEEPER, KEEPER_PIN = "7001", "470147"
DAY = 86400.0
RETENTION_DAYS = 30
LATER = time.time() + (RETENTION_DAYS + 10) * DAY


@pytest.fixture
def docked(make_dock) -> tuple[Any, HoldRegister]:
    """Three recordings archived and sealed; two supervisors and a keeper."""
    svc, _ = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.05},
        policy={"retention_days": RETENTION_DAYS},
    )
    svc.sweep()
    svc.store.add_officer(SUP2, "Qian Lei", "Traffic 3", SUP2_PIN, role="supervisor")
    svc.store.add_officer(KEEPER, "Sun Yue", "Traffic 3", KEEPER_PIN, role="keeper")
    assert len(svc.store.archive_entries()) == 3
    return svc, HoldRegister(svc.store, svc.audit)


def dry_run(svc: Any, register: HoldRegister, now: float = LATER) -> Any:
    return purge(
        svc.store, svc.audit, register, svc.offloader.seals, svc.offloader.evidence_dir,
        svc.policy, now, dry_run=True,
    )  # fmt: skip


def action_of(report: Any, rid: str) -> tuple[str, str]:
    (item,) = [i for i in report.items if i["recording_id"] == rid]
    return item["action"], item["reason"]


# --------------------------------------------------------------------------- hold kinds


def test_every_long_term_trigger_is_a_hold_kind_that_keeps_footage_from_purge(docked) -> None:
    """001 art.20(1) (evidence; obstruction; emergencies and mass incidents; petition,
    appeal, reconsideration, litigation, review, state compensation; major, difficult or
    complex cases), 000 §14.4 (objection, complaint), 004 att.1 art.5 (disputes): each is
    a named hold kind; a hold of each kind keeps its recording from a purge whose
    retention has run, and once released the recording may go."""
    svc, register = docked
    rid = svc.store.archive_entries()[0]["recording_id"]
    named = {k.kind for k in KINDS}
    for needed in ("disputed", "complaint", "petition", "appeal", "litigation",
                   "reconsideration", "review", "state_compensation", "officers_obstructed",
                   "emergency_incident", "evidence_case", "major_case"):  # fmt: skip
        assert needed in named, needed
    assert named == set(HoldKind) and all(k.en and k.zh and k.articles for k in KINDS)
    for info in KINDS:
        hold = register.place("EMU0001", rid, info.kind, f"REF-{info.kind}", SUP1)
        action, reason = action_of(dry_run(svc, register), rid)
        assert action == "keep" and reason.startswith(f"hold: {info.kind.value} "), info
        register.release(hold.id, SUP1, SUP1_PIN, "case closed")
    assert action_of(dry_run(svc, register), rid)[0] == "would_purge"


def test_an_unknown_hold_kind_is_refused_in_one_line_naming_the_valid_ones(docked) -> None:
    """001 art.20: a hold's reason is one of the regulation's triggers; a mistyped kind is
    refused (nothing placed), the refusal one line listing every valid kind."""
    svc, register = docked
    rid = svc.store.archive_entries()[0]["recording_id"]
    args = {"kind": "grudge", "reference": "X-1", "serial": "EMU0001", "recording": rid}
    with pytest.raises(HoldError) as refused:
        call(svc, "hold.add", args, actor=SUP1)
    said = str(refused.value)
    assert "\n" not in said and said.startswith("unknown hold kind 'grudge' (one of ")
    assert all(k.kind.value in said for k in KINDS)
    assert register.records() == []
