"""What a mass-storage recorder's files say about themselves: names and MP4 times.

GA/T 947-style cameras name each file after the device, the officer and the start time,
e.g. ``DEV0001_012345_20260301083000_0001.MP4``. The pattern is configurable (a regular
expression with named groups ``device``, ``officer``, ``time`` and optionally ``seq``);
``time`` is ``YYYYMMDDhhmmss`` in the camera's local time zone. Where the name carries no
time, the MP4 ``mvhd`` creation time is used (seconds since 1904-01-01 UTC), read by a
bounded box walk: at most ``MVHD_READ_BYTES`` of the file, every size checked.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO
from zoneinfo import ZoneInfo

from dock.config.models import DEFAULT_NAME_PATTERN

#: Footage file extensions the driver offloads (anything else on the volume is listed
#: as skipped: logs, firmware, the camera's own settings).
FOOTAGE_SUFFIXES = (".mp4", ".mov", ".avi", ".wav", ".jpg")
#: Bytes read to find ``mvhd`` (it is near the start of a camera's file when ``moov``
#: comes first; a camera writing ``moov`` last gives no time here: the name decides).
MVHD_READ_BYTES = 64 * 1024
#: 1904-01-01 to 1970-01-01, in seconds.
MP4_EPOCH_OFFSET = 2_082_844_800
_CONTAINERS = {b"moov"}

__all__ = ["DEFAULT_NAME_PATTERN", "mvhd_times", "parse_name", "read_mvhd"]


@dataclass(frozen=True)
class NameFacts:
    device: str | None
    officer: str | None
    #: UTC seconds, or None (no time in the name, or an impossible one).
    start: float | None
    seq: int | None


def parse_name(name: str, pattern: re.Pattern[str], tz: str) -> NameFacts | None:
    """The facts the file name states under ``pattern``, or None if it does not match."""
    m = pattern.fullmatch(name)
    if m is None:
        return None
    groups = m.groupdict()
    start = None
    if groups.get("time"):
        try:
            local = dt.datetime.strptime(groups["time"], "%Y%m%d%H%M%S")
            start = local.replace(tzinfo=ZoneInfo(tz)).timestamp()
        except ValueError:
            start = None
    seq = groups.get("seq")
    return NameFacts(groups.get("device"), groups.get("officer"), start,
                     int(seq) if seq else None)  # fmt: skip


def mvhd_times(data: bytes) -> tuple[float, float] | None:
    """(creation time as UTC seconds, duration in seconds) from the first bytes of an MP4.

    Walks top-level boxes and ``moov``'s children within ``data`` only; a box whose size
    is impossible ends the walk (None), never a read past ``data``.
    """
    return _walk(data, 0, len(data), 0)


def _walk(data: bytes, start: int, end: int, depth: int) -> tuple[float, float] | None:
    pos = start
    for _ in range(256):  # boxes looked at per level: bounded
        if pos + 8 > end:
            return None
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return None
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        body, box_end = pos + header, min(pos + size, end)
        if kind == b"mvhd":
            return _mvhd(data[body:box_end])
        if kind in _CONTAINERS and depth < 2:
            found = _walk(data, body, box_end, depth + 1)
            if found is not None:
                return found
        if pos + size > end:
            return None
        pos += size
    return None


def _mvhd(body: bytes) -> tuple[float, float] | None:
    if len(body) < 4:
        return None
    version = body[0]
    if version == 1:
        if len(body) < 4 + 28:
            return None
        created, _mod, scale, duration = struct.unpack_from(">QQIQ", body, 4)
    elif version == 0:
        if len(body) < 4 + 16:
            return None
        created, _mod, scale, duration = struct.unpack_from(">IIII", body, 4)
    else:
        return None
    if created == 0 or scale == 0:
        return None
    return float(created - MP4_EPOCH_OFFSET), duration / scale


def read_mvhd(handle: BinaryIO) -> tuple[float, float] | None:
    """:func:`mvhd_times` of the file's first ``MVHD_READ_BYTES``."""
    data = handle.read(MVHD_READ_BYTES) or b""
    return mvhd_times(data)
