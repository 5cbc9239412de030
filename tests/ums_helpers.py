"""Mass-storage cameras for the tests: footage in a vendor's naming on a real FAT image.

The image is made by ``mkfs.vfat`` (dosfstools) and filled by ``mcopy`` (mtools), never
mounted: both run unprivileged. A test that needs them skips, with the reason, where
they are missing (scripts/bootstrap.sh installs them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass

import pytest

from dock.devices.ums.footage import MP4_EPOCH_OFFSET

SERIAL = "1234-ABCD"
DEVICE = "DSJ0001"
OFFICER = "012345"


def mp4(created_utc: float, payload: bytes, duration_s: int = 60) -> bytes:
    """A small MP4: ftyp, moov with an mvhd (version 0), then mdat with ``payload``."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"isom", 0, b"isom")
    body = struct.pack(">B3xIIII", 0, int(created_utc) + MP4_EPOCH_OFFSET, 0, 1000,
                       duration_s * 1000) + b"\0" * 80  # fmt: skip
    mvhd = struct.pack(">I4s", 8 + len(body), b"mvhd") + body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    mdat = struct.pack(">I4s", 8 + len(payload), b"mdat") + payload
    return ftyp + moov + mdat


def vendor_name(seq: int, local: str, device: str = DEVICE, officer: str = OFFICER) -> str:
    return f"{device}_{officer}_{local}_{seq:04d}.MP4"


@dataclass
class Footage:
    name: str  # on the volume, e.g. DCIM/DSJ0001_012345_20261130083000_0001.MP4
    data: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()


def _tool(name: str) -> str | None:
    """``name`` on PATH, or in /usr/sbin and /sbin (not on a user's PATH on Debian)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    return found


def need_tools() -> None:
    for tool in ("mkfs.vfat", "mcopy", "mmd"):
        if _tool(tool) is None:
            pytest.skip(f"{tool} missing (dosfstools/mtools: scripts/bootstrap.sh)")


def footage_set(count: int, size: int, seed: int = 1) -> list[Footage]:
    """``count`` recordings of ``size`` payload bytes, one a minute from 08:30 local."""
    out = []
    for n in range(count):
        minute = 30 + n
        local = f"20261130{8 + minute // 60:02d}{minute % 60:02d}00"
        payload = hashlib.shake_256(f"{seed}-{n}".encode()).digest(size)
        out.append(Footage(f"DCIM/{vendor_name(n + 1, local)}", mp4(1795998600 + 60 * n, payload)))
    return out


def make_image(
    path: str,
    files: list[Footage],
    size_kb: int = 16384,
    serial: str = SERIAL,
    extra: dict[str, bytes] | None = None,
) -> str:
    """A FAT image at ``path`` holding ``files`` (and ``extra`` name -> bytes)."""
    need_tools()
    subprocess.run([str(_tool("mkfs.vfat")), "-C", "-i", serial.replace("-", ""), "-n", "BWC", path,
                    str(size_kb)], check=True, capture_output=True)  # fmt: skip
    work = os.path.join(os.path.dirname(path), "mcopy-src")
    os.makedirs(work, exist_ok=True)
    folders = set()
    for name, data in [(f.name, f.data) for f in files] + list((extra or {}).items()):
        folder = os.path.dirname(name)
        parts = folder.split("/") if folder else []
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            if sub not in folders:
                subprocess.run(["mmd", "-i", path, f"::/{sub}"], check=True, capture_output=True)
                folders.add(sub)
        src = os.path.join(work, "f")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run(["mcopy", "-i", path, src, f"::/{name}"], check=True,
                       capture_output=True, env={**os.environ, "MTOOLS_NO_VFAT": ""})  # fmt: skip
    return path


def make_dir(root: str, files: list[Footage], extra: dict[str, bytes] | None = None) -> str:
    """The same footage in a plain directory: what a mounted volume looks like."""
    for name, data in [(f.name, f.data) for f in files] + list((extra or {}).items()):
        target = os.path.join(root, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    return root


def image_files(path: str) -> set[str]:
    """The files the image holds, read with mtools (not our code)."""
    out = subprocess.run(["mdir", "-i", path, "-/", "-b", "::/"], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return {line.strip().removeprefix("::/") for line in out.splitlines() if line.strip()
            and not line.strip().endswith("/")}  # fmt: skip
