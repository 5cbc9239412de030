"""``dock probe`` of a mass-storage camera's disk (or a FAT image): what it presents.

Read-only through the FAT library (no mount, nothing written): the file system, the
volume serial, the id the model's rule claims (the default GA/T 947 file-name rule
without a model), the footage and what was skipped, free space, and the guarantees
such a camera allows.
"""

from __future__ import annotations

from typing import Any

from dock.devices.ums.bootsector import read_boot_sector
from dock.devices.ums.identity import IdentityRule
from dock.devices.ums.recorder import UmsRecorder, UnknownVolume
from dock.devices.ums.volume import FatVolume
from dock.support.text import shown


def is_volume(path: str) -> bool:
    """Whether ``path`` is a disk or image with a FAT or exFAT boot sector."""
    return path.startswith("/") and read_boot_sector(path) is not None


def probe_volume(path: str, rule: IdentityRule | None = None) -> dict[str, Any]:
    """The report; OSError (one line) when it cannot be read without mounting (exFAT)."""
    boot = read_boot_sector(path)
    if boot is None:
        raise OSError(f"{path}: no FAT or exFAT boot sector")
    volume = FatVolume(path, allow_delete=False)
    try:
        try:
            camera = UmsRecorder(volume, rule or IdentityRule("unconfigured"),
                                 read_via="fat-library")  # fmt: skip
        except UnknownVolume as exc:
            listing = volume.listing()
            return {
                "disk": path, "filesystem": boot.fs_type, "volume_serial": boot.serial,
                "serial": None, "identity": f"unknown: {exc}", "driver": "ums",
                "files": len(listing.files), "skipped": listing.skipped[:20],
            }  # fmt: skip
        shown_ = camera.describe()
        recordings = camera.list_recordings()
        return {
            "disk": path, "filesystem": boot.fs_type, "volume_serial": boot.serial,
            "driver": "ums", **shown_,
            "recordings": [{"id": r.id, "start_ms": r.start_ms, "size": r.size,
                            "sha256_first_read": r.sha256.hex(), "officer_id": r.officer_id}
                           for r in recordings],
        }  # fmt: skip
    finally:
        volume.close()


def describe_volume(r: dict[str, Any]) -> str:
    gib = 1 << 30
    lines = [
        f"disk       {shown(r['disk'])}  {r['filesystem']}, volume serial {r['volume_serial']}",
        f"recorder   {shown(r.get('serial'))}  identity {shown(r['identity'])}",
    ]
    if r.get("guarantees"):
        g = r["guarantees"]
        rest = ", ".join(f"{k} {shown(v)}" for k, v in g.items() if k != "driver")
        lines.append(f"driver     {shown(g.get('driver'))}: {rest}")
        lines.append(f"clock      {shown(r['clock'])}")
        lines.append(f"battery    {shown(r['battery'])}")
        lines.append(f"storage    {r['storage_free_bytes'] / gib:.2f} GiB free of "
                     f"{r['storage_total_bytes'] / gib:.2f} GiB")  # fmt: skip
    files = r.get("files", 0)
    lines.append(f"footage    {files} file(s)" + (", walk cut short" if r.get("truncated") else ""))
    for why in r.get("skipped") or ():
        lines.append(f"skipped    {shown(why, 200)}")
    return "\n".join(lines)
