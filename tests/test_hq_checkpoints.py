"""Headquarters holds each dock to its audit checkpoints: a new one must extend the last.

The pure rule (hq/checkpoints.py) against honest logs delivered in any order and against
logs cut back and grown again; the monitor against a real mosquitto; and the whole way
round: a dock's log cut, headquarters' alert, its checkpoint file, ``dock audit verify
--against`` failing on the dock.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dock.storage import audit as dock_audit
from dock.storage.keys import fingerprint, public_key_bytes
from hq import checkpoints as rule
from hq.alerts import AlertKind
from hq.checkpoints import ACCEPTED, DUPLICATE, REJECTED, Claim, claim_of, judge, known_from
from hq.config import BrokerSettings
from hq.monitor import Monitor
from hq.store import Store
from mqtt_contract import contract

from .test_hq_monitor import WAIT, FakeDock, open_alerts, wait_until

DOCK = "d1"
KEY = Ed25519PrivateKey.generate()
T0 = 1_800_000_000.0
_heads = itertools.count()


def head(tag: str) -> str:
    return hashlib.sha256(f"{tag}/{next(_heads)}".encode()).hexdigest()


def claim(seq: int, h: str, t: float, prev: tuple[int, str] | None, key=KEY) -> Claim:
    """A checkpoint as the dock signs and reports it."""
    when = contract.utc(t)
    sig = key.sign(contract.checkpoint_signed_bytes(DOCK, seq, h, when)).hex()
    data: dict[str, Any] = {"seq": seq, "head": h, "time": when}
    data |= {"public_key": public_key_bytes(key).hex(), "signature": sig}
    if prev is not None:
        data["previous"] = {"seq": prev[0], "head": prev[1]}
    return claim_of(data, when)


def chain(seqs: list[int], t0: float, start: tuple[int, str] = (0, contract.GENESIS)):
    """Checkpoints of one log at ``seqs``, each naming the one before."""
    out, prev, t = [], start, t0
    for s in seqs:
        c = claim(s, head("log"), t, prev)
        out.append(c)
        prev, t = (s, c.head), t + 60
    return out


def test_the_construction_is_the_docks() -> None:
    """hq may not import dock: the signed bytes, fingerprint and file format agree."""
    for args in (
        (DOCK, 1, "ab" * 32, "2026-01-01T00:00:00.000Z"),
        ("码头-7", 10**9, "0" * 64, "x"),
    ):
        assert contract.checkpoint_signed_bytes(*args) == dock_audit.checkpoint_message(*args)
    raw = public_key_bytes(KEY)
    assert contract.key_fingerprint(raw) == fingerprint(raw)
    assert contract.CHECKPOINT_FILE_FORMAT == dock_audit.CHECKPOINT_FILE_FORMAT
    assert contract.GENESIS == dock_audit.GENESIS


class Hq:
    """Headquarters' checkpoints of one dock: the rule, with the store's look-ups checked
    against the reference ``known_from`` on every claim."""

    def __init__(self, store: Store, dock: str) -> None:
        self.store, self.dock = store, dock
        self.accepted: list[Claim] = []
        self.rejected: list[tuple[int, str]] = []

    def send(self, c: Claim) -> rule.Verdict:
        known = known_from(self.accepted, self.rejected, c)
        assert self.store.checkpoints_known("s", self.dock, c) == known
        verdict = judge(DOCK, c, known)
        if verdict.status != DUPLICATE:
            with self.store.transaction():
                self.store.add_checkpoint("s", self.dock, c, verdict.status == ACCEPTED, 0.0)
            if verdict.status == ACCEPTED:
                self.accepted.append(c)
            else:
                self.rejected.append((c.seq, c.head))
        return verdict


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(str(tmp_path_factory.mktemp("hq") / "fleet.sqlite3"))
    yield s
    s.close()


_docks = itertools.count()
seq_sets = st.lists(st.integers(1, 400), min_size=1, max_size=10, unique=True).map(sorted)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seqs=seq_sets, data=st.data())
def test_an_honest_log_in_any_order_raises_nothing(store, seqs, data) -> None:
    cps = chain(seqs, T0)
    order = data.draw(st.permutations(cps), label="arrival")
    delivered = data.draw(st.lists(st.sampled_from(order), max_size=3), label="again")
    hq = Hq(store, f"honest{next(_docks)}")
    for c in [*order, *delivered]:
        verdict = hq.send(c)
        assert verdict.status in (ACCEPTED, DUPLICATE), verdict.detail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seqs=seq_sets, data=st.data())
def test_a_log_cut_back_and_grown_again_is_caught(store, seqs, data) -> None:
    """000 §10: headquarters received some checkpoints of the log (any order); the log is cut
    back to entry K below the newest of them and grows again, and the dock reports each new
    checkpoint: one of them is rejected, as backwards or a fork."""
    honest = chain(seqs, T0)
    got = data.draw(st.lists(st.sampled_from(honest), min_size=1, unique=True), label="got")
    newest = max(c.seq for c in got)
    cut = data.draw(st.integers(0, newest - 1), label="cut back to")
    kept = [c for c in honest if c.seq <= cut]
    start = (kept[-1].seq, kept[-1].head) if kept else (0, contract.GENESIS)
    regrown = data.draw(
        st.lists(st.integers(cut + 1, 500), min_size=1, max_size=6, unique=True).map(sorted),
        label="new checkpoints",
    )
    later = T0 + 60 * len(seqs) + 3600  # signed after everything before the cut
    hq = Hq(store, f"cut{next(_docks)}")
    for c in got:
        assert hq.send(c).status == ACCEPTED
    verdicts = [hq.send(c) for c in chain(regrown, later, start)]
    rejected = [v for v in verdicts if v.status == REJECTED]
    assert rejected, [v.detail for v in verdicts]
    assert rejected[0].kind in (AlertKind.AUDIT_BACKWARDS, AlertKind.AUDIT_FORK)


def test_each_rule_names_what_it_saw(store) -> None:
    hq = Hq(store, "named")
    c100, c200, c300 = chain([100, 200, 300], T0)
    for c in (c100, c300):
        assert hq.send(c).status == ACCEPTED
    assert hq.send(c100).status == DUPLICATE
    # c300 names 200 as its previous: the late c200 fits and is accepted
    assert hq.send(c200).status == ACCEPTED
    fork = hq.send(claim(200, head("other"), T0 + 1000, (100, c100.head)))
    assert (fork.status, fork.kind) == (REJECTED, AlertKind.AUDIT_FORK)
    assert "entry 200 was" in fork.detail
    back = hq.send(claim(250, head("other"), T0 + 1000, (200, c200.head)))
    assert back.kind is AlertKind.AUDIT_BACKWARDS and "went back below entry 300" in back.detail
    grown = claim(400, head("other"), T0 + 2000, (100, c100.head))
    verdict = hq.send(grown)
    assert verdict.kind is AlertKind.AUDIT_BACKWARDS and "holds checkpoint 200" in verdict.detail
    follows = hq.send(claim(450, head("other"), T0 + 2100, (400, grown.head)))
    assert follows.kind is AlertKind.AUDIT_FORK and "rejected" in follows.detail
    intruder = Ed25519PrivateKey.generate()
    other_key = hq.send(claim(500, head("x"), T0 + 3000, (300, c300.head), key=intruder))
    assert other_key.kind is AlertKind.AUDIT_BAD_CHECKPOINT and "not by the dock's key" in (
        other_key.detail
    )
    forged = claim(500, head("x"), T0 + 3000, (300, c300.head))
    forged = Claim(**{**vars(forged), "head": head("y")})  # the signature is for another head
    assert hq.send(forged).kind is AlertKind.AUDIT_BAD_CHECKPOINT
    assert hq.send(claim(500, head("log"), T0 + 3000, (300, c300.head))).status == ACCEPTED


def test_an_old_dock_without_previous_or_signature_is_judged_by_what_it_sends(store):
    hq = Hq(store, "old")

    def old(seq: int, t: float, h: str | None = None) -> Claim:
        return claim_of({"seq": seq, "head": h or head("old")}, contract.utc(t))

    for c in (old(100, T0), old(300, T0 + 120), old(200, T0 + 60)):  # late 200: older
        assert hq.send(c).status == ACCEPTED
    assert hq.send(old(250, T0 + 500)).kind is AlertKind.AUDIT_BACKWARDS  # signed after 300
    assert hq.send(old(300, T0 + 500)).kind is AlertKind.AUDIT_FORK


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"seq": 0, "head": "0" * 64}, "seq must be >= 1"),
        ({"seq": 5, "head": "xyz"}, "64 hex"),
        ({"seq": 5, "head": "a" * 64, "previous": {"seq": 5, "head": "a" * 64}}, "below seq"),
        ({"seq": 5, "head": "a" * 64, "previous": {"seq": 0, "head": "a" * 64}}, "64 zeros"),
        ({"seq": 5, "head": "a" * 64, "public_key": "ab"}, "go together"),
    ],
)
def test_unreadable_checkpoints_are_refused(data, why) -> None:
    with pytest.raises(contract.ContractError, match=why):
        claim_of(data, "2026-11-22T09:00:00.000Z")


# --- the monitor, against a real mosquitto ---------------------------------------------


@pytest.fixture
def docks(mosquitto) -> Iterator[Callable[..., FakeDock]]:
    made: list[FakeDock] = []
    yield lambda **kw: made.append(FakeDock(mosquitto, **kw)) or made[-1]
    for d in made:
        d.close()


@pytest.fixture
def start_monitor(mosquitto, tmp_path) -> Iterator[Callable[[], Monitor]]:
    running: list[Monitor] = []

    def start() -> Monitor:
        m = Monitor(str(tmp_path / "fleet.sqlite3"), BrokerSettings(port=mosquitto.port))
        m.start()
        running.append(m)
        assert m.wait_subscribed(WAIT), "monitor did not subscribe"
        return m

    yield start
    for m in running:
        m.stop()


def event_data(c: Claim) -> dict[str, Any]:
    data: dict[str, Any] = {"seq": c.seq, "head": c.head, "time": c.time}
    if c.signed:
        data |= {"public_key": c.public_key, "signature": c.signature}
    if c.prev_seq is not None:
        data["previous"] = {"seq": c.prev_seq, "head": c.prev_head}
    return data


def send(dock: FakeDock, seq: int, c: Claim) -> None:
    body = {"type": "audit.checkpoint", "boot": dock.boot, "seq": seq, "time": c.time,
            "actor": "dock", "subject": "audit", "data": event_data(c)}  # fmt: skip
    dock.publish(contract.Kind.EVENT, body, name="audit.checkpoint")


def hq_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hq.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_monitor_alerts_on_a_checkpoint_that_goes_backwards_or_forks(
    docks, start_monitor, tmp_path
) -> None:
    """000 §10: headquarters alerts on a dock's checkpoint that goes backwards or forks."""
    monitor = start_monitor()
    dock = docks(dock=DOCK)
    c100, c200, c300 = chain([100, 200, 300], time.time() - 600)
    for n, c in enumerate((c100, c300, c200), start=1):  # 200 late, as after a resend
        send(dock, n, c)
    wait_until(lambda: monitor.stats()["counts"]["committed"] >= 3, "three checkpoints")
    assert open_alerts(tmp_path, "audit_backwards") == []
    db = str(tmp_path / "fleet.sqlite3")
    out = hq_cli("checkpoint", "s1", DOCK, "--db", db)
    assert out.returncode == 0, out.stderr
    held = dock_audit.parse_checkpoint(out.stdout, "hq")  # what the dock reads
    assert (held.dock_id, held.checkpoint.seq, held.checkpoint.head_hash) == (DOCK, 300, c300.head)
    assert json.loads(out.stdout)["fingerprint"] == fingerprint(KEY)

    # The log was cut back to entry 150 and grew: its next checkpoint follows 100.
    send(dock, 4, claim(170, head("cut"), time.time(), (100, c100.head)))
    back = wait_until(lambda: open_alerts(tmp_path, "audit_backwards"), "audit_backwards")
    assert back[0]["dock"] == DOCK and "170" in back[0]["detail"]
    send(dock, 5, claim(300, head("cut"), time.time(), (170, head("x"))))
    fork = wait_until(lambda: open_alerts(tmp_path, "audit_fork"), "audit_fork")
    assert "entry 300 was" in fork[0]["detail"]
    # What headquarters gives the dock is still what it accepted before the cut.
    assert dock_audit.parse_checkpoint(hq_cli("checkpoint", "s1", DOCK, "--db", db).stdout, "hq")
    assert json.loads(hq_cli("checkpoint", "s1", DOCK, "--db", db).stdout)["seq"] == 300

    forget = hq_cli("checkpoint", "s1", DOCK, "--db", db, "--forget", "--by", "duty officer")
    assert forget.returncode == 0 and "forgotten by duty officer" in forget.stdout
    assert hq_cli("checkpoint", "s1", DOCK, "--db", db).returncode == 1  # none held now
    assert hq_cli("checkpoint", "s1", DOCK, "--db", db, "--forget").returncode == 2  # who?


def test_the_dock_saying_its_log_went_back_raises_the_alert(docks, start_monitor, tmp_path):
    start_monitor()
    dock = docks(dock=DOCK)
    data = {"head_seq": 15, "head": "a" * 64, "reported_seq": 31, "reported_head": "b" * 64,
            "agreed_seq": 15, "checkpoint_seq": 10, "reported_checkpoint_seq": 30,
            "detail": "entry 31, already reported, is no longer in the log"}  # fmt: skip
    dock.event(1, "audit.rewound", **data)
    alert = wait_until(lambda: open_alerts(tmp_path, "audit_backwards"), "audit_backwards")
    assert "no longer in the log" in alert[0]["detail"] and "31" in alert[0]["detail"]


# --- the whole way round ---------------------------------------------------------------


def test_a_cut_on_the_dock_is_seen_at_headquarters_and_by_verify_against_it(
    mosquitto, start_monitor, tmp_path
) -> None:
    """000 §10: a cut of the dock's log is seen at headquarters, and by verifying against its
    checkpoint."""
    from .test_mqtt_dock import _dock_config, _reporter

    start_monitor()
    config = _dock_config(tmp_path, mosquitto, DOCK)
    db = str(tmp_path / "fleet.sqlite3")

    def run_reporter(work: Callable[[Any], None]) -> None:
        svc, reporter = _reporter(config)
        reporter.start()
        try:
            work(svc)
            wait_until(
                lambda: (
                    reporter.outbox.cursor("audit") == svc.audit.head()[0]
                    and reporter.outbox.count_pending() == 0
                ),
                "every entry reported",
                30,
            )
        finally:
            reporter.stop()
            reporter.outbox.close()
            svc.audit.close()

    def refused(svc: Any, n: int) -> None:
        for i in range(n):
            svc.audit.append("checkout_refused", f"o{i}", "", {"reasons": ["officer_unknown"]})

    run_reporter(lambda svc: refused(svc, 250))  # checkpoints at 100 and 200 reported
    held = wait_until(
        lambda: (
            json.loads(hq_cli("checkpoint", "s1", DOCK, "--db", db).stdout or "{}").get("seq", 0)
            >= 200
        ),
        "headquarters to hold checkpoint 200",
    )
    assert held
    hq_file = tmp_path / "from-hq.json"
    hq_file.write_text(hq_cli("checkpoint", "s1", DOCK, "--db", db).stdout)

    state = tmp_path / "state"
    from .test_audit import tamper

    # Stopped, cut back to entry 150 with its checkpoints, the copy beside it removed.
    tamper(
        state / "audit.db",
        "DELETE FROM entries WHERE seq > 150",
        "DELETE FROM checkpoints WHERE seq > 150",
    )
    (state / "audit-copy" / "checkpoint.json").unlink()
    dock_cli = [sys.executable, "-m", "dock.cli.main", "--config", config, "audit", "verify"]
    blind = subprocess.run(dock_cli, capture_output=True, text=True, timeout=60)
    assert blind.returncode == 0 and dock_audit.NO_OUTSIDE_CHECKPOINT in blind.stdout
    against = subprocess.run(
        [*dock_cli, "--against", str(hq_file)], capture_output=True, text=True, timeout=60
    )
    assert against.returncode == 1 and "BAD at entry 151" in against.stdout, against.stdout

    def after_the_cut(svc: Any) -> None:
        refused(svc, 30)
        svc.audit.checkpoint()

    run_reporter(after_the_cut)  # the dock restarts: its reporter finds the log went back
    # Twice: the dock's own audit.rewound, and its next checkpoint (181, after 100) that
    # lies where headquarters knows the log had none (between 100 and 200).
    back = wait_until(
        lambda: [a for a in open_alerts(tmp_path, "audit_backwards") if a["count"] >= 2],
        "both audit_backwards",
    )
    assert "checkpoint 181" in back[0]["detail"]
    store = Store(db)
    try:
        said = store.db.execute("SELECT payload FROM events WHERE type = 'audit.rewound'")
        rewound = [json.loads(p)["data"] for (p,) in said]
    finally:
        store.close()
    assert [(r["reported_seq"], r["head_seq"], r["agreed_seq"]) for r in rewound] == [
        (251, 150, 150)
    ]
    assert json.loads(hq_file.read_text())["seq"] == 200
