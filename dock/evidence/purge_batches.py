"""One purge batch carried from wherever it stands to ``done`` (the states are in
:mod:`.purging`'s docstring): re-seal what remains, unlink the purged files, retire the
old package, then write the ``purge`` entry, the ``purges`` rows and the state in one
transaction. Every step may be run again after a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.evidence.bagit import TMP_PREFIX, BagError
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import PurgeTable
from dock.storage.store import Store
from dock.support import crashpoints
from dock.support.files import fsync_dir

log = logging.getLogger("dock.purge")

BAGS_DIR = "bags"

#: The tag file of a re-sealed package listing what left it, when and why.
RECORD_FILE = "purge-record.json"


@dataclass
class PurgeReport:
    """What a purge run did (or, in a dry run, would do).

    ``kept`` counts by reason code (``retention``, ``hold``, ``case_open``, ``invalid``,
    ``missing``, ``unsealed``, ``pending``, ...); ``items`` has one line per recording
    considered with the full reason.
    """

    dry_run: bool
    considered: int = 0
    #: "SERIAL/RECORDING" purged (dry run: would be purged).
    purged: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    #: Packages replaced: {"bag", "as" (the new package), "remaining"} (dry run: "as" None).
    resealed: list[dict[str, Any]] = field(default_factory=list)
    #: Packages removed whole: every recording in them purged (dry run: would be).
    removed: list[str] = field(default_factory=list)
    #: Purges a crash (or an earlier version) left unfinished, finished now.
    completed: list[str] = field(default_factory=list)
    #: Dry run: unfinished purges that ``--apply`` (or the daemon) will finish.
    pending: list[str] = field(default_factory=list)
    #: Package -> why its purge failed now (audited as purge_failed; retried next run).
    failed: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def _item(self, entry: dict[str, Any], action: str, reason: str) -> None:
        self.items.append(
            {
                "serial": entry["serial"],
                "recording_id": entry["recording_id"],
                "path": entry["path"],
                "action": action,
                "reason": reason,
            }
        )
        if action == "keep":
            code = reason.split(":", 1)[0]
            self.kept[code] = self.kept.get(code, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Group:
    """One sealed package and what leaves it."""

    seal: dict[str, Any]
    leaving: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def archive_path(root: str, entry: dict[str, Any]) -> tuple[str, str | None]:
    """The file's absolute path, or why the archive row cannot be trusted to name one."""
    rel = entry["path"]
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return "", f"invalid: archive path {rel!r} is not relative to the evidence folder"
    path = os.path.normpath(os.path.join(root, rel))
    first = os.path.relpath(path, root).split(os.sep)[0]
    if first in ("..", BAGS_DIR, "quarantine"):
        return "", f"invalid: archive path {rel!r} is outside the archive proper"
    if os.path.lexists(path):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return path, f"invalid: {rel} is not a regular file"
        if st.st_size != entry["size"]:
            return path, f"invalid: {rel} is {st.st_size} bytes, the archive says {entry['size']}"
    return path, None


def package_dir(root: str, bag: str) -> str:
    """A package's folder, refused unless it lies under ``<evidence>/bags/``."""
    path = os.path.normpath(os.path.join(root, bag))
    if os.path.isabs(bag) or not path.startswith(os.path.join(root, BAGS_DIR) + os.sep):
        raise BagError(f"package path {bag!r} lies outside {BAGS_DIR}/")
    return path


def run_batch(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    root: str,
    batch: dict[str, Any],
    report: PurgeReport,
) -> bool:
    """Take one batch to ``done`` under the seal lock; False (audited, reported) when a
    step fails: the batch stays where it is and the next run goes on from there."""
    try:
        with seals.exclusive():
            fresh = PurgeTable(store).batch(batch["id"])
            if fresh is not None and fresh["state"] != "done":  # else: finished meanwhile
                _run(store, audit, seals, root, fresh)
    except (OSError, BagError, ValueError) as exc:
        why = f"{type(exc).__name__}: {exc}"
        log.error("purge %s of %s not finished (the next run goes on): %s",
                  batch["token"], batch["old_bag"], why)  # fmt: skip
        audit.append(
            AuditKind.PURGE_FAILED, "dock", batch["serial"],
            {"purge": batch["token"], "bag": batch["old_bag"], "error": why},
        )  # fmt: skip
        report.failed[batch["old_bag"]] = why
        return False
    if batch["new_bag"]:
        remaining = len(seals.members(_seal_id(seals, batch["new_bag"])))
        report.resealed.append({"bag": batch["old_bag"], "as": batch["new_bag"],
                                "remaining": remaining})  # fmt: skip
    else:
        report.removed.append(batch["old_bag"])
    return True


def _seal_id(seals: SealRegister, bag: str) -> int:
    row = seals.table.by_bag(bag)
    return -1 if row is None else int(row["id"])


def _run(
    store: Store, audit: AuditLog, seals: SealRegister, root: str, batch: dict[str, Any]
) -> None:
    """From ``intent`` or ``resealed`` to ``done``; every step may be run again."""
    table = PurgeTable(store)
    members = table.members(batch["id"])
    leaving = {m["recording_id"] for m in members}
    old_bag = batch["old_bag"]
    if batch["state"] == "intent" and batch["new_bag"]:
        seals.reseal(
            batch["seal_id"],
            batch["new_bag"],
            leaving,
            tag_files={RECORD_FILE: bytes(batch["package_record"])},
            supersedes={"bag": old_bag, "tagmanifest_sha256": batch["old_digest"]},
            purge=batch["token"],
        )
        table.set_resealed(batch["id"])
        crashpoints.reach("purge.reseal.after")
    folders: set[str] = set()
    for m in members:
        path = _member_path(root, m)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        folders.add(os.path.dirname(path))
        crashpoints.reach("purge.file.after")
    for folder in sorted(folders):
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(folder)
    _retire(root, old_bag, batch["token"])
    crashpoints.reach("purge.done.before")
    record = json.loads(batch["record"])
    record_sha = hashlib.sha256(batch["record"].encode("utf-8")).hexdigest()
    now = time.time()
    with table.transaction():  # the records, the state and the purge entry: together
        for m in members:
            table.add_record(m, now)
        table.set_done(batch["id"], now)
        if audit.find(AuditKind.PURGE, batch["serial"], purge=batch["token"]) is None:
            audit.append(
                AuditKind.PURGE,
                batch["actor"],
                batch["serial"],
                {
                    "purge": batch["token"],
                    "bag": old_bag,
                    "tagmanifest_sha256": batch["old_digest"],
                    "superseded_by": batch["new_bag"],
                    "removed": True,
                    "recordings": sorted(leaving),
                    "approved_by": record.get("approved_by", []),
                    "appraisal": (record.get("appraisal") or {}).get("id"),
                    "record_sha256": record_sha,
                    **_freed(record),
                },
            )


def _freed(record: dict[str, Any]) -> dict[str, Any]:
    """A local copy freed after replication: the entry names the replicas (where the
    footage still is)."""
    freed = record.get("freed_after_replication")
    return (
        {}
        if freed is None
        else {"reason": "freed_after_replication", "replicas": freed.get("replicas")}
    )


def _member_path(root: str, m: dict[str, Any]) -> str:
    """A purged recording's file, refused unless it lies in the archive proper."""
    path, problem = archive_path(root, m)
    if not path:
        raise ValueError(f"{m['serial']}/{m['recording_id']}: {problem}")
    return path


def _retire(root: str, old_bag: str, token: str) -> None:
    """Remove the old package: renamed aside first (one step: it leaves ``bags/``
    listings whole), then deleted. Either may have happened before a crash."""
    bag_dir = package_dir(root, old_bag)
    parent = os.path.dirname(bag_dir)
    aside = os.path.join(parent, f"{TMP_PREFIX}purged-{token}")
    if os.path.lexists(bag_dir):
        if os.path.lexists(aside):
            shutil.rmtree(aside)
        os.rename(bag_dir, aside)
        fsync_dir(parent)
        crashpoints.reach("purge.bag.aside")
    if os.path.lexists(aside):
        shutil.rmtree(aside, ignore_errors=True)  # a seal's sweep of stale temps may race
        if os.path.lexists(aside):
            raise OSError(f"cannot remove {aside}")
        fsync_dir(parent)
