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
from dock.evidence.access import CATEGORIES, AccessError, AccessRegister, AccessRequest
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


def _person(store: Any, officer_id: str | None) -> str:
    """An officer number with the name the dock registered for it (escaped), or '-'."""
    if not officer_id:
        return "-"
    found = store.officer(officer_id)
    name = f" {found.name}" if found is not None and found.name else ""
    return escaped(f"{officer_id}{name}")


def _marks_line(marks: list[dict[str, Any]], tz: str) -> str:
    said = []
    for m in marks:
        zh, en = CATEGORIES.get(m["category"], (m["category"], m["category"]))
        scope = f"case {m['case_number']}" if m["case_number"] else "recording"
        said.append(
            f"{zh} {en} (mark {m['id']}, {scope}, by {escaped(m['marked_by'])} "
            f"at {_local(m['marked_at'], tz)})"
        )
    return "; ".join(said)


def _description(
    req: AccessRequest,
    entries: list[tuple[str, dict[str, Any]]],
    *,
    store: Any,
    dock_id: str,
    unit: str,
    extractor: str,
    place: str,
    now: float,
    tz: str,
    marks: dict[str, list[dict[str, Any]]],
) -> str:
    """The written description the regulations ask for, in Chinese and English: the
    maker (who recorded), the extractor, the extraction time and place (001 art.19; 003
    art.16), the person, time and place of each capture (002 art.24), the approval by the
    head of the keeping unit (001 art.19) and any confidentiality mark (002 art.26)."""
    makers = sorted({e["officer_id"] for _, e in entries if e["officer_id"]})
    station = f"{unit}, " if unit else ""
    if req.basis == "oversight":
        approval = (
            "批准 Approval: 监督部门直接调阅，无需批准 direct access by a supervisory body, "
            f"no approval needed (001 art.20(3); 002 art.25): {_person(store, req.requester)}"
        )
    else:
        approval = (
            f"批准人（保管单位负责人） Approved by (head of the keeping unit): "
            f"{_person(store, req.approved_by)}"
            + (f" at {_local(req.approved_at, tz)}" if req.approved_at is not None else "")
        )
    lines = [
        "执法记录仪视音频证据提取说明",
        "Body-worn camera evidence: extraction description",
        "",
        "制作人（拍摄民警） Maker (the officer who recorded): "
        + (", ".join(_person(store, m) for m in makers) or "-"),
        f"采集站 Capture station: {station}执法记录仪采集站 dock {dock_id}",
        f"提取人 Extractor: {extractor}",
        f"提取时间 Extraction time: {_local(now, tz)}",
        f"提取地点 Extraction place: {escaped(place)}",
        f"申请编号 Request: {req.id} ({req.kind}), 申请人 requested by "
        f"{_person(store, req.requester)} at {_local(req.requested_at, tz)}",
        f"用途 Purpose: {escaped(req.purpose)}",
        approval,
    ]
    if marks:
        lines.append(
            f"保密标记 Confidential: {len(marks)} recording(s) marked; handle under the "
            "confidentiality rules (002 art.26; 003 art.20)"
        )
    lines += ["", f"文件 Files ({len(entries)}):"]
    for n, (name, e) in enumerate(entries, 1):
        what = f"{e['serial']}/{e['recording_id']}"
        lines += [
            f"{n}. data/{name}",
            f"   SHA-256: {bytes(e['sha256']).hex()}",
            f"   大小 Size: {e['size']} bytes",
            # as the recorder stated them, escaped: a line break may not forge a line here
            f"   记录仪 Recorder: {escaped(e['serial'])}, "
            f"录像编号 Recording: {escaped(e['recording_id'])}",
            f"   拍摄人 Person capturing: {_person(store, e['officer_id'])}",
            f"   拍摄开始 Capture start: {_local(e['start_ms'] / 1000, tz)}",
            f"   拍摄结束 Capture end:   {_local(e['end_ms'] / 1000, tz)}",
            f"   拍摄地点 Capture place: {station}recorder of dock {dock_id} "
            "(the recorder reported no location)",
        ]
        if what in marks:
            lines.append(f"   保密标记 Confidential: {_marks_line(marks[what], tz)}")
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
    extractor: str = "",
    place: str = "",
    evidence_dir: str,
    dock_id: str,
    iso_path: str | None = None,
    unit: str = "",
    timezone: str = "Asia/Shanghai",
    actor: str | None = None,
    confirm_confidential: bool = False,
) -> ExportResult:
    """Export an approved 'export' request as a new BagIt package of copies (and an ISO).

    The payload is copied, hashed and read back against the archive's SHA-256
    (``link=False``: a hard link would hand out the sealed original's inode). ``actor``
    is who runs the export (default ``extractor``): the person the request names
    (:attr:`AccessRequest.runner`), else refused; ``extractor``, when given with
    ``actor``, must be that person's number or registered name. The register is written
    before the package (003 art.17). Recordings marked confidential need
    ``confirm_confidential``.
    """
    extractor, place = " ".join(extractor.split()), " ".join(place.split())  # one line each
    who = actor or extractor
    if not who:
        raise register.deny("?", request_id, "export", "name the extractor")
    person = register.store.officer(who)
    if extractor and extractor not in (who, person.name if person else who):
        raise register.deny(
            who, request_id, "export", f"the extractor named ({extractor}) is not {who}"
        )
    place = place or f"{unit + ', ' if unit else ''}dock {dock_id}"
    req = register.authorised(request_id, who, "export")
    marks = register.confidential(req)
    if marks and not confirm_confidential:
        raise register.deny(
            who, request_id, "export",
            f"{len(marks)} recording(s) are marked confidential: confirm the export to go on",
        )  # fmt: skip
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
    extractor_line = _person(register.store, who)
    text = _description(
        req,
        entries,
        store=register.store,
        dock_id=dock_id,
        unit=unit,
        extractor=extractor_line,
        place=place,
        now=now,
        tz=timezone,
        marks=marks,
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
        "Contact-Name": extractor_line,
        "Dock-Id": dock_id,
        "Extraction-Time": utc_iso(now),
        "Extraction-Place": place,
        "Access-Request": str(request_id),
        "Approved-By": req.approved_by or "",
        "Access-Basis": req.basis,
        "Recording-Ids": [f"{e['serial']}/{e['recording_id']}" for _, e in entries],
    }
    if marks:
        info["Confidential"] = sorted(
            f"{w}: {m['category']}" for w, found in marks.items() for m in found
        )
    # The register first (003 art.17): committed before a byte of the package exists.
    register.register(
        request_id, who, [(e["serial"], e["recording_id"]) for _, e in entries], "export",
        place=place,
    )  # fmt: skip
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
            "extractor": extractor_line,
            "extraction_time": utc_iso(now),
            "place": place,
            "basis": req.basis,
            "approved_by": req.approved_by,
            "approved_by_name": _person(register.store, req.approved_by),
            "approved_at": None if req.approved_at is None else utc_iso(req.approved_at),
            "confidential": sorted(marks),
            "bag": bag.path,
            "tagmanifest_sha256": bag.tagmanifest_sha256,
            "payload_oxum": bag.payload_oxum,
            "iso": iso_path,
            "iso_sha256": iso_sha,
            "recordings": [f"{e['serial']}/{e['recording_id']}" for _, e in entries],
        },
    )
    register.audit.checkpoint()
    return ExportResult(bag.path, iso_path, bag.tagmanifest_sha256, iso_sha)


def _remove_tree(path: str) -> None:
    """Remove a failed export's bag (its files are read-only, its folders are not)."""
    shutil.rmtree(path, ignore_errors=True)
