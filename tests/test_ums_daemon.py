"""A mass-storage camera in a bay, through the production wiring: configuration, the
daemon's sweep, enrolment, check-out, return and offload; and what probe/status show."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest

from dock.config.load import ConfigError, load_config
from dock.daemon.composition import build_service
from hardware.screens import ConsoleScreen

from .conftest import PIN
from .ums_helpers import DEVICE, footage_set, image_files, make_image

MODEL = '[[model]]\nname = "DSJ-V8"\nidentity = "file_names"\n'


def write_config(tmp_path, disk: str, policy: str = "", slot_extra: str = "") -> str:
    state, evidence = tmp_path / "state", tmp_path / "evidence"
    path = tmp_path / "dock.toml"
    path.write_text(
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{evidence}"\ntimezone = "Asia/Shanghai"\n\n'
        f'[clock]\nsource = "trusted"\n\n[policy]\n{policy}\n'
        f'[[slot]]\nid = "1"\nport = "usb:1-1.1"\ndriver = "ums"\nmodel = "DSJ-V8"\n'
        f'disk = "{disk}"\n{slot_extra}\n{MODEL}'
    )
    return str(path)


def test_the_configuration_names_a_model_for_a_mass_storage_bay(tmp_path) -> None:
    cfg = load_config(write_config(tmp_path, "/dev/bwc/slot-1.disk"), env={})
    assert cfg.slots[0].driver == "ums" and cfg.models[0].name == "DSJ-V8"
    with open(write_config(tmp_path, "relative.img")) as f:
        text = f.read().replace('model = "DSJ-V8"\ndisk', 'model = "X"\ndisk')
    text = text.replace('identity = "file_names"', "name_pattern = '(?P<device>x)'")
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path / "bad.toml"), env={})
    text = str(err.value)
    assert "slot[1].disk" in text and "not an absolute path" in text
    assert "no [[model]] is named 'X'" in text and "no group named 'time'" in text


def test_a_mass_storage_bay_without_a_model_is_refused(tmp_path) -> None:
    path = write_config(tmp_path, "/dev/x")
    with open(path) as f:
        text = f.read().replace('model = "DSJ-V8"\n', "", 1)
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ConfigError, match="needs the camera's model"):
        load_config(str(tmp_path / "m.toml"), env={})


def test_the_daemon_enrols_checks_out_and_offloads_a_mass_storage_camera(tmp_path) -> None:
    files = footage_set(3, 30_000)
    img = make_image(str(tmp_path / "cam.img"), files)
    cfg = load_config(write_config(tmp_path, img, "erase_on_mass_storage = true\n"), env={})
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    assert svc.enrol("1", "admin") == DEVICE
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.sweep()  # docked with footage no archive holds: offloaded (as any recorder's)
    svc.offloads.wait(timeout=60)
    rows = svc.store.archive_entries()
    assert {bytes(r["sha256"]) for r in rows} == {f.sha256 for f in files}
    for r in rows:
        path = os.path.join(cfg.dock.evidence_dir, r["path"])
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).digest() == bytes(r["sha256"])
    assert image_files(img) == set()  # deleted on the camera, each after verification
    svc.sweep()  # emptied, still known (the same volume, this docking)
    view = svc.slot_status["1"]
    assert view.serial == DEVICE and view.fault_reason is None, view
    decision = svc.checkout("1001", PIN)
    codes = {r.code for r in decision.reasons}  # a 16 MB card cannot hold a shift, and
    assert not decision.granted and {"battery_low", "clock_drift", "storage_low"} <= codes
    said = [r.message for r in svc.views["1"].results if not r.passed]  # no battery, no clock
    assert any("记录仪时钟未知" in m for m in said) and any("记录仪不报告电量" in m for m in said)


def test_a_shift_with_a_mass_storage_camera_out_and_back(tmp_path) -> None:
    """Undocked (the disk gone), back with a shift's footage: custody closes, the footage is
    offloaded; unknown clock and battery allowed by policy, and said in the checks."""
    img = make_image(str(tmp_path / "cam.img"), footage_set(1, 1_000, seed=9))
    policy = "allow_unknown_clock_and_battery = true\nbytes_per_recording_hour = 1\n"
    cfg = load_config(write_config(tmp_path, img, policy), env={})
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    svc.enrol("1", "admin")
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.sweep()
    svc.offloads.wait(timeout=60)
    svc.sweep()
    decision = svc.checkout("1001", PIN)
    assert decision.granted, decision.reasons
    shown = [r.message for r in svc.views["1"].results]
    assert "记录仪时钟未知（策略允许）" in shown and "电量未知（策略允许）" in shown
    os.rename(img, img + ".out")  # taken out of the bay
    svc.sweep()
    shift = footage_set(2, 5_000, seed=10)
    make_image(str(tmp_path / "cam2.img"), shift)
    os.replace(str(tmp_path / "cam2.img"), img)  # back (the same serial: mkfs -i)
    svc.sweep()
    svc.offloads.wait(timeout=60)
    archived = {bytes(r["sha256"]) for r in svc.store.archive_entries()}
    assert {f.sha256 for f in shift} <= archived
    assert set(image_files(img)) >= {f.name for f in shift}  # policy keeps them on the camera
    kinds = [e.kind for e in svc.audit.entries()]
    assert "checkout" in kinds and "checkin" in kinds
    # the test's footage is dated before the check-out: the explanation workflow hears of it
    assert kinds.count("recording_outside_episode") == len(shift)


def test_status_and_probe_say_which_guarantees_apply(tmp_path) -> None:
    """Issue 14 section 3: the driver and its guarantees, the missing ones said plainly."""
    from dock.cli.custody import status_lines
    from dock.services.status import status_report

    img = make_image(str(tmp_path / "cam.img"), footage_set(2, 1_000))
    cfg = load_config(write_config(tmp_path, img), env={})
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    svc.enrol("1", "admin")
    report = status_report(svc, svc.sweep())
    g = report["slots"][0]["guarantees"]
    assert g == {"driver": "ums", "hash": "offload", "erase": "keep", "clock": "none",
                 "identity": "claimed", "battery": "unknown",
                 "read_via": "fat-library"}  # fmt: skip
    line = next(x for x in status_lines(report) if x.startswith("slot 1: driver"))
    assert (
        "hash taken at offload (no capture hash)" in line and "footage kept on the device" in line
    )
    assert "identity claimed (not proven)" in line and "clock unknown" in line
    probe = subprocess.run([sys.executable, "-m", "dock.cli.main", "probe", img, "--json"],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["serial"] == DEVICE and found["guarantees"]["hash"] == "offload"
    assert found["filesystem"] == "FAT16" and len(found["recordings"]) == 2
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    bad = subprocess.run([sys.executable, "-m", "dock.cli.main", "probe", str(junk)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_a_camera_vouched_for_by_the_vendor_command_set_keeps_that_identity(tmp_path) -> None:
    """After a password login, clock set and @ATH (the vendor driver), the disk that appears
    in the bay is that camera's: its id, battery and clock offset, not the file names'."""
    from dock.config.models import ModelConfig
    from dock.devices.ums.attach import UmsSlot
    from dock.devices.ums.recorder import Vouched

    img = str(tmp_path / "cam.img")
    slot = UmsSlot("1", img, ModelConfig("DSJ-V8"), str(tmp_path / "vol"))
    slot.vouch(Vouched("CAM-0042", battery=87, clock_offset_s=0.4, clock="set"))
    with pytest.raises(Exception, match="no volume"):  # disk mode not reached yet
        slot.session().__enter__()
    make_image(img, footage_set(1, 100))
    with slot.session() as cam:
        assert cam.identity is not None and cam.identity.serial == "CAM-0042"
        assert cam.status().battery_percent == 87 and cam.status().clock_offset_s == 0.4
        assert cam.guarantees.as_dict()["clock"] == "set" and cam.clock_readable
        assert cam.guarantees.as_dict()["hash"] == "offload"
    os.unlink(img)  # undocked: forgotten
    with pytest.raises(Exception, match="no volume"):
        slot.session().__enter__()
    make_image(img, footage_set(1, 100))
    with slot.session() as cam:
        assert cam.identity is not None and cam.identity.serial == DEVICE


class FakeMounter:
    """Stands in for hardware/block_volumes.py where the kernel cannot mount vfat: a
    "mount" extracts the image into the target with mtools; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def mount_readonly(self, device: str, target: str, fstype: str, loop: bool) -> None:
        self.calls.append(f"mount {fstype} loop={loop}")
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mcopy", "-s", "-i", device, "::/DCIM", target], check=True)

    def writable_for(self, target: str):  # type: ignore[no-untyped-def]
        def run(step):  # type: ignore[no-untyped-def]
            self.calls.append("rw")
            try:
                step()
            finally:
                self.calls.append("ro")

        return run

    def unmount(self, target: str) -> None:
        self.calls.append("unmount")
        import shutil

        shutil.rmtree(target)

    def unmount_stale(self, folder: str) -> list[str]:
        self.calls.append("reconcile")
        return []


def test_where_the_dock_may_mount_it_reads_the_mount_and_unmounts_after(tmp_path) -> None:
    from dock.config.models import ModelConfig
    from dock.devices.ums.attach import UmsSlot

    files = footage_set(2, 2_000)
    img = make_image(str(tmp_path / "cam.img"), files)
    mounter = FakeMounter()
    slot = UmsSlot("1", img, ModelConfig("DSJ-V8"), str(tmp_path / "vol"), mounter=mounter,
                   allow_erase=True)  # fmt: skip
    with slot.session() as cam:
        assert cam.guarantees.as_dict()["read_via"] == "mount"
        recs = cam.list_recordings()
        assert {r.sha256 for r in recs} == {f.sha256 for f in files}
        cam.erase(recs[0].id, recs[0].sha256)  # the delete alone runs read-write
    assert mounter.calls == ["reconcile", "mount vfat loop=True", "rw", "ro", "unmount"]
    assert not os.path.exists(tmp_path / "vol" / "slot-1")  # nothing left mounted


def test_dock_run_with_a_mass_storage_bay(tmp_path) -> None:
    """`dock run --once` as installed (the production wiring, a subprocess): the bay's
    camera is identified, its footage offloaded, the status says what it cannot give."""
    files = footage_set(2, 20_000)
    img = make_image(str(tmp_path / "cam.img"), files)
    config = write_config(tmp_path, img)
    base = [sys.executable, "-m", "dock.cli.main", "--config", config]
    enrol = subprocess.run([*base, "device", "enrol", "--slot", "1"], capture_output=True,
                           text=True, timeout=120, check=False)  # fmt: skip
    assert enrol.returncode == 0, enrol.stderr
    run = subprocess.run([*base, "run", "--once"], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "slot 1: driver ums" in run.stdout and "hash taken at offload" in run.stdout
    assert "-1 %" not in run.stdout  # an unknown battery is not a number
    listed = subprocess.run([*base, "archive", "list", "--json"], capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    rows = json.loads(listed.stdout)
    rows = rows.get("recordings", rows) if isinstance(rows, dict) else rows
    assert sorted(r["sha256"] for r in rows) == sorted(f.sha256.hex() for f in files)
