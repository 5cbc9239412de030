"""Evidence exports: an approved 'export' request as a new BagIt package of copies, with
the written description the regulations ask for, and optionally an ISO 9660 image.

Apart from :mod:`dock.evidence.access` (the requests and the register it checks and
writes) so what leaves the dock, and how it is described, reads on its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.evidence.access import AccessError, AccessRegister, AccessRequest
from dock.evidence.bagit import make_bag, validate_bag
from dock.evidence.iso import write_iso
from dock.support.text import escaped, safe_name

DESCRIPTION = "description.txt"


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
        raise register.deny(who, request_id, "export", "name the extractor and the place")
    req = register.authorised(request_id, who, "export")
    for target in (dest_dir, iso_path):
        if target is not None and _inside(target, evidence_dir):
            raise register.deny(
                who, request_id, "export", "an export may not be written into the archive"
            )
    if iso_path is not None and os.path.lexists(iso_path):
        raise register.deny(who, request_id, "export", f"{iso_path} already exists")

    entries: list[tuple[str, dict[str, Any]]] = []
    used: set[str] = {DESCRIPTION}
    for serial, rid in req.recordings:
        e = register.store.archived(serial, rid)
        if e is None:
            raise register.deny(who, request_id, "export", f"{serial}/{rid} left the archive")
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
            raise register.deny(who, request_id, "export", f"bag not built: {exc}") from exc

    try:
        report = validate_bag(bag.path)
        if not report.ok:
            raise AccessError(f"the new bag does not validate: {report.problems}")
        iso_sha = write_iso(bag.path, iso_path, f"EXPORT_{request_id}") if iso_path else None
    except Exception as exc:
        _remove_tree(bag.path)
        raise register.deny(who, request_id, "export", f"export failed: {exc}") from exc

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
