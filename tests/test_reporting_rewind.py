"""The reporter after the audit log went backwards under it: it says so, loudly, and
reports on; checkpoint events carry what headquarters needs to compare them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from dock.reporting.feed import feed
from dock.reporting.outbox import Outbox
from dock.storage.audit import GENESIS, AuditLog
from dock.storage.keys import load_or_create_signing_key
from hq.checkpoints import claim_of, signature_problem
from mqtt_contract.contract import Kind, decode

from .test_audit import tamper

DOCK = "d1"


@pytest.fixture
def dock(tmp_path) -> tuple[AuditLog, Outbox]:
    key = load_or_create_signing_key(str(tmp_path / "k"))
    audit = AuditLog(str(tmp_path / "audit.db"), key, DOCK, checkpoint_every=10)
    audit.append("config", "admin", "", {})  # before reporting: never reported
    outbox = Outbox(str(tmp_path / "outbox.db"))
    feed(audit, outbox, "boot1", 1.0)  # reporting starts here
    yield audit, outbox
    outbox.close()
    audit.close()


def refused(audit: AuditLog, n: int, tag: str) -> None:
    for i in range(n):
        audit.append("checkout_refused", f"{tag}{i}", "", {"reasons": ["x"]})


def drain(audit: AuditLog, outbox: Outbox, boot: str = "boot1") -> None:
    for _ in range(100):
        if not feed(audit, outbox, boot, 1.0):
            return
    raise AssertionError("the feed never settled")


def events(outbox: Outbox) -> list[dict]:
    rows = outbox._db.execute("SELECT payload FROM events ORDER BY id")
    return [decode(Kind.EVENT, p) for (p,) in rows]


def of(outbox: Outbox, kind: str) -> list[dict]:
    return [e for e in events(outbox) if e["type"] == kind]


def test_checkpoint_events_are_signed_and_name_the_one_before(dock) -> None:
    audit, outbox = dock
    audit.checkpoint()  # the first checkpoint of the log: nothing before it
    refused(audit, 35, "o")
    drain(audit, outbox)
    cps = of(outbox, "audit.checkpoint")
    signed = audit.checkpoints()
    assert [c["data"]["seq"] for c in cps] == [c.seq for c in signed] == [1, 11, 21, 31]
    previous = {"seq": 0, "head": GENESIS}
    for event, cp in zip(cps, signed, strict=True):
        data = event["data"]
        assert data["previous"] == previous
        assert (data["head"], data["time"], data["signature"]) == (
            cp.head_hash, cp.time, cp.signature,
        )  # fmt: skip
        assert signature_problem(DOCK, claim_of(data, event["time"])) is None
        previous = {"seq": cp.seq, "head": cp.head_hash}


#: How the log is cut, and the last entry it still shares with what was reported.
CUTS = {
    "newest entries and their checkpoints cut": (
        ["DELETE FROM entries WHERE seq > 15", "DELETE FROM checkpoints WHERE seq > 15"], 15,
    ),
    "log emptied": (["DELETE FROM entries", "DELETE FROM checkpoints"], 0),
}  # fmt: skip


@pytest.mark.parametrize("cut", CUTS)
def test_after_a_cut_the_reporter_says_so_and_reports_the_next_entries(
    cut, dock, tmp_path, caplog
) -> None:
    audit, outbox = dock
    refused(audit, 30, "before")
    drain(audit, outbox)
    reported = outbox.cursor("audit")
    assert reported == audit.head()[0] == 31
    statements, agreed = CUTS[cut]
    tamper(Path(audit.db_path), *statements)
    refused(audit, 3, "after")  # the dock goes on: entries the reporter must not skip
    with caplog.at_level(logging.ERROR, logger="dock.reporter"):
        drain(audit, outbox)
    assert "audit log went backwards" in caplog.text
    rewound = of(outbox, "audit.rewound")
    assert len(rewound) == 1
    data = rewound[0]["data"]
    assert data["reported_seq"] == 31 and data["head_seq"] == audit.head()[0] - 1
    assert data["agreed_seq"] == agreed
    assert "no longer in the log" in data["detail"]
    actors = [e["actor"] for e in of(outbox, "checkout.refused")]
    # the entries written after the cut are reported, those reported before not again
    assert actors == [f"before{i}" for i in range(30)] + ["after0", "after1", "after2"]
    assert [e.kind for e in audit.entries()][-1] == "audit_rewound"  # in the log itself too
    drain(audit, outbox)
    assert len(of(outbox, "audit.rewound")) == 1  # said once, not on every feed
    refused(audit, 2, "later")
    drain(audit, outbox)
    assert [e["actor"] for e in of(outbox, "checkout.refused")][-2:] == ["later0", "later1"]


def test_a_log_rewritten_behind_the_cursor_is_reported(dock) -> None:
    audit, outbox = dock
    refused(audit, 30, "before")
    drain(audit, outbox)
    # Re-hashed from entry 5 on and every checkpoint deleted: the head is where it was.
    from .test_audit import auditor_hash

    def rehash(conn) -> None:
        conn.execute("UPDATE entries SET actor = 'someone' WHERE seq = 5")
        (prev,) = conn.execute("SELECT hash FROM entries WHERE seq = 4").fetchone()
        rows = conn.execute(
            "SELECT seq, time, kind, actor, subject, data FROM entries WHERE seq >= 5 ORDER BY seq"
        ).fetchall()
        for s, *fields in rows:
            h = auditor_hash(prev, DOCK, s, *fields)
            conn.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, s))
            prev = h
        conn.execute("DELETE FROM checkpoints")

    tamper(Path(audit.db_path), rehash)
    assert audit.head()[0] == 31
    drain(audit, outbox)
    rewound = of(outbox, "audit.rewound")
    assert len(rewound) == 1 and "rewritten" in rewound[0]["data"]["detail"]


def test_an_outbox_from_before_the_hashes_adopts_them_without_an_alarm(dock) -> None:
    audit, outbox = dock
    refused(audit, 4, "o")
    drain(audit, outbox)
    with outbox._db:
        outbox._db.execute("DELETE FROM meta WHERE key IN ('audit_hash', 'checkpoint_head')")
    refused(audit, 1, "p")
    drain(audit, outbox)
    assert of(outbox, "audit.rewound") == []
    assert outbox.mark("audit_hash") == audit.head()[1]
    tamper(Path(audit.db_path), "DELETE FROM entries WHERE seq > 3")  # and now a cut
    drain(audit, outbox)
    assert len(of(outbox, "audit.rewound")) == 1


def test_a_new_outbox_starts_at_the_head_with_its_hash(tmp_path) -> None:
    key = load_or_create_signing_key(os.path.join(tmp_path, "k"))
    with AuditLog(str(tmp_path / "a.db"), key, DOCK, checkpoint_every=3) as audit:
        refused(audit, 7, "o")
        outbox = Outbox(str(tmp_path / "o.db"))
        assert feed(audit, outbox, "b", 1.0) == 0
        assert (outbox.cursor("audit"), outbox.mark("audit_hash")) == audit.head()
        assert outbox.cursor("checkpoint") == 6
        assert outbox.mark("checkpoint_head") == audit.checkpoints()[-1].head_hash != GENESIS
        outbox.close()
