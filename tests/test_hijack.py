"""Issue 9, section 1: a host without the secret can neither continue the dock's
authenticated session, nor replay or splice its privileged requests, nor read the
secret off the cable at enrolment; the mass-storage volume ends with the session.

The intruder is a second program on the recorder's port (TCP and pty alike) that
speaks raw frames, never opens a session of its own unless the test says so, and
learns sequence numbers from the recorder's own acknowledgements.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from dock.daemon.composition import open_transport
from dock.devices.recorder_client import RecorderClient, RecorderRefused
from firmware_protocol import auth
from firmware_protocol.codec import FIELD_HEAD, REQ_ID
from firmware_protocol.framing import Frame, FrameDecoder, FrameKind, encode_frame
from firmware_protocol.messages import ErrorCode, MsgType, decode, encode, request
from firmware_protocol.session import SYN_PAYLOAD

from .conftest import SECRET, wait_until

TRANSPORTS = ["pty", "tcp://127.0.0.1:0"]


class Recording:
    """A transport that keeps a copy of every byte the dock writes (a passive tap)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.written = bytearray()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        return self.inner.read(max_bytes, timeout)

    def write(self, data: bytes) -> None:
        self.written += data
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()


def _frames(data: bytes) -> list[Frame]:
    return [f for f in FrameDecoder(1 << 20).feed(data) if isinstance(f, Frame)]


def _sent_body(tap: Recording, msg_type: MsgType) -> bytes:
    """The last body of ``msg_type`` the dock put on the cable."""
    frames = _frames(bytes(tap.written))
    bodies = [f.payload for f in frames if f.kind is FrameKind.MSG and f.msg_type == msg_type]
    assert bodies, f"the dock sent no {msg_type.name}"
    return bodies[-1]


class Intruder:
    """Raw frames on the recorder's port, bounded in time."""

    def __init__(self, url: str) -> None:
        self.t = open_transport(url)
        self.decoder = FrameDecoder(1 << 20)

    def close(self) -> None:
        self.t.close()

    def send(self, kind: FrameKind, seq: int, msg_type: int = 0, payload: bytes = b"") -> None:
        self.t.write(encode_frame(kind, seq, 0, msg_type, payload))

    def collect(self, until: Any, timeout: float = 3.0) -> list[Frame]:
        got: list[Frame] = []
        end = time.monotonic() + timeout
        for _ in range(10_000):
            left = end - time.monotonic()
            if left <= 0:
                break
            data = self.t.read(1 << 16, min(left, 0.1))
            got += [f for f in self.decoder.feed(data) if isinstance(f, Frame)]
            if until(got):
                break
        return got

    def probe_expected(self) -> int | None:
        """Send a stale MSG; an open session ACKs it (telling its next expected
        sequence), a closed one answers RST (None)."""
        self.send(FrameKind.MSG, 1, int(MsgType.STATUS), REQ_ID.pack(9))
        frames = self.collect(lambda fs: any(f.kind in (FrameKind.ACK, FrameKind.RST) for f in fs))
        for f in frames:
            if f.kind is FrameKind.RST:
                return None
            if f.kind in (FrameKind.ACK, FrameKind.MSG):
                return f.ack + 1
        return None

    def request(self, seq: int, msg_type: MsgType, body: bytes) -> Frame | None:
        """One request at ``seq``: the recorder's reply frame, or RST, or None."""
        self.send(FrameKind.MSG, seq, int(msg_type), body)

        def answered(fs: list[Frame]) -> bool:
            return any(f.kind is FrameKind.RST or f.msg_type & 0x8000 for f in fs)

        for f in self.collect(answered):
            if f.kind is FrameKind.RST or (f.kind is FrameKind.MSG and f.msg_type & 0x8000):
                return f
        return None


def _assert_refused(answer: Frame | None) -> None:
    """A refusal: RST (no session), ERROR AUTH_REQUIRED/AUTH_FAILED, or silence."""
    if answer is None or answer.kind is FrameKind.RST:
        return
    msg = decode(answer.msg_type, answer.payload)
    assert msg.msg_type is MsgType.ERROR, f"the recorder obeyed: {msg}"
    assert msg.fields["code"] in (ErrorCode.AUTH_REQUIRED, ErrorCode.AUTH_FAILED), msg.fields


def _erase_body(req_id: int, rid: str, sha: bytes) -> bytes:
    return encode(request(MsgType.ERASE, req_id, id=rid, sha256=sha))[1]


@pytest.mark.parametrize("listen", TRANSPORTS)
def test_a_second_host_cannot_continue_a_dead_docks_session(start_recorder, listen) -> None:
    """003 art.11 (nobody deletes original footage): the hijack of issue 9 section 1."""
    r = start_recorder(listen=listen, secret=SECRET, recordings=3)
    tap = Recording(open_transport(r.url))
    dock = RecorderClient(tap, timeout=5)
    dock.open()
    dock.authenticate(SECRET)
    recs = dock.list_recordings()
    dock.erase(recs[0].id, recs[0].sha256)  # a legitimate, sealed erase on the cable
    dock.mass_storage(True)
    volume = os.path.join(r.data_dir, "mass-storage")
    assert os.path.isdir(volume)
    sealed = _sent_body(tap, MsgType.ERASE)
    session_id = dock.session.session_id
    tap.close()  # the dock dies (kill -9 closes its descriptors the same way)

    # The authority ends with the link: the volume is withdrawn without any request.
    assert wait_until(lambda: not os.path.isdir(volume)), "volume outlived the dock"

    intruder = Intruder(r.url)
    try:
        target = recs[1]
        expected = intruder.probe_expected()
        seq = expected if expected is not None else 2
        _assert_refused(
            intruder.request(seq, MsgType.ERASE, _erase_body(77, target.id, target.sha256))
        )
        # Splice: the dock's own authenticator on an ERASE of another recording.
        inner, _, _ = auth.split_authenticator(sealed)  # type: ignore[misc]
        spliced = _erase_body(78, target.id, target.sha256) + sealed[len(inner) :]
        _assert_refused(intruder.request(seq + 1, MsgType.ERASE, spliced))
        # Its own session, with the dead dock's session id seen on the cable, and a replay.
        intruder.send(FrameKind.SYN, 0, 0, SYN_PAYLOAD.pack(session_id, 8, 65536))
        intruder.collect(lambda fs: any(f.kind is FrameKind.SYN_ACK for f in fs))
        _assert_refused(intruder.request(1, MsgType.ERASE, sealed))
        _assert_refused(
            intruder.request(2, MsgType.ERASE, _erase_body(79, target.id, target.sha256))
        )
        _assert_refused(
            intruder.request(
                3, MsgType.MASS_STORAGE, encode(request(MsgType.MASS_STORAGE, 80, enable=True))[1]
            )
        )
    finally:
        intruder.close()
    assert set(r.model.recordings) == {recs[1].id, recs[2].id}, "footage erased by a stranger"
    assert r.model.secret == SECRET
    assert not os.path.isdir(volume)


def test_replayed_and_spliced_requests_in_a_live_session_are_refused(start_recorder) -> None:
    """003 art.11: A frame injected into the dock's own live session: same bytes again (replay)
    or another recording's id under the dock's authenticator (splice)."""
    r = start_recorder(secret=SECRET, recordings=3, clock_offset_s=30)
    tap = Recording(open_transport(r.url))
    with RecorderClient(tap, timeout=5) as dock:
        dock.open()
        dock.authenticate(SECRET)
        recs = dock.list_recordings()
        dock.erase(recs[0].id, recs[0].sha256)
        sealed = _sent_body(tap, MsgType.ERASE)

        def inject(body: bytes) -> None:
            req_id = int.from_bytes(body[:4], "big")
            dock.session.send(int(MsgType.ERASE), body, dock._mono())
            dock._flush()
            with pytest.raises(RecorderRefused) as exc:
                dock.wait(req_id)
            assert exc.value.code == ErrorCode.AUTH_FAILED

        inject(sealed)  # replayed: the counter was used
        inner, counter, mac = auth.split_authenticator(sealed)  # type: ignore[misc]
        other = _erase_body(int.from_bytes(inner[:4], "big"), recs[1].id, recs[1].sha256)
        inject(other + sealed[len(inner) :])  # spliced onto another recording
        forged = other + FIELD_HEAD.pack(auth.AUTH_TAG, 36) + (counter + 5).to_bytes(4, "big") + mac
        inject(forged)  # a fresh counter with a MAC that is not for it
        # and the dock's own next request still works: nothing was desynchronised
        dock.erase(recs[1].id, recs[1].sha256)
    assert set(r.model.recordings) == {recs[2].id}


def test_enrolment_puts_no_secret_on_the_cable(start_recorder) -> None:
    """004 att.2 §9: A passive listener who saw the whole enrolment cannot authenticate."""
    r = start_recorder(serial="TAP0001")
    tap = Recording(open_transport(r.url))
    with RecorderClient(tap, timeout=5) as dock:
        dock.open()
        secret = dock.enrol()
        dock.authenticate(secret)
    wire = bytes(tap.written)
    assert secret not in wire and r.model.secret == secret
    # Everything the dock sent, replayed by the listener, gets it nowhere.
    with RecorderClient(open_transport(r.url), timeout=5) as listener:
        listener.open()
        for f in _frames(wire):
            if f.kind is FrameKind.MSG and f.msg_type == MsgType.ENROL:
                req_id = listener.start(MsgType.STATUS)  # keep ids moving
                listener.wait(req_id)
                listener.session.send(f.msg_type, f.payload, listener._mono())
                listener._flush()
                with pytest.raises(RecorderRefused, match="ALREADY_ENROLLED"):
                    listener.wait(int.from_bytes(f.payload[:4], "big"))
    assert r.model.secret == secret


def test_authority_lapses_after_the_idle_timeout(start_recorder, monkeypatch) -> None:
    """A session left open (a dock hung, a cable not pulled) does not keep authority."""
    import hardware.emulator.recorder as firmware

    r = start_recorder(secret=SECRET)
    with r.client(timeout=5) as dock:
        dock.open()
        dock.authenticate(SECRET)
        dock.mass_storage(True)
        volume = os.path.join(r.data_dir, "mass-storage")
        assert os.path.isdir(volume)
        monkeypatch.setattr(firmware, "AUTH_IDLE_TIMEOUT", 0.0)
        assert wait_until(lambda: not os.path.isdir(volume)), "authority did not lapse"
        monkeypatch.setattr(firmware, "AUTH_IDLE_TIMEOUT", 120.0)
        with pytest.raises(RecorderRefused, match="AUTH_REQUIRED"):
            dock.set_time(time.time())


def test_a_reply_type_sent_to_a_recorder_is_unknown_whatever_its_body(start_recorder) -> None:
    """PROTOCOL.md 4.4: UNKNOWN_MESSAGE, never MALFORMED, for a reply type."""
    r = start_recorder()
    with r.client(timeout=5) as c:
        c.open()
        req_id = c._next_req
        c._next_req += 1
        c.session.send(int(MsgType.STATUS) | 0x8000, REQ_ID.pack(req_id) + b"\x01\x00", c._mono())
        c._flush()
        with pytest.raises(RecorderRefused) as exc:
            c.wait(req_id)
        assert exc.value.code == ErrorCode.UNKNOWN_MESSAGE


def test_pages_fit_the_docks_max_payload(start_recorder) -> None:
    """PROTOCOL.md 6.3: a dock announcing the minimum payload still lists everything."""
    from dock.devices.recorder_client import dock_session_config

    r = start_recorder(recordings=40, recording_mb=0.01)
    cfg = dock_session_config()
    cfg.max_payload = 512
    with RecorderClient(open_transport(r.url), timeout=5, session_config=cfg) as c:
        c.open()
        listed = c.list_recordings()
        events = c.events()
    assert [x.id for x in listed] == [x.id for x in r.model.ordered_recordings()]
    assert len(events) == len(r.model.state["events"])


def test_clock_offset_leaves_out_the_recorders_processing_time(start_recorder) -> None:
    """PROTOCOL.md 6.5: a recorder that takes 1.5 s to answer STATUS is not 0.75 s off."""
    r = start_recorder(clock_offset_s=0)
    firmware = r.server.firmware
    slow_status = firmware._on_status

    def slow() -> dict:
        time.sleep(1.5)  # the processing delay under test, not a synchronisation wait
        return slow_status()

    firmware._on_status = slow  # type: ignore[method-assign]
    with r.client(timeout=5) as c:
        c.open()
        offset = c.status().clock_offset_s
    assert abs(offset) < 0.2, offset


def test_enrolment_is_atomic_from_the_docks_side(make_dock) -> None:
    """Issue 9 section 2: a recorder that cannot prove the agreed secret leaves nothing
    enrolled on either side, with a clear error, and enrolling again works."""
    from dock.devices.recorder_client import AuthenticationFailed

    svc, recs = make_dock({"recordings": 0}, enrol=False)
    firmware = recs[0].server.firmware
    honest = firmware._on_auth_prove

    def wrong_proof(host_mac: bytes) -> dict:
        honest(host_mac)  # the recorder commits the new secret ...
        return {"device_mac": bytes(32)}  # ... but its proof back is wrong

    firmware._on_auth_prove = wrong_proof  # type: ignore[method-assign]
    with pytest.raises(AuthenticationFailed, match="could not prove"):
        svc.enrol("1", "admin")
    serial = recs[0].model.serial
    assert svc.store.device(serial) is None  # nothing trusted on the dock's side
    firmware._on_auth_prove = honest  # type: ignore[method-assign]
    assert svc.enrol("1", "admin") == serial  # the pending secret finishes it
    device = svc.store.device(serial)
    assert device is not None and device.secret == recs[0].model.secret
    assert svc.store.pending_secret(serial) is None


def test_a_killed_enrolment_is_finished_by_the_next(make_dock) -> None:
    """The dock wrote the agreed secret down, the recorder committed it, the dock died
    before enrolling it: the next ``enrol`` completes with the same secret."""
    svc, recs = make_dock({"recordings": 0}, enrol=False)
    serial = recs[0].model.serial
    with svc.access.session("1") as client:
        secret = client.enrol()
        svc.store.keep_pending_secret(serial, secret)
        client.authenticate(secret)  # recorder commits; the dock "dies" here
    assert recs[0].model.secret == secret and svc.store.device(serial) is None
    assert svc.enrol("1", "admin") == serial
    assert svc.store.device(serial).secret == secret


def test_dock_device_enrol_says_in_one_line_when_the_recorder_cannot_prove_it(
    start_recorder, tmp_path, capsys, monkeypatch
) -> None:
    """No traceback: one line, a link/auth exit status, and running it again works."""
    import logging

    from dock.cli.main import main

    from .conftest import write_dock_config

    # main() points the root logger at this test's captured stderr: put it back after.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)

    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=0)
    cfg, _state, _evidence = write_dock_config(tmp_path, r.url, "d1")
    firmware = r.server.firmware
    honest = firmware._on_auth_prove
    firmware._on_auth_prove = lambda host_mac: {**honest(host_mac), "device_mac": bytes(32)}
    status = main(["--config", str(cfg), "device", "enrol", "--slot", "1"])
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("dock device")] == [
        "dock device: enrol failed: recorder could not prove it holds the enrolled secret"
    ]
    firmware._on_auth_prove = honest
    assert main(["--config", str(cfg), "device", "enrol", "--slot", "1"]) == 0
