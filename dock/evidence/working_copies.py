"""Viewing and copying archived footage: working copies, registered before they exist.

003 art.17: the keeper registers who views, why and when BEFORE the viewing; 004 att.2
§5: a person uses a copy, never the sealed original; 004 att.3 art.15: viewing and
copying need approval and are registered. So a view or a copy under an approved request
(or a supervisory body's direct request) runs in this order:

1. the request is checked: approved, unexpired, of a kind that allows the action,
   covering the recordings, naming this person to run it
   (:meth:`~dock.evidence.access.AccessRegister.authorised`); copies of recordings
   marked confidential need an explicit confirmation;
2. the register is written and COMMITTED: one ``access_log`` row and one
   ``access_record`` audit entry per recording, in one transaction
   (:meth:`~dock.evidence.access.AccessRegister.register`); when that write fails,
   nothing below runs and no file exists;
3. only then are the bytes produced: each recording is copied (never linked) into a new
   folder ``<dest>/<action>-<request>-<time>/``, hashed while written, compared with the
   archive's SHA-256 and made read-only. A copy that fails is removed and its failure
   audited (the register keeps the attempt: it happened).

Each file is also registered, before it is written, in ``working_copies``: a copy lives
no longer than its request's approval (``expires_at``; a supervisory body's direct
request expires the same way). :func:`remove_expired` (the daemon's maintenance) then
removes it, intent first: the intent committed, the file unlinked and its folder
fsynced, the removal recorded (``working_copy_removed``) with the row in one
transaction; a run killed in between finds the file gone and records it at the next
run. Only files this register made are removed, only inside ``<state_dir>/exports``,
never inside the archive, never through a symbolic link (each folder on the way is
opened with ``O_NOFOLLOW``): anything else there (an export package) is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.evidence.access import DEFAULT_VALIDITY_S, AccessRegister
from dock.storage.working_copy_table import WorkingCopyTable
from dock.support import crashpoints
from dock.support.text import safe_name

log = logging.getLogger("dock.evidence.working_copies")

#: What may be produced here (an export is :mod:`dock.evidence.export`'s).
PRODUCED = ("view", "copy")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WorkingCopies:
    """Where the copies went, and the register entries written before them."""

    request_id: int
    action: str
    folder: str
    files: list[dict[str, str]] = field(default_factory=list)  # what, path, sha256
    entries: list[int] = field(default_factory=list)


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def copy_one(source: str, target: str, expected: bytes) -> str:
    """Copy ``source`` to the new file ``target`` (exclusive), compare its SHA-256 with
    ``expected``, make it read-only; the hex digest. Raises OSError or ValueError."""
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.digest() != expected:
        raise ValueError(f"the copy of {os.path.basename(source)} does not match the archive")
    os.chmod(target, 0o444)
    return digest.hexdigest()


def produce(
    register: AccessRegister,
    request_id: int,
    action: str,
    dest_dir: str,
    *,
    who: str,
    evidence_dir: str,
    recordings: list[tuple[str, str]] | None = None,
    place: str | None = None,
    confirm_confidential: bool = False,
) -> WorkingCopies:
    """View or copy ``recordings`` (default: all the request's) into a new folder under
    ``dest_dir``: registered first, produced after (see the module's text)."""
    if action not in PRODUCED:
        raise register.deny(who, request_id, action, f"action must be one of {PRODUCED}")
    req = register.authorised(request_id, who, action, recordings or [])
    pairs = list(recordings or req.recordings)
    marked = {w: m for w, m in register.confidential(req).items()
              if tuple(w.split("/", 1)) in pairs}  # fmt: skip
    if marked and action == "copy" and not confirm_confidential:
        raise register.deny(
            who, request_id, action,
            f"{len(marked)} recording(s) are marked confidential: confirm the copy to go on",
        )  # fmt: skip
    if _inside(dest_dir, evidence_dir):
        raise register.deny(who, request_id, action, "a copy may not be written into the archive")
    sources = []
    for serial, rid in pairs:
        e = register.store.archived(serial, rid)
        if e is None:
            raise register.deny(who, request_id, action, f"{serial}/{rid} left the archive")
        sources.append(e)

    # 2. the register, committed before any byte is written
    entries = register.register(request_id, who, pairs, action, place=place)

    # 3. the bytes
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(register.clock()))
    folder = os.path.join(dest_dir, f"{action}-{request_id}-{stamp}-{secrets.token_hex(3)}")
    files: list[dict[str, str]] = []
    targets: list[str] = []
    used: set[str] = set()
    for e in sources:
        name = os.path.basename(e["path"])
        if name in used:
            name = f"{safe_name(e['serial'], 40)}_{safe_name(e['recording_id'])}_{name}"
        used.add(name)
        targets.append(os.path.join(folder, name))
    # each file registered before it exists: only what this register made is removed
    WorkingCopyTable(register.store).add([
        {"request_id": request_id, "action": action, "who": who, "folder": folder,
         "what": f"{e['serial']}/{e['recording_id']}", "path": os.path.abspath(target),
         "made_at": register.clock()}
        for e, target in zip(sources, targets, strict=True)
    ])  # fmt: skip
    try:
        os.makedirs(folder, mode=0o700)
        for e, target in zip(sources, targets, strict=True):
            digest = copy_one(os.path.join(evidence_dir, e["path"]), target, bytes(e["sha256"]))
            files.append({"what": f"{e['serial']}/{e['recording_id']}", "path": target,
                          "sha256": digest})  # fmt: skip
    except (OSError, ValueError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise register.deny(who, request_id, action, f"copy failed: {exc}") from exc
    return WorkingCopies(request_id, action, folder, files, entries)


def _expiry(row: dict[str, Any]) -> float:
    """When a copy's request stops allowing it: its ``expires_at`` (an approval's, or a
    supervisory body's direct request's); a request without one (none is made so) is
    held to the default validity from the copy's making."""
    at = row["expires_at"]
    return float(at) if at is not None else float(row["made_at"]) + DEFAULT_VALIDITY_S


def _relative(path: str, root: str) -> list[str] | None:
    """``path``'s components below ``root`` (given or resolved), or None when it is not
    strictly inside it or names ``.``/``..`` on the way."""
    path = os.path.abspath(path)
    for base in dict.fromkeys((os.path.realpath(root), os.path.abspath(root))):
        if os.path.commonpath([path, base]) == base and path != base:
            parts = os.path.relpath(path, base).split(os.sep)
            if all(p not in ("", ".", "..") for p in parts):
                return parts
    return None


def _unlink_below(root: str, parts: list[str]) -> str:
    """Unlink ``root/parts`` walking each folder with ``O_NOFOLLOW`` (a symbolic link on
    the way, or as the file itself, is never followed) and fsync its folder; what was
    found: 'removed', 'already gone', or why nothing was touched."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except FileNotFoundError:
                return "already gone"
            except OSError:  # ELOOP / ENOTDIR: a link or a file where a folder was
                return "left alone: a folder on its way is a symbolic link or no folder"
        try:
            st = os.lstat(parts[-1], dir_fd=fds[-1])
        except FileNotFoundError:
            return "already gone"
        if not stat.S_ISREG(st.st_mode):
            return "left alone: not the copy made (a symbolic link or no regular file)"
        os.unlink(parts[-1], dir_fd=fds[-1])
        os.fsync(fds[-1])
        return "removed"
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _rmdir_below(root: str, parts: list[str]) -> None:
    """Remove the copy's own folder once it is empty (never a link; never non-empty)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, flags, dir_fd=fds[-1]))
        os.rmdir(parts[-1], dir_fd=fds[-1])
        os.fsync(fds[-1])
    except OSError:
        pass  # not empty, gone, or a link: left as it is
    finally:
        for fd in reversed(fds):
            os.close(fd)


def remove_expired(
    store: Any, audit: Any, exports_dir: str, evidence_dir: str, now: float
) -> list[dict[str, Any]]:
    """Remove each working copy under ``exports_dir`` whose request has expired, and
    record it (see the module's text); the rows recorded now, with their outcome.
    Copies registered outside ``exports_dir`` (a path given on the command line) are
    not this job's. Nothing is done when the exports folder lies in the archive."""
    table = WorkingCopyTable(store)
    root = os.path.realpath(exports_dir)
    archive = os.path.realpath(evidence_dir)
    if not os.path.isdir(root) or os.path.commonpath([root, archive]) in (root, archive):
        return []  # no exports folder, or one that overlaps the archive: nothing to do
    done: list[dict[str, Any]] = []
    folders: set[str] = set()
    for row in table.present():
        if now < _expiry(row):
            continue
        parts = _relative(row["path"], exports_dir)
        if parts is None:
            continue
        table.intend(row["id"], now)
        outcome = _unlink_below(root, parts)
        crashpoints.reach("working_copy.unlinked")

        def record(row: dict[str, Any] = row, outcome: str = outcome) -> None:
            audit.append(
                AuditKind.WORKING_COPY_REMOVED, "dock", row["what"],
                {"request": row["request_id"], "action": row["action"], "who": row["who"],
                 "path": row["path"], "outcome": outcome,
                 "interrupted": row["removing_at"] is not None,
                 "expired_at": _expiry(row)},
            )  # fmt: skip

        if table.removed(row["id"], now, outcome, record):
            done.append({**row, "outcome": outcome})
            if outcome != "removed":
                log.warning("working copy %s: %s", row["path"], outcome)
        folders.add(row["folder"])
    for folder in folders:
        parts = _relative(folder, exports_dir)
        if parts is not None:
            _rmdir_below(root, parts)
    return done


__all__ = ["PRODUCED", "WorkingCopies", "copy_one", "produce", "remove_expired"]
