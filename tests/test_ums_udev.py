"""systemd/60-bwc-recorders.rules for mass-storage cameras: a FAT/exFAT USB disk (or its
partition) in a bay becomes /dev/bwc/slot-N.disk, group dock, kept from automounters;
anything else is left alone. Run by udev's own engine on fake devices (test_udev_rules)."""

from __future__ import annotations

from pathlib import Path

from .test_udev_rules import DOCK_GID, RULES, FakeDevice, udev_test, write_device
from .test_udev_rules import fake_sys as fake_sys  # the fixture

BLOCK = "host0/target0:0:0/0:0:0:0/block"


def write_disk(root: Path, dev: FakeDevice, name: str, fs: str, minor: int, part: bool) -> str:
    """A SCSI disk (or its first partition) behind the USB device, as usb-storage makes it;
    ``fs`` stands in for what udev's blkid would find on it."""
    usb_path, _ = write_device(root, dev)
    iface = root / usb_path.removeprefix("/sys/devices/virtual/") / f"{dev.port}:1.0"
    disk = iface / BLOCK / name
    node = disk / f"{name}1" if part else disk
    node.mkdir(parents=True, exist_ok=True)
    (iface / "uevent").write_text("DEVTYPE=usb_interface\nDRIVER=usb-storage\n")
    if not (iface / "subsystem").exists():
        (iface / "subsystem").symlink_to("/sys/bus/usb")
    kind = "partition" if part else "disk"
    devname = f"{name}1" if part else name
    (node / "uevent").write_text(
        f"MAJOR=8\nMINOR={minor}\nDEVNAME={devname}\nDEVTYPE={kind}\nID_BUS=usb\n"
        + (f"ID_FS_TYPE={fs}\n" if fs else "")
    )
    (node / "dev").write_text(f"8:{minor}\n")
    (node / "subsystem").symlink_to("/sys/class/block")
    rel = f"{dev.port}:1.0/{BLOCK}/{name}" + (f"/{name}1" if part else "")
    return f"{usb_path}/{rel}"


def test_a_mass_storage_camera_in_a_bay_is_the_bays_disk(tmp_path: Path, fake_sys: Path) -> None:
    in_bay = write_disk(fake_sys, FakeDevice("1-1.4", "1234", "5678", 10), "sda", "vfat", 0, False)
    part = write_disk(fake_sys, FakeDevice("1-1.3", "1234", "5679", 11), "sdb", "exfat", 17, True)
    elsewhere = write_disk(
        fake_sys, FakeDevice("1-1.5", "1234", "5670", 12), "sdc", "vfat", 32, False
    )
    not_fat = write_disk(fake_sys, FakeDevice("2-1", "1234", "5671", 13), "sdd", "ext4", 48, False)
    results = udev_test(tmp_path, RULES.read_text(), [in_bay, part, elsewhere, not_fat])
    disk, partition, outside, ext4 = results
    assert disk.our("LINK") == ["bwc/slot-4.disk"] and disk.our("GROUP") == [str(DOCK_GID)]
    assert disk.properties.get("UDISKS_IGNORE") == "1"
    assert partition.our("LINK") == ["bwc/slot-3.disk"]
    assert outside.our("LINK") == [] and outside.our("GROUP") == []
    assert ext4.our("LINK") == [] and "UDISKS_IGNORE" not in ext4.properties
