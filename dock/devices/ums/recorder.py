"""A mass-storage body camera, presented to the dock with a recorder client's surface.

The offloader, check-out and status use :class:`UmsRecorder` where they use a
``RecorderClient``: ``identity``, ``status()``, ``list_recordings()``,
``read_recording()``, ``erase()``, ``has()``, ``why_not()``. What differs is stated in
:class:`Guarantees`, never hidden:

* no capture hash: the hash a listing gives is that of a **first read** of the file
  (the page cache dropped first where the volume is a mounted file); the copy hashes a
  **second read** while writing, and ``write_verified`` reads the copy back past the
  cache: the three must agree, else nothing is erased and the file stays on the camera;
* erase only when the slot's policy allows deleting on such cameras (default: keep);
  the delete re-checks the file is the one listed;
* identity is claimed (a file on the volume, its serial, or its file names), never
  proven cryptographically; the clock is read (from the newest file) or unknown;
* the officer, device and time of each recording come from its file name (and the MP4
  ``mvhd`` where the name has no time).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from dock.devices.guarantees import Guarantees
from dock.devices.recorder_client import (
    Identity,
    RecorderRefused,
    RecordingInfo,
    RecordingList,
    Status,
)
from dock.devices.ums.footage import FOOTAGE_SUFFIXES, parse_name, read_mvhd
from dock.devices.ums.identity import IdentityRule, identify
from dock.devices.ums.volume import Changed, Listing, UmsVolume, VolumeFile, iter_blocks
from dock.support.files import drop_cache
from firmware_protocol.messages import Capability, ErrorCode, MsgType

#: Written in the archive's audit entry and the BagIt package of such footage.
HASH_AT_OFFLOAD = "at offload, not at capture (mass-storage recorder: no capture hash)"
#: Why footage stays on such a camera under the default policy.
KEPT_BY_POLICY = 'policy keeps footage on mass-storage recorders (ums_erase = "keep")'


class VolumeMemory(Protocol):
    """Which camera a volume serial was (dock/storage/ums_table.py, wired by composition)."""

    def remember(self, volume_serial: str, model: str, serial: str) -> None: ...
    def recall(self, volume_serial: str, model: str) -> str | None: ...


@dataclass(frozen=True)
class Vouched:
    """What the vendor command set established before switching the camera to disk mode
    (dock/daemon/vendor_cameras.py): its id after a password login, its battery and its
    clock's offset after any setting, where it reports them. The volume that appears next
    in the bay is that camera's (``UmsSlot.vouch``)."""

    serial: str
    battery: int | None = None
    clock_offset_s: float | None = None
    #: "set" (the dock set it, from a synchronised clock) or "read".
    clock: str = "read"


class UnknownVolume(Exception):
    """No identity rule recognises the volume: nothing is offloaded from it."""


class UmsRecorder:
    """One docked mass-storage camera (its volume opened by the caller, closed by it)."""

    def __init__(
        self,
        volume: UmsVolume,
        rule: IdentityRule,
        *,
        timezone: str = "UTC",
        allow_erase: bool = False,
        read_via: str = "mount",
        battery: Callable[[], int | None] | None = None,
        hashes: dict[tuple[str, str, int, float], bytes] | None = None,
        remembered: VolumeMemory | None = None,
        vouched: Vouched | None = None,
    ) -> None:
        self.volume = volume
        self.vouched = vouched
        self.rule = rule
        self.timezone = timezone
        self.allow_erase = allow_erase
        self._battery = battery
        self._listing: Listing = volume.listing()
        boot = volume.boot()
        self._volume_id = boot.serial if boot else ""
        serial = vouched.serial if vouched else identify(rule, volume, self._listing)
        if serial is None and remembered is not None and self._volume_id:
            # emptied by an offload (this docking or before a restart): the same volume
            serial = remembered.recall(self._volume_id, rule.model)
        if serial is None:
            raise UnknownVolume(f"no identity rule of model {rule.model!r} matches this volume")
        self.identity: Identity | None = Identity(
            serial=serial, model=rule.model, firmware="", vendor=rule.vendor,
            protocol_version=0, capabilities=Capability(0), enrolled=False,
            device_public_key=None,
        )  # fmt: skip
        known_battery = battery is not None or (vouched is not None and vouched.battery is not None)
        # "set": the dock set it at docking (read back where the model reports its time);
        # "read": only read; "none": neither (a bare camera, or nothing reported)
        clock = "none"
        if vouched is not None and (vouched.clock == "set" or vouched.clock_offset_s is not None):
            clock = vouched.clock
        self.guarantees = Guarantees(
            driver="ums" if vouched is None else "vendor+ums", hash="offload",
            erase="erase" if allow_erase else "keep", clock=clock, identity="claimed",
            battery="reported" if known_battery else "unknown", read_via=read_via,
        )  # fmt: skip
        self.hash_taken = HASH_AT_OFFLOAD
        #: A bare mass-storage camera states no clock: the pre-shift check says "unknown"
        #: and ``allow_unknown_clock_and_battery`` decides (never an offset of 0 made up).
        self.clock_readable = vouched is not None and vouched.clock_offset_s is not None
        #: Why the check cannot read the clock, where it cannot (said in the checks).
        self.clock_unread = (
            "clock set at docking, not read back (the model reports no time)"
            if clock == "set" and not self.clock_readable
            else "the recorder states no clock (mass storage)"
        )
        #: Nothing more can be proven: the identity is claimed (``guarantees``), and there
        #: is no event log a forger could trim; gap scans read the files themselves.
        self.authenticated = True
        #: No event log and no stop reasons: pauses between files are the gaps to explain.
        self.gaps_from_files = True
        self._files: dict[str, VolumeFile] = {}
        #: First-read hashes of this docking, by (volume serial, path, size, mtime): a
        #: sweep lists again (the slot keeps them between sessions while docked).
        self._hashes = {} if hashes is None else hashes
        if remembered is not None and self._volume_id:
            remembered.remember(self._volume_id, rule.model, serial)

    # -------------------------------------------------------- the client's surface
    def has(self, capability: Capability) -> bool:
        return False  # no protocol capability: no signature, no volume switch, no ASSIGN

    def why_not(self, msg: MsgType) -> str | None:
        if msg == MsgType.ERASE:
            return None if self.allow_erase else KEPT_BY_POLICY
        return "a mass-storage recorder has no protocol"

    def authenticate(self, secret: bytes) -> None:
        """Nothing to prove: the identity is claimed (stated in ``guarantees``)."""

    def close(self) -> None:
        self.volume.close()

    def footage(self) -> list[VolumeFile]:
        return [f for f in self._listing.files if f.path.lower().endswith(FOOTAGE_SUFFIXES)]

    def list_recordings(self) -> RecordingList:
        """Every footage file, hashed by a first read (cached for this docking)."""
        self._listing = self.volume.listing()
        out = RecordingList()
        self._hash_new(self.footage())
        for entry in self.footage():
            key = self._key(entry)
            rid = _recording_id(entry.path, self._hashes[key])
            self._files[rid] = entry
            start, end, officer, seq = self._times(entry)
            out.append(RecordingInfo(
                id=rid, start_ms=int(start * 1000), end_ms=int(end * 1000), size=entry.size,
                sha256=self._hashes[key], signature=None, flags=0, sequence=seq,
                previous_id=None, officer_id=officer, stop_reason=None,
                time_doubt=None if start > 0 else "no time in the file name or the MP4",
            ))  # fmt: skip
        return out

    def read_recording(self, rec: RecordingInfo, sink: Callable[[int, bytes], object]) -> None:
        """The second read of the file, past the cache, into ``sink(offset, bytes)``."""
        entry = self._entry(rec)
        with self.volume.open_file(entry) as handle:
            _drop(handle)
            offset = 0
            for block in iter_blocks(handle):
                sink(offset, block)
                offset += len(block)

    def erase(self, rec_id: str, sha256: bytes) -> None:
        if not self.allow_erase:
            raise RecorderRefused(ErrorCode.UNSUPPORTED, KEPT_BY_POLICY)
        entry = self._files.get(rec_id)
        if entry is None:
            raise RecorderRefused(ErrorCode.NOT_FOUND, f"{rec_id}: not on the volume")
        if self._hashes.get(self._key(entry)) != sha256:
            raise RecorderRefused(ErrorCode.HASH_MISMATCH, f"{rec_id}: not the file verified")
        try:
            self.volume.delete(entry)
        except (Changed, PermissionError) as exc:
            raise RecorderRefused(ErrorCode.STORAGE, f"{rec_id}: {exc}") from exc
        self._files.pop(rec_id, None)

    def status(self) -> Status:
        total, free = self.volume.space()
        battery = self._battery() if self._battery else None
        if battery is None and self.vouched is not None:
            battery = self.vouched.battery
        offset = self.vouched.clock_offset_s if self.vouched else None
        newest = max((f.mtime for f in self._listing.files), default=0.0)
        return Status(
            battery_percent=-1 if battery is None else battery, charging=False,
            storage_total_bytes=total, storage_free_bytes=free, recording=False,
            # read by the vendor command set before disk mode; else unknown (never used:
            # clock_readable is False, the check says "unknown")
            device_time=newest, clock_offset_s=0.0 if offset is None else offset, fault_flags=0,
            recording_count=len(self.footage()), event_count=None,
            officer_id=None, battery_health_percent=None, battery_cycles=None,
            battery_temp_c=None,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """What ``dock probe`` and the status show of this recorder."""
        assert self.identity is not None
        total, free = self.volume.space()
        return {
            "serial": self.identity.serial, "model": self.identity.model,
            "identity": "claimed (no cryptographic proof)",
            "guarantees": self.guarantees.as_dict(), "files": len(self.footage()),
            "skipped": self._listing.skipped[:20], "truncated": self._listing.truncated,
            "storage_total_bytes": total, "storage_free_bytes": free,
            "clock": "unknown (a mass-storage camera states no clock)",
            "battery": "unknown" if self._battery is None else self._battery(),
        }  # fmt: skip

    def enrol(self) -> bytes:
        """A secret for the store, as a protocol recorder's enrolment gives one; the camera
        keeps nothing (its identity stays claimed)."""
        return secrets.token_bytes(32)

    # -------------------------------------------------------------- internals
    def _key(self, entry: VolumeFile) -> tuple[str, str, int, float]:
        return (self._volume_id, entry.path, entry.size, entry.mtime)

    def _entry(self, rec: RecordingInfo) -> VolumeFile:
        entry = self._files.get(rec.id)
        if entry is None:
            raise ConnectionError(f"{rec.id}: no longer on the volume")
        return entry

    def _hash_new(self, entries: list[VolumeFile]) -> None:
        """First-read hashes of the files not hashed yet this docking: two at a time
        where the volume allows it (a mount: hashing is the CPU's work, the reads wait
        on the device; the FAT library reads one file at a time)."""
        todo = [e for e in entries if self._key(e) not in self._hashes]
        if getattr(self.volume, "parallel_reads", False) and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ums-hash") as pool:
                for entry, digest in zip(todo, pool.map(self._hash, todo), strict=True):
                    self._hashes[self._key(entry)] = digest
            return
        for entry in todo:
            self._hashes[self._key(entry)] = self._hash(entry)

    def _hash(self, entry: VolumeFile) -> bytes:
        digest = hashlib.sha256()
        with self.volume.open_file(entry) as handle:
            _drop(handle)
            for block in iter_blocks(handle):
                digest.update(block)
        return digest.digest()

    def _times(self, entry: VolumeFile) -> tuple[float, float, str | None, int | None]:
        """(start, end, officer, sequence): the name first, then mvhd, then the mtime."""
        name = entry.path.rsplit("/", 1)[-1]
        facts = parse_name(name, self.rule.name_pattern, self.timezone)
        start = facts.start if facts else None
        duration = 0.0
        try:
            with self.volume.open_file(entry) as handle:
                found = read_mvhd(handle)
        except OSError:
            found = None
        if found is not None:
            duration = max(0.0, min(found[1], 86_400.0))
            if start is None and found[0] > 0:
                start = found[0]
        if start is None:
            start = entry.mtime
        officer = facts.officer if facts else None
        return start, start + duration, officer, facts.seq if facts else None


def _recording_id(path: str, sha256: bytes) -> str:
    """The file's recording id: its name and the start of its first-read hash. A camera
    that reuses a name (numbering restarted, clock reset) gives new footage a new id,
    never one that collides with what the archive holds."""
    return f"{path.rsplit('/', 1)[-1]}~{sha256[:6].hex()}"


def _drop(handle: Any) -> None:
    """Drop the file's cached pages so the read comes from the device (a mounted file)."""
    try:
        fd = handle.fileno()
    except (OSError, AttributeError, ValueError):
        return  # the FAT library reads the image itself
    drop_cache(fd)


__all__ = [
    "HASH_AT_OFFLOAD",
    "KEPT_BY_POLICY",
    "Guarantees",
    "UmsRecorder",
    "UnknownVolume",
]
