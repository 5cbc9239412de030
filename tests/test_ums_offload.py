"""Offload from a mass-storage camera: no capture hash, so three reads must agree (a first
read of the source, a second read hashed while copying, the copy read back past the cache);
only then, and only where policy allows, is the file deleted on the camera. Run through the
FAT library on a real mkfs.vfat image and on a directory (what a mount gives)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest

from dock.devices.ums.identity import IdentityRule
from dock.devices.ums.recorder import HASH_AT_OFFLOAD, UmsRecorder, UnknownVolume
from dock.devices.ums.volume import DirVolume, FatVolume, VolumeFile
from dock.evidence.bagit import read_bag_info
from dock.evidence.offload import Offloader
from dock.storage.audit import AuditLog
from dock.storage.keys import load_or_create_signing_key
from dock.storage.store import Store

from .ums_helpers import DEVICE, OFFICER, footage_set, image_files, make_dir, make_image

RULE = IdentityRule("DSJ-V8", vendor="test")


@pytest.fixture
def dock(tmp_path) -> tuple[Store, AuditLog, str]:
    state = tmp_path / "state"
    state.mkdir()
    key = load_or_create_signing_key(str(state / "signing.key"))
    return (
        Store(str(state / "dock.db")),
        AuditLog(str(state / "audit.db"), key, "d1"),
        str(tmp_path / "evidence"),
    )


def _volume(kind: str, tmp_path, files) -> tuple[Any, Callable[[], set[str]]]:
    """(the volume, what is on the camera now, read by other code than ours)."""
    if kind == "fat":
        img = make_image(str(tmp_path / "cam.img"), files)
        return FatVolume(img), lambda: image_files(img)
    root = make_dir(str(tmp_path / "mnt"), files)

    def on_camera() -> set[str]:
        return {os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns}

    return DirVolume(root, writable=lambda step: step()), on_camera


def _archived(evidence: str) -> dict[str, bytes]:
    out = {}
    for d, _, names in os.walk(evidence):
        if "quarantine" in d or "bags" in d.split(os.sep):
            continue
        for n in names:
            if n.endswith(".mp4") and not n.startswith("."):
                with open(os.path.join(d, n), "rb") as f:
                    out[n] = f.read()
    return out


@pytest.mark.parametrize("kind", ["fat", "dir"])
def test_footage_is_verified_three_ways_then_deleted_where_policy_allows(
    kind, tmp_path, dock
) -> None:
    store, audit, evidence = dock
    files = footage_set(3, 40_000)
    vol, on_camera = _volume(kind, tmp_path, files)
    cam = UmsRecorder(vol, RULE, timezone="Asia/Shanghai", allow_erase=True,
                      read_via="fat-library" if kind == "fat" else "mount")  # fmt: skip
    assert cam.identity is not None and cam.identity.serial == DEVICE
    report = Offloader(store, audit, evidence).offload(cam, "1")  # type: ignore[arg-type]
    assert report.ok and len(report.archived) == 3 and len(report.erased) == 3
    got = {hashlib.sha256(b).digest() for b in _archived(evidence).values()}
    assert got == {f.sha256 for f in files}
    assert not {f.name for f in files} & on_camera()  # deleted, each after its verification
    verified: set[str] = set()
    for e in audit.entries():  # every intent and erase follows that file's verified copy
        if e.kind == "offload_file":
            verified.add(e.data["recording"])
        elif e.kind in ("erase_intent", "erase"):
            assert e.data["recording"] in verified
    assert len(verified) == 3
    files_entries = [e.data for e in audit.entries() if e.kind == "offload_file"]
    assert all(d["hash_taken"] == HASH_AT_OFFLOAD for d in files_entries)
    rows = store.archive_entries()
    assert {r["hash_taken"] for r in rows} == {HASH_AT_OFFLOAD}
    assert {r["officer_id"] for r in rows} == {OFFICER}  # from the file names
    bag = os.path.join(evidence, report.bag or "")
    assert read_bag_info(bag)["Hash-Taken"] == [HASH_AT_OFFLOAD]


def test_the_default_policy_keeps_the_footage_on_the_camera(tmp_path, dock) -> None:
    store, audit, evidence = dock
    files = footage_set(2, 10_000)
    vol, on_camera = _volume("fat", tmp_path, files)
    report = Offloader(store, audit, evidence).offload(UmsRecorder(vol, RULE), "1")  # type: ignore[arg-type]
    assert report.ok and len(report.archived) == 2 and report.erased == []
    assert "ums_erase" in (report.kept_reason or "")
    assert {f.name for f in files} <= on_camera()
    assert "erase_intent" not in [e.kind for e in audit.entries()]


class _Changing:
    """A volume whose named file gives other bytes from its second read on."""

    def __init__(self, inner: Any, victim: str) -> None:
        self.inner, self.victim, self.reads = inner, victim, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_file(self, entry: VolumeFile) -> Any:
        handle = self.inner.open_file(entry)
        if entry.path != self.victim:
            return handle
        self.reads += 1
        if self.reads <= 2:  # the listing's hash, and the mvhd look
            return handle
        import io

        data = bytearray(handle.read())
        handle.close()
        data[-1] ^= 0xFF
        return io.BytesIO(bytes(data))


@pytest.mark.parametrize("kind", ["fat", "dir"])
def test_a_source_that_changes_between_reads_is_kept_on_the_camera(kind, tmp_path, dock) -> None:
    store, audit, evidence = dock
    files = footage_set(2, 20_000)
    vol, on_camera = _volume(kind, tmp_path, files)
    victim = files[0].name
    cam = UmsRecorder(_Changing(vol, victim), RULE, allow_erase=True)  # type: ignore[arg-type]
    report = Offloader(store, audit, evidence).offload(cam, "1")  # type: ignore[arg-type]
    name = os.path.basename(victim)
    bad = next((rid for rid in report.failed if rid.startswith(name + "~")), None)
    assert bad is not None and not report.ok, report.failed
    assert victim in on_camera()  # not deleted: the reads did not agree
    assert store.archived(DEVICE, bad) is None
    assert files[1].name not in on_camera()  # the good one went its way
    assert any(e.kind == "offload_failed" for e in audit.entries())


def test_a_cameras_bytes_are_hashed_as_received_as_well_as_read_back(
    tmp_path, dock, monkeypatch
) -> None:
    """Issue 14: with no capture hash, the copy's source read is hashed with SHA-256 too
    (the three reads agree as SHA-256), not only compared with the read-back by CRC."""
    import dock.evidence.offload as offload_module

    asked: list[bool] = []
    real = offload_module.write_verified

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("hash_written", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(offload_module, "write_verified", spy)
    store, audit, evidence = dock
    vol, _ = _volume("dir", tmp_path, footage_set(2, 20_000))
    report = Offloader(store, audit, evidence).offload(UmsRecorder(vol, RULE), "1")  # type: ignore[arg-type]
    assert report.ok and len(report.archived) == 2
    assert asked == [True, True]


def test_an_unknown_volume_is_never_offloaded(tmp_path, dock) -> None:
    files = footage_set(1, 100)
    root = make_dir(str(tmp_path / "mnt"), files, extra={"DCIM/OTHER_1_20261130090000_1.MP4": b""})
    with pytest.raises(UnknownVolume):
        UmsRecorder(DirVolume(root), RULE)


def test_status_says_what_the_camera_cannot_give(tmp_path) -> None:
    vol, _ = _volume("fat", tmp_path, footage_set(1, 100))
    cam = UmsRecorder(vol, RULE, read_via="fat-library")
    shown = cam.describe()
    assert shown["identity"].startswith("claimed")
    assert shown["guarantees"] == {"driver": "ums", "hash": "offload", "erase": "keep",
        "clock": "none", "identity": "claimed", "battery": "unknown",
        "read_via": "fat-library"}  # fmt: skip
    assert shown["clock"].startswith("unknown") and shown["battery"] == "unknown"
    assert 0 < shown["storage_free_bytes"] < shown["storage_total_bytes"]


def test_pauses_between_a_cameras_files_in_an_episode_are_explanation_items(tmp_path, dock) -> None:
    """A camera with no event log: a pause between two files inside the custody episode
    opens an item (reason "other": it cannot say why); one outside the episode does not."""
    from dock.evidence.gaps import GapRegister, scan_episode
    from dock.storage.store import Custody

    from .ums_helpers import Footage, mp4, vendor_name

    store, audit, _ = dock
    store.add_officer("012345", "Wang Wei", "Traffic 3", "482913")
    # local times (UTC+8) 08:30, 08:31 (1 min files: contiguous), then 09:00 (a pause)
    starts = ["20261130083000", "20261130083100", "20261130090000", "20261130120000"]
    files = [Footage(f"DCIM/{vendor_name(n + 1, t)}", mp4(0, bytes([n]) * 100, duration_s=60))
             for n, t in enumerate(starts)]  # fmt: skip
    cam = UmsRecorder(_volume("dir", tmp_path, files)[0], RULE, timezone="Asia/Shanghai")
    out_at = 1795998600.0 - 60  # 08:29 local; back at 10:00 (before the 12:00 file)
    custody = Custody(1, DEVICE, "012345", "1", out_at, out_at + 91 * 60, None, None)
    opened = scan_episode(cam, store, audit, DEVICE, custody)  # type: ignore[arg-type]
    items = GapRegister(store, audit).list_items("012345")
    assert opened == 1 and len(items) == 1
    item = items[0]
    assert (item.kind, item.reason, item.serial) == ("interrupted", "other", DEVICE)
    assert item.end_ms is not None and item.end_ms - item.start_ms == 28 * 60 * 1000
    assert "not known" in item.detail
