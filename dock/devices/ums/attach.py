"""A bay's mass-storage camera, opened for one session: mounted, or read through the library.

Per session (a sweep, a check-out, an offload) the slot's disk is looked at: absent means
no camera is docked (``NoAnswer``, as silence on a protocol port); its boot sector names
the file system; the volume is mounted read-only into ``<state>/volumes/slot-<id>`` where
the dock may mount (:class:`Mounter`), else read through pyfatfs from the device itself;
a volume no identity rule recognises is a fault (``LinkError``), never offloaded. The
session's end closes and unmounts it, so an undocked camera leaves no mount behind; a
crash's leftovers are unmounted before the next mount, under the slot's lock.

First-read hashes are kept per slot between sessions while the same volume stays docked
(the sweep lists it again and again); a disk that disappears forgets them.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from dock.config.models import ModelConfig
from dock.devices.recorder_client import LinkError, NoAnswer
from dock.devices.ums.bootsector import read_boot_sector
from dock.devices.ums.identity import IdentityRule
from dock.devices.ums.recorder import UmsRecorder, UnknownVolume, VolumeMemory, Vouched
from dock.devices.ums.volume import DirVolume, FatVolume, UmsVolume

log = logging.getLogger("dock.devices.ums")

#: Seconds the disk of a camera switched to disk mode has to appear before what the
#: vendor command set vouched for it is dropped (a camera pulled mid-switch must not
#: lend its identity to the next disk in the bay). Real cameras take a few seconds.
VOUCH_WAIT_S = 60.0


class Mounter(Protocol):
    """The OS's mount operations (hardware/block_volumes.py); OSError when refused."""

    def mount_readonly(self, device: str, target: str, fstype: str, loop: bool) -> None: ...
    def writable_for(self, target: str) -> Callable[[Callable[[], None]], None]: ...
    def unmount(self, target: str) -> None: ...
    def unmount_stale(self, folder: str) -> list[str]: ...


def identity_rule(model: ModelConfig) -> IdentityRule:
    return IdentityRule(
        model=model.name, identity=model.identity, vendor=model.vendor or None,
        id_file=model.id_file, id_regex=re.compile(model.id_regex),
        name_pattern=re.compile(model.name_pattern),
    )  # fmt: skip


class UmsSlot:
    """How the daemon reaches the mass-storage camera in one bay."""

    def __init__(
        self,
        slot_id: str,
        disk: str,
        model: ModelConfig,
        mounts_dir: str,
        *,
        driver: str = "ums",
        timezone: str = "UTC",
        allow_erase: bool = False,
        mounter: Mounter | None = None,
        battery: Callable[[], int | None] | None = None,
        memory: VolumeMemory | None = None,
    ) -> None:
        self.slot_id = slot_id
        #: "ums": always this camera; "auto": this camera when a volume is there.
        self.driver = driver
        self.disk = disk
        self.rule = identity_rule(model)
        self.target = os.path.join(mounts_dir, f"slot-{slot_id}")
        self.mounts_dir = mounts_dir
        self.timezone = timezone
        self.allow_erase = allow_erase
        self.mounter = mounter
        self.battery = battery
        self.hashes: dict[tuple[str, str, int, float], bytes] = {}
        #: What the vendor command set said of the camera before its disk appeared.
        self.vouched: Vouched | None = None
        self.vouched_at = 0.0  # time.monotonic() of the vouch
        #: The model takes the vendor command set before it shows its disk.
        self.vendor = model.driver == "vendor"
        self._disk_seen = False
        #: Volume serial -> the camera it was: one emptied by its offload (file-name
        #: identity needs files) is still known, after a restart too (the store's).
        self.remembered: VolumeMemory = memory or _InMemory()

    def present(self) -> bool:
        return os.path.exists(self.disk)

    def vouch(self, vouched: Vouched) -> None:
        """The camera now switching to disk mode in this bay is ``vouched.serial`` (the
        vendor command set's login said so); forgotten when its disk goes away."""
        self.vouched, self._disk_seen = vouched, False
        self.vouched_at = time.monotonic()

    def unvouch(self) -> None:
        self.vouched, self._disk_seen = None, False

    def awaiting_disk(self) -> bool:
        """A camera was vouched for and switched to disk mode, its disk not seen yet;
        past VOUCH_WAIT_S the vouch is dropped (False)."""
        if self.vouched is None or self._disk_seen:
            return False
        if time.monotonic() - self.vouched_at > VOUCH_WAIT_S:
            log.warning("slot %s: the disk of %s did not appear within %g s: forgotten",
                        self.slot_id, self.vouched.serial, VOUCH_WAIT_S)  # fmt: skip
            self.unvouch()
            return False
        return True

    def takes_session(self) -> bool:
        """Whether this bay's session is this camera's (else the protocol's, "auto")."""
        return self.driver == "ums" or self.present()

    def _open_volume(self) -> tuple[UmsVolume, str, bool]:
        """(the volume, how it is read, whether it is mounted)."""
        boot = read_boot_sector(self.disk)
        if boot is None:
            raise LinkError(f"slot {self.slot_id}: {self.disk} is not a FAT or exFAT volume")
        if self.mounter is not None:
            for left in self.mounter.unmount_stale(self.target):  # a crash's, under our lock
                log.error("slot %s: a stale mount stays: %s", self.slot_id, left)
            loop = not _is_block_device(self.disk)
            try:
                self.mounter.mount_readonly(self.disk, self.target, boot.mount_type, loop)
            except OSError as exc:
                log.info(
                    "slot %s: not mounted (%s); read through the FAT library", self.slot_id, exc
                )
            else:
                try:
                    vol = DirVolume(self.target, boot, self.mounter.writable_for(self.target))
                except OSError:
                    self.mounter.unmount(self.target)
                    raise
                return vol, "mount", True
        try:
            return FatVolume(self.disk, allow_delete=self.allow_erase), "fat-library", False
        except OSError as exc:
            raise LinkError(f"slot {self.slot_id}: {exc}") from exc

    @contextmanager
    def session(self) -> Iterator[UmsRecorder]:
        """The camera for one session; NoAnswer when none is docked."""
        if not self.present():
            self.hashes.clear()  # undocked: the next volume is hashed afresh
            if self._disk_seen:  # the vouched camera's disk came and went: it left
                self.vouched, self._disk_seen = None, False
            raise NoAnswer(f"slot {self.slot_id}: no volume on {self.disk}")
        if not self._disk_seen:
            self.awaiting_disk()  # a vouch past VOUCH_WAIT_S is dropped: the model's rule
        volume, via, mounted = self._open_volume()
        self._disk_seen = True
        try:
            try:
                camera = UmsRecorder(
                    volume, self.rule, timezone=self.timezone, allow_erase=self.allow_erase,
                    read_via=via, battery=self.battery, hashes=self.hashes,
                    remembered=self.remembered, vouched=self.vouched,
                )  # fmt: skip
            except UnknownVolume as exc:
                raise LinkError(f"slot {self.slot_id}: unknown volume: {exc}") from exc
            yield camera
        finally:
            volume.close()
            if mounted and self.mounter is not None:
                try:
                    self.mounter.unmount(self.target)
                except OSError as exc:  # reconciled at the next start
                    log.error("slot %s: could not unmount %s: %s", self.slot_id, self.target, exc)


class _InMemory:
    """A volume memory for this process only (tests; a dock without its store)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], set[str]] = {}

    def remember(self, volume_serial: str, model: str, serial: str) -> None:
        self._seen.setdefault((volume_serial, model), set()).add(serial)

    def recall(self, volume_serial: str, model: str) -> str | None:
        found = self._seen.get((volume_serial, model), set())
        return next(iter(found)) if len(found) == 1 else None


def _is_block_device(path: str) -> bool:
    import stat

    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False
