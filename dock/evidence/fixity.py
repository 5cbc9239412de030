"""Fixity checks of the archive (REQUIREMENTS.md section 4; 004 att.2 §4).

Footage verified at offload can still rot on disk (bad sectors, a failing controller)
or be changed by someone with access to the evidence folder. The periodic check reads
every archived file (or a random sample) back from the disk itself, not the page
cache, and compares it with what the archive table recorded at offload: SHA-256,
size, and that it is still read-only. Every BagIt package is validated in full and its
tag-manifest digest compared with the seal the dock wrote to the audit log, so a bag
that was altered *and* had its manifests rewritten still shows.

A lawful purge (:mod:`.purging`) is not a problem: purged recordings are no longer
expected on disk, and a package a purge replaced (a ``seal`` that ``supersedes`` it) or
removed (its ``purge`` entry) is no longer expected either; its successor is checked
against its own seal. A purge left unfinished by a crash is reported until the next
``dock purge --apply`` or the daemon finishes it (one under way in another process is
not).

The check reads only: it never modifies, moves or deletes a file (an operator decides
what to do with a problem, and the evidence must stay as found). Each run and each
problem is audited.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from dock.domain.audit_kinds import AuditKind
from dock.evidence.bagit import BAGIT_TXT, TMP_PREFIX, tagmanifest_digest, validate_bag
from dock.evidence.purge_records import gone_or_going, retired_bags, unfinished
from dock.evidence.seals import not_sealed, seal_lock_busy
from dock.storage.audit import AuditLog
from dock.storage.store import Store
from dock.support.files import drop_cache, hash_blocks, read_blocks

__all__ = [
    "FixityProblem",
    "FixityReport",
    "check_file",
    "find_bags",
    "sample_size",
    "verify_archive",
]

BAGS_DIR = "bags"
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH

#: ``progress(label, bytes_done, bytes_total)`` while a file is read.
Progress = Callable[[str, int, int], None]


class FixityProblem(TypedDict):
    """One problem found; ``recording`` is None for a problem of a bag."""

    kind: str  # "file" or "bag"
    serial: str | None
    recording: str | None
    path: str  # relative to the evidence folder
    problem: str


@dataclass
class FixityReport:
    """Counts of one run; ``bad`` lists every problem (a file may have several).

    ``ok`` is the outcome, a flag like every other report's ``ok`` in the dock: True when
    nothing at all was wrong (an empty archive included). ``intact`` counts the files
    that passed; it is not the outcome (two intact files beside a damaged one are not ok).
    """

    checked: int = 0
    intact: int = 0
    bad: list[FixityProblem] = field(default_factory=list)
    bags_checked: int = 0
    bags_bad: int = 0
    archived: int = 0  # recordings in the archive table (``checked`` may be a sample)
    sample_fraction: float = 1.0

    @property
    def clean(self) -> bool:
        """True when nothing at all was wrong."""
        return not self.bad

    @property
    def ok(self) -> bool:
        """The outcome: nothing wrong (the same as ``clean``)."""
        return self.clean

    @property
    def nothing_to_check(self) -> bool:
        """The archive holds no file and no bag yet: a pass with nothing read."""
        return self.archived == 0 and self.checked == 0 and self.bags_checked == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "archived": self.archived,
            "sample_fraction": self.sample_fraction,
            "checked": self.checked,
            "intact": self.intact,
            "bags_checked": self.bags_checked,
            "bags_bad": self.bags_bad,
            "bad": [dict(p) for p in self.bad],
        }


def sample_size(total: int, fraction: float) -> int:
    """How many of ``total`` files a sample of ``fraction`` checks: rounded up (a sample
    never checks less than asked), at least one of a non-empty archive."""
    if not 0 < fraction <= 1:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction!r}")
    if total == 0:
        return 0
    # round() first: 0.1 * 30 is 3.0000000000000004, which must not become 4
    return min(total, max(1, math.ceil(round(total * fraction, 9))))


def verify_archive(
    store: Store,
    evidence_dir: str,
    audit: AuditLog,
    *,
    sample_fraction: float = 1.0,
    rng: random.Random | None = None,
    progress: Progress | None = None,
    actor: str = "dock",
) -> FixityReport:
    """Re-read archived files (all, or a random sample) and validate every sealed bag.

    ``rng`` defaults to the system's random source, so whoever could tamper with a file
    cannot predict which ones a sampled run will read.
    """
    gone = gone_or_going(store)
    rows = [r for r in store.archive_entries() if (r["serial"], r["recording_id"]) not in gone]
    report = FixityReport(archived=len(rows), sample_fraction=sample_fraction)
    count = sample_size(len(rows), sample_fraction)
    if count < len(rows):
        chosen = (rng or random.SystemRandom()).sample(range(len(rows)), count)
        rows = [rows[i] for i in sorted(chosen)]  # archive order: easier to follow
    for row in rows:
        found = check_file(evidence_dir, row, progress)
        report.checked += 1
        if not found:
            report.intact += 1
        report.bad += [_file_problem(row, problem) for problem in found]
    _check_bags(evidence_dir, audit, report)
    for batch in _interrupted(store):
        report.bad.append(
            FixityProblem(
                kind="bag",
                serial=batch["serial"],
                recording=None,
                path=batch["old_bag"] or "",
                problem=f"purge {batch['token']} of this package was interrupted "
                f"({batch['state']}): `dock purge --apply` or the daemon finishes it",
            )
        )
    report.bad += [  # every one, sampled or not: a cheap question
        _file_problem(row, "archived but in no sealed package (sealed at the next offload)")
        for row in not_sealed(store)
        if (row["serial"], row["recording_id"]) not in gone
    ]
    for p in report.bad:
        audit.append(
            AuditKind.FIXITY_FAILURE,
            actor,
            p["serial"] or p["path"],
            {"kind": p["kind"], "recording": p["recording"], "path": p["path"],
             "problem": p["problem"]},
        )  # fmt: skip
    summary = report.as_dict()
    summary["bad"] = len(report.bad)
    audit.append(AuditKind.FIXITY_CHECK, actor, "archive", summary)
    audit.checkpoint()  # sign the outcome at once: a failed check must not be cut off
    return report


def _file_problem(row: dict[str, Any], problem: str) -> FixityProblem:
    return FixityProblem(
        kind="file",
        serial=row["serial"],
        recording=row["recording_id"],
        path=row["path"],
        problem=problem,
    )


def check_file(evidence_dir: str, row: dict[str, Any], progress: Progress | None) -> list[str]:
    """Problems of one archived file (empty when it is intact)."""
    rel = row["path"]
    root = os.path.realpath(evidence_dir)
    path = os.path.normpath(os.path.join(root, rel))
    if os.path.isabs(rel) or not path.startswith(root + os.sep):
        return [f"archive path {rel!r} lies outside the evidence folder"]
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = _open_noatime(path, flags)
    except FileNotFoundError:
        return ["missing: the archived file is not on disk"]
    except OSError as exc:
        return [f"cannot open: {exc.strerror or exc}"]
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ["not a regular file"]
        problems = []
        if st.st_mode & _WRITE_BITS:
            problems.append(f"writable (mode {stat.S_IMODE(st.st_mode):o}; archived read-only)")
        if st.st_size != row["size"]:
            problems.append(f"size {st.st_size} bytes, archived as {row['size']}")
        label = f"{row['serial']} {row['recording_id']}"
        try:
            digest = _hash_from_disk(fd, st.st_size, label, progress)
        except OSError as exc:
            return [*problems, f"read error: {exc.strerror or exc}"]
        if st.st_size == row["size"] and digest != bytes(row["sha256"]):
            problems.append(
                f"SHA-256 {digest.hex()}, archived as {bytes(row['sha256']).hex()}: "
                "the bytes changed"
            )
        return problems
    finally:
        os.close(fd)


def _open_noatime(path: str, flags: int) -> int:
    """Open without touching the access time where allowed (only the owner may)."""
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass
    return os.open(path, flags)


def _hash_from_disk(fd: int, total: int, label: str, progress: Progress | None) -> bytes:
    """Read past the page cache, and leave no footage cached."""
    drop_cache(fd)
    if progress:
        progress(label, 0, total)
    done = None if progress is None else (lambda n: progress(label, n, total))
    found = hash_blocks(read_blocks(fd), on_progress=done)
    drop_cache(fd)
    return found.digest


# --------------------------------------------------------------------------- bags


def find_bags(evidence_dir: str) -> list[str]:
    """Bag folders under ``<evidence>/bags/`` (relative to the evidence folder); bags being
    built (temporary folders) are skipped, payload folders are not searched."""
    root = os.path.join(evidence_dir, BAGS_DIR)
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        if BAGIT_TXT in files:
            found.append(os.path.relpath(folder, evidence_dir))
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(TMP_PREFIX))
    return sorted(found)


def _seals(audit: AuditLog) -> dict[str, list[tuple[int, str, str]]]:
    """Bag path -> [(seq, serial, tag-manifest digest)] of every ``seal`` entry."""
    seals: dict[str, list[tuple[int, str, str]]] = {}
    for e in audit.entries():
        if e.kind == AuditKind.SEAL and isinstance(e.data.get("bag"), str):
            key = os.path.normpath(e.data["bag"])
            seals.setdefault(key, []).append(
                (e.seq, e.subject, str(e.data.get("tagmanifest_sha256", "")))
            )
    return seals


def _drop_bag_cache(bag_dir: str) -> None:
    for folder, _dirs, files in os.walk(bag_dir):
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    drop_cache(fd)
                finally:
                    os.close(fd)


def _interrupted(store: Store) -> list[dict[str, Any]]:
    """Unfinished purges no process is working on now (one under way holds the seal
    lock; asked between two looks, so one that finished meanwhile is not reported)."""
    first = {b["id"] for b in unfinished(store)}
    if not first or seal_lock_busy(store):
        return []
    return [b for b in unfinished(store) if b["id"] in first]


def _check_bags(evidence_dir: str, audit: AuditLog, report: FixityReport) -> None:
    seals = _seals(audit)
    retired = retired_bags(audit)
    on_disk = find_bags(evidence_dir)
    for rel in on_disk:
        key = os.path.normpath(rel)
        sealed = seals.get(key, [])
        serial = sealed[-1][1] if sealed else None
        bag_dir = os.path.join(evidence_dir, rel)
        _drop_bag_cache(bag_dir)
        problems = list(validate_bag(bag_dir).problems)
        try:
            digest: str | None = tagmanifest_digest(bag_dir)
        except OSError:
            digest = None  # validate_bag already says the tag manifest is missing
        if not sealed:
            problems.append("no seal for this bag in the audit log")
        elif digest is not None and digest not in {d for _s, _ser, d in sealed}:
            problems.append(
                f"tag manifest SHA-256 {digest} does not match its seal in the audit log "
                f"({sealed[-1][2]}, entry {sealed[-1][0]}): the bag was changed after sealing"
            )
        _add_bag(report, serial, rel, problems)
    for key in sorted(set(seals) - {os.path.normpath(r) for r in on_disk} - set(retired)):
        seq, serial, _digest = seals[key][-1]
        _add_bag(report, serial, key, [f"sealed in the audit log (entry {seq}) but missing"])


def _add_bag(report: FixityReport, serial: str | None, rel: str, problems: list[str]) -> None:
    report.bags_checked += 1
    if problems:
        report.bags_bad += 1
    for problem in problems:
        report.bad.append(
            FixityProblem(kind="bag", serial=serial, recording=None, path=rel, problem=problem)
        )
