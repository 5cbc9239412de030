"""The reference recorder refuses what a firmware must refuse, and remembers."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from dock.devices.recorder_client import AuthenticationFailed, NotPermitted, RecorderRefused
from firmware_protocol.messages import Capability, ErrorCode, EventKind, MsgType, StopReason
from hardware.emulator.recorder_model import LEGACY_CAPABILITIES

from .conftest import SECRET, send_unsealed, wait_until


def test_status_reads_without_authentication_but_erase_needs_it(start_recorder) -> None:
    """003 art.11; 000 §13.2: only an authenticated dock may erase footage on the recorder."""
    r = start_recorder(secret=SECRET)
    with r.client() as c:
        c.open()
        assert c.status().recording_count == 2
        rec = c.list_recordings()[0]
        with pytest.raises(NotPermitted):
            c.erase(rec.id, rec.sha256)  # the dock does not even send it
        with pytest.raises(RecorderRefused) as exc:
            send_unsealed(c, MsgType.ERASE, id=rec.id, sha256=rec.sha256)
        assert exc.value.code == ErrorCode.AUTH_REQUIRED
        for msg_type, fields in (
            (MsgType.SET_TIME, {"utc_ms": 1_700_000_000_000}),
            (MsgType.ASSIGN, {"officer_id": "1001", "officer_name": "Wang Wei", "unit": "T3"}),
            (MsgType.MASS_STORAGE, {"enable": True}),
        ):
            with pytest.raises(RecorderRefused, match="AUTH_REQUIRED"):
                send_unsealed(c, msg_type, **fields)
    assert len(r.model.recordings) == 2


def test_wrong_secret_is_refused_and_grants_nothing(start_recorder) -> None:
    r = start_recorder(secret=SECRET)
    with r.client() as c:
        c.open()
        with pytest.raises(AuthenticationFailed):
            c.authenticate(bytes(32))
        rec = c.list_recordings()[0]
        with pytest.raises(RecorderRefused, match="AUTH_REQUIRED"):
            send_unsealed(c, MsgType.ERASE, id=rec.id, sha256=rec.sha256)


def test_erase_refused_without_the_right_hash(start_recorder) -> None:
    """001 art.19(4): the recorder erases a recording only when given its hash, the one the dock
    verified."""
    r = start_recorder(secret=SECRET)
    with r.client() as c:
        c.open()
        c.authenticate(SECRET)
        rec = c.list_recordings()[0]
        with pytest.raises(RecorderRefused) as exc:
            c.erase(rec.id, hashlib.sha256(b"something else").digest())
        assert exc.value.code == ErrorCode.HASH_MISMATCH
        assert os.path.exists(r.model.recording_path(rec.id))
        c.erase(rec.id, rec.sha256)
        assert [x.id for x in c.list_recordings()] == ["REC000002"]
        with pytest.raises(RecorderRefused, match="NOT_FOUND"):
            c.erase(rec.id, rec.sha256)  # nothing is erased twice
    kinds = [e["kind"] for e in r.model.state["events"]]
    assert kinds.count(EventKind.ERASED) == 1


def test_set_time_reports_drift_and_fixes_the_clock(start_recorder) -> None:
    """004 att.3 art.9: the recorder's SET_TIME reports the drift it found and sets its clock."""
    import time

    r = start_recorder(secret=SECRET, clock_offset_s=42.5)
    with r.client() as c:
        c.open()
        assert c.status().clock_offset_s == pytest.approx(42.5, abs=0.5)
        c.authenticate(SECRET)
        drift = c.set_time(time.time(), source="test")
        assert drift == pytest.approx(42.5, abs=0.5)
        assert abs(c.status().clock_offset_s) < 0.5
        events = c.events()
    assert events[-1]["kind"] == EventKind.TIME_SET


def test_assignment_is_written_into_the_device(start_recorder) -> None:
    r = start_recorder(secret=SECRET)
    with r.client() as c:
        c.open()
        c.authenticate(SECRET)
        c.assign("110105", "Li Na", "Chaoyang Traffic")
        assert c.status().officer_id == "110105"
    assert r.model.state["officer"]["unit"] == "Chaoyang Traffic"


def test_state_survives_a_restart(start_recorder, tmp_path) -> None:
    folder = str(tmp_path / "persist")
    first = start_recorder(data_dir=folder, serial="KEEP01", secret=SECRET, recordings=3)
    with first.client() as c:
        c.open()
        c.authenticate(SECRET)
        c.erase("REC000001", c.list_recordings()[0].sha256)
        c.assign("7", "Zhao", "Unit 1")
    first.server.stop()
    again = start_recorder(data_dir=folder, serial="IGNORED", recordings=9)
    with again.client() as c:
        ident = c.open()
        assert ident.serial == "KEEP01" and ident.enrolled
        c.authenticate(SECRET)  # the secret survived
        assert [x.id for x in c.list_recordings()] == ["REC000002", "REC000003"]
        assert c.status().officer_id == "7"
        kinds = [e["kind"] for e in c.events()]
    assert kinds.count(EventKind.POWER_ON) == 2


def test_interruptions_are_in_the_event_log(start_recorder) -> None:
    """002 art.20; 001 art.19(2): the recorder logs interruptions, for the dock to find."""
    r = start_recorder(recordings=3, interrupted=1)
    with r.client() as c:
        c.open()
        events = c.events()
        recs = c.list_recordings()
    cut = [e for e in events if e["kind"] == EventKind.INTERRUPTED]
    assert len(cut) == 1 and cut[0]["reason"] == StopReason.BATTERY
    assert cut[0]["recording_id"] == recs[-1].id
    assert recs[-1].stop_reason == StopReason.BATTERY


def test_older_recorder_without_capabilities_still_works(start_recorder) -> None:
    r = start_recorder(capabilities=LEGACY_CAPABILITIES)
    with r.client() as c:
        ident = c.open()
        assert Capability.BATTERY_HEALTH not in ident.capabilities
        status = c.status()
        assert status.battery_health_percent is None and status.battery_percent > 0
        assert all(x.signature is None for x in c.list_recordings())
        with pytest.raises(RecorderRefused, match="UNSUPPORTED"):
            c.self_test()


def test_unknown_message_gets_an_error_not_a_crash(start_recorder) -> None:
    r = start_recorder()
    with r.client() as c:
        c.open()
        req = c._next_req  # a request id the client issued (it keeps only such replies)
        c._next_req += 1
        c.session.send(0x0042, req.to_bytes(4, "big") + b"\x01\x00\x00\x00\x00", 0.0)
        c._flush()
        c._pump(lambda: req in c._replies, 5)
        err, _ = c._replies.pop(req)
        assert err.msg_type is MsgType.ERROR
        assert err.fields["code"] == ErrorCode.UNKNOWN_MESSAGE
        assert c.status().recording_count == 2  # and it goes on answering


def test_self_test_reports_a_faulty_sensor(start_recorder) -> None:
    from firmware_protocol.messages import FaultFlag

    r = start_recorder(faults=FaultFlag.SENSOR)
    with r.client() as c:
        c.open()
        result = c.self_test()
    assert result["passed"] is False
    assert {i["name"] for i in result["items"] if not i["passed"]} == {"sensor"}


def test_mass_storage_exposes_a_read_only_folder(start_recorder) -> None:
    r = start_recorder(secret=SECRET, recordings=2)
    with r.client() as c:
        c.open()
        c.authenticate(SECRET)
        reply = c.mass_storage(True)
        recs = c.list_recordings()
        folder = reply["local_path"]
        names = sorted(os.listdir(folder))
        assert names == [f"{x.id}.mp4" for x in recs]
        for x in recs:
            path = os.path.join(folder, f"{x.id}.mp4")
            assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            with open(path, "rb") as f:
                assert hashlib.sha256(f.read()).digest() == x.sha256
        assert not os.stat(folder).st_mode & stat.S_IWUSR
    # The dock hung up: the volume goes with the session's authority.
    assert wait_until(lambda: not os.path.exists(folder)), "volume still exposed"


def test_enrolment_once_then_rekey_only_when_authenticated(start_recorder) -> None:
    r = start_recorder()
    with r.client() as c:
        assert c.open().enrolled is False
        with pytest.raises(AuthenticationFailed, match="NOT_ENROLLED"):
            c.authenticate(SECRET)
        secret = c.enrol()
        assert r.model.secret is None  # pending until the dock proves it holds it
        c.authenticate(secret)
        assert c.authenticated and r.model.secret == secret
    with r.client() as stranger:
        assert stranger.open().enrolled is True
        with pytest.raises(RecorderRefused, match="ALREADY_ENROLLED"):
            send_unsealed(stranger, MsgType.ENROL, host_public_key=bytes(range(32)))
    assert r.model.secret == secret
    fresh = start_recorder(serial="EMU0099")
    with fresh.client() as c:
        c.open()
        with pytest.raises(RecorderRefused, match="UNSUPPORTED"):
            send_unsealed(c, MsgType.ENROL, secret=bytes(32))  # never in clear
    assert fresh.model.secret is None and fresh.model.pending_secret is None
    with r.client() as c:
        c.open()
        c.authenticate(secret)
        new_secret = c.enrol()  # re-keying, in the authenticated session
        assert new_secret != secret and r.model.secret == secret
        c.authenticate(new_secret)
        assert r.model.secret == new_secret


@pytest.mark.parametrize("listen", ["tcp", "pty"])
def test_a_second_stop_closes_nothing_of_anyone_else(start_recorder, listen) -> None:
    """A recorder taken out (stop) and then torn down (stop again) must not close a
    descriptor that by then belongs to someone else: that was a socket of another test's
    dock, which saw its connection reset for no reason of its own."""
    rec = start_recorder(listen="tcp://127.0.0.1:0" if listen == "tcp" else "pty")
    rec.server.stop()
    pipes = [os.pipe() for _ in range(4)]  # take the numbers the first stop freed
    try:
        rec.server.stop()
        for r, w in pipes:
            os.write(w, b"x")
            assert os.read(r, 1) == b"x"
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)
