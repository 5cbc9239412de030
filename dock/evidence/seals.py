"""Sealing as a step of its own: every archived recording ends up in exactly one
BagIt package, whatever happened between its archiving and its seal.

A seal moves through three states, each durable before the next step starts:

``intent``
    the package's path is chosen and its members are claimed in the dock database,
    in one transaction (``archive.bag_id``): no recording can be claimed twice;
``made``
    the package is on disk (:func:`make_bag` renames a finished bag into place, so it
    is there whole or not at all) and its tag-manifest digest is recorded;
``audited``
    its ``seal`` entry, carrying that digest, is in the audit log.

:meth:`SealRegister.complete` takes every seal from wherever a crash left it to
``audited`` (it looks in the audit log before writing an entry, so none is written
twice) and then seals what is still unsealed. The offloader runs it at the end of
every offload, and the daemon's housekeeping runs it too, so recordings archived by
a run that was killed, lost power or ran out of disk are sealed by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dock.devices.clock import utc_datetime
from dock.domain.audit_kinds import AuditKind
from dock.evidence.bagit import BagError, make_bag, read_bag_info, tagmanifest_digest
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import SealTable
from dock.storage.store import Store
from dock.support import crashpoints
from dock.support.text import safe_name

log = logging.getLogger("dock.seals")

DESCRIPTION = (
    "Body-worn camera footage of one custody episode, "
    "verified against the recorder's capture hashes"
)


@dataclass
class SealOutcome:
    """What one :meth:`SealRegister.complete` did."""

    #: Packages sealed (made and audited) now: (bag path, tag-manifest SHA-256, members).
    sealed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    #: Packages that could not be made now, with the reason; they are tried again.
    failed: list[str] = field(default_factory=list)

    def bag_of(self, serial_members: set[str]) -> tuple[str, str] | None:
        """The package (bag, digest) holding any of these recording ids, if sealed now."""
        for bag, digest, members in self.sealed:
            if serial_members & set(members):
                return bag, digest
        return None


class SealRegister:
    """The ``seals`` table beside the archive table, and the steps that fill it."""

    def __init__(
        self, store: Store, audit: AuditLog, evidence_dir: str, organization: str = ""
    ) -> None:
        self.store = store
        self.audit = audit
        self.evidence_dir = evidence_dir
        self.organization = organization
        self.table = SealTable(store)
        if self.table.needs_adoption():
            self._adopt_earlier_seals()

    # ------------------------------------------------------------------ queries
    def unsealed(self, serial: str | None = None) -> list[dict[str, Any]]:
        """Archived recordings in no package (yet)."""
        return self.table.unsealed(serial)

    def pending(self) -> list[dict[str, Any]]:
        """Seals a crash left before ``audited``."""
        return self.table.pending()

    def members(self, seal_id: int) -> list[dict[str, Any]]:
        return self.table.members(seal_id)

    # ------------------------------------------------------------------ the step
    def complete(self, serial: str | None = None) -> SealOutcome:
        """Finish interrupted seals, then seal what is unsealed (of ``serial``, or all).

        One process at a time (a lock beside the database): the daemon and a
        ``dock offload`` never build the same package twice.
        """
        outcome = SealOutcome()
        with self._locked():
            for seal in self.pending():
                self._finish(seal, outcome)
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for row in self.unsealed(serial):
                groups.setdefault((row["serial"], row["officer_id"] or ""), []).append(row)
            for (group_serial, _officer), rows in groups.items():
                claimed = self._claim(group_serial, rows)
                if claimed is not None:  # else: another process sealed some meanwhile
                    self._finish(claimed, outcome)
        return outcome

    def _claim(self, serial: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Write the intent: the package's path and its members, in one transaction;
        None when another process sealed some of them meanwhile (next time)."""
        officer = rows[0]["officer_id"] or "unassigned"
        folder = safe_name(officer, 40)
        name = f"{folder}_{safe_name(serial, 40)}_{_stamp(min(r['start_ms'] for r in rows))}"
        claimed = self.table.claim(
            serial, rows, lambda: self._free_bag_path(os.path.join("bags", folder, name)),
            time.time(),
        )  # fmt: skip
        if claimed is None:
            return None
        seal_id, bag = claimed
        crashpoints.reach("seal.intent.after")
        return {"id": seal_id, "serial": serial, "bag": bag, "state": "intent"}

    def _free_bag_path(self, rel: str) -> str:
        """Asked inside the claim's transaction: a name no seal has and nothing on disk."""
        for i in range(1, 10_000):
            candidate = rel if i == 1 else f"{rel}-{i}"
            taken = self.table.by_bag(candidate) is not None
            if not taken and not os.path.lexists(os.path.join(self.evidence_dir, candidate)):
                return candidate
        raise BagError(f"no free package name for {rel}")

    def _finish(self, seal: dict[str, Any], outcome: SealOutcome) -> None:
        """From ``intent`` or ``made`` to ``audited``."""
        members = self.members(seal["id"])
        names = [m["recording_id"] for m in members]
        bag_dir = os.path.join(self.evidence_dir, seal["bag"])
        try:
            if seal["state"] == "intent":
                digest, oxum = self._make(seal, members, bag_dir)
                self.table.set_made(seal["id"], digest, oxum)
                crashpoints.reach("seal.made.after")
            else:
                digest, oxum = seal["tagmanifest_sha256"], seal["payload_oxum"]
        except (OSError, BagError, ValueError) as exc:
            why = f"{seal['bag']}: {type(exc).__name__}: {exc}"
            log.error("seal not made (tried again at the next offload): %s", why)
            outcome.failed.append(why)
            return
        if self.audit.find(AuditKind.SEAL, seal["serial"], bag=seal["bag"]) is None:
            self.audit.append(
                AuditKind.SEAL,
                "dock",
                seal["serial"],
                {
                    "bag": seal["bag"],
                    "tagmanifest_sha256": digest,
                    "payload_oxum": oxum,
                    "recordings": names,
                },
            )
        self.table.set_audited(seal["id"])
        outcome.sealed.append((seal["bag"], digest, names))

    def _make(
        self, seal: dict[str, Any], members: list[dict[str, Any]], bag_dir: str
    ) -> tuple[str, str]:
        """The package on disk: made now, or found whole where a crash left it."""
        if os.path.isdir(bag_dir):  # renamed into place before the crash: it is whole
            oxum = (read_bag_info(bag_dir).get("Payload-Oxum") or [""])[0]
            return tagmanifest_digest(bag_dir), oxum
        if not members:
            raise BagError("a seal without members")
        payload = {os.path.basename(m["path"]): os.path.join(self.evidence_dir, m["path"])
                   for m in members}  # fmt: skip
        known = {os.path.basename(m["path"]): bytes(m["sha256"]) for m in members}
        device = self.store.device(seal["serial"])
        officer = members[0]["officer_id"] or "unassigned"
        info: dict[str, str | list[str]] = {
            "Source-Organization": self.organization,
            "External-Description": DESCRIPTION,
            "External-Identifier": os.path.basename(seal["bag"]),
            "Contact-Name": officer,
            "Recorder-Serial": seal["serial"],
            "Recorder-Model": device.model if device else "",
            "Recording-Ids": [m["recording_id"] for m in members],
        }
        taken = sorted({m["hash_taken"] for m in members if m.get("hash_taken")})
        if taken:  # a mass-storage recorder: no capture hash existed to check against
            info["Hash-Taken"] = taken
        os.makedirs(os.path.dirname(bag_dir), exist_ok=True)
        bag = make_bag(bag_dir, payload, info, known_sha256=known)
        return bag.tagmanifest_sha256, bag.payload_oxum

    # ------------------------------------------------------------------ purges
    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """The seal lock, for work that moves recordings between packages (a purge):
        hold it around :meth:`reseal`, which does not take it itself."""
        return self._locked()

    def reseal(
        self,
        seal_id: int,
        bag: str,
        leaving: set[str],
        *,
        tag_files: dict[str, bytes],
        supersedes: dict[str, str],
        purge: str,
    ) -> tuple[str, str]:
        """Replace package ``seal_id`` by a new one at ``bag`` (relative to the evidence
        folder) holding its members except the recording ids in ``leaving``, plus
        ``tag_files``; return (bag, tag-manifest SHA-256). The caller holds
        :meth:`exclusive`.

        The new package is made (or found whole where a crash left it), its ``seal``
        entry, naming the package it ``supersedes`` and the ``purge`` batch, is audited,
        and in the same transaction its ``seals`` row is written (``audited``) and the
        remaining recordings move to it. Run again after a crash, it finishes the same
        package and writes no entry twice. The old package is left for the caller.
        """
        done = self.table.by_bag(bag)
        if done is not None and done["state"] == "audited":
            return bag, done["tagmanifest_sha256"]
        old = self.table.by_id(seal_id)
        if old is None or old["state"] != "audited":
            raise BagError(f"package {seal_id} is not sealed: nothing to re-seal")
        serial = old["serial"]
        staying = [m for m in self.members(seal_id) if m["recording_id"] not in leaving]
        bag_dir = os.path.join(self.evidence_dir, bag)
        if os.path.isdir(bag_dir):  # renamed into place before a crash: it is whole
            digest = tagmanifest_digest(bag_dir)
            oxum = (read_bag_info(bag_dir).get("Payload-Oxum") or [""])[0]
        else:
            if not staying:
                raise BagError("a re-seal without members")
            payload = {os.path.basename(m["path"]): os.path.join(self.evidence_dir, m["path"])
                       for m in staying}  # fmt: skip
            known = {os.path.basename(m["path"]): bytes(m["sha256"]) for m in staying}
            device = self.store.device(serial)
            info: dict[str, str | list[str]] = {
                "Source-Organization": self.organization,
                "External-Description": DESCRIPTION
                + "; recordings purged after their retention are listed in "
                + ", ".join(sorted(tag_files)),
                "External-Identifier": os.path.basename(bag),
                "Contact-Name": staying[0]["officer_id"] or "unassigned",
                "Recorder-Serial": serial,
                "Recorder-Model": device.model if device else "",
                "Recording-Ids": [m["recording_id"] for m in staying],
                "Supersedes": f"{supersedes['bag']} (tag manifest SHA-256 "
                f"{supersedes['tagmanifest_sha256']})",
            }
            os.makedirs(os.path.dirname(bag_dir), exist_ok=True)
            made = make_bag(bag_dir, payload, info, known_sha256=known, tag_files=tag_files)
            digest, oxum = made.tagmanifest_sha256, made.payload_oxum
        crashpoints.reach("purge.reseal.made")
        names = [m["recording_id"] for m in staying]
        with self.table.transaction():
            if self.audit.find(AuditKind.SEAL, serial, bag=bag) is None:
                self.audit.append(
                    AuditKind.SEAL,
                    "dock",
                    serial,
                    {
                        "bag": bag,
                        "tagmanifest_sha256": digest,
                        "payload_oxum": oxum,
                        "recordings": names,
                        "supersedes": dict(supersedes),
                        "purge": purge,
                    },
                )
            new_id = self.table.put_audited(serial, bag, digest, oxum, time.time())
            for rid in names:
                self.table.move_member(rid, seal_id, new_id)
        return bag, digest

    # ------------------------------------------------------------------ upgrade
    def _adopt_earlier_seals(self) -> None:
        """A database from before this table: its recordings were sealed by ``seal``
        entries naming them; record those packages, so they are not sealed again."""
        adopted = 0
        for entry in self.audit.entries():
            if entry.kind != AuditKind.SEAL or not isinstance(entry.data.get("bag"), str):
                continue
            rids = [r for r in entry.data.get("recordings", []) if isinstance(r, str)]
            adopted += self.table.adopt(
                entry.subject, entry.data["bag"], entry.data.get("tagmanifest_sha256"),
                entry.data.get("payload_oxum"), rids, time.time(),
            ) or 0  # fmt: skip
        if adopted:
            log.info("%d archived recordings found in packages sealed before", adopted)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        path = os.path.abspath(self.store.path) + ".seal-lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def not_sealed(store: Store) -> list[dict[str, Any]]:
    """Archived recordings not (yet) in a package whose seal is in the audit log: what
    ``dock archive verify`` reports (a database from before the register: none known)."""
    return SealTable(store).not_sealed()


def seal_lock_busy(store: Store) -> bool:
    """Whether another process holds the seal lock now (a seal or a purge under way):
    what ``dock archive verify`` asks before calling an unfinished purge interrupted."""
    path = os.path.abspath(store.path) + ".seal-lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def _stamp(start_ms: int) -> str:
    start = utc_datetime(start_ms / 1000)
    return "unknown-time" if start is None else f"{start.year:04d}{start:%m%dT%H%M%SZ}"
