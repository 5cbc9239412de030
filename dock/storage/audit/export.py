"""The signed export: written by the dock, verified without the database by a supervisor."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from dock.storage.audit.chain import ListSource, Row, canonical_json, framed, verify_chain
from dock.storage.audit.model import (
    BAD_EXPORT_SIGNATURE,
    EXPORT_DOMAIN,
    EXPORT_FORMAT,
    HEX64,
    HEX128,
    MALFORMED,
    REMOVED,
    REORDERED,
    WRONG_KEY,
    Checkpoint,
    OutsideCheckpoint,
    VerifyReport,
)
from dock.storage.keys import fingerprint
from dock.support.files import write_replacing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def row_dict(r: Row) -> dict[str, Any]:
    """An entry's stored columns, as its export line holds them."""
    return {
        "seq": r.seq, "time": r.time, "kind": r.kind, "actor": r.actor,
        "subject": r.subject, "data": r.data, "prev_hash": r.prev_hash, "hash": r.hash,
    }  # fmt: skip


def chain_lines(*parts: Iterable[dict[str, Any]] | dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Single lines and streams of lines, in order: an export streamed, never held whole."""
    for part in parts:
        if isinstance(part, dict):
            yield part
        else:
            yield from part


def _export_signed_message(sha256_hex: str) -> bytes:
    return framed(EXPORT_DOMAIN) + framed(sha256_hex)


def write_export(path: str, lines: Iterable[dict[str, Any]], key: Ed25519PrivateKey) -> None:
    """The export, streamed, with its signed trailer: all of the file or none."""

    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        for line in lines:
            raw = (canonical_json(line) + "\n").encode("utf-8")
            digest.update(raw)
            out.write(raw)
        sha = digest.hexdigest()
        signature = key.sign(_export_signed_message(sha)).hex()
        trailer = {"type": "signature", "sha256": sha, "signature": signature}
        out.write((canonical_json(trailer) + "\n").encode("utf-8"))

    directory = os.path.dirname(os.path.abspath(path))
    dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        write_replacing(path, write, dfd)
    finally:
        os.close(dfd)


_LINE_KEYS = {
    "header": {
        "type", "format", "dock_id", "public_key", "fingerprint",
        "exported_at", "head_seq", "head_hash",
    },
    "entry": {"type", "seq", "time", "kind", "actor", "subject", "data", "prev_hash", "hash"},
    "checkpoint": {"type", "seq", "head_hash", "time", "public_key", "signature"},
    "signature": {"type", "sha256", "signature"},
}  # fmt: skip
_INT_KEYS = {"seq", "head_seq"}


class _Malformed(Exception):
    pass


def _parse_line(number: int, raw: bytes) -> dict[str, Any]:
    """One strictly canonical line: any other spelling of the same value is refused,
    so that no byte of the file can change without changing what it says."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Malformed(f"line {number}: not JSON ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("type") not in _LINE_KEYS:
        raise _Malformed(f"line {number}: not a header, entry, checkpoint or signature")
    if set(obj) != _LINE_KEYS[obj["type"]]:
        raise _Malformed(f"line {number}: unexpected fields for a {obj['type']} line")
    for key, value in obj.items():
        want = int if key in _INT_KEYS else str
        if type(value) is not want:
            raise _Malformed(f"line {number}: {key} must be {want.__name__}")
    try:
        canonical = canonical_json(obj)
    except ValueError as exc:
        raise _Malformed(f"line {number}: {exc}") from exc
    if canonical != text:
        raise _Malformed(f"line {number}: not in canonical form")
    return obj


def export_key(path: str) -> bytes | None:
    """The public key an export's header names (None if it names none readably): to
    compare its fingerprint with the dock's before trusting it."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
        header = json.loads(first)
        key = header.get("public_key") if isinstance(header, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return bytes.fromhex(key) if isinstance(key, str) and HEX64.fullmatch(key) else None


def verify_export(
    path: str,
    public_key_bytes: bytes | None = None,
    against: Sequence[OutsideCheckpoint] = (),
) -> VerifyReport:
    """Check an exported audit log on its own: what a supervisor runs.

    Without ``public_key_bytes`` the key named in the file is used and its fingerprint
    reported: compare it with the dock's known fingerprint, because anyone can sign a
    file with their own key. With it, a file signed by any other key fails. ``against``:
    checkpoints kept elsewhere (headquarters') whose heads the export must hold.
    """
    with open(path, "rb") as f:
        blob = f.read()
    try:
        header, rows, cps, trailer, signed_len = _parse_export(blob)
    except _Malformed as exc:
        return VerifyReport(ok=False, reason=MALFORMED, detail=str(exc))
    named = bytes.fromhex(header["public_key"])
    trusted = named if public_key_bytes is None else bytes(public_key_bytes)
    if named != trusted:
        return VerifyReport(
            ok=False,
            reason=WRONG_KEY,
            detail=f"export names key {fingerprint(named)}, expected {fingerprint(trusted)}",
            public_key_fingerprint=fingerprint(named),
        )
    for i in range(1, len(rows)):
        if rows[i].seq <= rows[i - 1].seq:
            return VerifyReport(
                ok=False,
                first_bad=min(rows[i].seq, rows[i - 1].seq),
                reason=REORDERED,
                detail=f"entry {rows[i].seq} comes after entry {rows[i - 1].seq}",
            )
    report = verify_chain(header["dock_id"], ListSource(rows), cps, trusted, against)
    report.needs_outside = False  # the file's signature covers where it ends
    if not report.ok:
        return report
    if (report.head_seq, report.head_hash) != (header["head_seq"], header["head_hash"]):
        report.ok = False
        report.first_bad = report.head_seq + 1 if header["head_seq"] > report.head_seq else None
        report.reason = REMOVED if header["head_seq"] > report.head_seq else MALFORMED
        report.detail = (
            f"the header says the log ends at entry {header['head_seq']} "
            f"({header['head_hash'][:16]}), the file ends at {report.head_seq}"
        )
        return report
    if report.last_checkpoint != report.head_seq:
        report.ok = False
        report.first_bad = report.last_checkpoint + 1
        report.reason = REMOVED
        report.detail = (
            f"entries {report.last_checkpoint + 1}..{report.head_seq} are not covered by a "
            "checkpoint (a dock's export always ends with one)"
        )
        return report
    sha = hashlib.sha256(blob[:signed_len]).hexdigest()
    from cryptography.exceptions import InvalidSignature  # loaded when a signature is checked
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        if trailer["sha256"] != sha or not HEX128.fullmatch(trailer["signature"]):
            raise InvalidSignature
        Ed25519PublicKey.from_public_bytes(trusted).verify(
            bytes.fromhex(trailer["signature"]), _export_signed_message(sha)
        )
    except InvalidSignature:
        report.ok = False
        report.reason = BAD_EXPORT_SIGNATURE
        report.detail = "the file's signature does not match its contents"
        return report
    report.notes.append(f"exported at {header['exported_at']}")
    return report


def _parse_export(
    blob: bytes,
) -> tuple[dict[str, Any], list[Row], list[Checkpoint], dict[str, Any], int]:
    if not blob.endswith(b"\n"):
        raise _Malformed("the file does not end with a newline (cut short?)")
    raw_lines = blob[:-1].split(b"\n")
    if len(raw_lines) < 2:
        raise _Malformed("no header and signature lines")
    parsed = [_parse_line(i + 1, raw) for i, raw in enumerate(raw_lines)]
    header, trailer = parsed[0], parsed[-1]
    if header["type"] != "header" or trailer["type"] != "signature":
        raise _Malformed("the first line must be the header and the last the signature")
    if header["format"] != EXPORT_FORMAT:
        raise _Malformed(f"unknown format {header['format']!r}")
    if not HEX64.fullmatch(header["public_key"]):
        raise _Malformed("the header's public key is not 64 lowercase hex digits")
    if header["fingerprint"] != fingerprint(bytes.fromhex(header["public_key"])):
        raise _Malformed("the header's fingerprint does not belong to its public key")
    rows: list[Row] = []
    cps: list[Checkpoint] = []
    seen_cp: set[int] = set()
    for number, obj in enumerate(parsed[1:-1], start=2):
        kind = obj.pop("type")
        if kind == "entry":
            rows.append(Row(**obj))
        elif kind == "checkpoint":
            if obj["seq"] in seen_cp:
                raise _Malformed(f"line {number}: a second checkpoint at {obj['seq']}")
            seen_cp.add(obj["seq"])
            cps.append(Checkpoint(**obj))
        else:
            raise _Malformed(f"line {number}: a {kind} line in the middle of the file")
    signed_len = len(blob) - len(raw_lines[-1]) - 1
    return header, rows, cps, trailer, signed_len
