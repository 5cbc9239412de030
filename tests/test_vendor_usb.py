"""Cameras of the common vendor command set: the driver against its reference emulator
through pyusb itself, and the dock's path from a configured slot through composition.

Only the bottom of pyusb (the backend libusb would be) is emulated
(hardware/emulator/vendor_camera.py), so claiming, bulk transfers and timeouts take the
driver's real code path (hardware/vendor_usb.py).
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dock.cli.main import main as dock_main
from dock.config import load_config
from dock.daemon import composition
from dock.daemon.composition import build_service, open_vendor_control
from dock.daemon.vendor_cameras import (
    DRIFT_NOT_REPORTED,
    VendorRefusal,
    check_password,
    enrol_vendor,
    prepare_vendor_camera,
)
from dock.devices.clock import FixedClock, TrustedClock
from dock.domain.audit_kinds import AuditKind
from dock.storage.maintenance_tables import SlotErrorTable
from dock.storage.store import StoreError
from hardware.emulator.vendor_camera import VendorCamera, VendorUsbBus
from hardware.screens import ConsoleScreen
from hardware.vendor_usb import (
    Query,
    VendorModel,
    VendorProtocolError,
    VendorRefused,
    VendorTimeout,
    VendorUsbCamera,
    encode_command,
    open_vendor_camera,
    parse_answer,
)
from tests.conftest import write_dock_config

pytestmark = pytest.mark.timeout(30)

PORT = "1-2"
PASSWORD = "135790"
CAMERA_ID = "GA0001234"
TIMED = VendorModel(time_query=Query("Gtm"), battery_query=Query("Gbt"))
SHORT = VendorModel(timeout_s=0.3)


def camera(**kw: Any) -> VendorCamera:
    return VendorCamera(**{"password": PASSWORD, "device_id": CAMERA_ID, **kw})


@pytest.fixture
def bus() -> VendorUsbBus:
    return VendorUsbBus()


@pytest.fixture
def plug(bus: VendorUsbBus) -> Iterator[Any]:
    opened: list[VendorUsbCamera] = []

    def plug_and_open(
        cam: VendorCamera, model: VendorModel | None = None
    ) -> tuple[VendorCamera, VendorUsbCamera]:
        bus.plug_camera(cam, PORT)
        driver = open_vendor_camera(PORT, model, backend=bus)
        assert driver is not None
        opened.append(driver)
        return cam, driver

    yield plug_and_open
    for d in opened:
        d.close()


def one_line(text: str) -> bool:
    return "\n" not in text and all(ch.isprintable() for ch in text)


# --------------------------------------------------------------------- the driver
def test_login_id_battery_then_disk_mode(plug) -> None:
    cam, d = plug(camera(battery=64), TIMED)
    assert d.usb_serial == CAMERA_ID
    d.login(PASSWORD)
    assert d.device_id() == CAMERA_ID
    assert d.battery() == 64
    d.disk_mode()
    assert cam.disk_mode and cam.entered_disk_mode.is_set()
    # The frames, exactly as the common set lists them (LEN is nominal, not computed).
    assert cam.received == [
        ("Ver", "8", PASSWORD),
        ("Gdv", "8", PASSWORD),
        ("Gbt", "8", PASSWORD),
        ("ATH", "8", PASSWORD),
    ]
    with pytest.raises(ConnectionError, match="disk mode"):
        d.device_id()  # nothing more is said to a camera that is becoming a disk


def test_wrong_password_is_refused_and_nothing_else_is_sent(plug) -> None:
    cam, d = plug(camera())
    with pytest.raises(PermissionError) as info:
        d.login("246802")
    assert isinstance(info.value, VendorRefused)
    assert "246802" not in str(info.value) and one_line(str(info.value))
    for after in (d.device_id, d.disk_mode, lambda: d.set_clock(time.time())):
        with pytest.raises(PermissionError, match="not logged in"):
            after()
    assert cam.received == [("Ver", "8", "246802")]
    assert not cam.disk_mode


@pytest.mark.parametrize("bad", ["12;34", "12#34", "密码1234", "12\x1b34", "x" * 65])
def test_a_password_that_cannot_be_sent_is_refused_before_anything_is(plug, bad) -> None:
    cam, d = plug(camera())
    with pytest.raises(ValueError) as info:
        d.login(bad)
    assert bad not in str(info.value) and one_line(str(info.value))
    assert cam.received == []


def test_clock_set_with_drift_measured(plug) -> None:
    # The camera keeps local wall time: the model says in which zone.
    model = VendorModel(time_query=Query("Gtm"), timezone="Asia/Shanghai")
    cam, d2 = plug(camera(drift_s=-93.0, reports_time=True, timezone="Asia/Shanghai"), model)
    d2.login(PASSWORD)
    drift = d2.clock_offset(time.time)
    assert drift is not None and abs(drift - -93.0) <= 1.0
    d2.set_clock(time.time())
    assert abs(cam.clock() - time.time()) <= 1.0
    after = d2.clock_offset(time.time)
    assert after is not None and abs(after) <= 1.0
    sent = [r for r in cam.received if r[0] in ("Sdt", "Stm")]
    assert [(c, n, len(a)) for c, n, a in sent] == [("Sdt", "8", 8), ("Stm", "6", 8)]
    assert sent[1][2].endswith("00")


def test_a_camera_that_never_answers_times_out_cleanly(plug) -> None:
    _, d = plug(camera(fault="silent"), SHORT)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        d.login(PASSWORD)
    assert 0.25 <= time.monotonic() - t0 < 2.0
    assert isinstance(info.value, VendorTimeout) and one_line(str(info.value))
    assert "no complete answer" in str(info.value)


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("garbage", "not to @Ver"),
        ("oversize", "longer than 512 bytes"),
        ("binary", "not printable ASCII"),
    ],
)
def test_bad_answers_are_refused_in_one_line(plug, fault, said) -> None:
    _, d = plug(camera(fault=fault), SHORT)
    with pytest.raises(VendorProtocolError, match=said) as info:
        d.login(PASSWORD)
    assert one_line(str(info.value)) and len(str(info.value)) < 200


def test_a_slow_answer_within_the_timeout_is_taken(plug) -> None:
    _, d = plug(camera(fault="slow", slow_s=0.2), VendorModel(timeout_s=2.0))
    t0 = time.monotonic()
    d.login(PASSWORD)
    assert time.monotonic() - t0 >= 0.2


def test_a_slow_camera_past_its_timeout_is_a_timeout(bus) -> None:
    bus.plug_camera(camera(fault="slow", slow_s=1.5), PORT)
    d = open_vendor_camera(PORT, SHORT, backend=bus)
    assert d is not None
    with pytest.raises(TimeoutError):
        d.login(PASSWORD)
    d.close()


@pytest.mark.parametrize("fault", ["control", "long_id"])
def test_hostile_ids_are_refused_escaped(plug, fault) -> None:
    _, d = plug(camera(fault=fault))
    d.login(PASSWORD)
    with pytest.raises(OSError) as info:
        d.device_id()
    text = str(info.value)
    assert one_line(text) and "\x1b" not in text and len(text) < 200
    if fault == "control":
        assert "\\x1b" in text  # shown escaped, not sent to the terminal


@pytest.mark.parametrize("serial", ["CAM\x1b[2J", "X" * 65, "摄像机1", "a b"])
def test_a_hostile_usb_serial_is_not_taken_as_a_key(plug, serial) -> None:
    _, d = plug(camera(usb_serial=serial))
    assert d.usb_serial is None


def test_unplugged_is_a_connection_error(bus, plug) -> None:
    _, d = plug(camera())
    d.login(PASSWORD)
    bus.unplug(PORT)
    with pytest.raises(ConnectionError, match="unplugged"):
        d.device_id()


def test_another_device_on_the_port_is_not_a_vendor_camera(bus) -> None:
    bus.plug_camera(camera(), PORT)
    assert open_vendor_camera(PORT, VendorModel(product_id=0x0002), backend=bus) is None
    assert open_vendor_camera("1-3", backend=bus) is None


# --------------------------------------------------------------------- the encoder
_ARG = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";#"),
               max_size=64)  # fmt: skip
_CMD = st.from_regex(r"[A-Za-z][A-Za-z0-9]{1,7}", fullmatch=True)


@given(_CMD, st.integers(0, 999), _ARG)
def test_encoder_round_trips_through_the_answer_parser(cmd: str, n: int, arg: str) -> None:
    frame = encode_command(cmd, n, arg)
    assert frame == f"@{cmd};{n};{arg};#".encode("ascii")
    assert parse_answer(frame, cmd) == (str(n), arg)


@given(
    _CMD, st.text(max_size=70).filter(lambda a: any(c in ";#" or not " " <= c <= "~" for c in a))
)
def test_encoder_refuses_what_cannot_be_a_field(cmd: str, arg: str) -> None:
    with pytest.raises(ValueError) as info:
        encode_command(cmd, 8, arg)
    assert arg not in str(info.value) or len(arg) <= 1


@given(st.binary(max_size=80))
def test_the_parser_takes_only_a_clean_answer(raw: bytes) -> None:
    try:
        fields = parse_answer(raw, "Ver")
    except ValueError as exc:
        assert one_line(str(exc))
        return
    assert raw.endswith(b"#") and raw.count(b"#") == 1
    assert all(0x20 <= b <= 0x7E for b in raw)
    assert all(";" not in f for f in fields)


# --------------------------------------------------------------------- the dock's path
@pytest.fixture
def dock(tmp_path: Path) -> Any:
    path, _, _ = write_dock_config(tmp_path, f"usb:{PORT}")
    cfg = load_config(path)
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    svc.clock = TrustedClock()
    return svc, cfg


def _control(cfg: Any, bus: VendorUsbBus, **options: Any) -> Any:
    control = open_vendor_control(
        cfg.slots[0], timezone=cfg.dock.timezone, options=options, backend=bus
    )
    assert control is not None
    return control


def _audit(svc: Any, kind: AuditKind) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def _enrolled(svc: Any, cfg: Any, bus: VendorUsbBus, cam: VendorCamera) -> None:
    cam.timezone = cfg.dock.timezone  # its wall clock is local time, as the dock's zone
    bus.plug_camera(cam, PORT)
    control = _control(cfg, bus)
    try:
        assert enrol_vendor(svc.parts, "1", control, PASSWORD, "admin") == CAMERA_ID
    finally:
        control.close()
    cam.received.clear()


def test_enrolled_camera_identified_clock_set_with_drift_then_disk_mode(
    dock, bus, monkeypatch
) -> None:
    svc, cfg = dock
    cam = camera(drift_s=47.0, reports_time=True, battery=81)
    _enrolled(svc, cfg, bus, cam)
    device = svc.store.device(CAMERA_ID)
    assert device.secret == PASSWORD.encode() and device.model == "vendor-usb:generic"
    options = {"time_query": "Gtm", "battery_query": "Gbt"}
    wired = functools.partial(composition.open_vendor_control, options=options, backend=bus)
    monkeypatch.setattr(composition, "open_vendor_control", wired)
    control = svc.parts.slots.open_vendor("1")  # as build_service wired the slot
    assert control is not None
    outcome = prepare_vendor_camera(svc.parts, "1", control)
    assert outcome.refused is None and outcome.serial == CAMERA_ID and outcome.disk_mode
    assert outcome.drift_s is not None and abs(outcome.drift_s - 47.0) <= 1.0
    assert abs(cam.clock() - time.time()) <= 1.0 and cam.disk_mode
    (entry,) = _audit(svc, AuditKind.CLOCK_SET)
    assert entry.subject == CAMERA_ID and abs(entry.data["drift_before_s"] - 47.0) <= 1.0
    assert abs(entry.data["after_s"]) <= 1.0
    (status,) = svc.store.status_history(CAMERA_ID)
    assert abs(status["drift_before_s"] - 47.0) <= 1.0 and status["battery_percent"] == 81
    assert [c for c, _, _ in cam.received] == ["Ver", "Gdv", "Gtm", "Sdt", "Stm", "Gtm", "Gbt",
                                               "ATH"]  # fmt: skip


def test_a_camera_without_a_time_query_says_drift_not_reported(dock, bus) -> None:
    svc, cfg = dock
    cam = camera(drift_s=30.0)
    _enrolled(svc, cfg, bus, cam)
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus))
    assert outcome.clock_set and outcome.drift_s is None
    (entry,) = _audit(svc, AuditKind.CLOCK_SET)
    assert entry.data["drift"] == DRIFT_NOT_REPORTED and entry.data["drift_before_s"] is None
    assert abs(cam.clock() - time.time()) <= 1.0


def test_clock_untouched_when_the_dock_clock_is_not_synchronised(dock, bus) -> None:
    svc, cfg = dock
    cam = camera(drift_s=300.0, reports_time=True)
    _enrolled(svc, cfg, bus, cam)
    svc.clock = FixedClock(False, "timedatectl: NTP not synchronised", time.time())
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus, time_query="Gtm"))
    assert not outcome.clock_set and "not trusted" in (outcome.clock_not_set or "")
    assert not any(c in ("Sdt", "Stm", "Gtm") for c, _, _ in cam.received)
    assert abs(cam.clock() - time.time() - 300.0) < 1.0
    assert _audit(svc, AuditKind.CLOCK_SET) == []
    (entry,) = _audit(svc, AuditKind.CLOCK_NOT_SET)
    assert "NTP not synchronised" in entry.data["reason"]
    assert outcome.disk_mode  # its footage is still offloaded


def test_an_unknown_camera_is_sent_no_password(dock, bus) -> None:
    svc, cfg = dock
    cam = camera(usb_serial="NEVERSEEN")
    bus.plug_camera(cam, PORT)
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus))
    assert outcome.serial is None and not outcome.disk_mode
    assert "unknown camera" in (outcome.refused or "") and one_line(outcome.refused or "")
    assert cam.received == [] and not cam.disk_mode
    assert SlotErrorTable(svc.store).by_slot()["1"].counts == {"refused": 1}


def test_a_camera_whose_password_changed_is_refused_after_the_login(dock, bus) -> None:
    svc, cfg = dock
    cam = camera()
    _enrolled(svc, cfg, bus, cam)
    cam.password = "999999"
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus))
    assert "login" in (outcome.refused or "") and PASSWORD not in (outcome.refused or "")
    assert [c for c, _, _ in cam.received] == ["Ver"] and not cam.disk_mode


def test_a_camera_stating_another_id_is_refused(dock, bus) -> None:
    svc, cfg = dock
    cam = camera()
    _enrolled(svc, cfg, bus, cam)
    cam.device_id = "GA0009999"
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus))
    assert "GA0009999" in (outcome.refused or "") and not cam.disk_mode


def test_a_silent_camera_leaves_one_line_and_a_timeout_count(dock, bus) -> None:
    svc, cfg = dock
    cam = camera()
    _enrolled(svc, cfg, bus, cam)
    cam.fault = "silent"
    outcome = prepare_vendor_camera(svc.parts, "1", _control(cfg, bus, timeout_s=0.3))
    assert one_line(outcome.refused or "") and "no complete answer" in (outcome.refused or "")
    assert SlotErrorTable(svc.store).by_slot()["1"].counts == {"timeout": 1}


def test_password_check() -> None:
    assert check_password("000000") == "000000"
    for bad in ("", "a;b", "a#b", "口令", "x" * 65, "a\nb"):
        with pytest.raises(ValueError) as info:
            check_password(bad)
        assert bad not in str(info.value) or bad == ""


def test_enrol_vendor_from_the_command_line(tmp_path, bus, monkeypatch, capsys) -> None:
    path, _, _ = write_dock_config(tmp_path, f"usb:{PORT}")
    cam = camera()
    bus.plug_camera(cam, PORT)
    monkeypatch.setattr(
        composition, "open_vendor_control",
        functools.partial(composition.open_vendor_control, backend=bus),
    )  # fmt: skip
    secret = tmp_path / "camera.pw"
    secret.write_text(PASSWORD + "\n")
    argv = ["--config", path, "device", "enrol-vendor", "--slot", "1", "--password-file"]
    assert dock_main([*argv, str(secret)]) == 0
    out = capsys.readouterr()
    assert f"camera {CAMERA_ID} in slot 1 enrolled" in out.out
    assert PASSWORD not in out.out + out.err
    svc = build_service(load_config(path), screen=ConsoleScreen(io.StringIO()))
    assert svc.store.device(CAMERA_ID).secret == PASSWORD.encode()
    (entry,) = _audit(svc, AuditKind.ENROL)
    assert PASSWORD not in repr(entry.data)
    # Again: already enrolled, one line, nothing stored twice.
    assert dock_main([*argv, str(secret)]) == 2
    assert "already enrolled" in capsys.readouterr().err
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("a;b\n")
    assert dock_main([*argv, str(wrong)]) == 2
    assert "a;b" not in capsys.readouterr().err


def test_enrolment_needs_a_usb_serial_that_tells_cameras_apart(dock, bus) -> None:
    svc, cfg = dock
    _enrolled(svc, cfg, bus, camera())
    bus.unplug(PORT)
    twin = camera(device_id="GA0005678", usb_serial=CAMERA_ID)  # a model's fixed serial
    bus.plug_camera(twin, PORT)
    with pytest.raises(StoreError, match="could not tell them apart"):
        enrol_vendor(svc.parts, "1", _control(cfg, bus), PASSWORD, "admin")
    assert svc.store.device("GA0005678") is None
    bus.unplug(PORT)
    blank = camera(device_id="GA0005678", usb_serial="")  # shows no serial at all
    bus.plug_camera(blank, PORT)
    with pytest.raises(VendorRefusal, match="no usable USB serial"):
        enrol_vendor(svc.parts, "1", _control(cfg, bus), PASSWORD, "admin")
    assert blank.received == []  # not even the password it was given


def test_enrol_vendor_with_no_camera_in_the_slot(tmp_path, capsys) -> None:
    path, _, _ = write_dock_config(tmp_path, f"usb:{PORT}")
    secret = tmp_path / "camera.pw"
    secret.write_text(PASSWORD + "\n")
    empty = VendorUsbBus()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            composition, "open_vendor_control",
            functools.partial(composition.open_vendor_control, backend=empty),
        )  # fmt: skip
        argv = ["--config", path, "device", "enrol-vendor", "--slot", "1"]
        assert dock_main([*argv, "--password-file", str(secret)]) == 3
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "enrol-vendor" in x]  # besides the config's
    assert line.endswith("enrol refused: slot 1: no camera of the vendor command set there")
