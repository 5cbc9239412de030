"""The session delivers exactly once and in order, whatever the link does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol.session import (
    Delivered,
    LinkFailed,
    Opened,
    PeerReset,
    Role,
    Session,
    SessionConfig,
    SessionError,
    State,
)
from tests.lossy_link import Faults, run_pair

payloads = st.lists(
    st.tuples(st.integers(1, 0x7FFF), st.binary(max_size=600)), min_size=0, max_size=40
)
faults_st = st.builds(
    Faults,
    drop=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.3),
    reorder=st.floats(0, 0.5),
    bit_error_rate=st.sampled_from([0.0, 1e-5, 1e-4, 1e-3]),
)


@settings(max_examples=150, deadline=None)
@given(payloads, payloads, faults_st, st.integers(0, 2**32 - 1))
def test_exactly_once_in_order_both_directions(a: list, b: list, faults: Faults, seed: int) -> None:
    out = run_pair(a, b, faults, seed)
    assert out.failed is None
    assert out.to_responder == a
    assert out.to_initiator == b


def test_clean_link_needs_no_retransmission() -> None:
    msgs = [(2, bytes([i]) * 100) for i in range(50)]
    out = run_pair(msgs, msgs, Faults(), seed=1)
    assert out.failed is None and out.to_responder == msgs


def _open_pair(now: float = 0.0) -> tuple[Session, Session]:
    a, b = Session(Role.INITIATOR), Session(Role.RESPONDER)
    a.connect(42, now)
    assert [type(e) for e in b.receive(a.outgoing(), now)] == [Opened]
    assert [type(e) for e in a.receive(b.outgoing(), now)] == [Opened]
    return a, b


def test_dead_link_fails_after_bounded_retries() -> None:
    a, _ = _open_pair()
    a.send(1, b"hello", 0.0)
    a.outgoing()  # lost forever
    now, failed = 0.0, []
    for _ in range(100):
        deadline = a.next_deadline()
        assert deadline is not None
        now = deadline
        failed = [e for e in a.on_timer(now) if isinstance(e, LinkFailed)]
        a.outgoing()
        if failed:
            break
    assert failed, "the session never gave up on a dead link"
    assert a.state is State.FAILED


def test_restarted_dock_opens_a_fresh_session() -> None:
    a, b = _open_pair()
    a.send(1, b"one", 0.0)
    b.receive(a.outgoing(), 0.0)
    fresh = Session(Role.INITIATOR)
    fresh.connect(43, 1.0)
    events = b.receive(fresh.outgoing(), 1.0)
    assert [type(e) for e in events] == [Opened]
    fresh.receive(b.outgoing(), 1.0)
    fresh.send(1, b"again", 1.0)
    got = b.receive(fresh.outgoing(), 1.0)
    assert got == [Delivered(1, b"again")]  # sequence 1 again: not taken for a duplicate


def test_restarted_recorder_answers_reset() -> None:
    a, _ = _open_pair()
    blank = Session(Role.RESPONDER)
    a.send(1, b"status?", 0.0)
    assert blank.receive(a.outgoing(), 0.0) == []
    events = a.receive(blank.outgoing(), 0.0)
    assert [type(e) for e in events] == [PeerReset]
    assert a.state is State.CLOSED


def test_repeated_syn_keeps_the_session() -> None:
    a, b = _open_pair()
    a.send(1, b"x", 0.0)
    b.receive(a.outgoing(), 0.0)
    again = Session(Role.INITIATOR)
    again.connect(42, 0.1)  # same session id: our SYN_ACK was lost, not a new dock
    assert b.receive(again.outgoing(), 0.1) == []
    a.send(1, b"y", 0.2)
    assert b.receive(a.outgoing(), 0.2) == [Delivered(1, b"y")]


def test_send_before_open_and_oversize_are_refused() -> None:
    with pytest.raises(SessionError, match="cannot send"):
        Session(Role.INITIATOR).send(1, b"", 0.0)
    a, _ = _open_pair()
    with pytest.raises(SessionError, match="exceeds"):
        a.send(1, bytes(SessionConfig().max_payload + 1), 0.0)
