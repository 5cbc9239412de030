"""Whether what a recorder states can be true: its HELLO, STATUS and recordings.

A recorder that answers within the protocol but lies is caught here, before any
value it stated is used, shown or stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dock.devices.recorder_client.bounds import DEFAULT_BOUNDS, REPRESENTABLE_MS, Bounds
from firmware_protocol.messages import SUPPORTED_VERSIONS

if TYPE_CHECKING:
    from dock.devices.recorder_client.results import Status


def recording_problem(
    f: dict[str, Any], storage_total: int | None = None, bounds: Bounds = DEFAULT_BOUNDS
) -> str | None:
    """Why a LIST_RECORDINGS entry cannot be true, or None. The codec has checked the
    types (u64, i64, 32-byte hash); this checks what the values claim."""
    b = bounds
    rid = f["id"]
    if not rid:
        return "empty id"
    for name in ("id", "previous_id", "officer_id"):
        text = f.get(name)
        if text is not None and len(text.encode("utf-8")) > b.max_id_bytes:
            return f"{name} longer than {b.max_id_bytes} bytes"
    size = f["size"]
    if size > b.max_recording_bytes:
        return f"size {size} bytes, beyond any recorder (at most {b.max_recording_bytes})"
    if storage_total is not None and size > storage_total:
        return f"size {size} bytes, more than the recorder's own storage ({storage_total})"
    low, high = REPRESENTABLE_MS
    for name in ("start_ms", "end_ms"):
        if not low <= f[name] < high:
            return f"{name.removesuffix('_ms')} {f[name]} ms is no calendar time (1970..9999)"
    return None


def time_doubt(f: dict[str, Any], bounds: Bounds = DEFAULT_BOUNDS) -> str | None:
    """Why a recording's (representable) times cannot be right, or None."""
    b, start, end = bounds, f["start_ms"], f["end_ms"]
    if not b.earliest_ms <= start < b.latest_ms:
        return f"start {start} ms is not between {_year(b.earliest_ms)} and {_year(b.latest_ms)}"
    if not start <= end < b.latest_ms:
        return f"end {end} ms is before its start or after {_year(b.latest_ms)}"
    return None


#: Longest serial the dock accepts (UTF-8 bytes): it names slots, files and audit entries.
MAX_SERIAL_BYTES = 64
#: Longest model, firmware or vendor string (UTF-8 bytes).
MAX_LABEL_BYTES = 128


def hello_problem(f: dict[str, Any]) -> str | None:
    """Why a HELLO reply cannot be an honest recorder's, or None. Its texts are bounded
    here; control characters in them are escaped wherever they are shown
    (``dock.support.text.shown``) and mapped wherever they name a file (``safe_name``)."""
    if f["version"] not in SUPPORTED_VERSIONS:
        return f"version {f['version']} was not offered ({SUPPORTED_VERSIONS})"
    serial = f["serial"]
    if not serial.strip() or len(serial.encode("utf-8")) > MAX_SERIAL_BYTES:
        return f"serial empty or longer than {MAX_SERIAL_BYTES} bytes"
    for name in ("model", "firmware", "vendor"):
        text = f.get(name)
        if text is not None and len(text.encode("utf-8")) > MAX_LABEL_BYTES:
            return f"{name} longer than {MAX_LABEL_BYTES} bytes"
    return None


def _year(ms: int) -> int:
    return time.gmtime(ms // 1000).tm_year


def status_problem(status: Status, bounds: Bounds) -> str | None:
    """Why a STATUS cannot be true, or None."""
    if status.battery_percent > 100:
        return f"battery at {status.battery_percent} %"
    if status.storage_free_bytes > status.storage_total_bytes:
        return (
            f"{status.storage_free_bytes} bytes free of a storage of {status.storage_total_bytes}"
        )
    officer = status.officer_id
    if officer is not None and len(officer.encode("utf-8")) > bounds.max_id_bytes:
        return f"officer_id longer than {bounds.max_id_bytes} bytes"
    return None
