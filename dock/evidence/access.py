"""Access to archived footage: requests, approval, the access register, and exports.

REQUIREMENTS.md section 7: viewing or copying footage needs approval, and the keeper
registers who viewed or copied what, why, when and where (003 art.17; 004 att.3
art.15); only copies are handed out, never the sealed original (004 att.2 §5); an
evidence export is a disc-ready package with a written description naming the producer,
the extractor, and the time and place of extraction (001 art.19; 002 art.24; 003
art.16); nothing is released without authorisation (002 art.26).

So every use of footage goes through one approved request:

* :meth:`AccessRegister.request` records who asks for which recordings, why, and for
  what kind of use ('view', 'copy' or 'export');
* :meth:`AccessRegister.approve` needs a supervisor other than the requester, proving
  who they are with their own PIN; an approval expires (default seven days);
* :meth:`AccessRegister.record_access` writes the register (``access_log``, append-only:
  triggers refuse updates and deletes) and is refused for anything not approved;
* :func:`export` builds a NEW BagIt package of copies (never hard links into the
  archive or the sealed bags), with ``data/description.txt`` in Chinese and English, and
  optionally an ISO 9660 image (Joliet and Rock Ridge names) read back and compared file
  by file before it is published.

Every step, granted or refused, is appended to the tamper-evident audit log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.evidence.bagit import make_bag, validate_bag
from dock.storage.pins import verify as verify_pin
from dock.storage.register_tables import AccessTable
from dock.support.files import hash_file
from dock.support.text import escaped, safe_name

__all__ = [
    "ACTIONS",
    "KINDS",
    "AccessError",
    "AccessRegister",
    "AccessRequest",
    "ExportResult",
    "export",
    "parse_recording",
]

KINDS = ("view", "copy", "export")
#: What each kind of approval allows: an export is also a copy, a copy also a view.
ACTIONS: dict[str, frozenset[str]] = {
    "view": frozenset({"view"}),
    "copy": frozenset({"view", "copy"}),
    "export": frozenset({"view", "copy", "export"}),
}
DEFAULT_VALIDITY_S = 7 * 24 * 3600
DESCRIPTION = "description.txt"


class AccessError(Exception):
    """A request, approval, access or export that is not allowed (already audited)."""


def parse_recording(text: str) -> tuple[str, str]:
    """``SERIAL:RECORDING`` (or ``SERIAL/RECORDING``) as a (serial, recording_id) pair."""
    for sep in (":", "/"):
        serial, found, rid = text.partition(sep)
        if found and serial.strip() and rid.strip():
            return serial.strip(), rid.strip()
    raise ValueError(f"{text!r}: give a recording as SERIAL:RECORDING")


def _what(recording: tuple[str, str]) -> str:
    return f"{recording[0]}/{recording[1]}"


@dataclass(frozen=True)
class AccessRequest:
    """One request as stored; ``recordings`` are (serial, recording_id) pairs."""

    id: int
    requester: str
    purpose: str
    recordings: tuple[tuple[str, str], ...]
    kind: str
    requested_at: float
    approved_by: str | None
    approved_at: float | None
    refused_by: str | None
    refused_at: float | None
    refused_reason: str | None
    expires_at: float | None

    def state(self, now: float) -> str:
        """'pending', 'approved', 'refused' or 'expired'."""
        if self.refused_reason is not None:
            return "refused"
        if self.approved_by is None:
            return "pending"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "approved"

    def as_dict(self, now: float) -> dict[str, Any]:
        out = asdict(self)
        out["recordings"] = [_what(r) for r in self.recordings]
        out["state"] = self.state(now)
        for key in ("requested_at", "approved_at", "refused_at", "expires_at"):
            out[key] = None if out[key] is None else utc_iso(out[key])
        return out


def _request(row: Any) -> AccessRequest:
    return AccessRequest(
        id=row["id"],
        requester=row["requester"],
        purpose=row["purpose"],
        recordings=tuple((s, r) for s, r in json.loads(row["recordings"])),
        kind=row["kind"],
        requested_at=row["requested_at"],
        approved_by=row["approved_by"],
        approved_at=row["approved_at"],
        refused_by=row["refused_by"],
        refused_at=row["refused_at"],
        refused_reason=row["refused_reason"],
        expires_at=row["expires_at"],
    )


class AccessRegister:
    """Requests and the register of every access, in the dock's database."""

    def __init__(
        self,
        store: Any,
        audit: Any,
        *,
        clock: Callable[[], float] = time.time,
        validity_s: float = DEFAULT_VALIDITY_S,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.validity_s = validity_s
        self.table = AccessTable(store)

    # ------------------------------------------------------------------ reading
    def get(self, request_id: int) -> AccessRequest | None:
        row = self.table.request(request_id)
        return None if row is None else _request(row)

    def requests(self) -> list[AccessRequest]:
        return [_request(r) for r in self.table.requests()]

    def log(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """The register: who did what to which recording, under which request, when, where."""
        return self.table.log(request_id)

    # ------------------------------------------------------------------ steps
    def _deny(self, actor: str, request_id: int | None, step: str, why: str) -> AccessError:
        """Audit a refusal and return the exception to raise: refusals leave a trace too."""
        self.audit.append(
            AuditKind.ACCESS_DENIED,
            actor or "?",
            f"access_request:{request_id}" if request_id is not None else "access_request",
            {"step": step, "reason": why},
        )
        return AccessError(why)

    def request(
        self,
        requester: str,
        purpose: str,
        recordings: Iterable[tuple[str, str] | str],
        kind: str,
    ) -> AccessRequest:
        """Record who asks for which archived recordings, why, and for what kind of use."""
        pairs: list[tuple[str, str]] = []
        try:
            for r in recordings:
                pair = parse_recording(r) if isinstance(r, str) else (str(r[0]), str(r[1]))
                if pair not in pairs:
                    pairs.append(pair)
        except (ValueError, IndexError, TypeError) as exc:
            raise self._deny(requester, None, "request", str(exc)) from None
        if not requester.strip():
            raise self._deny(requester, None, "request", "the requester must be named")
        if not purpose.strip():
            raise self._deny(requester, None, "request", "a request must say why (purpose)")
        if kind not in KINDS:
            raise self._deny(requester, None, "request", f"kind must be one of {KINDS}")
        if not pairs:
            raise self._deny(requester, None, "request", "name at least one recording")
        missing = [_what(p) for p in pairs if self.store.archived(*p) is None]
        if missing:
            raise self._deny(requester, None, "request", f"not in the archive: {missing}")
        request_id = self.table.add_request(
            requester, purpose.strip(), json.dumps(pairs), kind, self.clock()
        )
        self.audit.append(
            AuditKind.ACCESS_REQUEST,
            requester,
            f"access_request:{request_id}",
            {"kind": kind, "purpose": purpose.strip(), "recordings": [_what(p) for p in pairs]},
        )
        return self.get(request_id)  # type: ignore[return-value]

    def _supervisor_decides(
        self, request_id: int, supervisor_id: str, pin: str, step: str
    ) -> AccessRequest:
        """The request, pending, and a supervisor who proved who they are; else refused."""
        check = verify_pin(self.store, self.audit, supervisor_id, pin, f"access_{step}")
        req = self.get(request_id)
        officer = self.store.officer(supervisor_id)
        why = None
        if req is None:
            why = f"no access request {request_id}"
        elif check.locked:
            why = "supervisor PIN locked: another supervisor unlocks it"
        elif officer is None or officer.role != "supervisor" or officer.disabled:
            why = f"{supervisor_id} is not an active supervisor"
        elif not check.ok:
            why = "wrong supervisor PIN"
        elif req.state(self.clock()) != "pending":
            why = f"request {request_id} is already {req.state(self.clock())}"
        elif step == "approve" and req.requester == supervisor_id:
            why = "a supervisor cannot approve their own request"
        if why is not None:
            raise self._deny(supervisor_id, request_id, step, why)
        assert req is not None
        return req

    def approve(
        self,
        request_id: int,
        supervisor_id: str,
        supervisor_pin: str,
        *,
        valid_for_s: float | None = None,
    ) -> AccessRequest:
        """A supervisor (not the requester) approves with their own PIN, for a limited time."""
        self._supervisor_decides(request_id, supervisor_id, supervisor_pin, "approve")
        now = self.clock()
        expires = now + (self.validity_s if valid_for_s is None else valid_for_s)
        decided = self.table.approve(request_id, supervisor_id, now, expires)
        if not decided:  # decided by someone else meanwhile
            raise self._deny(supervisor_id, request_id, "approve", "already decided")
        self.audit.append(
            AuditKind.ACCESS_APPROVE,
            supervisor_id,
            f"access_request:{request_id}",
            {"expires_at": utc_iso(expires)},
        )
        self.audit.checkpoint()  # an authorisation is signed at once
        return self.get(request_id)  # type: ignore[return-value]

    def refuse(
        self, request_id: int, supervisor_id: str, supervisor_pin: str, reason: str
    ) -> AccessRequest:
        """A supervisor refuses a pending request, saying why."""
        if not reason.strip():
            raise self._deny(supervisor_id, request_id, "refuse", "a refusal must say why")
        self._supervisor_decides(request_id, supervisor_id, supervisor_pin, "refuse")
        decided = self.table.refuse(request_id, supervisor_id, self.clock(), reason.strip())
        if not decided:
            raise self._deny(supervisor_id, request_id, "refuse", "already decided")
        self.audit.append(
            AuditKind.ACCESS_REFUSE,
            supervisor_id,
            f"access_request:{request_id}",
            {"reason": reason.strip()},
        )
        return self.get(request_id)  # type: ignore[return-value]

    def authorised(
        self, request_id: int, who: str, action: str, recordings: Sequence[tuple[str, str]] = ()
    ) -> AccessRequest:
        """The request if it is approved, unexpired and covers ``action`` on ``recordings``;
        otherwise the refusal is audited and :class:`AccessError` raised."""
        req = self.get(request_id)
        if req is None:
            raise self._deny(who, request_id, action, f"no access request {request_id}")
        state = req.state(self.clock())
        if state != "approved":
            raise self._deny(who, request_id, action, f"request {request_id} is {state}")
        if action not in ACTIONS[req.kind]:
            raise self._deny(
                who, request_id, action, f"request {request_id} allows {req.kind}, not {action}"
            )
        outside = [_what(r) for r in recordings if r not in req.recordings]
        if outside:
            raise self._deny(who, request_id, action, f"not covered by the request: {outside}")
        return req

    def record_access(
        self,
        request_id: int,
        who: str,
        recording: tuple[str, str] | str,
        action: str,
        *,
        place: str | None = None,
    ) -> int:
        """Register one view/copy/export under an approved request; returns the entry id."""
        if isinstance(recording, str):
            pair = parse_recording(recording)
        else:
            pair = (str(recording[0]), str(recording[1]))
        self.authorised(request_id, who, action, [pair])
        where = place or f"dock {self.audit.dock_id}"
        entry = self.table.add_entry(request_id, who, _what(pair), action, self.clock(), where)
        self.audit.append(
            AuditKind.ACCESS_RECORD,
            who,
            _what(pair),
            {"request": request_id, "action": action, "place": where, "entry": entry},
        )
        return entry


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportResult:
    """Where the package went, and the seal recorded in the audit log."""

    bag_path: str
    iso_path: str | None
    tagmanifest_sha256: str
    iso_sha256: str | None = None


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def _local(t: float, tz: str) -> str:
    return f"{utc_iso(t)} UTC / {local_display(t, tz)}"


def _description(
    req: AccessRequest,
    entries: list[tuple[str, dict[str, Any]]],
    *,
    dock_id: str,
    unit: str,
    extractor: str,
    place: str,
    now: float,
    tz: str,
    approver_name: str,
) -> str:
    """The written description the regulations ask for, in Chinese and English."""
    lines = [
        "执法记录仪视音频证据提取说明",
        "Body-worn camera evidence: extraction description",
        "",
        f"制作者 Producer: 执法记录仪采集站 dock {dock_id}" + (f", {unit}" if unit else ""),
        f"提取人 Extractor: {extractor}",
        f"提取时间 Extraction time: {_local(now, tz)}",
        f"提取地点 Extraction place: {place}",
        f"申请编号 Request: {req.id} ({req.kind}), 申请人 requested by {req.requester}"
        f" at {_local(req.requested_at, tz)}",
        f"用途 Purpose: {req.purpose}",
        f"批准人 Approved by: {req.approved_by}"
        + (f" ({approver_name})" if approver_name else "")
        + (f" at {_local(req.approved_at, tz)}" if req.approved_at is not None else ""),
        "",
        f"文件 Files ({len(entries)}):",
    ]
    for n, (name, e) in enumerate(entries, 1):
        lines += [
            f"{n}. data/{name}",
            f"   SHA-256: {bytes(e['sha256']).hex()}",
            f"   大小 Size: {e['size']} bytes",
            # as the recorder stated them, escaped: a line break may not forge a line here
            f"   记录仪 Recorder: {escaped(e['serial'])}, "
            f"录像编号 Recording: {escaped(e['recording_id'])}",
            f"   执法人员 Officer: {escaped(e['officer_id'] or '-')}",
            f"   拍摄开始 Capture start: {_local(e['start_ms'] / 1000, tz)}",
            f"   拍摄结束 Capture end:   {_local(e['end_ms'] / 1000, tz)}",
        ]
    lines += [
        "",
        "本包所含文件均为复制件，原始文件仍封存于采集站证据库，未作任何改动。",
        "These files are copies; the originals remain sealed in the dock's archive, unchanged.",
        "校验：本包为 BagIt (RFC 8493) 格式，manifest-sha256.txt 列出每个文件的 SHA-256。",
        "Verify: this is a BagIt (RFC 8493) package; manifest-sha256.txt lists every file's",
        "SHA-256, and the SHA-256 of tagmanifest-sha256.txt is recorded in the dock's audit log.",
        "",
    ]
    return "\n".join(lines)


def export(
    register: AccessRegister,
    request_id: int,
    dest_dir: str,
    *,
    extractor: str,
    place: str,
    evidence_dir: str,
    dock_id: str,
    iso_path: str | None = None,
    unit: str = "",
    timezone: str = "Asia/Shanghai",
    actor: str | None = None,
) -> ExportResult:
    """Export an approved 'export' request as a new BagIt package of copies (and an ISO).

    The payload is copied, hashed and read back against the archive's SHA-256
    (``link=False``: a hard link would hand out the sealed original's inode). ``actor``
    is who runs the export (default the extractor); both are audited.
    """
    extractor, place = " ".join(extractor.split()), " ".join(place.split())  # one line each
    who = actor or extractor
    if not extractor or not place:
        raise register._deny(who, request_id, "export", "name the extractor and the place")
    req = register.authorised(request_id, who, "export")
    for target in (dest_dir, iso_path):
        if target is not None and _inside(target, evidence_dir):
            raise register._deny(
                who, request_id, "export", "an export may not be written into the archive"
            )
    if iso_path is not None and os.path.lexists(iso_path):
        raise register._deny(who, request_id, "export", f"{iso_path} already exists")

    entries: list[tuple[str, dict[str, Any]]] = []
    used: set[str] = {DESCRIPTION}
    for serial, rid in req.recordings:
        e = register.store.archived(serial, rid)
        if e is None:
            raise register._deny(who, request_id, "export", f"{serial}/{rid} left the archive")
        name = os.path.basename(e["path"])
        if name in used:
            name = f"{safe_name(serial, 40)}_{safe_name(rid)}_{name}"
        used.add(name)
        entries.append((name, e))

    now = register.clock()
    approver = register.store.officer(req.approved_by) if req.approved_by else None
    text = _description(
        req,
        entries,
        dock_id=dock_id,
        unit=unit,
        extractor=extractor,
        place=place,
        now=now,
        tz=timezone,
        approver_name=approver.name if approver else "",
    )
    os.makedirs(dest_dir, exist_ok=True)
    if iso_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(iso_path)), exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    bag_dir = os.path.join(dest_dir, f"export-{request_id}-{stamp}")
    if os.path.lexists(bag_dir):
        bag_dir += f"-{secrets.token_hex(3)}"
    info: dict[str, str | list[str]] = {
        "Source-Organization": unit or dock_id,
        "External-Description": f"Evidence export under access request {request_id}: "
        f"{len(entries)} body-worn camera recording(s), copies of the dock's archive",
        "External-Identifier": os.path.basename(bag_dir),
        "Contact-Name": extractor,
        "Dock-Id": dock_id,
        "Extraction-Time": utc_iso(now),
        "Extraction-Place": place,
        "Access-Request": str(request_id),
        "Approved-By": req.approved_by or "",
        "Recording-Ids": [f"{e['serial']}/{e['recording_id']}" for _, e in entries],
    }
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".export-desc-") as tmp:
        desc = os.path.join(tmp, DESCRIPTION)
        with open(desc, "w", encoding="utf-8") as f:
            f.write(text)
        payload = {DESCRIPTION: desc}
        payload.update({name: os.path.join(evidence_dir, e["path"]) for name, e in entries})
        known = {name: bytes(e["sha256"]) for name, e in entries}
        try:
            bag = make_bag(bag_dir, payload, info, link=False, known_sha256=known)
        except Exception as exc:
            raise register._deny(who, request_id, "export", f"bag not built: {exc}") from exc

    try:
        report = validate_bag(bag.path)
        if not report.ok:
            raise AccessError(f"the new bag does not validate: {report.problems}")
        iso_sha = write_iso(bag.path, iso_path, f"EXPORT_{request_id}") if iso_path else None
    except Exception as exc:
        _remove_tree(bag.path)
        raise register._deny(who, request_id, "export", f"export failed: {exc}") from exc

    register.audit.append(
        AuditKind.ACCESS_EXPORT,
        who,
        f"access_request:{request_id}",
        {
            "extractor": extractor,
            "place": place,
            "bag": bag.path,
            "tagmanifest_sha256": bag.tagmanifest_sha256,
            "payload_oxum": bag.payload_oxum,
            "iso": iso_path,
            "iso_sha256": iso_sha,
            "recordings": [f"{e['serial']}/{e['recording_id']}" for _, e in entries],
        },
    )
    for _, e in entries:
        register.record_access(
            request_id, extractor, (e["serial"], e["recording_id"]), "export", place=place
        )
    register.audit.checkpoint()
    return ExportResult(bag.path, iso_path, bag.tagmanifest_sha256, iso_sha)


def _remove_tree(path: str) -> None:
    """Remove a failed export's bag (its files are read-only, its folders are not)."""
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- ISO 9660

_JOLIET_BAD = re.compile(r"[*/:;?\\\x00-\x1f]")
JOLIET_MAX = 64  # pycdlib counts UTF-8 bytes (the standard: 64 UCS-2 characters)
ISO_FILE_MAX = 30  # level 3: name + "." + extension, without ";1"
ISO_DIR_MAX = 31


def _cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``limit`` bytes."""
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def _unique(name: str, used: set[str], limit: int, ext: str = "", mark: str = "~") -> str:
    """``name`` + ``ext`` cut to ``limit`` UTF-8 bytes, made unique with a ``~N`` tail."""
    room = limit - len(ext.encode("utf-8"))
    candidate, n = _cut(name, room) + ext, 1
    while candidate.upper() in used:
        tail = f"{mark}{n}"
        candidate = _cut(name, room - len(tail)) + tail + ext
        n += 1
    used.add(candidate.upper())
    return candidate


def _iso9660_name(name: str, used: set[str], is_dir: bool) -> str:
    """A d-character name (A-Z 0-9 _) for readers that know only plain ISO 9660."""

    def clean(s: str) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", s.upper())

    if is_dir:
        return _unique(clean(name) or "_", used, ISO_DIR_MAX, mark="_")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = "." + clean(ext)[:8] if ext else "."
    return _unique(clean(stem) or "_", used, ISO_FILE_MAX, suffix, mark="_")


def _joliet_name(name: str, used: set[str]) -> str:
    """The name Windows shows: Unicode kept (Chinese too), cut to 64 UTF-8 bytes (pycdlib's
    limit) with the extension kept; Rock Ridge keeps the full name."""
    clean = _JOLIET_BAD.sub("_", name)
    stem, dot, ext = clean.rpartition(".")
    if dot and stem and len(ext) < 8:
        return _unique(stem, used, JOLIET_MAX, "." + ext)
    return _unique(clean, used, JOLIET_MAX)


class _Hasher:
    """A write-only file that only hashes: reading back an ISO without a temp copy."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)


def write_iso(bag_dir: str, iso_path: str, volume: str) -> str:
    """Write ``bag_dir`` as an ISO 9660 image (folder at the disc's root), ready to burn.

    Joliet carries the names as Windows shows them (long, Chinese), Rock Ridge as
    Linux/macOS show them, and plain ISO 9660 gets mangled d-character names. The image
    is written under a temporary name, fsynced, read back and every file compared by
    SHA-256 with the bag, and only then renamed into place. Returns the image's SHA-256.
    """
    import pycdlib  # only needed for discs

    top = os.path.basename(os.path.normpath(bag_dir))
    volume = re.sub(r"[^A-Z0-9_]", "_", volume.upper())[:32]
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=volume, joliet=3, rock_ridge="1.09")
    files: list[tuple[str, str, str, str]] = []  # (disk path, iso, joliet, rock ridge)
    top_iso = _iso9660_name(top, set(), True)
    top_j = "/" + _joliet_name(top, set())
    dirs = {bag_dir: (f"/{top_iso}", top_j, f"/{top}")}
    iso_used: dict[str, set[str]] = {f"/{top_iso}": set()}
    joliet_used: dict[str, set[str]] = {top_j: set()}
    try:
        iso.add_directory(f"/{top_iso}", rr_name=top, joliet_path=top_j)
        for dirpath, dirnames, filenames in os.walk(bag_dir):
            dirnames.sort()
            parent_iso, parent_j, parent_rr = dirs[dirpath]
            names = [(d, True) for d in dirnames] + [(f, False) for f in sorted(filenames)]
            for name, is_dir in names:
                iso_name = _iso9660_name(name, iso_used[parent_iso], is_dir)
                j_name = _joliet_name(name, joliet_used[parent_j])
                iso_p = f"{parent_iso}/{iso_name}"
                j_p, rr_p = f"{parent_j}/{j_name}", f"{parent_rr}/{name}"
                if is_dir:
                    iso.add_directory(iso_p, rr_name=name, joliet_path=j_p)
                    dirs[os.path.join(dirpath, name)] = (iso_p, j_p, rr_p)
                    iso_used[iso_p], joliet_used[j_p] = set(), set()
                else:
                    src = os.path.join(dirpath, name)
                    iso.add_file(src, iso_path=iso_p + ";1", rr_name=name, joliet_path=j_p)
                    files.append((src, iso_p + ";1", j_p, rr_p))
        folder = os.path.dirname(os.path.abspath(iso_path))
        tmp = os.path.join(folder, f".{os.path.basename(iso_path)}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "xb") as out:
                iso.write_fp(out)
                out.flush()
                os.fsync(out.fileno())
            _check_iso(tmp, files)
            os.chmod(tmp, 0o444)
            if os.path.lexists(iso_path):
                raise FileExistsError(iso_path)
            os.rename(tmp, iso_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    finally:
        iso.close()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return hash_file(iso_path).hex


def _check_iso(path: str, files: list[tuple[str, str, str, str]]) -> None:
    """Read the image back: every file's bytes by its Joliet name, and its ISO 9660 and
    Rock Ridge names present with the same length (they share the file's extent)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        for src, iso_p, j_p, rr_p in files:
            h = _Hasher()
            iso.get_file_from_iso_fp(h, joliet_path=j_p)
            if h.h.hexdigest() != hash_file(src).hex:
                raise OSError(f"ISO read-back: {j_p} does not match {src}")
            size = os.path.getsize(src)
            for key, p in (("iso_path", iso_p), ("rr_path", rr_p)):
                if iso.get_record(**{key: p}).get_data_length() != size:
                    raise OSError(f"ISO read-back: {p} is not {size} bytes")
    finally:
        iso.close()
