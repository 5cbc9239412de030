"""A mass-storage camera's volume: a real FAT image read through the library, the same
footage in a directory (what a mount gives), hostile content, names, MP4 times, identity."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.devices.ums import volume as volume_mod
from dock.devices.ums.bootsector import parse_boot_sector, read_boot_sector
from dock.devices.ums.footage import DEFAULT_NAME_PATTERN, mvhd_times, parse_name
from dock.devices.ums.identity import IdentityRule, identify
from dock.devices.ums.volume import DirVolume, FatVolume

from .ums_helpers import DEVICE, SERIAL, footage_set, image_files, make_dir, make_image, mp4

PATTERN = re.compile(DEFAULT_NAME_PATTERN)


def _read_all(vol, entry) -> bytes:
    with vol.open_file(entry) as handle:
        return b"".join(volume_mod.iter_blocks(handle))


def test_a_fat_image_is_listed_read_and_deleted_through_the_library(tmp_path) -> None:
    files = footage_set(3, 50_000)
    img = make_image(str(tmp_path / "cam.img"), files, extra={"SYSTEM/LOG.TXT": b"log"})
    vol = FatVolume(img)
    boot = vol.boot()
    assert boot is not None and boot.serial == SERIAL and boot.mount_type == "vfat"
    listing = vol.listing()
    by_path = {f.path: f for f in listing.files}
    assert set(by_path) == {f.name for f in files} | {"SYSTEM/LOG.TXT"}
    for f in files:
        assert hashlib.sha256(_read_all(vol, by_path[f.name])).digest() == f.sha256
    total, free = vol.space()
    assert 0 < free < total <= 16384 * 1024
    vol.delete(by_path[files[0].name])
    assert files[0].name not in image_files(img)  # mtools, not our code, says it is gone
    assert {f.name for f in files[1:]} <= image_files(img)
    assert vol.space()[1] > free
    vol.close()


def test_the_same_footage_in_a_directory_reads_alike(tmp_path) -> None:
    files = footage_set(2, 10_000)
    root = make_dir(str(tmp_path / "mnt"), files)
    done: list[str] = []
    vol = DirVolume(root, writable=lambda step: (done.append("rw"), step(), done.append("ro")))
    listing = vol.listing()
    assert [f.path for f in listing.files] == sorted(f.name for f in files)
    assert _read_all(vol, listing.files[0]) == files[0].data
    vol.delete(listing.files[0])
    assert done == ["rw", "ro"] and not os.path.exists(os.path.join(root, files[0].name))


def test_a_read_only_directory_volume_refuses_to_delete(tmp_path) -> None:
    root = make_dir(str(tmp_path / "mnt"), footage_set(1, 100))
    vol = DirVolume(root)
    with pytest.raises(PermissionError):
        vol.delete(vol.listing().files[0])
    assert len(vol.listing().files) == 1


def test_hostile_directory_content_is_skipped_and_said(tmp_path) -> None:
    root = tmp_path / "mnt"
    make_dir(str(root), footage_set(1, 100))
    (root / "bad\x1bname.MP4").write_bytes(b"x")
    (root / ("L" * 250 + ".MP4")).write_bytes(b"y")  # 254 bytes: a legal, long name
    os.symlink("/etc/passwd", root / "link.MP4")
    os.mkfifo(root / "fifo.MP4")
    deep = root / "a/b/c/d/e/f"
    deep.mkdir(parents=True)
    (deep / "deep.MP4").write_bytes(b"z")
    listing = DirVolume(str(root)).listing()
    paths = {f.path for f in listing.files}
    assert "L" * 250 + ".MP4" in paths
    assert not any("\x1b" in p or "link" in p or "fifo" in p or "deep" in p for p in paths)
    said = "\n".join(listing.skipped)
    assert "control characters" in said and "a symlink" in said and "not a file" in said
    assert "too deep" in said


def test_a_swapped_file_is_not_read_as_the_listed_one(tmp_path) -> None:
    root = make_dir(str(tmp_path / "mnt"), footage_set(1, 1000))
    vol = DirVolume(str(root))
    entry = vol.listing().files[0]
    target = os.path.join(root, entry.path)
    os.unlink(target)
    os.symlink("/etc/hostname", target)
    with pytest.raises(OSError):
        vol.open_file(entry)


def test_a_huge_directory_is_walked_to_a_bound(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(volume_mod, "MAX_ENTRIES", 50)
    root = tmp_path / "mnt"
    root.mkdir()
    for n in range(200):
        (root / f"F{n:04d}.MP4").write_bytes(b"")
    listing = DirVolume(str(root)).listing()
    assert listing.truncated and len(listing.files) <= 50


def test_a_huge_fat_directory_is_walked_to_a_bound(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(volume_mod, "MAX_ENTRIES", 20)
    extra = {f"DCIM/F{n:03d}.MP4": b"x" for n in range(40)}
    img = make_image(str(tmp_path / "cam.img"), [], extra=extra)
    listing = FatVolume(img).listing()
    assert listing.truncated and len(listing.files) < 20


def test_not_a_fat_image_is_refused_in_one_line(tmp_path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(OSError, match="only FAT12/16/32"):
        FatVolume(str(junk))
    assert read_boot_sector(str(junk)) is None


@given(st.binary(min_size=0, max_size=1024))
def test_any_boot_sector_parses_or_is_refused(data: bytes) -> None:
    found = parse_boot_sector(data + b"\0" * max(0, 510 - len(data)) + b"\x55\xaa")
    assert found is None or found.fs_type in ("FAT12", "FAT16", "FAT32", "exFAT")


def test_the_name_states_device_officer_and_local_time() -> None:
    facts = parse_name("DSJ0001_012345_20261130083000_0007.MP4", PATTERN, "Asia/Shanghai")
    assert facts is not None and (facts.device, facts.officer, facts.seq) == (
        "DSJ0001", "012345", 7
    )  # fmt: skip
    assert facts.start == dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC).timestamp()
    impossible = parse_name("DSJ0001_012345_20261399083000_0007.MP4", PATTERN, "UTC")
    assert impossible is not None and impossible.start is None
    assert parse_name("IMG_0001.MP4", PATTERN, "UTC") is None


def test_mvhd_gives_the_creation_time_since_1904() -> None:
    when = dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC).timestamp()
    assert mvhd_times(mp4(when, b"x" * 100, duration_s=90)) == (when, 90.0)
    assert mvhd_times(b"\0\0\0\x08free" * 10) is None


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_mvhd_parser_never_fails_on_any_bytes(data: bytes) -> None:
    found = mvhd_times(data)
    assert found is None or isinstance(found[0], float)


@given(st.integers(0, 2**32 - 1), st.binary(max_size=64))
def test_mvhd_with_a_lying_size_ends_the_walk(size: int, tail: bytes) -> None:
    data = struct.pack(">I4s", size, b"moov") + struct.pack(">I4s", size, b"mvhd") + tail
    found = mvhd_times(data)  # sizes past the data: no read beyond it, no exception
    assert found is None or found[1] >= 0


def test_identity_rules(tmp_path) -> None:
    files = footage_set(2, 100)
    img = make_image(str(tmp_path / "cam.img"), files, extra={"ID.TXT": b"id=CAM-77\n"})
    vol = FatVolume(img)
    listing = vol.listing()
    assert identify(IdentityRule("X"), vol, listing) == DEVICE
    assert identify(IdentityRule("X", "volume_serial"), vol, listing) == SERIAL
    rule = IdentityRule("X", "id_file", id_file="ID.TXT", id_regex=re.compile(r"id=(?P<id>\S+)"))
    assert identify(rule, vol, listing) == "CAM-77"
    missing = IdentityRule("X", "id_file", id_file="NONE.TXT")
    assert identify(missing, vol, listing) is None


def test_names_of_two_devices_make_an_unknown_volume(tmp_path) -> None:
    root = make_dir(str(tmp_path / "mnt"), footage_set(1, 10), extra={
        "DCIM/OTHER01_9_20261130090000_0001.MP4": b"x"})  # fmt: skip
    vol = DirVolume(root)
    assert identify(IdentityRule("X"), vol, vol.listing()) is None


def test_a_loop_mounted_image_reads_as_the_library_reads_it(tmp_path) -> None:
    """Where the machine can mount (root, vfat in the kernel): the same bytes either way."""
    from hardware.block_volumes import MountFailed, mount_readonly, unmount

    files = footage_set(2, 20_000)
    img = make_image(str(tmp_path / "cam.img"), files)
    target = tmp_path / "mnt"
    try:
        mount_readonly(img, str(target), "vfat", loop=True)
    except MountFailed as exc:
        pytest.skip(f"cannot mount here: {exc}")
    try:
        vol = DirVolume(str(target))
        mounted = {f.path.upper(): _read_all(vol, f) for f in vol.listing().files}
        vol.close()
        opts = subprocess.run(["findmnt", "-no", "OPTIONS", str(target)], capture_output=True,
                              text=True, check=False).stdout  # fmt: skip
        assert {"ro", "nosuid", "nodev", "noexec"} <= set(opts.strip().split(","))
    finally:
        unmount(str(target))
    fat = FatVolume(img)
    assert mounted == {f.path.upper(): _read_all(fat, f) for f in fat.listing().files}


def test_long_and_non_ascii_names_on_a_fat_image_are_listed_and_read(tmp_path) -> None:
    long = "DSJ0001_012345_20261130083000_0001_" + "x" * 180 + ".MP4"
    extra = {f"DCIM/{long}": b"long", "DCIM/执法记录_0001.MP4": b"cjk"}
    img = make_image(str(tmp_path / "cam.img"), [], extra=extra)
    vol = FatVolume(img)
    by_name = {f.path: f for f in vol.listing().files}
    assert set(by_name) == set(extra)
    assert {p: _read_all(vol, f) for p, f in by_name.items()} == extra
