"""Checkpoint files: the copy kept outside the database, and headquarters'.

One canonical JSON object each (format in the package docstring).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable

from dock.storage.audit.chain import canonical_json
from dock.storage.audit.model import (
    CHECKPOINT_FILE_FORMAT,
    HEX64,
    HEX128,
    Checkpoint,
    OutsideCheckpoint,
)
from dock.storage.keys import fingerprint
from dock.support.files import write_replacing

log = logging.getLogger("dock.storage.audit")

_CHECKPOINT_FILE_MAX = 64 * 1024
_CHECKPOINT_FILE_KEYS = {
    "format": str, "dock": str, "seq": int, "head": str,
    "time": str, "public_key": str, "signature": str,
}  # fmt: skip


def checkpoint_file_text(dock_id: str, cp: Checkpoint) -> str:
    """A checkpoint file (package docstring): one canonical JSON line."""
    body = {
        "format": CHECKPOINT_FILE_FORMAT,
        "dock": dock_id,
        "seq": cp.seq,
        "head": cp.head_hash,
        "time": cp.time,
        "public_key": cp.public_key,
        "signature": cp.signature,
        "fingerprint": fingerprint(bytes.fromhex(cp.public_key)),
    }
    return canonical_json(body) + "\n"


def parse_checkpoint(raw: bytes | str, source: str) -> OutsideCheckpoint:
    """A checkpoint file's content; ValueError says what is wrong with it. Only its form
    is checked here: whose signature it carries is for verify() to decide."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for key, want in _CHECKPOINT_FILE_KEYS.items():
        value = obj.get(key)
        if type(value) is not want:
            raise ValueError(f"{key} missing or not {want.__name__}")
    if obj["format"] != CHECKPOINT_FILE_FORMAT:
        raise ValueError(f"format {obj['format']!r} is not {CHECKPOINT_FILE_FORMAT}")
    if obj["seq"] < 1:
        raise ValueError("seq must be 1 or more")
    if not HEX64.fullmatch(obj["head"]) or not HEX64.fullmatch(obj["public_key"]):
        raise ValueError("head and public_key must be 64 lowercase hex digits")
    if not HEX128.fullmatch(obj["signature"]):
        raise ValueError("signature must be 128 lowercase hex digits")
    cp = Checkpoint(obj["seq"], obj["head"], obj["time"], obj["public_key"], obj["signature"])
    return OutsideCheckpoint(obj["dock"], cp, source)


def read_checkpoint_file(path: str) -> OutsideCheckpoint:
    """Read a checkpoint file; FileNotFoundError when there is none, ValueError (with the
    path) when it is not one."""
    with open(path, "rb") as f:
        raw = f.read(_CHECKPOINT_FILE_MAX + 1)
    if len(raw) > _CHECKPOINT_FILE_MAX:
        raise ValueError(f"{path}: too big for a checkpoint file")
    try:
        return parse_checkpoint(raw, path)
    except ValueError as exc:
        raise ValueError(f"{path}: not a checkpoint file: {exc}") from None


def keep_outside(
    path: str, dock_id: str, cp: Checkpoint, hash_at: Callable[[int], str | None]
) -> None:
    """Replace the copy outside the database with ``cp`` if ``cp`` extends it.

    Only a checkpoint further on, of a log that still holds the copy's head, replaces
    it: after a cut or a rewrite the copy keeps what the log no longer has, for
    verify() to show. Never raises: the entry is committed; a copy that cannot be
    written is logged as an error (verify then compares with an older one, or says
    it has none).
    """
    try:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)  # two processes signing: one at a time
            try:
                kept = read_checkpoint_file(path)
            except FileNotFoundError:
                kept = None
            if kept is not None:
                if kept.checkpoint.seq >= cp.seq:
                    return
                if (
                    kept.dock_id != dock_id
                    or hash_at(kept.checkpoint.seq) != kept.checkpoint.head_hash
                ):
                    log.error(
                        "audit log no longer holds entry %d as signed in %s: the log "
                        "was cut or rewritten; that copy is kept, not replaced (run "
                        "`dock audit verify`)",
                        kept.checkpoint.seq,
                        path,
                    )
                    return
            text = checkpoint_file_text(dock_id, cp)
            data = text.encode("utf-8")
            write_replacing(path, lambda out: out.write(data), dfd)
        finally:
            os.close(dfd)
    except (OSError, ValueError) as exc:
        log.error("cannot keep the audit checkpoint outside the database in %s: %s", path, exc)
