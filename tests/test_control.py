"""The daemon's control interface (docs/CONTROL.md): a real Unix socket in a tmp dir, a
real DockService over emulated recorders, and hostile clients."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dock.daemon.control_handlers import decision_from_dict, service_handlers
from dock.daemon.control_server import ControlServer, ControlUnavailable, claim_control
from dock.services.daemon_link import (
    DaemonError,
    DaemonLink,
    DaemonUnavailable,
    LineReader,
    control_socket_path,
    reachable_path,
)

from .conftest import PIN

Served = tuple[Any, ControlServer, DaemonLink]


def brief_status(svc: Any, views: list[Any]) -> dict[str, Any]:
    """What the status request's report is built with here (``dock run`` gives the
    command line's full report)."""
    return {"dock": svc.dock_id, "slots": [{"slot": v.slot_id, "device": v.serial} for v in views]}


def state_dir_of(svc: Any) -> str:
    return os.path.dirname(svc.parts.slots.lock_dir)


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(svc, **server_options)``: svc's control socket, served until the test ends."""
    servers: list[ControlServer] = []

    def start(svc: Any, **options: Any) -> Served:
        path = control_socket_path(state_dir_of(svc))
        handlers = service_handlers(svc, threading.Lock(), brief_status)
        server = ControlServer(path, handlers, **options).start()
        servers.append(server)
        return svc, server, DaemonLink(path, reply_timeout=60)

    yield start
    for server in servers:
        server.stop(timeout=30)


def raw_exchange(path: str, payload: bytes, timeout: float = 10.0) -> dict[str, Any] | None:
    """Send ``payload`` as is and read one line back (None: closed without a word)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, reachable_path(path) as p:
        sock.connect(p)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # all said
        line = LineReader(sock).line(timeout)
    return None if line is None else json.loads(line)


def error_code(reply: dict[str, Any] | None) -> str | None:
    assert reply is not None and reply["ok"] is False, reply
    assert "\n" not in reply["error"]["message"]
    return reply["error"]["code"]


# ---------------------------------------------------------------------- check-out
def test_checkout_through_the_daemon_decides_as_a_local_checkout(make_dock, serve) -> None:
    local, _ = make_dock({"serial": "A1"}, {"serial": "A2", "battery_percent": 40})
    remote, _ = make_dock({"serial": "A1"}, {"serial": "A2", "battery_percent": 40})
    _, _, link = serve(remote)
    here = local.checkout("1001", PIN).as_dict()
    there = link.request("checkout", {"officer": "1001", "pin": PIN})
    assert there == here
    assert there["granted"] is True and there["slot"] == "1" and there["device"] == "A1"
    # One recorder per officer, and a wrong PIN, decided by the daemon the same way.
    again_here = local.checkout("1001", PIN).as_dict()
    again_there = link.request("checkout", {"officer": "1001", "pin": PIN})
    assert again_there == again_here
    assert [r["code"] for r in again_there["reasons"]] == ["officer_has_device"]
    wrong = link.request("checkout", {"officer": "1002", "pin": "000001"})
    assert wrong == local.checkout("1002", "000001").as_dict()
    assert wrong["granted"] is False and wrong["reasons"][0]["code"] == "officer_unknown"
    by_badge = link.request("checkout", {"badge": "BADGE-1001"})
    assert by_badge["reasons"][0]["code"] == "officer_has_device"
    assert decision_from_dict(there).as_dict() == there  # the front end's copy is the same
    custody = remote.store.open_custody_of_officer("1001")
    assert custody is not None and custody.serial == "A1"


def test_an_override_through_the_daemon_needs_the_supervisor(make_dock, serve) -> None:
    """003 art.5 (REQUIREMENTS §1): an override through the daemon needs the supervisor's
    credentials."""
    svc, _ = make_dock({"serial": "LOW1", "battery_percent": 11})
    _, _, link = serve(svc)
    refused = link.request("checkout", {"officer": "1001", "pin": PIN})
    assert refused["granted"] is False
    bad = {"supervisor": "9001", "supervisor_pin": "999001", "reason": "short of recorders"}
    wrong = link.request("checkout", {"officer": "1001", "pin": PIN, **bad})
    assert [r["code"] for r in wrong["reasons"]] == ["override_refused"]
    good = {**bad, "supervisor_pin": "999000"}
    granted = link.request("checkout", {"officer": "1001", "pin": PIN, **good})
    assert granted["granted"] is True and granted["override_by"] == "9001"
    with pytest.raises(DaemonError) as no_reason:
        link.request("checkout", {"officer": "1002", "pin": PIN, **{**good, "reason": ""}})
    assert no_reason.value.code == "bad_request" and "reason" in no_reason.value.message


def test_the_pin_is_not_logged(make_dock, serve, caplog) -> None:
    svc, _ = make_dock({"serial": "P1"})
    _, _, link = serve(svc)
    with caplog.at_level("DEBUG"):
        link.request("checkout", {"officer": "1001", "pin": PIN})
        with pytest.raises(DaemonError):
            link.request("checkout", {"officer": 1001, "pin": "135791"})
    assert "checkout" in caplog.text
    assert PIN not in caplog.text and "135791" not in caplog.text


# ---------------------------------------------------------------------- other requests
def test_status_enrol_and_offload_through_the_daemon(make_dock, serve) -> None:
    svc, _ = make_dock({"serial": "E1", "recordings": 2}, enrol=False)
    _, _, link = serve(svc)
    assert link.request("enrol", {"slot": "1", "actor": "admin"}) == {"serial": "E1", "slot": "1"}
    with pytest.raises(DaemonError) as twice:
        link.request("enrol", {"slot": "1", "actor": "admin"})
    assert twice.value.code == "invalid" and "already enrolled" in twice.value.message
    with pytest.raises(DaemonError) as nowhere:
        link.request("enrol", {"slot": "9", "actor": "admin"})
    assert nowhere.value.code == "invalid"

    seen: list[dict[str, Any]] = []
    summary = link.request("offload", {"slot": "1"}, on_progress=seen.append)
    assert summary["ok"] is True and summary["serial"] == "E1"
    assert summary["archived"] == ["REC000001", "REC000002"] == summary["erased"]
    assert seen and seen[-1]["done"] == seen[-1]["total"]
    assert {p["recording"] for p in seen} == {"REC000001", "REC000002"}

    report = link.request("status", {"refresh": True})  # a sweep in the daemon
    assert [row["slot"] for row in report["slots"]] == ["1"]
    assert report["slots"][0]["device"] == "E1" and report["dock"] == svc.dock_id
    assert link.request("status", {})["slots"] == report["slots"]  # the last sweep's
    with pytest.raises(DaemonError) as no_slot:
        link.request("offload", {"slot": "7"})
    assert no_slot.value.code == "no_slot"


# ---------------------------------------------------------------------- hostile clients
def test_malformed_requests_get_an_error_reply_and_the_daemon_goes_on(make_dock, serve) -> None:
    svc, _ = make_dock({"serial": "H1"})
    _, server, link = serve(svc)
    path = server.path
    assert error_code(raw_exchange(path, b"\x00\xffnot json\n")) == "bad_json"
    assert error_code(raw_exchange(path, b"[1, 2]\n")) == "bad_request"
    assert error_code(raw_exchange(path, b'{"id": {}, "request": "status"}\n')) == "bad_request"
    assert error_code(raw_exchange(path, b'{"id": 1, "request": 5}\n')) == "bad_request"
    assert error_code(raw_exchange(path, b'{"request": "status", "args": [1]}\n')) == "bad_request"
    unknown = raw_exchange(path, b'{"id": "x", "request": "format_disk"}\n')
    assert error_code(unknown) == "unknown_request" and unknown is not None
    assert unknown["id"] == "x" and "checkout" in unknown["error"]["message"]
    for args in ({"officer": 1001, "pin": PIN}, {"officer": "1001", "pin": ["1"]}, {},
                 {"officer": "1001", "pin": PIN, "slot": "1"}):  # fmt: skip
        line = json.dumps({"id": 2, "request": "checkout", "args": args}).encode() + b"\n"
        assert error_code(raw_exchange(path, line)) == "bad_request", args
    for request, args in (("status", {"refresh": "yes"}), ("offload", {}), ("enrol", {"slot": 1})):
        line = json.dumps({"id": 3, "request": request, "args": args}).encode() + b"\n"
        assert error_code(raw_exchange(path, line)) == "bad_request", request
    assert error_code(raw_exchange(path, b"x" * (70 * 1024))) == "too_long"
    assert raw_exchange(path, b"") is None  # connected and left: nothing to answer
    assert link.request("checkout", {"officer": "1001", "pin": PIN})["granted"] is True


def test_half_a_line_then_silence_is_dropped_and_others_are_served(make_dock, serve) -> None:
    svc, _ = make_dock({"serial": "S1"})
    _, server, link = serve(svc, idle_timeout_s=1.0)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        with reachable_path(server.path) as p:
            slow.connect(p)
        slow.sendall(b'{"id": 1, "request": "sta')
        # Meanwhile another client is answered.
        assert link.request("status", {})["dock"] == svc.dock_id
        started = time.monotonic()
        line = LineReader(slow).line(timeout=10.0)
        assert time.monotonic() - started < 5.0
    assert line is not None and error_code(json.loads(line)) == "timeout"
    assert link.request("checkout", {"officer": "1001", "pin": PIN})["granted"] is True


def test_a_hundred_connections_do_not_stop_the_daemon(make_dock, serve) -> None:
    svc, _ = make_dock({"serial": "C1"})
    _, server, link = serve(svc, max_connections=8, idle_timeout_s=30.0)
    crowd: list[socket.socket] = []
    try:
        for _ in range(100):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            crowd.append(sock)
            with reachable_path(server.path) as p:
                sock.settimeout(5.0)
                sock.connect(p)
        # Those beyond the limit are told so at once and closed; the rest wait.
        busy = 0
        for sock in crowd:
            sock.settimeout(0.05)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if data:
                assert error_code(json.loads(data)) == "busy"
                busy += 1
        assert busy >= 100 - 8 - 8  # at most the limit held, plus a listen backlog's worth
    finally:
        for sock in crowd:
            sock.close()
    for _ in range(100):  # the held connections end as their clients leave (bounded)
        try:
            result = link.request("checkout", {"officer": "1001", "pin": PIN})
            break
        except DaemonError as exc:
            assert exc.code == "busy"
            time.sleep(0.05)
    assert result["granted"] is True


def test_a_handler_that_fails_is_an_error_reply_not_a_dead_daemon(tmp_path) -> None:
    def broken(_args: dict[str, Any], _progress: Any) -> dict[str, Any]:
        raise ZeroDivisionError("boom")

    def echo(args: dict[str, Any], progress: Any) -> dict[str, Any]:
        progress({"step": 1})
        return {"echo": args}

    path = str(tmp_path / "control.sock")
    with ControlServer(path, {"broken": broken, "echo": echo}):
        link = DaemonLink(path)
        with pytest.raises(DaemonError) as failed:
            link.request("broken")
        assert failed.value.code == "internal" and "boom" not in failed.value.message
        steps: list[dict[str, Any]] = []
        assert link.request("echo", {"a": "b"}, on_progress=steps.append) == {"echo": {"a": "b"}}
        assert steps == [{"step": 1}]


# ---------------------------------------------------------------------- the socket file
def test_socket_is_0660_with_the_daemons_group_and_removed_at_stop(tmp_path) -> None:
    path = str(tmp_path / "control.sock")
    server = ControlServer(path, {}).start()
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == os.getegid() and st.st_uid == os.geteuid()
        assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []
    finally:
        server.stop()
    assert not os.path.exists(path)


def test_a_second_daemon_refuses_and_a_stale_socket_is_replaced(tmp_path) -> None:
    path = str(tmp_path / "control.sock")
    with ControlServer(path, {}):
        with pytest.raises(ControlUnavailable) as second:
            ControlServer(path, {}).start()
        assert "already running" in str(second.value) and "\n" not in str(second.value)
    # A daemon killed with its socket left behind: nothing answers on it.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    with pytest.raises(DaemonUnavailable):
        DaemonLink(path).request("status")
    with ControlServer(path, {"ping": lambda _a, _p: {"pong": True}}):
        assert DaemonLink(path).request("ping") == {"pong": True}


def test_something_else_at_the_socket_path_is_left_alone(tmp_path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("not mine")
    with pytest.raises(ControlUnavailable) as refused:
        ControlServer(str(path), {}).start()
    assert "not a socket" in str(refused.value)
    assert path.read_text() == "not mine"
    with pytest.raises(DaemonUnavailable):
        DaemonLink(str(path)).request("status")


def test_no_daemon_is_unavailable_before_anything_is_sent(tmp_path) -> None:
    with pytest.raises(DaemonUnavailable):
        DaemonLink(str(tmp_path / "missing" / "control.sock")).request("status")
    with pytest.raises(DaemonUnavailable):
        DaemonLink(str(tmp_path / "control.sock")).request("status")


def test_a_deep_state_directory_still_works(tmp_path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "control.sock")
    assert len(path) > 108
    with ControlServer(path, {"ping": lambda _a, _p: {"pong": True}}):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert DaemonLink(path).request("ping") == {"pong": True}


def test_a_daemon_claims_its_state_directory_before_it_serves(tmp_path) -> None:
    state = str(tmp_path / "new-state")
    first = claim_control(state)  # creates the directory; nothing listens yet
    try:
        with pytest.raises(ControlUnavailable) as second:
            claim_control(state)
        assert str(second.value) == f"another dock daemon is already running for {state}"
        first.start({"ping": lambda _a, _p: {"pong": True}})
        assert DaemonLink(control_socket_path(state)).request("ping") == {"pong": True}
    finally:
        first.stop()
    claim_control(state).stop()  # free again
