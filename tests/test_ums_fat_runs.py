"""A FAT image read by its cluster runs (``FatVolume.open_file``): the same bytes the FAT
library reads itself, a fragmented file in its order, a damaged chain an error (never short
data), a looped chain a bounded read."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from dock.devices.ums import volume as volume_mod
from dock.devices.ums.volume import FatVolume

from .ums_helpers import Footage, make_image


def _library_read(vol: FatVolume, entry: volume_mod.VolumeFile) -> bytes:
    """The file as pyfatfs reads it (a cluster per call): the reference."""
    with vol._fs.openbin("/" + entry.path, "r") as handle:
        return handle.read()


def _read(vol: FatVolume, entry: volume_mod.VolumeFile) -> bytes:
    with vol.open_file(entry) as handle:
        return b"".join(volume_mod.iter_blocks(handle))


def _blob(tag: str, size: int) -> bytes:
    return hashlib.shake_256(tag.encode()).digest(size) if size else b""


def test_every_size_reads_as_the_library_reads_it(tmp_path) -> None:
    sizes = [0, 1, 511, 512, 2047, 2048, 2049, 300_000, 1_500_000]
    files = [Footage(f"DCIM/F{n:03d}.MP4", _blob(str(n), size)) for n, size in enumerate(sizes)]
    vol = FatVolume(make_image(str(tmp_path / "cam.img"), files))
    try:
        by_path = {f.path: f for f in vol.listing().files}
        for f in files:
            entry = by_path[f.name]
            got = _read(vol, entry)
            assert got == f.data, f.name
            assert got == _library_read(vol, entry)
            with vol.open_file(entry) as handle:
                assert all(len(b) <= 1 << 20 for b in volume_mod.iter_blocks(handle))
    finally:
        vol.close()


@pytest.mark.parametrize("stretch", [4096, 3, 1])
def test_a_fragmented_file_is_read_in_chain_order(stretch, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(volume_mod, "_STRETCH", stretch)  # slices ending anywhere
    a, b, c = (Footage(f"F{n}.MP4", _blob(f"x{n}", 40_000)) for n in range(3))
    img = make_image(str(tmp_path / "cam.img"), [a, b, c], size_kb=4096)
    subprocess.run(["mdel", "-i", img, "::/F1.MP4"], check=True, capture_output=True)
    big = tmp_path / "big"
    data = _blob("big", 200_000)  # fills F1's hole, then continues after F2
    big.write_bytes(data)
    subprocess.run(["mcopy", "-i", img, str(big), "::/BIG.MP4"], check=True, capture_output=True)
    vol = FatVolume(img)
    try:
        entry = next(f for f in vol.listing().files if f.path == "BIG.MP4")
        first = vol._fs.fs.root_dir.get_entry("/BIG.MP4").get_cluster()
        runs = list(volume_mod._runs(vol._fs.fs, first, entry.size))
        assert len(runs) >= 2, "the image did not fragment the file: the test proves nothing"
        assert _read(vol, entry) == data == _library_read(vol, entry)
        with vol.open_file(entry) as handle:  # a seek across runs, as the MP4 look does
            assert handle.seek(45_000) == 45_000 and handle.read(10_000) == data[45_000:55_000]
            assert handle.seek(-5, os.SEEK_END) == len(data) - 5 and handle.read() == data[-5:]
            assert handle.seek(0) == 0 and handle.read(7) == data[:7]
    finally:
        vol.close()


def _second_cluster(vol: FatVolume, path: str) -> int:
    first = vol._fs.fs.root_dir.get_entry(path).get_cluster()
    return int(vol._fs.fs.fat[first]) if first else 0


def test_a_chain_shorter_than_the_file_is_an_error_not_short_data(tmp_path) -> None:
    f = Footage("F.MP4", _blob("short", 100_000))
    vol = FatVolume(make_image(str(tmp_path / "cam.img"), [f]))
    try:
        entry = vol.listing().files[0]
        first = vol._fs.fs.root_dir.get_entry("/F.MP4").get_cluster()
        fat = vol._fs.fs
        fat.fat[first] = fat.FAT_CLUSTER_VALUES[fat.fat_type]["END_OF_CLUSTER_MAX"]
        got = bytearray()
        with pytest.raises(OSError, match="damaged"), vol.open_file(entry) as handle:
            for block in volume_mod.iter_blocks(handle):
                got += block
        assert len(got) < entry.size
    finally:
        vol.close()


def test_a_looped_chain_ends_at_the_file_size(tmp_path) -> None:
    f = Footage("F.MP4", _blob("loop", 100_000))
    vol = FatVolume(make_image(str(tmp_path / "cam.img"), [f]))
    try:
        entry = vol.listing().files[0]
        second = _second_cluster(vol, "/F.MP4")
        vol._fs.fs.fat[second] = second  # points at itself: a chain without end
        got = _read(vol, entry)
        assert len(got) == entry.size and got != f.data  # bounded, and not the footage
    finally:
        vol.close()


def test_a_changed_size_is_refused(tmp_path) -> None:
    f = Footage("F.MP4", _blob("size", 10_000))
    vol = FatVolume(make_image(str(tmp_path / "cam.img"), [f]))
    try:
        entry = vol.listing().files[0]
        wrong = volume_mod.VolumeFile(entry.path, entry.size + 1, entry.mtime)
        with pytest.raises(volume_mod.Changed):
            vol.open_file(wrong)
        bad = volume_mod.VolumeFile("../F.MP4", entry.size, entry.mtime)
        with pytest.raises(volume_mod.Changed):
            vol.open_file(bad)
    finally:
        vol.close()


def test_a_read_abandoned_half_way_leaves_no_descriptor_open(tmp_path) -> None:
    f = Footage("F.MP4", _blob("fd", 50_000))
    vol = FatVolume(make_image(str(tmp_path / "cam.img"), [f]))
    try:
        entry = vol.listing().files[0]
        before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
        handle = vol.open_file(entry)
        handle.read(1000)
        handle.close()  # abandoned half-way (an error downstream)
        after = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
        assert after == before
    finally:
        vol.close()
