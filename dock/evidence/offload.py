"""Offload: every recording on a docked recorder into the archive, verified, then erased.

Per recording: stream it over the protocol (resumable READs), write it with
``write_verified`` (hash while writing, fsync, read back from disk, compare with
the hash the recorder computed at capture and check its Ed25519 signature where
the recorder signs), record it in the archive table, and only then erase the
device copy, stating the expected hash so the recorder refuses if anything is
off. A recording already in the archive (an offload interrupted after the copy) is
not copied again; one already erased is not erased again. A mismatch erases
nothing: the file is quarantined and the failure reported.

Layout, "one subject, one place": ``<evidence>/<officer>/<YYYY-MM-DD>/`` with files
named ``<officer>_<serial>_<start UTC>_<recording id>.mp4``; a case is attached to
recordings later in the database, never by renaming the original.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware_protocol.messages import Capability

from .. import crashpoints
from ..audit import AuditLog
from ..recorder_client import RecorderClient, RecorderRefused, RecordingInfo
from ..store import Store
from .bagit import BagError, make_bag
from .verified_copy import IntegrityError, VerifiedCopyError, ensure_room, write_verified

log = logging.getLogger("dock.offload")

#: Room kept free on the evidence disk beyond what an offload needs.
ROOM_MARGIN = 256 << 20


class ScannerHit(VerifiedCopyError):
    """The scanner flagged the file (or could not scan it): quarantined, not archived."""


class SignatureMismatch(VerifiedCopyError):
    """The recorder's Ed25519 signature over its capture hash does not verify."""


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
    scanner_hits: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_enough_room


def archive_name(officer_id: str | None, serial: str, rec: RecordingInfo) -> tuple[str, str]:
    """(folder relative to the evidence root, file name) for one recording."""
    officer = _safe(officer_id or "unassigned")
    start = time.gmtime(rec.start_ms / 1000)
    day = time.strftime("%Y-%m-%d", start)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", start)
    return os.path.join(officer, day), f"{officer}_{_safe(serial)}_{stamp}_{_safe(rec.id)}.mp4"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)[:64] or "-"


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
    ) -> None:
        self.organization = organization
        self.use_mass_storage = use_mass_storage
        self.scanner = scanner
        self.store = store
        self.audit = audit
        self.evidence_dir = evidence_dir
        self.erase_after_verify = erase_after_verify

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
        self._confirm_erasures(serial, {r.id for r in recordings})
        todo = [r for r in recordings if self.store.archived(serial, r.id) is None]
        os.makedirs(self.evidence_dir, exist_ok=True)
        # Per call, never on self: several recorders are offloaded at once.
        volume = self._mass_storage(client) if todo and self.use_mass_storage else None
        try:
            return self._offload(client, slot_id, progress, report, recordings, todo, volume)
        finally:
            if volume is not None:
                try:
                    client.mass_storage(False)
                except (RecorderRefused, ConnectionError) as exc:
                    log.warning("could not leave mass-storage mode: %s", exc)

    def _confirm_erasures(self, serial: str, on_device: set[str]) -> None:
        """An earlier run erased these (archived, verified) and died before noting it."""
        for row in self.store.archive_entries():
            gone = row["recording_id"] not in on_device
            if row["serial"] == serial and row["erased_at"] is None and gone:
                self.store.mark_erased(serial, row["recording_id"])
                crashpoints.reach("audit.confirm.before")
                self.audit.append(
                    "erase", "dock", serial,
                    {"recording": row["recording_id"], "confirmed_after_restart": True},
                )  # fmt: skip

    def _mass_storage(self, client: RecorderClient) -> str | None:
        """The recorder's read-only volume, where it offers one: faster than READs."""
        if not client.has(Capability.MASS_STORAGE):
            return None
        try:
            path = client.mass_storage(True).get("local_path")
        except (RecorderRefused, ConnectionError) as exc:
            log.info("mass storage not available: %s", exc)
            return None
        if not path or not os.path.isdir(path):
            client.mass_storage(False)
            return None
        return path

    def _offload(
        self,
        client: RecorderClient,
        slot_id: str,
        progress: Callable[[str, int, int], None] | None,
        report: OffloadReport,
        recordings: list[RecordingInfo],
        todo: list[RecordingInfo],
        volume: str | None,
    ) -> OffloadReport:
        serial = report.serial
        try:
            ensure_room(self.evidence_dir, sum(r.size for r in todo), ROOM_MARGIN)
        except VerifiedCopyError as exc:
            report.not_enough_room = True
            self.audit.append("offload_refused", "dock", serial, {"reason": str(exc)})
            return report
        if todo:
            self.audit.append(
                "offload_start", "dock", serial,
                {"slot": slot_id, "recordings": len(todo), "bytes": sum(r.size for r in todo),
                 "via": "mass_storage" if volume else "protocol"},
            )  # fmt: skip
        for rec in recordings:
            done = self.store.archived(serial, rec.id)
            if done is not None and done["sha256"] != rec.sha256:
                report.failed[rec.id] = "archived copy differs from the recorder's hash"
                continue
            if done is None:
                try:
                    try:
                        self._copy(client, slot_id, rec, progress, volume)
                    except IntegrityError as first:  # quarantined; read it once more
                        log.warning("%s: %s; reading it again", rec.id, first)
                        self.audit.append(
                            "offload_retry", "dock", serial,
                            {"recording": rec.id, "error": str(first)},
                        )  # fmt: skip
                        self._copy(client, slot_id, rec, progress, volume)
                except (VerifiedCopyError, ConnectionError, OSError) as exc:
                    report.failed[rec.id] = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ScannerHit):
                        report.scanner_hits[rec.id] = str(exc)
                    self.audit.append(
                        "offload_failed", "dock", serial, {"recording": rec.id, "error": str(exc)}
                    )
                    if isinstance(exc, ConnectionError):
                        break  # the link is gone: the rest waits for the next docking
                    continue
                report.archived.append(rec.id)
            else:
                report.already_archived.append(rec.id)
            row = self.store.archived(serial, rec.id)
            second_copy = row is not None and row.get("second_copy_at") is not None
            if self.erase_after_verify or second_copy:
                crashpoints.reach("erase.before")
                client.erase(rec.id, rec.sha256)
                crashpoints.reach("erase.after")
                self.store.mark_erased(serial, rec.id)
                crashpoints.reach("audit.erase.before")
                self.audit.append("erase", "dock", serial, {"recording": rec.id})
                report.erased.append(rec.id)
        if report.archived:
            try:
                self._seal(client, report)
            except (OSError, BagError) as exc:  # the footage itself is archived and verified
                report.failed["seal"] = f"{type(exc).__name__}: {exc}"
                self.audit.append("seal_failed", "dock", serial, {"error": str(exc)})
        if todo:
            crashpoints.reach("audit.done.before")
            self.audit.append(
                "offload_done", "dock", serial,
                {"slot": slot_id, "archived": len(report.archived),
                 "already_archived": len(report.already_archived),
                 "erased": len(report.erased), "failed": len(report.failed),
                 "bag": report.bag, "seal": report.seal},
            )  # fmt: skip
        self.audit.checkpoint()
        return report

    def _seal(self, client: RecorderClient, report: OffloadReport) -> None:
        """Seal the footage of this custody episode as a BagIt package, its tag-manifest
        hash in the audit log: any later change to the package shows against it."""
        entries = [self.store.archived(report.serial, rid) for rid in report.archived]
        files = [e for e in entries if e is not None]
        officer = files[0]["officer_id"] or "unassigned"
        first = min(e["start_ms"] for e in files)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(first / 1000))
        name = f"{_safe(officer)}_{_safe(report.serial)}_{stamp}"
        bag_dir = os.path.join(self.evidence_dir, "bags", _safe(officer), name)
        if os.path.exists(bag_dir):
            bag_dir += f"-{int(time.time())}"
        payload = {os.path.basename(e["path"]): os.path.join(self.evidence_dir, e["path"])
                   for e in files}  # fmt: skip
        known = {os.path.basename(e["path"]): e["sha256"] for e in files}
        ident = client.identity
        info: dict[str, str | list[str]] = {
            "Source-Organization": self.organization,
            "External-Description": "Body-worn camera footage of one custody episode, "
            "verified against the recorder's capture hashes",
            "External-Identifier": name,
            "Contact-Name": officer,
            "Recorder-Serial": report.serial,
            "Recorder-Model": ident.model if ident else "",
            "Recording-Ids": [e["recording_id"] for e in files],
        }
        os.makedirs(os.path.dirname(bag_dir), exist_ok=True)
        bag = make_bag(bag_dir, payload, info, known_sha256=known)
        report.bag = os.path.relpath(bag.path, self.evidence_dir)
        report.seal = bag.tagmanifest_sha256
        self.audit.append(
            "seal",
            "dock",
            report.serial,
            {
                "bag": report.bag,
                "tagmanifest_sha256": bag.tagmanifest_sha256,
                "payload_oxum": bag.payload_oxum,
                "recordings": [e["recording_id"] for e in files],
            },
        )

    def _copy(
        self,
        client: RecorderClient,
        slot_id: str,
        rec: RecordingInfo,
        progress: Callable[[str, int, int], None] | None,
        volume: str | None,
    ) -> None:
        assert client.identity is not None
        serial = client.identity.serial
        self._check_signature(client, rec)
        officer = rec.officer_id or client.status().officer_id
        folder, name = archive_name(officer, serial, rec)
        dest = os.path.join(self.evidence_dir, folder)
        os.makedirs(dest, exist_ok=True)
        _remove_stale_partials(dest, name)
        source = os.path.join(volume, f"{rec.id}.mp4") if volume else None
        via = "mass_storage" if source is not None and os.path.isfile(source) else "protocol"
        chunks: Any = _FileChunks(source) if via == "mass_storage" else _Pull(client, rec)
        report = (lambda n: progress(rec.id, n, rec.size)) if progress else None
        try:
            result = write_verified(
                dest, name, chunks, rec.sha256, expected_size=rec.size, progress=report
            )
        finally:
            chunks.close()
        if self.scanner is not None:
            clean, detail = self.scanner(result.path)
            if not clean:
                moved = self._quarantine(result.path)
                self.audit.append(
                    "scanner_hit",
                    "dock",
                    serial,
                    {"recording": rec.id, "detail": detail, "quarantined": moved},
                )
                raise ScannerHit(f"{rec.id}: {detail}")
        self.store.add_archived(
            serial,
            rec.id,
            rec.sha256,
            rec.size,
            os.path.relpath(result.path, self.evidence_dir),
            officer,
            rec.start_ms,
            rec.end_ms,
        )
        crashpoints.reach("publish.after_row")
        self.audit.append(
            "offload_file",
            "dock",
            serial,
            {
                "recording": rec.id,
                "sha256": rec.sha256.hex(),
                "size": rec.size,
                "path": os.path.relpath(result.path, self.evidence_dir),
                "slot": slot_id,
                "resumed": result.already_present,
                "via": via,
            },
        )

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


def _remove_stale_partials(folder: str, final_name: str) -> None:
    """Temporary files of an earlier attempt killed mid-copy: never evidence (never
    verified, and the recorder still holds the footage), so they can go."""
    prefix = f".{final_name}.partial-"
    for entry in os.scandir(folder):
        if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


class _FileChunks:
    """A recording read from the recorder's mass-storage volume, 1 MiB at a time."""

    def __init__(self, path: str, block: int = 1 << 20) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close(), like _Pull
        self._block = block

    def __iter__(self) -> Iterator[bytes]:
        while block := self._f.read(self._block):
            yield block

    def close(self) -> None:
        self._f.close()


class _Pull:
    """Turn the client's push-style read into the chunks ``write_verified`` pulls.

    The client reads in a worker thread (it is used by nobody else meanwhile); a
    bounded queue keeps memory flat; an error in the reader reaches the writer.
    """

    _END = object()

    def __init__(self, client: RecorderClient, rec: RecordingInfo) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, rec), daemon=True)
        self._thread.start()

    def _run(self, client: RecorderClient, rec: RecordingInfo) -> None:
        try:
            client.read_recording(rec, lambda _off, data: self._put(data))
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it
            if self._stop.is_set():
                return  # the consumer gave up (its own error is what it reports)
            with contextlib.suppress(ConnectionAbortedError):
                self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise ConnectionAbortedError("offload abandoned")

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
