"""Offload: every recording on a docked recorder into the archive, verified, then erased.

Per recording: stream it over the protocol (resumable READs), write it with
``write_verified`` (hash while writing, fsync, read back from disk, compare with
the hash the recorder computed at capture and check its Ed25519 signature where
the recorder signs), record it in the archive table, and only then erase the
device copy, stating the expected hash so the recorder refuses if anything is
off. Every ERASE follows a read of the archived file back from the disk (past the page
cache) that matched the capture hash: for a copy made in this run the read-back of
``write_verified``, otherwise a fresh one, so a database row alone never erases
anything; an ``erase_intent`` entry is in the audit log before the ERASE goes out.
The archive row and its ``offload_file`` entry, and the erased mark and its ``erase``
entry, are written in one transaction of the dock database (the entry inside it), so
no crash leaves one without the other; sealing is its own step (:mod:`.seals`) that
the next run completes. A recorder that cannot erase (no ERASE capability, protocol
version 1), refuses to, or a policy that waits for a second copy keeps the verified footage on the
device: reported as kept, with why, never as a failure (PROTOCOL.md 6.7). A
recording already in the archive (an offload interrupted after the copy) is not
copied again; one already erased is not erased again. A mismatch erases nothing:
the file is quarantined and the failure reported.

Layout, "one subject, one place": ``<evidence>/<officer>/<YYYY-MM-DD>/`` with files
named ``<officer>_<name>[_<case>]_<serial>_<start UTC>_<recording id>.mp4``: the officer's
number and name and, when the custody episode was filed under a case before the
recorder came back, the case number and its cause (姓名加案由, 001 art.19(4)); the
recording is then linked to the case as it is archived. A case attached later is a link
in the database, never a rename of the original, and files archived before names carried
the officer's name (``<officer>_<serial>_<start UTC>_<recording id>.mp4``) keep theirs:
a resumed offload reuses the name a file already has. The recorder states the officer
number, serial and ids, so each goes through ``dock.support.text.safe_name`` (never ``..``, a
leading dot or a line break; a hash of the original where it had to change); the officer's
name and the case come from the dock's records and go through ``safe_label`` (their own
script kept, NFC, no separators or controls, bounded); an impossible start time is named
``unknown-date``; the database keeps the recorder's own texts and times.
"""

# One file: the offload of a recorder is one ordered procedure (copy, verify, record with
# its audit entry, erase); the order is the guarantee, so it reads top to bottom here.

from __future__ import annotations

import functools
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dock.devices.clock import utc_datetime
from dock.devices.recorder_client import LinkError, RecorderClient, RecorderRefused, RecordingInfo
from dock.domain.audit_kinds import AuditKind
from dock.evidence.bulk_copy import BulkCopier, CopyJob, PullChunks, WorkerLied
from dock.evidence.continuity import ContinuityRegister
from dock.evidence.mass_storage import Volume
from dock.evidence.seals import SealOutcome, SealRegister
from dock.evidence.verified_copy import (
    REAL_FS,
    IntegrityError,
    VerifiedCopyError,
    ensure_room,
    write_verified,
)
from dock.storage.audit import AuditLog
from dock.storage.store import Store
from dock.support import crashpoints
from dock.support.files import hash_blocks
from dock.support.text import safe_label, safe_name
from firmware_protocol.messages import Capability, MsgType

log = logging.getLogger("dock.offload")

#: Room kept free on the evidence disk beyond what an offload needs.
ROOM_MARGIN = 256 << 20
#: Why a verified recording stays on the device under ``erase_on_device =
#: "after_second_copy"`` until ``dock confirm-copy``.
KEPT_FOR_SECOND_COPY = "policy keeps it until a second copy is confirmed (after_second_copy)"


class ScannerHit(VerifiedCopyError):
    """The scanner flagged the file (or could not scan it): quarantined, not archived."""


class SignatureMismatch(VerifiedCopyError):
    """The recorder's Ed25519 signature over its capture hash does not verify."""


@dataclass
class _Handed:
    """What the worker of one offload did: the recordings it was given, those archived."""

    todo: set[str]
    archived: set[str] = field(default_factory=set)
    #: the link broke or the worker died: no erase in this run
    stopped: bool = False
    refused: RecorderRefused | None = None


@dataclass
class OffloadReport:
    serial: str
    archived: list[str] = field(default_factory=list)
    already_archived: list[str] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_enough_room: bool = False
    #: The BagIt package sealing what this offload archived, and its seal.
    bag: str | None = None
    seal: str | None = None
    #: Why packages could not be sealed now (tried again at the next offload). The
    #: footage is archived and verified all the same: not a failed recording.
    seal_failed: list[str] = field(default_factory=list)
    #: Archived recordings whose file no longer matches its capture hash (not erased).
    damaged: dict[str, str] = field(default_factory=dict)
    scanner_hits: dict[str, str] = field(default_factory=dict)
    #: Archived and verified, yet left on the recorder, with why: the recorder cannot
    #: or will not erase, or the policy waits for a second copy. Not a failure.
    kept: dict[str, str] = field(default_factory=dict)
    #: Explanation items this docking opened for the footage's continuity (recordings
    #: missing from the numbering, outside the episode, unsigned): archived all the same.
    flagged: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.not_enough_room or self.seal_failed or self.damaged)

    @property
    def kept_reason(self) -> str | None:
        """Why the kept recordings stay on the device, in one line (None: none kept)."""
        return "; ".join(dict.fromkeys(self.kept.values())) or None


def archive_name(
    officer_id: str | None,
    serial: str,
    rec: RecordingInfo,
    officer_name: str | None = None,
    case: str | None = None,
) -> tuple[str, str]:
    """(folder relative to the evidence root, file name) for one recording.

    Without ``officer_name`` and ``case``, as before they were named: at most 40 + 40 +
    64 bytes of officer, serial and id (plus a 9-byte hash each where cut or changed).
    With them (001 art.19(4)): at most 24 + 36 + 36 + 32 + 48 bytes of officer, name,
    case, serial and id (plus the hashes): 246 bytes in all, so the name and its
    ``.partial-`` temporary stay within NAME_MAX.
    """
    officer = _officer_folder(officer_id)
    day, stamp = _day_and_stamp(rec.start_ms)
    if officer_name is None and case is None:
        name = f"{officer}_{safe_name(serial, 40)}_{stamp}_{safe_name(rec.id, 64)}.mp4"
        return os.path.join(officer, day), name
    parts = [safe_name(officer_id or "unassigned", 24)]
    if officer_name:
        parts.append(safe_label(officer_name, 36))
    if case:
        parts.append(safe_label(case, 36))
    tail = f"{safe_name(serial, 32)}_{stamp}_{safe_name(rec.id, 48)}.mp4"
    return os.path.join(officer, day), "_".join([*parts, tail])


def _published_as(dest: str, serial: str, rec: RecordingInfo) -> str | None:
    """The name a file of this recording already has in ``dest`` (an offload interrupted
    after publishing, under a name from before the officer's name or the case was known,
    or changed), so a resumed offload finds it instead of copying it again."""
    _, stamp = _day_and_stamp(rec.start_ms)
    ends = {
        f"_{safe_name(serial, 40)}_{stamp}_{safe_name(rec.id, 64)}.mp4",
        f"_{safe_name(serial, 32)}_{stamp}_{safe_name(rec.id, 48)}.mp4",
    }
    try:
        names = sorted(os.listdir(dest))
    except OSError:
        return None
    found = [n for n in names if not n.startswith(".") and n.endswith(tuple(ends))]
    return found[0] if len(found) == 1 else None


def _officer_folder(officer_id: str | None) -> str:
    return safe_name(officer_id or "unassigned", 40)


def _day_and_stamp(start_ms: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "YYYYMMDDTHHMMSSZ") of a recorder-stated start; placeholders
    when no calendar can show it (the recorder's value is kept in the database)."""
    start = utc_datetime(start_ms / 1000)
    if start is None:
        return "unknown-date", "unknown-time"
    return f"{start.year:04d}-{start:%m-%d}", f"{start.year:04d}{start:%m%dT%H%M%SZ}"


class Offloader:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        evidence_dir: str,
        erase_after_verify: bool = True,
        use_mass_storage: bool = True,
        organization: str = "",
        scanner: Callable[[str], tuple[bool, str]] | None = None,
        continuity_tolerance_s: float = 120.0,
    ) -> None:
        self.organization = organization
        self.continuity = ContinuityRegister(store, audit)
        self.continuity_tolerance_s = continuity_tolerance_s
        self.use_mass_storage = use_mass_storage
        self.scanner = scanner
        self.store = store
        self.audit = audit
        self.evidence_dir = evidence_dir
        self.erase_after_verify = erase_after_verify
        self.seals = SealRegister(store, audit, evidence_dir, organization)
        #: Called after packages were sealed, in the seal's own path (the replication
        #: queue takes them at once); a failure is logged, the offload stands.
        self.after_seal: Callable[[], object] | None = None
        #: Where the bulk copies over the protocol run (a worker process per offload,
        #: chosen by the composition root); None, or a link it cannot take: in process.
        self.copier: BulkCopier | None = None

    def offload(
        self,
        client: RecorderClient,
        slot_id: str,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> OffloadReport:
        """Offload everything on the recorder behind ``client`` (opened, authenticated)."""
        assert client.identity is not None
        serial = client.identity.serial
        report = OffloadReport(serial)
        recordings = client.list_recordings()
        refused = getattr(recordings, "refused", [])
        for bad in refused:  # impossible values: left on the device, never erased
            report.failed[bad.recording_id] = f"refused: {bad.reason}"
            self.audit.append(
                AuditKind.OFFLOAD_FAILED, "dock", serial,
                {"recording": bad.recording_id, "error": f"refused: {bad.reason}",
                 "refused": True},
            )  # fmt: skip
        on_device = {r.id for r in recordings} | {bad.recording_id for bad in refused}
        # a mass-storage camera's files may be deleted elsewhere (a PC): gone is an
        # erase of the dock's only where the dock wrote its intent first
        self._confirm_erasures(serial, on_device, getattr(client, "hash_taken", None) is not None)
        todo = [r for r in recordings if self.store.archived(serial, r.id) is None]
        report.flagged = self._flag_continuity(client, recordings, todo)
        os.makedirs(self.evidence_dir, exist_ok=True)
        # Per call, never on self: several recorders are offloaded at once.
        volume = self._mass_storage(client) if todo and self.use_mass_storage else None
        try:
            return self._offload(client, slot_id, progress, report, recordings, todo, volume)
        finally:
            if volume is not None:
                volume.close()
                _leave_mass_storage(client)

    def _confirm_erasures(
        self, serial: str, on_device: set[str], need_intent: bool = False
    ) -> None:
        """An earlier run erased these (archived, verified) and died before noting it."""
        for row in self.store.archive_entries():
            gone = row["recording_id"] not in on_device
            if row["serial"] == serial and row["erased_at"] is None and gone:
                rid = row["recording_id"]
                # Its entry may be in the log already (the crash fell between the entry
                # and the commit of the row): then the row alone is brought up to date.
                intent = self.audit.find(AuditKind.ERASE_INTENT, serial, recording=rid) or 0
                if need_intent and not intent:
                    continue  # not the dock's erase: the archive row stays "not erased"
                logged = (self.audit.find(AuditKind.ERASE, serial, recording=rid) or 0) > intent
                crashpoints.reach("audit.confirm.before")
                self.store.mark_erased(
                    serial, rid,
                    audit=None if logged else functools.partial(
                        self.audit.append, AuditKind.ERASE, "dock", serial,
                        {"recording": rid, "confirmed_after_restart": True},
                    ),
                )  # fmt: skip

    def _flag_continuity(
        self, client: RecorderClient, recordings: list[RecordingInfo], todo: list[RecordingInfo]
    ) -> list[int]:
        """Recordings missing from the device's numbering, made outside the custody
        episode, or unsigned by a recorder that signs: explanation items, before anything
        is copied or erased (:mod:`.continuity`). Never a reason not to offload."""
        ident = client.identity
        assert ident is not None
        signs = ident.device_public_key is not None and client.has(Capability.SIGNATURE)
        bad = {r.id for r in todo if not _signature_holds(ident.device_public_key, r)}
        try:
            return self.continuity.check(
                ident.serial, recordings, [r.id for r in todo], signs,
                self.continuity_tolerance_s, bad,
            )  # fmt: skip
        except Exception:  # the footage is offloaded all the same (the numbering is judged
            # again at the next docking: the mark did not move)
            log.exception("%s: continuity not judged", ident.serial)
            return []

    def complete_seals(self) -> SealOutcome:
        """Seal whatever an interrupted run archived (the daemon calls this too)."""
        outcome = self.seals.complete()
        self._sealed(outcome)
        return outcome

    def _sealed(self, outcome: SealOutcome) -> None:
        """Tell ``after_seal`` of new packages; its failure never undoes a seal."""
        if not outcome.sealed or self.after_seal is None:
            return
        try:
            self.after_seal()
        except Exception:  # the job's reconcile enqueues it at its next turn
            log.exception("after a seal: the replication queue takes it at its next turn")

    def _mass_storage(self, client: RecorderClient) -> Volume | None:
        """The recorder's read-only volume, where it offers one: faster than READs.

        The path is the recorder's word: :mod:`.mass_storage` decides whether it may
        be read at all (an existing directory, not a symlink, not ``/`` nor the
        evidence store); a refused volume means reading over the protocol.
        """
        if not client.has(Capability.MASS_STORAGE):
            return None
        why = client.why_not(MsgType.MASS_STORAGE)
        if why is not None:  # privileged; READ is not (PROTOCOL.md 6.7)
            log.info("mass storage not used: %s; reading over the protocol", why)
            return None
        try:
            path = client.mass_storage(True).get("local_path")
        except (RecorderRefused, ConnectionError) as exc:
            log.info("mass storage not available: %s", exc)
            return None
        volume, why = Volume.open(path, self.evidence_dir)
        if volume is None:
            serial = client.identity.serial if client.identity else ""
            log.warning("mass-storage volume refused (%s); reading over the protocol", why)
            self.audit.append(
                AuditKind.MASS_STORAGE_REFUSED, "dock", serial, {"local_path": path, "reason": why}
            )
            _leave_mass_storage(client)
        return volume

    def _offload(
        self,
        client: RecorderClient,
        slot_id: str,
        progress: Callable[[str, int, int], None] | None,
        report: OffloadReport,
        recordings: list[RecordingInfo],
        todo: list[RecordingInfo],
        volume: Volume | None,
    ) -> OffloadReport:
        serial = report.serial
        try:
            ensure_room(self.evidence_dir, sum(r.size for r in todo), ROOM_MARGIN)
        except VerifiedCopyError as exc:
            report.not_enough_room = True
            self.audit.append(AuditKind.OFFLOAD_REFUSED, "dock", serial, {"reason": str(exc)})
            return report
        if todo:
            self.audit.append(
                AuditKind.OFFLOAD_START, "dock", serial,
                {"slot": slot_id, "recordings": len(todo), "bytes": sum(r.size for r in todo),
                 "via": "mass_storage" if volume else "protocol"},
            )  # fmt: skip
        refused: set[str] = set()  # erases the recorder refused (audited one by one)
        handed: _Handed | None = None
        copier = self.copier
        if todo and volume is None and copier is not None and copier.takes(client, slot_id):
            handed = self._copy_elsewhere(copier, client, slot_id, progress, report, todo)
        # the worker's link broke: what it archived is erased at the next docking
        stopped = handed is not None and handed.stopped
        by_worker, worker_archived = (handed.todo, handed.archived) if handed else (set(), set())
        for rec in [] if stopped else recordings:
            done = self.store.archived(serial, rec.id)
            if rec.id in by_worker and rec.id not in worker_archived:
                continue  # failed: reported and audited as the worker said so
            if rec.id not in by_worker and done is not None and done["sha256"] != rec.sha256:
                report.failed[rec.id] = "archived copy differs from the recorder's hash"
                continue
            # copied and read back in this run, here or by the worker (its row written since)
            verified_now = done is None or rec.id in by_worker
            if rec.id in by_worker:
                pass  # archived, with its entry, as the worker published it
            elif done is None:
                try:
                    try:
                        self._copy(client, slot_id, rec, progress, volume)
                    except IntegrityError as first:  # quarantined; read it once more
                        log.info("%s: %s; reading it again", rec.id, first)
                        self.audit.append(
                            AuditKind.OFFLOAD_RETRY, "dock", serial,
                            {"recording": rec.id, "error": str(first)},
                        )  # fmt: skip
                        # over the protocol: a volume that gave wrong bytes once is not asked again
                        self._copy(client, slot_id, rec, progress, None)
                except (VerifiedCopyError, ConnectionError, OSError) as exc:
                    report.failed[rec.id] = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ScannerHit):
                        report.scanner_hits[rec.id] = str(exc)
                    self.audit.append(
                        AuditKind.OFFLOAD_FAILED,
                        "dock",
                        serial,
                        {"recording": rec.id, "error": str(exc)},
                    )
                    if isinstance(exc, ConnectionError):
                        break  # the link is gone: the rest waits for the next docking
                    continue
                report.archived.append(rec.id)
            else:
                report.already_archived.append(rec.id)
            row = self.store.archived(serial, rec.id)
            second_copy = row is not None and row.get("second_copy_at") is not None
            if not (self.erase_after_verify or second_copy):
                report.kept[rec.id] = KEPT_FOR_SECOND_COPY
                continue
            why_not = client.why_not(MsgType.ERASE)
            if why_not is not None:  # nothing is sent; the footage stays (PROTOCOL.md 6.7)
                report.kept[rec.id] = f"recorder cannot erase ({why_not})"
                continue
            if not verified_now and not self._still_intact(report, rec):
                continue  # the device copy may be the only good one left: keep it
            crashpoints.reach("erase.intent.before")
            self.audit.append(
                AuditKind.ERASE_INTENT, "dock", serial,
                {"recording": rec.id, "sha256": rec.sha256.hex(),
                 "verified": "copied now" if verified_now else "read back now"},
            )  # fmt: skip
            crashpoints.reach("erase.before")
            try:
                client.erase(rec.id, rec.sha256)
            except RecorderRefused as exc:  # archived and verified: kept, and said so
                report.kept[rec.id] = f"recorder refused the erase ({exc})"
                refused.add(rec.id)
                self.audit.append(
                    AuditKind.ERASE_REFUSED,
                    "dock",
                    serial,
                    {"recording": rec.id, "error": str(exc)},
                )
                continue
            crashpoints.reach("erase.after")

            def audit_erase(rid: str = rec.id) -> None:
                crashpoints.reach("audit.erase.before")
                self.audit.append(AuditKind.ERASE, "dock", serial, {"recording": rid})

            self.store.mark_erased(serial, rec.id, audit=audit_erase)
            report.erased.append(rec.id)
        if todo:
            self._audit_kept(report, refused)
        self._seal(report)
        if todo:
            crashpoints.reach("audit.done.before")
            self.audit.append(
                AuditKind.OFFLOAD_DONE, "dock", serial,
                {"slot": slot_id, "archived": len(report.archived),
                 "already_archived": len(report.already_archived),
                 "erased": len(report.erased), "failed": len(report.failed),
                 "bag": report.bag, "seal": report.seal},
            )  # fmt: skip
        self.audit.checkpoint()
        return report

    def _audit_kept(self, report: OffloadReport, refused: set[str]) -> None:
        """One entry per offload and reason for what it leaves on the device by design
        (a refused erase has its own entry per recording)."""
        by_reason: dict[str, list[str]] = {}
        for rid, why in report.kept.items():
            if rid not in refused:
                by_reason.setdefault(why, []).append(rid)
        for why, rids in by_reason.items():
            self.audit.append(
                AuditKind.ERASE_SKIPPED, "dock", report.serial,
                {"reason": why, "count": len(rids), "recordings": rids},
            )  # fmt: skip

    def _seal(self, report: OffloadReport) -> None:
        """Seal what this run and any interrupted one archived (:mod:`.seals`); the
        package holding this run's recordings is the report's."""
        outcome = self.seals.complete()
        self._sealed(outcome)
        found = outcome.bag_of(set(report.archived))
        if found is not None:
            report.bag, report.seal = found
        for why in outcome.failed:
            report.seal_failed.append(why)
            self.audit.append(AuditKind.SEAL_FAILED, "dock", report.serial, {"error": why})

    def _still_intact(self, report: OffloadReport, rec: RecordingInfo) -> bool:
        """Read the archived copy back past the page cache; True if it is the capture."""
        row = self.store.archived(report.serial, rec.id)
        assert row is not None
        path = os.path.join(self.evidence_dir, row["path"])
        try:
            found = hash_blocks(REAL_FS.read_back(path))
        except OSError as exc:
            why = f"archived copy unreadable ({exc.strerror or exc})"
        else:
            if found.digest == rec.sha256:
                return True
            why = "archived copy no longer matches the capture hash"
        report.damaged[rec.id] = why
        log.error("%s/%s: %s: not erased from the recorder", report.serial, rec.id, why)
        self.audit.append(
            AuditKind.ARCHIVE_DAMAGED, "dock", report.serial,
            {"recording": rec.id, "path": row["path"], "error": why, "erase": "withheld"},
        )  # fmt: skip
        return False

    def _copy(
        self,
        client: RecorderClient,
        slot_id: str,
        rec: RecordingInfo,
        progress: Callable[[str, int, int], None] | None,
        volume: Volume | None,
    ) -> None:
        assert client.identity is not None
        serial = client.identity.serial
        self._check_signature(client, rec)
        officer, case, dest, name = self._target(client, rec)
        fd, refused = volume.open_recording(rec.id, rec.size) if volume else (None, "")
        if refused:
            log.info("%s: not read from the volume (%s); over the protocol", rec.id, refused)
        via = "mass_storage" if fd is not None else "protocol"
        chunks: Any = (
            _FileChunks(fd, keepalive=client.status) if fd is not None else _Pull(client, rec)
        )
        report = (lambda n: progress(rec.id, n, rec.size)) if progress else None
        # A recorder with no capture hash (mass storage): the hash is the dock's own, so
        # the bytes as received are hashed too (its reads must agree as SHA-256).
        hash_taken: str | None = getattr(client, "hash_taken", None)
        try:
            result = write_verified(
                dest, name, chunks, rec.sha256, expected_size=rec.size, progress=report,
                hash_written=hash_taken is not None,
            )  # fmt: skip
        finally:
            chunks.close()
        self._record(
            serial, slot_id, rec, officer, case, result.path, result.already_present,
            via=via, volume_refused=refused, hash_taken=hash_taken,
        )  # fmt: skip

    def _copy_elsewhere(
        self,
        copier: BulkCopier,
        client: RecorderClient,
        slot_id: str,
        progress: Callable[[str, int, int], None] | None,
        report: OffloadReport,
        todo: list[RecordingInfo],
    ) -> _Handed:
        """Every recording of ``todo`` copied by ``copier``'s worker over a link handed to
        it; each file's row and offload_file entry written here as soon as the worker
        says it is published (while it copies the next). The worker is trusted for
        nothing but bytes it proved on disk: a file counts only at the path this run
        named, with the recorder's size and hash. The erases come after, here."""
        serial = report.serial
        handed = _Handed(todo={r.id for r in todo})
        targets: dict[str, tuple[RecordingInfo, str | None, dict[str, Any] | None, str]] = {}
        jobs: list[CopyJob] = []
        for rec in todo:
            try:
                self._check_signature(client, rec)
            except SignatureMismatch as exc:
                self._failed(report, rec.id, exc)
                continue
            officer, case, dest, name = self._target(client, rec)
            targets[rec.id] = (rec, officer, case, os.path.join(dest, name))
            jobs.append(CopyJob(rec, dest, name))
        told: set[str] = set()

        def on_message(m: dict[str, Any]) -> None:
            rid = m.get("rec")
            if not isinstance(rid, str) or rid not in targets or rid in told:
                raise WorkerLied(f"a message about {str(rid)[:80]!r}, not a recording asked for")
            rec, officer, case, path = targets[rid]
            kind = m["t"]
            if kind == "progress":
                done = m.get("done")
                if not isinstance(done, int) or not 0 <= done <= rec.size:
                    raise WorkerLied(f"{rid}: progress {str(done)[:40]} of {rec.size} bytes")
                if progress is not None:
                    progress(rid, done, rec.size)
            elif kind == "retry":
                log.info("%s: %s; reading it again", rid, m.get("error"))
                self.audit.append(
                    AuditKind.OFFLOAD_RETRY, "dock", serial,
                    {"recording": rid, "error": str(m.get("error"))[:2000]},
                )  # fmt: skip
            elif kind == "published":
                self._take_published(report, handed, slot_id, rec, officer, case, path, m)
                told.add(rid)  # not before: a claim refused is this recording's failure
            elif kind == "failed":
                told.add(rid)
                handed.stopped = handed.stopped or bool(m.get("stop"))
                if isinstance(m.get("code"), int):  # refused a READ: the offload stops,
                    handed.refused = RecorderRefused(m["code"], str(m.get("message", ""))[:400])
                    return  # as it always did (the daemon says so, one line)
                error = str(m.get("text", ""))[:2000]
                self._failed(report, rid, f"{str(m.get('kind'))[:60]}: {error}", error)
            else:
                raise WorkerLied(f"a message of an unknown kind {str(kind)[:40]!r}")

        why = None
        if jobs:
            try:
                why = copier.copy(client, slot_id, jobs, on_message)
            except LinkError:
                if not handed.stopped:
                    raise
                # the link was gone already: said for the recording it broke on
        if why is not None:
            log.error("%s: offload worker: %s", serial, why)
            left = [j.rec.id for j in jobs if j.rec.id not in told]
            if left:  # the one it was on; the rest wait for the next docking
                self._failed(report, left[0], f"OffloadWorkerFailed: {why}", why)
            handed.stopped = True
        if handed.refused is not None:
            raise handed.refused
        return handed

    def _take_published(
        self,
        report: OffloadReport,
        handed: _Handed,
        slot_id: str,
        rec: RecordingInfo,
        officer: str | None,
        case: dict[str, Any] | None,
        path: str,
        m: dict[str, Any],
    ) -> None:
        """A file the worker published: recorded if it is where, and what, it must be."""
        said = (m.get("path"), m.get("size"), m.get("sha256"))
        if said != (path, rec.size, rec.sha256.hex()):
            raise WorkerLied(f"{rec.id}: published {str(said)[:300]}, not {path}")
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise WorkerLied(f"{rec.id}: published {path}, not there ({exc.strerror})") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != rec.size:
            raise WorkerLied(f"{rec.id}: {path} is not the {rec.size}-byte file it published")
        try:
            self._record(
                report.serial, slot_id, rec, officer, case, path, bool(m.get("resumed")),
                via="protocol",
            )  # fmt: skip
        except ScannerHit as exc:
            report.scanner_hits[rec.id] = str(exc)
            self._failed(report, rec.id, exc)
            return
        handed.archived.add(rec.id)
        report.archived.append(rec.id)

    def _failed(
        self, report: OffloadReport, rid: str, exc: Exception | str, error: str | None = None
    ) -> None:
        """A recording not archived in this run: in the report and the audit log."""
        if isinstance(exc, Exception):
            report.failed[rid] = f"{type(exc).__name__}: {exc}"
            error = str(exc)
        else:
            report.failed[rid] = exc
        self.audit.append(
            AuditKind.OFFLOAD_FAILED, "dock", report.serial, {"recording": rid, "error": error}
        )

    def _target(
        self, client: RecorderClient, rec: RecordingInfo
    ) -> tuple[str | None, dict[str, Any] | None, str, str]:
        """(officer, case, archive folder, final name) of a recording about to be copied;
        the folder made and an earlier attempt's partial files there removed."""
        assert client.identity is not None
        serial = client.identity.serial
        officer = rec.officer_id or client.status().officer_id
        person = self.store.officer(officer) if officer else None
        case = self._case_of(serial, rec)
        label = (
            None if case is None else "-".join(filter(None, (case["case_number"], case["cause"])))
        )
        folder, name = archive_name(officer, serial, rec, person.name if person else None, label)
        dest = os.path.join(self.evidence_dir, folder)
        os.makedirs(dest, exist_ok=True)
        name = _published_as(dest, serial, rec) or name
        _remove_stale_partials(dest, name)
        return officer, case, dest, name

    def _record(
        self,
        serial: str,
        slot_id: str,
        rec: RecordingInfo,
        officer: str | None,
        case: dict[str, Any] | None,
        published: str,
        resumed: bool,
        *,
        via: str,
        volume_refused: str = "",
        hash_taken: str | None = None,
    ) -> None:
        """A verified, published file: scanned, then its archive row and offload_file
        entry in one transaction (ScannerHit: quarantined, no row)."""
        if self.scanner is not None:
            clean, detail = self.scanner(published)
            if not clean:
                moved = self._quarantine(published)
                self.audit.append(
                    AuditKind.SCANNER_HIT,
                    "dock",
                    serial,
                    {"recording": rec.id, "detail": detail, "quarantined": moved},
                )
                raise ScannerHit(f"{rec.id}: {detail}")
        path = os.path.relpath(published, self.evidence_dir)

        def audit_file() -> None:
            crashpoints.reach("publish.after_row")  # the row is in, not yet committed
            self.audit.append(
                AuditKind.OFFLOAD_FILE,
                "dock",
                serial,
                {
                    "recording": rec.id,
                    "sha256": rec.sha256.hex(),
                    "size": rec.size,
                    "path": path,
                    "slot": slot_id,
                    "resumed": resumed,
                    "via": via,
                    # filed under the case its custody episode was (case_links, same transaction)
                    **({"case": case["case_number"]} if case else {}),
                    **({"volume_refused": volume_refused} if volume_refused else {}),
                    # the recorder's clock was wrong: the footage is real, its times not
                    **({"time_doubt": rec.time_doubt} if rec.time_doubt else {}),
                    # a mass-storage recorder: hashed at its first read here (ums driver)
                    **({"hash_taken": hash_taken} if hash_taken else {}),
                },
            )

        self.store.add_archived(
            serial, rec.id, rec.sha256, rec.size, path, officer, rec.start_ms, rec.end_ms,
            audit=audit_file, case_number=None if case is None else case["case_number"],
            hash_taken=hash_taken,
        )  # fmt: skip

    def _case_of(self, serial: str, rec: RecordingInfo) -> dict[str, Any] | None:
        """The case the custody episode this recording was made in is filed under (by the
        recorder's start time: the episode out then and not yet back), or None. A recording
        made outside every episode carries no case (the continuity check flags it)."""
        start = rec.start_ms / 1000
        episodes = [
            c
            for c in self.store.custody_episodes(serial)
            if c.out_at <= start and (c.in_at is None or start <= c.in_at)
        ]
        if not episodes:
            return None
        return self.store.episode_case(episodes[-1].id)

    def _quarantine(self, path: str) -> str:
        """Move a published but rejected file out of the archive, keeping its bytes."""
        folder = os.path.join(self.evidence_dir, "quarantine")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{int(time.time())}-{os.path.basename(path)}")
        os.replace(path, target)
        return os.path.relpath(target, self.evidence_dir)

    @staticmethod
    def _check_signature(client: RecorderClient, rec: RecordingInfo) -> None:
        key = client.identity.device_public_key if client.identity else None
        if rec.signature is None or key is None:
            return
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(rec.signature, rec.sha256)
        except InvalidSignature:
            raise SignatureMismatch(
                f"{rec.id}: the recorder's signature over its capture hash does not verify"
            ) from None


def _signature_holds(key: bytes | None, rec: RecordingInfo) -> bool:
    """False only for a signature that does not verify against the device key (the
    copy refuses that recording: ``SignatureMismatch``)."""
    if rec.signature is None or key is None:
        return True
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(rec.signature, rec.sha256)
    except (InvalidSignature, ValueError):
        return False
    return True


def _remove_stale_partials(folder: str, final_name: str) -> None:
    """Temporary files of an earlier attempt killed mid-copy: never evidence (never
    verified, and the recorder still holds the footage), so they can go."""
    prefix = f".{final_name}.partial-"
    for entry in os.scandir(folder):
        if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


def _leave_mass_storage(client: RecorderClient) -> None:
    try:
        client.mass_storage(False)
    except (RecorderRefused, ConnectionError) as exc:
        log.warning("could not leave mass-storage mode: %s", exc)


class _FileChunks:
    """A recording read from the recorder's mass-storage volume, 1 MiB at a time
    (from a descriptor :meth:`Volume.open_recording` opened; closed by close())."""

    #: The recorder drops authority (and the volume) after 120 s without a message
    #: (PROTOCOL.md 5.2): a long copy from the volume says something every 30 s.
    KEEPALIVE_S = 30.0

    def __init__(
        self, fd: int, keepalive: Callable[[], object] | None = None, block: int = 1 << 20
    ) -> None:
        self._f = open(fd, "rb")  # noqa: SIM115 - closed by close(), like _Pull
        self._block = block
        self._keepalive = keepalive

    def __iter__(self) -> Iterator[bytes]:
        said = time.monotonic()
        while block := self._f.read(self._block):
            if self._keepalive is not None and time.monotonic() - said >= self.KEEPALIVE_S:
                self._keepalive()
                said = time.monotonic()
            yield block

    def close(self) -> None:
        self._f.close()


#: The client's push-style read as the chunks ``write_verified`` pulls (bulk_copy.py).
_Pull = PullChunks
