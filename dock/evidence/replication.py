"""Sealed packages to the unit's central storage, each verified there before it counts.

For each configured target the engine takes the queue's due packages (urgent, then
oldest: :mod:`dock.storage.replication_table`) and, for every file of a package (payload
and tag files), uploads it to ``<target path>/<dock id>/<bag name>/<path>`` under a
``.part`` name, resuming a partial upload from its size, then renames it into place.
It reads every file back *from the target* (on a second session, beside the uploads:
a large file while it is sent, the others once in place), hashes it and compares it
with the package's manifests (``manifest-sha256.txt``, ``tagmanifest-sha256.txt``,
and the tag manifest itself with the seal in the audit log). A mismatch deletes that
remote file and sends it again (at most ``max_attempts`` rounds); only when every file
matches is the package ``replicated``: a ``package_replicated`` audit entry naming the
target, and each member recording's second copy confirmed exactly as ``dock
confirm-copy`` records it (``second_copy`` entry; ``erase_on_device =
"after_second_copy"`` then lets the recorder's copy go at its next docking).

A failure (target away, credentials refused, target full, a copy that never matched)
marks the package ``failed`` with its reason and a capped backoff: it is tried again,
nothing is dropped, and the backlog stays visible. Outside the allowed windows no file
starts; a file already being sent finishes. The bandwidth limit is a token bucket
around the reads of the local file, the same for every transport.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, BinaryIO

from dock.config.replication import ReplicationConfig, window_minutes
from dock.domain.audit_kinds import AuditKind
from dock.domain.replica import (
    GrowingFile,
    ReadBeside,
    ReplicaError,
    ReplicaTarget,
    TargetDigest,
    safe_relpath,
)
from dock.domain.replication_pace import TokenBucket, in_windows
from dock.evidence.bagit import TAGMANIFEST, BagError, manifest_digests, tagmanifest_digest
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import SealTable
from dock.storage.replication_table import ReplicationTable
from dock.storage.store import Store
from dock.support import crashpoints

log = logging.getLogger("dock.replication")

#: Backoff after a failure: 60 s doubled per attempt, at most an hour.
BACKOFF_FIRST_S = 60.0
BACKOFF_CAP_S = 3600.0
#: The queue's bytes-sent column is written at most this often (bytes).
PROGRESS_EVERY = 8 << 20
#: Burst of the token bucket: one read chunk.
CHUNK = 256 << 10
#: Packages taken per target and run (the next run takes the next ones).
PER_RUN = 50
#: Suffix of a file being uploaded (renamed away when whole).
PART = ".part"
#: Files at least this large are read back while they are uploaded, where the target
#: and its second session can (:class:`ReadBeside`); smaller ones once they are in place.
BESIDE_MIN = 16 << 20
#: A read-back following an upload asks the stored size each time this much more was
#: sent, and reads what is there.
BESIDE_STEP = 16 << 20
#: A read-back following an upload gives up (and the file is read back whole once in
#: place) when the upload reports nothing new for this long.
BESIDE_STALL_S = 3600.0


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row (capped)."""
    return min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** max(0, min(attempts, 20) - 1))


def second_copy_where(target: str, remote: str) -> str:
    """What the archive's ``second_copy_where`` says of a verified replica."""
    return f"replica {target}: {remote}"


class Schedule:
    """The allowed windows of ``[replication]`` in the dock's local time."""

    def __init__(self, allowed: tuple[str, ...], tz: tzinfo | None = None) -> None:
        self.windows = [window_minutes(w) for w in allowed]
        self.tz = tz

    def allows(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, self.tz)
        return in_windows(self.windows, local.hour * 60 + local.minute)


class _Throttled:
    """A file read through the token bucket, counting what went (the progress)."""

    def __init__(self, f: BinaryIO, bucket: TokenBucket) -> None:
        self.f = f
        self.bucket = bucket

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 or n > CHUNK else n
        data = self.f.read(n)
        if data:
            self.bucket.take(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()


class _Follow:
    """What the uploader of one file tells the read-back following it: how much it has
    sent, and whether the file was put in place whole or the upload failed. The uploader
    always ends it (published or failed), so the reader never waits on an ended upload."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.sent = 0
        self.published = False
        self.failed = False
        self._want = 0  # what the reader waits for: it is woken only once that was sent

    def advance(self, sent: int) -> None:
        """Called per request sent: wakes the reader only when what it waits for was."""
        with self._cond:
            self.sent = max(self.sent, sent)
            if self.sent > self._want:
                self._cond.notify_all()

    def end(self, *, published: bool) -> None:
        with self._cond:
            self.published, self.failed = published, not published
            self._cond.notify_all()

    def beyond(self, pos: int) -> bool:
        """Once more than ``pos`` bytes were sent or the file is in place: True; False
        when the upload failed or sent nothing new for :data:`BESIDE_STALL_S`."""
        with self._cond:
            seen, deadline = self.sent, time.monotonic() + BESIDE_STALL_S
            self._want = pos
            for _ in range(1 << 30):  # bounded: each turn waits at most 1 s or sees progress
                if self.failed:
                    return False
                if self.sent > pos or self.published:
                    return True
                if self.sent != seen:  # moving, if slowly: the stall clock starts again
                    seen, deadline = self.sent, time.monotonic() + BESIDE_STALL_S
                elif time.monotonic() > deadline:
                    return False
                self._cond.wait(1.0)
            return False


class _Mismatch(ReplicaError):
    """Files read back from the target did not match the manifests after every round."""


@dataclass
class RunReport:
    """What one :meth:`ReplicationEngine.run_once` did, per package."""

    replicated: list[tuple[str, str]] = field(default_factory=list)  # (target, bag)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (target, bag, why)
    skipped_schedule: bool = False


#: Test hook: called with (target name, remote relpath) just before a file is read back.
VerifyHook = Callable[[str, str], None]


class ReplicationEngine:
    """The queue, the sending and the verification, for every configured target."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        evidence_dir: str,
        dock_id: str,
        targets: list[ReplicaTarget],
        config: ReplicationConfig,
        tz: tzinfo | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        readers: dict[str, ReplicaTarget] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.evidence_dir = evidence_dir
        self.dock_id = dock_id
        self.targets = targets
        #: target name -> a second session to the same target: files are read back on it
        #: while the next is uploaded (none: read back after the last upload, in turn).
        self.readers = readers or {}
        self._reader: ReplicaTarget | None = None
        self.config = config
        self.schedule = Schedule(config.allowed, tz)
        rate = config.bandwidth_kib_s * 1024
        self.bucket = TokenBucket(rate, max(CHUNK, rate / 4), monotonic, sleep)
        self.table = ReplicationTable(store)
        self.seals = SealTable(store)
        #: Set to stop between files (the daemon's shutdown).
        self.stopping: Callable[[], bool] = lambda: False
        #: Test hooks: before each file is read back; bytes sent of the current file.
        self.before_verify: VerifyHook | None = None
        #: remote path -> how its last check was made ("read-back" or "target-sha256sum"),
        #: so the audit entry says what proved the copy; the package in hand's files only.
        self._verified_by: dict[str, str] = {}
        self.on_progress: Callable[[str, int], None] | None = None

    # ------------------------------------------------------------------ the queue
    def reconcile(self, now: float | None = None) -> int:
        """Enqueue every sealed package missing for a target (at start, after seals)."""
        return self.table.enqueue_missing([t.name for t in self.targets], now or time.time())

    def retry(self, seal_id: int | None, now: float | None = None) -> int:
        """Failed packages (one, or all) due again now; how many."""
        return self.table.retry(seal_id, now or time.time())

    # ------------------------------------------------------------------ a run
    def run_once(self, now: float | None = None) -> RunReport:
        """Reconcile, then send and verify what is due at each target (bounded)."""
        now = time.time() if now is None else now
        report = RunReport()
        self.reconcile(now)
        if not self.schedule.allows(now):
            report.skipped_schedule = True
            return report
        for target in self.targets:
            due = self.table.due(target.name, now, PER_RUN)
            if not due or self.stopping():
                continue
            with ThreadPoolExecutor(1, thread_name_prefix="replication-connect") as pool:
                opening = pool.submit(self._open_reader, target.name)  # both handshakes at once
                try:
                    target.connect()
                except ReplicaError as exc:  # one entry for the target, every package waits
                    reader = opening.result()
                    if reader is not None:
                        reader.close()
                    for i, row in enumerate(due):
                        self._failed(target.name, row, str(exc), report, audit=i == 0)
                    continue
                self._reader = opening.result()
            try:
                for row in due:
                    if self.stopping() or not self.schedule.allows(time.time()):
                        break
                    if not self._package(target, row, report):
                        break  # the target itself failed: the rest waits for the backoff
            finally:
                target.close()
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
        return report

    def _open_reader(self, name: str) -> ReplicaTarget | None:
        """The second session for read-backs, connected; None (read back in turn) when
        there is none or it cannot connect now."""
        reader = self.readers.get(name)
        if reader is None:
            return None
        try:
            reader.connect()
        except ReplicaError as exc:
            log.info("%s: no second session for read-backs (%s): in turn", name, exc)
            reader.close()
            return None
        return reader

    # ------------------------------------------------------------------ one package
    def _package(self, target: ReplicaTarget, row: dict[str, Any], report: RunReport) -> bool:
        """Send and verify one package; False when the target failed (stop this run)."""
        self._verified_by.clear()  # one package at a time: nothing left from a failed one
        seal = self.seals.by_id(row["seal_id"])
        bag_dir = os.path.join(self.evidence_dir, row["bag"])
        if seal is None or (not os.path.isdir(bag_dir) and not self.table.members(seal["id"])):
            with self.table.transaction():  # a purge replaced it: its successor is queued
                self.table.set_state(row["seal_id"], target.name, "superseded", time.time())
            return True
        try:
            files = self._files(seal, bag_dir)
        except (OSError, BagError, ValueError) as exc:
            self._failed(target.name, row, f"local package unreadable: {exc}", report)
            return True
        base = f"{safe_relpath(self.dock_id)}/{os.path.basename(row['bag'])}"
        total = sum(size for _, size, _ in files.values())
        try:
            for round_ in range(1, self.config.max_attempts + 1):
                bad = self._round(target, row, base, files, total)
                if not bad:
                    break
                for rel in bad:
                    target.delete(f"{base}/{rel}")
                log.warning("%s at %s: %d file(s) did not match after round %d; sent again",
                            row["bag"], target.name, len(bad), round_)  # fmt: skip
            else:
                raise _Mismatch(
                    f"{len(bad)} file(s) read back from the target did not match the "
                    f"manifest after {self.config.max_attempts} rounds (first: {bad[0]})"
                )
        except ReplicaError as exc:
            self._failed(target.name, row, str(exc), report)
            return isinstance(exc, _Mismatch)
        self._replicated(target.name, row, seal, base, total)
        report.replicated.append((target.name, row["bag"]))
        return True

    def _files(self, seal: dict[str, Any], bag_dir: str) -> dict[str, tuple[str, int, str]]:
        """rel -> (expected SHA-256, size, local path): every file of the package; the
        local tag manifest must still be the sealed one (else nothing is sent)."""
        digest = tagmanifest_digest(bag_dir)
        if digest != seal["tagmanifest_sha256"]:
            raise BagError(f"{TAGMANIFEST} differs from the seal in the audit log")
        expected = {**manifest_digests(bag_dir), TAGMANIFEST: digest}
        out = {}
        for rel, sha in sorted(expected.items()):
            safe_relpath(rel)
            path = os.path.join(bag_dir, *rel.split("/"))
            out[rel] = (sha, os.path.getsize(path), path)
        return out

    def _round(
        self,
        target: ReplicaTarget,
        row: dict[str, Any],
        base: str,
        files: dict[str, tuple[str, int, str]],
        total: int,
    ) -> list[str]:
        """Send what is missing, read everything back; the files that did not match.
        With a second session each file is read back (in one other thread) as soon as it
        is in place, while the next one is sent; a large one, where both sessions can
        (:class:`ReadBeside`), while it is itself uploaded, as the target stores it."""
        reader = self._reader
        if reader is None:
            self._send_all(target, row, base, files, total)
            return self._verify_all(target, row, base, files)
        futures: dict[str, Future[bool | None]] = {}
        follows: list[_Follow] = []
        beside = (
            isinstance(target, ReadBeside)
            and isinstance(reader, ReadBeside)
            and reader.follows_uploads()
        )
        with ThreadPoolExecutor(1, thread_name_prefix="replication-readback") as pool:

            def placed(rel: str) -> None:
                futures[rel] = pool.submit(self._matches, reader, target.name, base, rel,
                                           files[rel][0])  # fmt: skip

            def follow(rel: str) -> _Follow:
                """The read-back of ``rel`` queued to follow its upload."""
                sha, size, _path = files[rel]
                follows.append(_Follow())
                futures[rel] = pool.submit(self._follow_and_match, reader, follows[-1],
                                           target.name, base, rel, sha, size)  # fmt: skip
                return follows[-1]

            try:
                self._send_all(target, row, base, files, total, placed,
                               follow if beside else None)  # fmt: skip
            finally:
                for f in follows:
                    if not f.published:  # the reader must not wait on an upload that ended
                        f.end(published=False)
            results = {rel: fut.result() for rel, fut in futures.items()}
        # a read-back that could not follow its upload to a proof: the file, in place now,
        # read back whole
        return [rel for rel, ok in results.items()
                if not (ok if ok is not None else self._matches(
                    reader, target.name, base, rel, files[rel][0]))]  # fmt: skip

    def _send_all(
        self,
        target: ReplicaTarget,
        row: dict[str, Any],
        base: str,
        files: dict[str, tuple[str, int, str]],
        total: int,
        placed: Callable[[str], None] | None = None,
        follow: Callable[[str], _Follow] | None = None,
    ) -> None:
        key = (row["seal_id"], target.name)
        done = 0
        for rel, (_sha, size, path) in files.items():
            final = f"{base}/{rel}"
            if target.size(final) is not None:  # published before: verification decides
                done += size
                if placed is not None:
                    placed(rel)
                continue
            with self.table.transaction():
                self.table.set_state(*key, "sending", time.time(), file=rel, file_offset=0,
                                     bytes_done=done, bytes_total=total)  # fmt: skip
            followed = self._send_file(target, key, rel, final, path, size, done, follow)
            crashpoints.reach("replication.file.published")
            done += size
            if placed is not None and not followed:
                placed(rel)
        with self.table.transaction():
            self.table.set_state(*key, "verifying", time.time(), bytes_done=total,
                                 bytes_total=total, file=None, file_offset=None)  # fmt: skip

    def _send_file(
        self,
        target: ReplicaTarget,
        key: tuple[int, str],
        rel: str,
        final: str,
        path: str,
        size: int,
        done_before: int,
        follow: Callable[[str], _Follow] | None = None,
    ) -> bool:
        """Upload one file to its ``.part`` name and put it in place; True when a
        read-back followed it (a fresh upload of a large file, ``follow`` given)."""
        part = final + PART
        offset = target.size(part) or 0
        if offset > size:  # not a prefix of this file: start afresh
            target.delete(part)
            offset = 0
        if offset:
            log.info("%s: resuming at byte %d of %d", final, offset, size)
        last = [offset]

        def progress(sent: int) -> None:
            if self.on_progress is not None:
                self.on_progress(rel, sent)
            if sent - last[0] >= PROGRESS_EVERY:
                last[0] = sent
                self.table.progress(*key, rel, sent, done_before + sent)

        followed = None
        if follow is not None and offset == 0 and size >= BESIDE_MIN:
            followed = follow(rel)
        with open(path, "rb") as f:
            f.seek(offset)
            source = _Throttled(f, self.bucket)
            if followed is not None:
                told = followed

                def progress_told(sent: int) -> None:
                    progress(sent)
                    told.advance(sent)

                target.upload(part, source, 0, size, progress_told)  # type: ignore[arg-type]
            elif offset < size or target.size(part) is None:
                target.upload(part, source, offset, size, progress)  # type: ignore[arg-type]
        target.publish(part, final)
        if followed is not None:
            followed.end(published=True)
        return followed is not None

    def _verify_all(
        self,
        target: ReplicaTarget,
        row: dict[str, Any],
        base: str,
        files: dict[str, tuple[str, int, str]],
    ) -> list[str]:
        """The files whose bytes read back from the target differ from the manifest."""
        return [rel for rel, (sha, _s, _p) in files.items()
                if not self._matches(target, target.name, base, rel, sha)]  # fmt: skip

    def _follow_and_match(
        self,
        reader: ReplicaTarget,
        follow: _Follow,
        name: str,
        base: str,
        rel: str,
        sha: str,
        size: int,
    ) -> bool | None:
        """Read the file back as its upload stores it (the stored size asked each time
        :data:`BESIDE_STEP` more bytes were sent), hash it; once it is in place and of its
        size a match proves it (True). Anything else (a byte that differs, a short read,
        an error of this session, an upload that stalled or failed): None, and the file
        is read back whole once every upload is done, which decides."""
        remote = f"{base}/{rel}"
        h = hashlib.sha256()
        pos = 0
        growing: GrowingFile | None = None
        try:
            looked = 0  # bytes sent when the stored size was last asked
            # each turn waits for another step sent, the last one for the file in place:
            # bounded by the steps
            for _ in range(size // BESIDE_STEP + 3):
                step_end = looked + BESIDE_STEP
                if pos >= size or not follow.beyond(step_end - 1 if step_end < size else size):
                    break
                looked = follow.sent
                if growing is None:
                    if follow.published:  # in place before this reader came to it
                        return self._matches(reader, name, base, rel, sha)
                    if self.before_verify is not None:
                        self.before_verify(name, remote + PART)
                    growing = reader.open_growing(remote + PART)  # type: ignore[attr-defined]
                end = size if follow.published else min(growing.stored(), size)
                for chunk in growing.read_range(pos, end):
                    h.update(chunk)
                    pos += len(chunk)
                if pos != end and follow.published:
                    break  # the whole file is there, yet fewer bytes came back
            if pos != size or not follow.beyond(size) or not follow.published:
                return None
            whole = reader.size(remote) == size
        except (ReplicaError, FileNotFoundError) as exc:
            log.info("%s: read-back beside the upload failed (%s): read back whole", remote, exc)
            whole = False
        finally:
            if growing is not None:
                growing.close()
        if whole and h.hexdigest() == sha:
            self._verified_by[remote] = "read-back"
            return True
        return None

    def _matches(self, reader: ReplicaTarget, name: str, base: str, rel: str, sha: str) -> bool:
        """Whether the file read back from the target hashes to ``sha`` (or, where the
        target is configured so, the target's own SHA-256 of what it stored)."""
        remote = f"{base}/{rel}"
        if self.before_verify is not None:
            self.before_verify(name, remote)
        if isinstance(reader, TargetDigest):
            at_target = reader.sha256_at_target(remote)
            if at_target is not None:
                self._verified_by[remote] = "target-sha256sum"
                return at_target == sha
        h = hashlib.sha256()
        for chunk in reader.read(remote):
            h.update(chunk)
        self._verified_by[remote] = "read-back"
        return h.hexdigest() == sha

    # ------------------------------------------------------------------ outcomes
    def _replicated(
        self, target: str, row: dict[str, Any], seal: dict[str, Any], base: str, total: int
    ) -> None:
        """Every file matched: the second copy of each member, then the package's state
        and its entry (each step found done when a crash repeats it)."""
        where = second_copy_where(target, base)
        serial = seal["serial"]
        for m in self.table.members(seal["id"]):
            if m["second_copy_at"] is not None:
                continue  # already a second copy (a person's, or this one before a crash)
            self._second_copy(m["serial"], m["recording_id"], where, target)
        crashpoints.reach("replication.second_copy.after")
        now = time.time()
        with self.table.transaction():
            if self.audit.find(AuditKind.PACKAGE_REPLICATED, serial, bag=row["bag"],
                               target=target) is None:  # fmt: skip
                self.audit.append(
                    AuditKind.PACKAGE_REPLICATED, "dock", serial,
                    {"bag": row["bag"], "package": row["bag"], "target": target, "remote": base,
                     "tagmanifest_sha256": seal["tagmanifest_sha256"], "bytes": total,
                     "verified_by": self._how_verified(base)},
                )  # fmt: skip
            self.table.set_state(row["seal_id"], target, "replicated", now, verified_at=now,
                                 reason=None, bytes_done=total, bytes_total=total)  # fmt: skip
        log.info("%s replicated to %s and verified (%d bytes)", row["bag"], target, total)

    def _how_verified(self, base: str) -> dict[str, int]:
        """How many of the package's files were read back and how many the target hashed
        itself."""
        counts: dict[str, int] = {}
        for k, how in self._verified_by.items():
            if k.startswith(base + "/"):
                counts[how] = counts.get(how, 0) + 1
        return counts

    def _second_copy(self, serial: str, recording: str, where: str, target: str) -> None:
        """As ``dock confirm-copy`` records it (services/archive.py): the archive's row and
        a ``second_copy`` entry in one transaction; the entry also names the target."""
        data = {"recording": recording, "where": where, "target": target}

        def entry() -> object:
            return self.audit.append(AuditKind.SECOND_COPY, "dock", serial, data)

        self.store.confirm_second_copy(serial, recording, where, audit=entry)

    def _failed(
        self, target: str, row: dict[str, Any], why: str, report: RunReport, audit: bool = True
    ) -> None:
        """The package waits (backoff); audited when the reason is new for it (and
        ``audit``: a target that cannot be reached is one entry, not one per package)."""
        why = " ".join(why.split())[:300] or "failed"
        attempts = int(row.get("attempts") or 0) + 1
        now = time.time()
        with self.table.transaction():
            current = self.table.get(row["seal_id"], target)
            if current is not None and current["state"] == "replicated":
                return
            self.table.set_state(row["seal_id"], target, "failed", now, reason=why,
                                 attempts=attempts, next_try=now + backoff_s(attempts))  # fmt: skip
            new = current is None or current["reason"] != why or current["state"] != "failed"
            if audit and new:
                seal = self.seals.by_id(row["seal_id"])
                self.audit.append(
                    AuditKind.REPLICATION_FAILED, "dock", seal["serial"] if seal else "",
                    {"package": row["bag"], "bag": row["bag"], "target": target,
                     "reason": why, "attempts": attempts},
                )  # fmt: skip
        log.warning("replication of %s to %s failed (attempt %d): %s",
                    row["bag"], target, attempts, why)  # fmt: skip
        report.failed.append((target, row["bag"], why))


class UnusableTarget:
    """A configured target whose transport could not be built: every attempt fails with
    that reason (so the queue and headquarters show it), nothing is sent."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    def connect(self) -> None:
        raise ReplicaError(self.why)

    def close(self) -> None:
        return None

    def size(self, relpath: str) -> int | None:
        raise ReplicaError(self.why)

    def upload(self, relpath: str, source: BinaryIO, offset: int, size: int, progress: Any) -> None:
        raise ReplicaError(self.why)

    def publish(self, relpath: str, final_relpath: str) -> None:
        raise ReplicaError(self.why)

    def read(self, relpath: str) -> Iterator[bytes]:
        raise ReplicaError(self.why)

    def delete(self, relpath: str) -> None:
        raise ReplicaError(self.why)


def may_free_local(
    store: Store, serial: str, recording_id: str, targets: list[str] | None = None
) -> bool:
    """The rule local retention asks before freeing a recording's local copy: never
    before its package is verified at every one of ``targets`` (the configured ones;
    None: at some target). Retention, holds and the purge's own rules still decide the
    rest (:mod:`.replication_free` asks the same table, per package)."""
    return ReplicationTable(store).replicated_everywhere(serial, recording_id, targets)
