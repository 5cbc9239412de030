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
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field

from dock.evidence.access import AccessRegister
from dock.support.text import safe_name

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
    try:
        os.makedirs(folder, mode=0o700)
        used: set[str] = set()
        for e in sources:
            name = os.path.basename(e["path"])
            if name in used:
                name = f"{safe_name(e['serial'], 40)}_{safe_name(e['recording_id'])}_{name}"
            used.add(name)
            target = os.path.join(folder, name)
            digest = copy_one(os.path.join(evidence_dir, e["path"]), target, bytes(e["sha256"]))
            files.append({"what": f"{e['serial']}/{e['recording_id']}", "path": target,
                          "sha256": digest})  # fmt: skip
    except (OSError, ValueError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise register.deny(who, request_id, action, f"copy failed: {exc}") from exc
    return WorkingCopies(request_id, action, folder, files, entries)


__all__ = ["PRODUCED", "WorkingCopies", "copy_one", "produce"]
