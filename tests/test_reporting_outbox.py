"""Audit entries become events exactly once, in order, whatever happens between feeds:
crashes mid-transaction, restarts with a new boot, checkpoints, long backlogs."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dock.reporting import feed as feed_module
from dock.reporting.events import AuditView, event_for
from dock.reporting.feed import feed
from dock.reporting.outbox import KEEP_SENT_S, Outbox
from dock.storage.audit import AuditLog
from dock.storage.keys import load_or_create_signing_key
from mqtt_contract.contract import EventType, Kind, decode


def _view(kind: str, data: dict, actor: str = "dock", subject: str = "BWC-1") -> AuditView:
    return AuditView(7, "2026-11-22T09:00:00.000Z", kind, actor, subject, data)


@pytest.mark.parametrize(
    ("kind", "data", "expected", "fields"),
    [
        ("checkout", {"slot": "2", "custody": 5}, EventType.CHECKOUT_GRANTED,
         {"officer": "1001", "serial": "BWC-1", "slot": "2", "override": False}),
        ("checkout", {"slot": "2", "override_by": "9001", "reason": "storm"},
         EventType.CHECKOUT_GRANTED, {"override": True, "supervisor": "9001", "reason": "storm"}),
        ("checkout_refused", {"reasons": ["battery_low"]}, EventType.CHECKOUT_REFUSED,
         {"reasons": ["battery_low"]}),
        ("checkin", {"officer": "1001", "slot": "1", "custody": 3}, EventType.CHECKIN,
         {"officer": "1001", "custody": 3}),
        ("checks", {"slot": "1", "passed": False, "failed": ["clock_drift"]},
         EventType.CHECKS_FAILED, {"failed": ["clock_drift"]}),
        ("checks", {"slot": "1", "passed": True, "failed": []}, None, {}),
        ("offload_start", {"slot": "1", "recordings": 3, "bytes": 10}, EventType.OFFLOAD_STARTED,
         {"recordings": 3, "bytes": 10}),
        ("offload_done", {"slot": "1", "archived": 3, "failed": 0, "seal": "ab"},
         EventType.OFFLOAD_DONE, {"archived": 3, "seal": "ab"}),
        ("offload_failed", {"recording": "R1", "error": "EIO"}, EventType.OFFLOAD_FAILED,
         {"recording": "R1", "error": "EIO"}),
        ("offload_refused", {"reason": "no room"}, EventType.OFFLOAD_FAILED, {"error": "no room"}),
        ("gap_opened", {"item": 4, "officer": "1001", "kind": "power", "reason": "battery"},
         EventType.GAP_FOUND, {"item": 4, "kind": "power"}),
        ("deadline_overdue", {"due": "x"}, EventType.DEADLINE_OVERDUE, {"due": "x"}),
        ("deadline_at_risk", {"due": "x"}, EventType.DEADLINE_AT_RISK, {"due": "x"}),
        ("clock_set", {"slot": "1", "drift_before_s": 47.0, "after_s": 0.01},
         EventType.CLOCK_DRIFT, {"drift_before_s": 47.0, "bound_s": 1.0}),
        ("clock_set", {"slot": "1", "drift_before_s": -0.4, "after_s": 0.0}, None, {}),
        ("scanner_hit", {"recording": "R1", "detail": "EICAR"}, EventType.SCANNER_HIT,
         {"detail": "EICAR"}),
        ("fixity_failure", {"path": "a/b.mp4", "problem": "changed"}, EventType.FIXITY_FAILED,
         {"path": "a/b.mp4", "detail": "changed"}),
        ("device_flag", {"lost": True, "note": "n"}, EventType.DEVICE_FLAGGED,
         {"lost": True, "note": "n"}),
        ("hq_command", {"id": "c", "command": "lost", "accepted": False, "error": "stale"},
         EventType.COMMAND, {"accepted": False, "error": "stale"}),
        ("officer_add", {"role": "officer"}, None, {}),
        ("erase", {"recording": "R1"}, None, {}),
    ],
)  # fmt: skip
def test_which_audit_entries_become_which_events(kind, data, expected, fields) -> None:
    actor = "1001" if kind.startswith("checkout") else "dock"
    found = event_for(_view(kind, data, actor), drift_bound_s=1.0)
    if expected is None:
        assert found is None
        return
    assert found is not None
    etype, event_data = found
    assert etype is expected
    for name, value in fields.items():
        assert event_data[name] == value, name


# --- the feed, against a real audit log and outbox on disk ------------------------------


class FlakyOutbox(Outbox):
    """Fails inside the enqueue transaction after ``fail_after`` events, once."""

    fail_after: int | None = None

    def enqueue(
        self,
        boot: str,
        items: Iterable,
        cursors: dict[str, int | str],
        expected: dict | None = None,
        *more: Any,
        **named: Any,
    ) -> int | None:
        limit, self.fail_after = self.fail_after, None

        def items_then_crash() -> Iterator:
            for n, item in enumerate(items):
                if limit is not None and n >= limit:
                    raise OSError("power cut")
                yield item
            if limit is not None:
                raise OSError("power cut")

        return super().enqueue(boot, items_then_crash(), cursors, expected, *more, **named)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("refused"), st.integers(1, 5)),
        st.tuples(st.just("quiet"), st.integers(1, 3)),  # entries headquarters never hears of
        st.just(("checkpoint",)),
        st.just(("feed",)),
        st.tuples(st.just("crash"), st.integers(0, 3)),
        st.just(("restart",)),
        st.just(("intruder",)),  # a second reporter on the same state directory
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(1, 4))
def test_every_reported_entry_is_queued_exactly_once_in_order(ops, batch: int) -> None:
    old_batch = feed_module.BATCH
    feed_module.BATCH = batch  # small batches: the backlog goes over several feeds
    try:
        with tempfile.TemporaryDirectory() as d:
            key = load_or_create_signing_key(os.path.join(d, "k"))
            audit = AuditLog(os.path.join(d, "audit.db"), key, "d1", checkpoint_every=7)
            audit.append("config", "admin", "", {})  # before reporting: never reported
            outbox = FlakyOutbox(os.path.join(d, "outbox.db"))
            boots = iter(f"boot{i}" for i in range(100))
            boot = next(boots)
            feed(audit, outbox, boot, 1.0)  # reporting starts here
            before = {cp.seq for cp in audit.checkpoints()}
            expected: list[str] = []
            n = 0
            for op in ops:
                if op[0] == "refused":
                    for _ in range(op[1]):
                        n += 1
                        audit.append("checkout_refused", f"o{n}", "", {"reasons": ["x"]})
                        expected.append(f"o{n}")
                elif op[0] == "quiet":
                    for _ in range(op[1]):
                        audit.append("officer_add", "admin", "x", {})
                elif op[0] == "checkpoint":
                    audit.checkpoint()
                elif op[0] == "feed":
                    feed(audit, outbox, boot, 1.0)
                elif op[0] == "crash":
                    outbox.fail_after = op[1]  # raises only when there is something to queue
                    with contextlib.suppress(OSError):
                        feed(audit, outbox, boot, 1.0)
                    outbox.fail_after = None
                elif op[0] == "intruder":
                    other = Outbox(os.path.join(d, "outbox.db"))
                    stale = {"audit": other.cursor("audit")}  # what it read before feeding
                    audit.append("checkout_refused", "late", "", {"reasons": ["x"]})
                    expected.append("late")
                    # it read its cursor before this entry; the main feed runs in between
                    feed(audit, outbox, boot, 1.0)
                    view = AuditView(0, "2026-11-22T09:00:00.000Z", "checkin", "", "", {})
                    assert (
                        other.enqueue("intruder", [("checkin", view, {}, True)], {}, stale) is None
                    )
                    other.close()
                else:  # the dock restarts: a new outbox connection and a new boot
                    outbox.close()
                    outbox = FlakyOutbox(os.path.join(d, "outbox.db"))
                    boot = next(boots)
            for _ in range(1000):  # drain (bounded)
                if not feed(audit, outbox, boot, 1.0) and outbox.cursor("audit") == audit.head()[0]:
                    break
            rows = outbox._db.execute("SELECT boot, seq, type, payload FROM events ORDER BY id")
            events = [(b, s, t, decode(Kind.EVENT, p)) for b, s, t, p in rows]
            refused = [e["actor"] for _, _, t, e in events if t == "checkout.refused"]
            assert refused == expected  # each once, in the audit log's order
            audit_seqs = [e["audit_seq"] for *_, e in events if "audit_seq" in e]
            assert audit_seqs == sorted(set(audit_seqs))
            by_boot: dict[str, list[int]] = {}
            for b, s, _, e in events:
                assert (e["boot"], e["seq"]) == (b, s)
                by_boot.setdefault(b, []).append(s)
            for seqs in by_boot.values():  # no holes: headquarters can spot a lost one
                assert seqs == list(range(1, len(seqs) + 1))
            checkpoints = [e["data"]["seq"] for *_, e in events if e["type"] == "audit.checkpoint"]
            signed = [cp.seq for cp in audit.checkpoints()]
            assert checkpoints == [s for s in signed if s not in before]  # signed since start
            outbox.close()
            audit.close()
    finally:
        feed_module.BATCH = old_batch


def test_sent_marks_resend_and_prune(tmp_path) -> None:
    now = [1_000_000.0]
    outbox = Outbox(str(tmp_path / "o.db"), clock=lambda: now[0])
    view = AuditView(1, "2026-11-22T09:00:00.000Z", "checkin", "dock", "S", {})
    items = [("checkin", view, {"n": i}, True) for i in range(5)]
    assert outbox.enqueue("b1", items, {"audit": 5}) == 5
    pending = outbox.pending(10)
    assert [json.loads(p.payload)["seq"] for p in pending] == [1, 2, 3, 4, 5]
    assert [p.id for p in outbox.pending(10, after_id=pending[1].id)] == [p.id for p in pending[2:]]
    outbox.mark_sent(p.id for p in pending)
    assert outbox.count_pending() == 0
    assert outbox.last_event() == {"boot": "b1", "seq": 5}
    assert outbox.resend("b1", 2, 3) == 2  # headquarters missed two
    assert [json.loads(p.payload)["seq"] for p in outbox.pending(10)] == [2, 3]
    outbox.mark_sent(p.id for p in outbox.pending(10))
    now[0] += KEEP_SENT_S + 1
    assert outbox.prune() == 5
    assert outbox.last_event() == {"boot": "b1", "seq": 5}  # still known, for health
    assert outbox.resend("b1", 1, 5) == 0  # too old to resend: said so by the count
    # a dock up for months: its boot's seq goes on from 5, never from 1 again
    assert outbox.enqueue("b1", items[:1], {"audit": 6}) == 1
    assert json.loads(outbox.pending(1)[0].payload)["seq"] == 6
    assert outbox.recent_boots() == [{"boot": "b1", "seq": 6}]
    assert outbox.first_sight("cmd-1") and not outbox.first_sight("cmd-1")


# --- the reporter's bookkeeping, driven through the BrokerLink interface ----------------


class ScriptedLink:
    """A BrokerLink whose connections and acks the test orders by hand: the orderings a
    real network produces only now and then (the reporter's bookkeeping is under test,
    not the broker)."""

    def __init__(self) -> None:
        import queue

        self.inbox: queue.Queue = queue.Queue()
        self.connection = 1
        self.next_mid = 1
        self.published: list[tuple[tuple[int, int], str]] = []

    def start(self, will_topic, will_payload) -> None: ...

    def stop(self) -> None: ...

    def subscribe(self, topic: str) -> None: ...

    def publish(self, topic: str, payload: bytes, retain: bool = False):
        handle = (self.connection, self.next_mid)
        self.next_mid += 1
        self.published.append((handle, topic))
        return handle

    def reconnect(self) -> None:
        self.connection += 1
        self.next_mid = 1  # as with a fresh paho client: ids start again


def _scripted_reporter(tmp_path, make_dock):
    import dataclasses

    from dock.config import MqttConfig
    from dock.reporting.reporter import Reporter

    svc, _ = make_dock({})
    link = ScriptedLink()
    outbox = Outbox(str(tmp_path / "outbox.db"))
    reporter = Reporter(
        link=link, outbox=outbox, service=svc,
        cfg=dataclasses.replace(MqttConfig(host="x", site="s1"), health_interval_s=3600),
        dock_id="d1", software="t", config_hash="h",
        state_dir=str(tmp_path), evidence_dir=str(tmp_path),
    )  # fmt: skip
    return svc, link, outbox, reporter


def _sent(outbox: Outbox) -> dict[str, bool]:
    rows = outbox._db.execute("SELECT payload, sent IS NOT NULL FROM events").fetchall()
    return {json.loads(p)["actor"]: bool(s) for p, s in rows}


def test_an_ack_from_a_past_connection_never_marks_a_new_publish_sent(tmp_path, make_dock) -> None:
    svc, link, outbox, reporter = _scripted_reporter(tmp_path, make_dock)
    reporter._feed()  # reporting starts
    for who in ("a", "b"):
        svc.audit.append("checkout_refused", who, "", {"reasons": ["x"]})
    reporter._feed()
    link.inbox.put(("connected",))
    reporter._drain(0.1)
    reporter._pump(0.0)  # a and b go out on connection 1
    event_handles = [h for h, t in link.published if "/event/" in t]
    assert len(event_handles) == 2
    # connection 1 acks everything but b (birth, state, slot, a) and drops; connection 2
    # is up before the reporter reads any of that, and c goes out on it with message id
    # 1 again, the id the birth had on connection 1
    for handle, _ in link.published:
        if handle != event_handles[1]:
            link.inbox.put(("ack", handle, True, "Success"))
    link.inbox.put(("disconnected", "lost"))
    link.reconnect()
    link.inbox.put(("connected",))
    svc.audit.append("checkout_refused", "c", "", {"reasons": ["x"]})
    reporter._feed()
    reporter._pump(0.0)
    reporter._drain(0.1)  # only now the old ack and the reconnection are read
    reporter._flush_acks()
    assert _sent(outbox) == {"a": True, "b": False, "c": False}
    reporter._audit_probe.close()


def test_a_feed_that_failed_is_tried_again_without_a_new_audit_write(
    tmp_path, make_dock, monkeypatch
) -> None:
    import dock.reporting.reporter as reporter_module

    svc, _, outbox, reporter = _scripted_reporter(tmp_path, make_dock)
    reporter._feed()
    svc.audit.append("checkout_refused", "a", "", {"reasons": ["x"]})
    real = reporter_module.feed
    calls = []

    def fails_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(*args)

    monkeypatch.setattr(reporter_module, "feed", fails_once)
    with pytest.raises(sqlite3.OperationalError):
        reporter._feed()
    reporter._feed()  # nothing was written to the audit log in between
    assert _sent(outbox) == {"a": False}
    reporter._audit_probe.close()
