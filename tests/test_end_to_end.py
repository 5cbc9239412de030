"""Dock client <-> reference recorder over real ptys and TCP, with a bad line."""

from __future__ import annotations

import hashlib

import pytest

from dock.daemon.composition import open_transport
from dock.devices.recorder_client import LinkError, RecorderClient
from firmware_protocol.messages import MsgType
from hardware.emulator.footage import expected_sha256
from hardware.emulator.link_faults import LinkFaults

from .conftest import SECRET


def read_all(client: RecorderClient, rec) -> bytes:
    parts: dict[int, bytes] = {}
    client.read_recording(rec, lambda off, data: parts.__setitem__(off, data))
    blob = b"".join(parts[k] for k in sorted(parts))
    assert len(blob) == rec.size
    return blob


@pytest.mark.parametrize("listen", ["pty", "tcp://127.0.0.1:0"])
def test_probe_list_and_read_exact_bytes(start_recorder, listen: str) -> None:
    """001 art.19(4): every recording is read bit for bit, matching the capture hash."""
    r = start_recorder(listen=listen, serial="E2E0001", recordings=3, recording_mb=1)
    with r.client() as c:
        ident = c.open()
        assert ident.serial == "E2E0001" and ident.protocol_version == 2
        status = c.status()
        assert status.recording_count == 3
        assert abs(status.clock_offset_s) < 1.0
        recs = c.list_recordings()
        assert [x.id for x in recs] == ["REC000001", "REC000002", "REC000003"]
        for i, rec in enumerate(recs, start=1):
            blob = read_all(c, rec)
            assert hashlib.sha256(blob).digest() == rec.sha256
            assert rec.sha256 == expected_sha256("E2E0001", i, rec.size)


@pytest.mark.parametrize("listen", ["pty", "tcp://127.0.0.1:0"])
def test_read_survives_bit_errors_and_dropped_frames(start_recorder, listen: str) -> None:
    """001 art.19(4): over a line with bit errors and dropped frames the recording is still read
    bit for bit."""
    faults = LinkFaults(bit_error_rate=1e-4, drop_rate=0.02, seed=7)
    r = start_recorder(listen=listen, link_faults=faults, recordings=1, recording_mb=0.5)
    with r.client(timeout=30) as c:
        c.open()
        (rec,) = c.list_recordings()
        blob = read_all(c, rec)
        stats = c.session.stats
    assert hashlib.sha256(blob).digest() == expected_sha256(r.model.serial, 1, rec.size)
    # the faults were exercised: damaged frames seen, and lost ones recovered, by a NAK of
    # the hole or by the retransmission timer (which of the two depends on the timing)
    assert stats.damaged > 0, "no damaged frame: the faults were not exercised"
    assert stats.naks_sent + stats.retransmits > 0, "nothing recovered: no fault exercised"


def test_resume_after_disconnect_by_offset(start_recorder) -> None:
    """001 art.19(4): a read cut by a disconnect goes on from its offset on the next link, and
    the whole recording matches its hash."""
    faults = LinkFaults(disconnect_after_bytes=300_000)
    r = start_recorder(listen="tcp://127.0.0.1:0", link_faults=faults, recordings=1, recording_mb=1)
    parts: dict[int, bytes] = {}
    got = 0
    with r.client(timeout=5) as c:
        c.open()
        (rec,) = c.list_recordings()
        with pytest.raises(LinkError):
            c.read_recording(rec, lambda off, d: parts.__setitem__(off, d))
    got = sum(len(p) for p in parts.values())
    assert 0 < got < rec.size
    with r.client() as c:
        c.open()
        c.read_recording(rec, lambda off, d: parts.__setitem__(off, d), offset=got)
    blob = b"".join(parts[k] for k in sorted(parts))
    assert hashlib.sha256(blob).digest() == rec.sha256


def test_nothing_answering_is_a_clear_link_error(tmp_path) -> None:
    import os

    master, slave = os.openpty()
    try:
        with (
            RecorderClient(open_transport(os.ttyname(slave)), timeout=1) as c,
            pytest.raises(LinkError, match="no recorder answered"),
        ):
            c.open(timeout=1.0)
    finally:
        os.close(master)
        os.close(slave)


def test_peer_speaking_something_else_is_named(tmp_path) -> None:
    """A modem-like device that answers with text is not mistaken for silence."""
    import os
    import threading

    master, slave = os.openpty()
    stop = threading.Event()

    def chatter() -> None:
        for _ in range(200):
            if stop.wait(0.01):
                return
            os.write(master, b"AT OK\r\n")

    t = threading.Thread(target=chatter, daemon=True)
    t.start()
    try:
        with (
            RecorderClient(open_transport(os.ttyname(slave)), timeout=1) as c,
            pytest.raises(LinkError, match="not in this protocol"),
        ):
            c.open(timeout=1.0)
    finally:
        stop.set()
        t.join()
        os.close(master)
        os.close(slave)


def test_authenticated_session_over_pty(start_recorder) -> None:
    r = start_recorder(secret=SECRET)
    with r.client() as c:
        c.open()
        c.authenticate(SECRET)
        assert c.authenticated


def test_a_stall_shorter_than_the_timeout_only_slows_the_read(start_recorder) -> None:
    faults = LinkFaults(stall_after_bytes=100_000, stall_seconds=1.0)
    r = start_recorder(listen="tcp://127.0.0.1:0", link_faults=faults, recordings=1, recording_mb=1)
    with r.client(timeout=10) as c:
        c.open()
        (rec,) = c.list_recordings()
        blob = read_all(c, rec)
    assert hashlib.sha256(blob).digest() == rec.sha256
    assert r.server.injector._stalled


def test_pulled_recorder_on_a_pty_is_a_link_error_not_a_hang(start_recorder) -> None:
    """001 art.19(4): a recorder pulled mid-read is a link error, never a copy taken as complete."""
    from dock.devices.recorder_client import LinkGone

    faults = LinkFaults(disconnect_after_bytes=200_000)
    r = start_recorder(link_faults=faults, recordings=1, recording_mb=1)
    with r.client(timeout=5) as c:
        c.open()
        (rec,) = c.list_recordings()
        with pytest.raises(LinkGone):  # the line hung up: no resume attempts on it
            c.read_recording(rec, lambda off, d: None)


def test_recorder_survives_a_dock_killed_mid_transfer(start_recorder) -> None:
    import socket
    import struct

    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=1)
    c = r.client()
    c.open()
    (rec,) = c.list_recordings()
    for off in range(0, 8 * 4096, 4096):  # requests in flight, then a hard reset
        c.start(MsgType.READ, id=rec.id, offset=off, length=4096)
    sock: socket.socket = c.transport.sock  # type: ignore[attr-defined]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, as when the dock process is killed
    with r.client() as again:  # the recorder still answers the next dock
        again.open()
        assert again.status().recording_count == 1
