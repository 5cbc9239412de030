"""The first sector of a FAT or exFAT volume: its type, its serial, its geometry.

Read from an image file or a block device (512 bytes, never more), to choose the
file-system type to mount with (no guessing by the kernel) and to read the volume serial
("volume id") that identity rules may name. Nothing in it is trusted beyond its shape:
impossible geometry means "not a FAT volume".
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

SECTOR = 512
_CLUSTER_SECTORS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class BootSector:
    #: "FAT12", "FAT16", "FAT32" or "exFAT".
    fs_type: str
    #: The volume serial as ``XXXX-XXXX`` (as blkid and Windows show it).
    serial: str
    label: str
    #: Data clusters and bytes per cluster (0 for exFAT: not parsed).
    clusters: int
    cluster_bytes: int

    @property
    def mount_type(self) -> str:
        """The ``-t`` of mount(8)."""
        return "exfat" if self.fs_type == "exFAT" else "vfat"


def _serial(value: int) -> str:
    return f"{value >> 16:04X}-{value & 0xFFFF:04X}"


def parse_boot_sector(data: bytes) -> BootSector | None:
    """The boot sector's facts, or None if it is not a plausible FAT/exFAT one."""
    if len(data) < SECTOR or data[510:512] != b"\x55\xaa":
        return None
    if data[3:11] == b"EXFAT   ":
        (serial,) = struct.unpack_from("<I", data, 100)
        return BootSector("exFAT", _serial(serial), "", 0, 0)
    per_sector, per_cluster, reserved, fats, root_entries, total16 = struct.unpack_from(
        "<HBHBHH", data, 11
    )
    fat16_size, total32, fat32_size = (
        struct.unpack_from("<H", data, 22)[0],
        struct.unpack_from("<I", data, 32)[0],
        struct.unpack_from("<I", data, 36)[0],
    )
    if per_sector not in (512, 1024, 2048, 4096) or per_cluster not in _CLUSTER_SECTORS:
        return None
    if reserved == 0 or fats == 0:
        return None
    fat_size = fat16_size or fat32_size
    total = total16 or total32
    root_sectors = (root_entries * 32 + per_sector - 1) // per_sector
    data_start = reserved + fats * fat_size + root_sectors
    if fat_size == 0 or total <= data_start:
        return None
    clusters = (total - data_start) // per_cluster
    if fat16_size == 0:
        fs_type, at = "FAT32", 64
    else:
        fs_type, at = ("FAT12" if clusters < 4085 else "FAT16"), 36
    boot_sig = data[at + 2]
    serial = struct.unpack_from("<I", data, at + 3)[0] if boot_sig in (0x28, 0x29) else 0
    label = data[at + 7 : at + 18].decode("ascii", "replace").strip() if boot_sig == 0x29 else ""
    return BootSector(fs_type, _serial(serial), label, clusters, per_sector * per_cluster)


def read_boot_sector(path: str) -> BootSector | None:
    """The boot sector of the image or device at ``path`` (None: not FAT/exFAT, unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = os.pread(fd, SECTOR, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_boot_sector(data)
