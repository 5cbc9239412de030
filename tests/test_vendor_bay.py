"""A camera of the vendor command set docked in a bay, end to end through the production
wiring (``build_service``): the sweep logs in, checks its id, sets its clock (drift
audited), vouches for it to the bay's mass-storage side and switches it to disk mode;
the disk that then appears (a real FAT image made by mkfs.vfat, placed where the slot
looks as the emulator enters disk mode) is offloaded as that camera's.

The camera is hardware/emulator/vendor_camera.py on the pyusb test backend, so the
driver (hardware/vendor_usb.py) runs its real code path.
"""

from __future__ import annotations

import functools
import glob
import io
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from dock.cli.custody import status_lines
from dock.config import load_config
from dock.daemon import composition
from dock.daemon.composition import build_service
from dock.devices.clock import FixedClock, TrustedClock
from dock.devices.ums import attach
from dock.devices.ums.recorder import HASH_AT_OFFLOAD
from dock.domain.audit_kinds import AuditKind
from dock.evidence.bagit import read_bag_info
from dock.services.status import status_report
from dock.storage.maintenance_tables import SlotErrorTable
from hardware.emulator.vendor_camera import VendorCamera, VendorUsbBus
from hardware.screens import ConsoleScreen

from .conftest import PIN
from .ums_helpers import DEVICE, OFFICER, footage_set, make_image

pytestmark = pytest.mark.timeout(120)

PORT = "1-2"
PASSWORD = "135790"
CAMERA_ID = "GA0001234"  # its login id; its file names say DEVICE (DSJ0001), as many do
MODEL = "GA-V8"


def write_config(tmp_path: Any, disk: str, policy: str = "", model_extra: str = "") -> str:
    state, evidence = tmp_path / "state", tmp_path / "evidence"
    path = tmp_path / "dock.toml"
    path.write_text(
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{evidence}"\ntimezone = "Asia/Shanghai"\n\n'
        f'[clock]\nsource = "trusted"\n\n[policy]\n{policy}\n'
        f'[[slot]]\nid = "1"\nport = "usb:{PORT}"\ndriver = "ums"\nmodel = "{MODEL}"\n'
        f'disk = "{disk}"\n\n'
        f'[[model]]\nname = "{MODEL}"\ndriver = "vendor"\ntime_query = "Gtm"\n'
        f'battery_query = "Gbt"\n{model_extra}'
    )
    return str(path)


class Bay:
    """One vendor bay: the dock built as in production, the emulated USB bus under it,
    and the camera's disk staged to appear when the camera enters disk mode."""

    def __init__(
        self, tmp_path: Any, monkeypatch: Any, policy: str = "", model: str = "", **cam: Any
    ) -> None:
        self.tmp = tmp_path
        self.disk = str(tmp_path / "slot-1.disk")
        self.staged = str(tmp_path / "staged.img")
        self.files = footage_set(3, 20_000)
        make_image(self.staged, self.files)
        self.bus = VendorUsbBus()
        wired = functools.partial(composition.open_vendor_control, backend=self.bus)
        monkeypatch.setattr(composition, "open_vendor_control", wired)
        self.cfg = load_config(write_config(tmp_path, self.disk, policy, model), env={})
        self.svc = build_service(self.cfg, screen=ConsoleScreen(io.StringIO()))
        fields = {"password": PASSWORD, "device_id": CAMERA_ID, "timezone": "Asia/Shanghai",
                  "reports_time": True, "battery": 95, "drift_s": 47.0, **cam}  # fmt: skip
        self.cam = VendorCamera(**fields)
        self.cam.on_disk_mode = self.present_disk
        self.device = self.bus.plug_camera(self.cam, PORT)

    def present_disk(self) -> None:
        """The camera re-enumerated as a USB disk: its volume is where the bay looks."""
        if os.path.exists(self.staged):
            os.replace(self.staged, self.disk)

    def enrol(self) -> None:
        assert self.svc.enrol_vendor("1", "admin", PASSWORD, MODEL) == CAMERA_ID
        self.cam.received.clear()
        self.cam.logged_in = False

    def commands(self) -> list[str]:
        return [c for c, _, _ in self.cam.received]

    def passwords_sent(self) -> list[str]:
        return [a for c, _, a in self.cam.received if c in ("Ver", "Gdv", "ATH", "Gtm", "Gbt")]

    def audit(self, kind: AuditKind) -> list[Any]:
        return [e for e in self.svc.audit.entries() if e.kind == kind]

    def report(self) -> dict[str, Any]:
        return status_report(self.svc, self.svc.views.values())

    def row(self) -> dict[str, Any]:
        return self.report()["slots"][0]

    def errors(self) -> dict[str, int]:
        """The slot's error counters by kind (maintenance's)."""
        return SlotErrorTable(self.svc.store).by_slot()["1"].counts


def _one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and all(ch.isprintable() for ch in text)


def test_a_docked_vendor_camera_is_identified_clock_set_and_offloaded(
    tmp_path, monkeypatch
) -> None:
    bay = Bay(tmp_path, monkeypatch, "bytes_per_recording_hour = 1\n")
    bay.enrol()
    bay.svc.store.add_officer(OFFICER, "Wang Wei", "Traffic 3", PIN)
    bay.svc.sweep()  # login, id, clock, battery, vouch, disk mode; the disk is offloaded
    assert bay.commands() == ["Ver", "Gdv", "Gtm", "Sdt", "Stm", "Gtm", "Gbt", "ATH"]
    assert bay.cam.disk_mode and abs(bay.cam.drift_s) <= 1.0  # set from the dock's clock
    (clock_set,) = bay.audit(AuditKind.CLOCK_SET)
    assert clock_set.subject == CAMERA_ID and abs(clock_set.data["drift_before_s"] - 47) <= 1
    assert abs(clock_set.data["after_s"]) <= 1.0
    bay.svc.offloads.wait(timeout=60)
    rows = bay.svc.store.archive_entries()
    assert {bytes(r["sha256"]) for r in rows} == {f.sha256 for f in bay.files}
    assert {r["serial"] for r in rows} == {CAMERA_ID}  # the login's id, not the file names'
    assert {r["hash_taken"] for r in rows} == {HASH_AT_OFFLOAD}
    assert all(CAMERA_ID in r["path"] for r in rows)  # archived under the vouched id
    for r in rows:  # the copy in the archive is the footage, byte for byte
        with open(os.path.join(bay.cfg.dock.evidence_dir, r["path"]), "rb") as f:
            assert f.read() in {x.data for x in bay.files}
    files = [e.data for e in bay.audit(AuditKind.OFFLOAD_FILE)]
    assert len(files) == 3 and {d["hash_taken"] for d in files} == {HASH_AT_OFFLOAD}
    bags = glob.glob(os.path.join(bay.cfg.dock.evidence_dir, "**", "bag-info.txt"), recursive=True)
    assert bags and all(
        read_bag_info(os.path.dirname(b))["Hash-Taken"] == [HASH_AT_OFFLOAD] for b in bags
    )
    bay.svc.sweep()
    row = bay.row()
    assert row["device"] == CAMERA_ID and row["battery_percent"] == 95, row
    g = row["guarantees"]
    assert g["driver"] == "vendor+ums" and g["clock"] == "set" and g["battery"] == "reported"
    # the checks use what the login learnt: not "unknown" under the default policy
    results = {r.code: r for r in bay.svc.views["1"].results}
    assert results["clock_drift"].passed and results["battery_low"].passed
    decision = bay.svc.checkout(OFFICER, PIN)
    assert decision.granted, decision.reasons
    assert bay.commands().count("ATH") == 1  # its disk was there: no second login


def test_undocked_the_vouch_is_dropped_and_a_bare_disk_is_the_mass_storage_path(
    tmp_path, monkeypatch
) -> None:
    bay = Bay(tmp_path, monkeypatch)
    bay.enrol()
    bay.svc.sweep()
    bay.svc.offloads.wait(timeout=60)
    assert bay.svc.store.archive_entries()
    ums = bay.svc.parts.slots.ums["1"]
    assert ums.vouched is not None and ums.vouched.serial == CAMERA_ID
    bay.bus.unplug(bay.device)  # taken out: the disk and the camera are gone
    os.unlink(bay.disk)
    bay.svc.sweep()
    assert ums.vouched is None and bay.svc.slot_status["1"].state.value == "empty"
    # docked again already in disk mode (no vendor interface): the mass-storage path,
    # its identity from its file names, which the dock does not know: not offloaded
    make_image(bay.disk, footage_set(1, 1_000, seed=5))
    bay.svc.sweep()
    row = bay.row()
    assert row["device"] == DEVICE and row["guarantees"]["driver"] == "ums", row
    assert any(f["code"] == "device_unknown" for f in row["failed"])


def test_an_unknown_camera_is_sent_no_password(tmp_path, monkeypatch) -> None:
    bay = Bay(tmp_path, monkeypatch)
    bay.svc.sweep()
    assert bay.cam.received == [] and not bay.cam.disk_mode  # nothing at all was sent
    row = bay.row()
    assert row["state"] == "fault" and _one_line(row["error"]), row
    assert "unknown camera" in row["error"] and "not enrolled" in row["error"]
    assert PASSWORD not in row["error"]
    said = [line for line in status_lines(bay.report()) if "unknown camera" in line]
    assert len(said) == 1
    assert bay.errors() == {"refused": 1}  # counted once
    assert bay.svc.parts.slots.ums["1"].vouched is None


def test_a_wrong_password_is_a_slot_fault_in_one_line(tmp_path, monkeypatch) -> None:
    bay = Bay(tmp_path, monkeypatch)
    bay.enrol()
    bay.cam.password = "changed1"  # its password was changed on the camera
    bay.svc.sweep()
    assert bay.commands() == ["Ver"] and not bay.cam.disk_mode  # nothing after the refusal
    row = bay.row()
    assert row["state"] == "fault" and _one_line(row["error"]), row
    assert "login" in row["error"] and PASSWORD not in row["error"]
    assert bay.errors() == {"auth": 1}
    assert not os.path.exists(bay.disk) and bay.svc.store.archive_entries() == []
    from web_status.home.api import slot_rows

    (site,) = slot_rows(bay.report())
    assert site["error"] == row["error"]
    bay.svc.sweep()  # still docked: its stored password is not tried again
    assert bay.commands() == ["Ver"] and bay.row()["state"] == "fault"
    assert "not tried again while it stays docked" in bay.row()["error"]
    bay.bus.unplug(bay.device)  # taken out, its password put right, docked again
    bay.svc.sweep()
    bay.cam.password = PASSWORD
    bay.device = bay.bus.plug_camera(bay.cam, PORT)
    bay.svc.sweep()
    assert bay.commands()[1:3] == ["Ver", "Gdv"] and bay.cam.disk_mode


def test_an_untrusted_dock_clock_sends_no_clock_and_check_out_is_refused(
    tmp_path, monkeypatch
) -> None:
    bay = Bay(tmp_path, monkeypatch, "bytes_per_recording_hour = 1\n")
    bay.enrol()
    bay.svc.clock = FixedClock(False, "no NTP peer", TrustedClock().now())
    bay.svc.store.add_officer(OFFICER, "Wang Wei", "Traffic 3", PIN)
    bay.svc.sweep()
    assert "Sdt" not in bay.commands() and "Stm" not in bay.commands()
    assert "Gtm" not in bay.commands() and bay.cam.disk_mode  # nothing asked of its clock
    (not_set,) = bay.audit(AuditKind.CLOCK_NOT_SET)
    assert "dock clock not trusted" in not_set.data["reason"]
    bay.svc.offloads.wait(timeout=60)
    assert len(bay.svc.store.archive_entries()) == 3  # footage is still taken in
    bay.svc.sweep()
    assert bay.row()["guarantees"]["clock"] == "none"
    decision = bay.svc.checkout(OFFICER, PIN)
    codes = {r.code for r in decision.reasons}
    assert not decision.granted and {"clock_untrusted", "clock_drift"} <= codes


@pytest.mark.parametrize("allow", [False, True])
def test_a_clock_set_but_not_read_back_is_for_the_policy_to_allow(
    tmp_path, monkeypatch, allow
) -> None:
    """A model without a clock query: the dock set its clock (audited, drift "not
    reported") but cannot read it back; allow_unknown_clock_and_battery decides."""
    policy = (
        f"bytes_per_recording_hour = 1\nallow_unknown_clock_and_battery = {str(allow).lower()}\n"
    )
    bay = Bay(tmp_path, monkeypatch, policy)
    (tmp_path / "dock.toml").write_text(
        (tmp_path / "dock.toml").read_text().replace('time_query = "Gtm"\n', "")
    )
    bay.cfg = load_config(str(tmp_path / "dock.toml"), env={})
    bay.svc = build_service(bay.cfg, screen=ConsoleScreen(io.StringIO()))
    bay.enrol()
    bay.svc.store.add_officer(OFFICER, "Wang Wei", "Traffic 3", PIN)
    bay.svc.sweep()
    assert "Gtm" not in bay.commands() and {"Sdt", "Stm"} <= set(bay.commands())
    (clock_set,) = bay.audit(AuditKind.CLOCK_SET)
    assert clock_set.data["drift"] == "drift not reported"
    bay.svc.offloads.wait(timeout=60)
    bay.svc.sweep()
    assert bay.row()["guarantees"]["clock"] == "set"
    (drift,) = [r for r in bay.svc.views["1"].results if r.code == "clock_drift"]
    assert drift.passed is allow and "not read back" in drift.detail["not_set"]
    assert bay.svc.checkout(OFFICER, PIN).granted is allow


def test_a_camera_that_never_answers_is_a_bounded_slot_fault(tmp_path, monkeypatch) -> None:
    bay = Bay(tmp_path, monkeypatch, model="timeout_s = 0.3\n")
    bay.enrol()  # it answered then; now it says nothing at all
    bay.cam.fault = "silent"
    bay.svc.sweep()
    assert bay.commands() == ["Ver"] and not bay.cam.disk_mode
    row = bay.row()
    assert row["state"] == "fault" and _one_line(row["error"]) and "0.3 s" in row["error"], row
    assert bay.errors() == {"timeout": 1}


def test_a_disk_that_never_appears_lends_its_identity_to_nothing(tmp_path, monkeypatch) -> None:
    bay = Bay(tmp_path, monkeypatch)
    bay.enrol()
    bay.cam.on_disk_mode = None  # pulled out while switching: no disk comes
    bay.svc.sweep()
    ums = bay.svc.parts.slots.ums["1"]
    assert ums.awaiting_disk() and bay.commands().count("ATH") == 1
    bay.svc.sweep()  # waiting for its disk: the camera is not logged into again
    assert bay.commands().count("Ver") == 1
    ums.vouched_at -= attach.VOUCH_WAIT_S + 1  # the wait is over
    bay.bus.unplug(bay.device)
    make_image(bay.disk, footage_set(1, 1_000, seed=6))  # another camera's bare disk
    bay.svc.sweep()
    assert ums.vouched is None and bay.row()["device"] == DEVICE


def test_the_vendor_options_of_a_model_are_checked(tmp_path) -> None:
    from dock.config.load import ConfigError

    bad = textwrap.dedent(
        """\
        vendor_id = 70000
        lengths = { Stm = 8, Xyz = 3 }
        timeout_s = 0
        """
    )
    path = write_config(tmp_path, "/dev/bwc/slot-1.disk", model_extra=bad)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    text = str(err.value)
    assert "model[1].vendor_id" in text and "out of range" in text
    assert "model[1].lengths" in text and "Xyz" in text and "not a command of the set" in text
    assert "model[1].timeout_s" in text
    ums_only = (tmp_path / "dock.toml").read_text().replace('driver = "vendor"', 'driver = "ums"')
    (tmp_path / "u.toml").write_text(ums_only.replace("vendor_id = 70000\n", ""))
    with pytest.raises(ConfigError, match='only a driver = "vendor" model has it'):
        load_config(str(tmp_path / "u.toml"), env={})
    good = write_config(tmp_path, "/dev/bwc/slot-1.disk", model_extra="lengths = { Stm = 8 }\n")
    cfg = load_config(good, env={})
    options = composition.vendor_options(cfg, "1")
    assert options is not None and options["lengths"]["Stm"] == 8
    assert options["time_query"] == "Gtm" and options["vendor_id"] == 0x4255


def test_dock_run_once_in_a_subprocess_with_the_emulated_bus(tmp_path) -> None:
    """`dock run --once` in its own process: the CLI's real entry point, with the emulated
    USB bus passed to composition (the one thing the test changes; pyusb's backend lives
    in that process, so it is plugged there)."""
    staged, disk = tmp_path / "staged.img", tmp_path / "slot-1.disk"
    files = footage_set(2, 10_000)
    make_image(str(staged), files)
    config = write_config(tmp_path, str(disk))
    script = textwrap.dedent(
        f"""\
        import functools, os, sys
        from dock.daemon import composition
        from hardware.emulator.vendor_camera import VendorCamera, VendorUsbBus
        bus = VendorUsbBus()
        cam = VendorCamera(password={PASSWORD!r}, device_id={CAMERA_ID!r},
                           timezone="Asia/Shanghai", reports_time=True, battery=77,
                           drift_s=-30.0)
        cam.on_disk_mode = lambda: os.replace({str(staged)!r}, {str(disk)!r})
        bus.plug_camera(cam, {PORT!r})
        composition.open_vendor_control = functools.partial(
            composition.open_vendor_control, backend=bus)
        from dock.cli.main import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    base = [sys.executable, "-c", script, "--config", config]
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    enrol = subprocess.run(
        [*base, "device", "enrol-vendor", "--slot", "1", "--password-file", str(pw),
         "--model", MODEL],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert enrol.returncode == 0, enrol.stderr[-2000:]
    run = subprocess.run([*base, "run", "--once"], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "slot 1: driver vendor+ums" in run.stdout, run.stdout
    assert "hash taken at offload" in run.stdout and "77 %" in run.stdout
    cfg = load_config(config, env={})
    from dock.storage.store import Store

    rows = Store(os.path.join(cfg.dock.state_dir, "dock.db")).archive_entries()
    assert {bytes(r["sha256"]) for r in rows} == {f.sha256 for f in files}
    assert {r["serial"] for r in rows} == {CAMERA_ID}
