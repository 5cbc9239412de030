"""Who a mass-storage camera says it is: one configured rule per model.

A camera on USB mass storage proves nothing; its identity is *claimed*, by one of:

* ``id_file``: a file on the volume (``id_file`` path, at most 4 KiB read) whose text
  matches ``id_regex`` (the group ``id``, else the whole match);
* ``volume_serial``: the FAT/exFAT volume serial (``XXXX-XXXX``; 0000-0000 is none);
* ``file_names``: the ``device`` group of the footage file names; every footage file
  that matches the pattern must name the same device, else the volume is unknown.

The serial is ``<model>:<claimed id>`` only in spirit: it is the claimed id itself,
checked to be a plain short text. No rule matching means an unknown volume: never
offloaded into an officer's folder (:class:`dock.devices.ums.recorder.UnknownVolume`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dock.config.models import DEFAULT_NAME_PATTERN
from dock.devices.ums.footage import FOOTAGE_SUFFIXES
from dock.devices.ums.volume import Listing, UmsVolume

ID_FILE_MAX = 4096
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class IdentityRule:
    model: str
    identity: str = "file_names"
    vendor: str | None = None
    id_file: str = ""
    id_regex: re.Pattern[str] = field(default=re.compile(r"(?P<id>[A-Za-z0-9._-]{1,64})"))
    name_pattern: re.Pattern[str] = field(default=re.compile(DEFAULT_NAME_PATTERN))


def _plain(text: str | None) -> str | None:
    return text if text and _PLAIN_ID.fullmatch(text) else None


def identify(rule: IdentityRule, volume: UmsVolume, listing: Listing) -> str | None:
    """The claimed device id under ``rule``, or None (an unknown volume)."""
    if rule.identity == "volume_serial":
        boot = volume.boot()
        if boot is None or boot.serial == "0000-0000":
            return None
        return boot.serial
    if rule.identity == "id_file":
        entry = next((f for f in listing.files if f.path.lower() == rule.id_file.lower()), None)
        if entry is None or entry.size > ID_FILE_MAX:
            return None
        with volume.open_file(entry) as handle:
            text = (handle.read(ID_FILE_MAX) or b"").decode("utf-8", "replace")
        m = rule.id_regex.search(text)
        if m is None:
            return None
        return _plain(m.groupdict().get("id") or m.group(0))
    devices: set[str] = set()
    for f in listing.files:
        name = f.path.rsplit("/", 1)[-1]
        if not name.lower().endswith(FOOTAGE_SUFFIXES):
            continue
        m = rule.name_pattern.fullmatch(name)
        if m is not None and m.groupdict().get("device"):
            devices.add(m.group("device"))
    if len(devices) != 1:
        return None
    return _plain(devices.pop())
