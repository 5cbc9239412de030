"""The yearly hand-over of a year's records to the unit's archivist (REQUIREMENTS.md §6;
004 att.2 §7: the files made in a year are handed to the unit's archivist by March of the
next year, who files them by the end of June).

:func:`handover` writes one BagIt bag (RFC 8493, the project's :mod:`.bagit`) holding:

``data/register.json``
    the year's register: every recording that started in the year (serial, id, officer
    and their name, start and end, size, SHA-256, the sealed package it is in, its cases
    and the holds that cover it), the officers, the cases, the holds placed, the purges
    and the appraisals of the year, and which recordings of the year are not sealed yet;
``data/packages.txt``
    the year's sealed packages: each package's path in the archive and the SHA-256 of its
    tag manifest (as its ``seal`` audit entry has it), then one line per recording with
    its SHA-256: enough for the archivist to verify each package they copy;
``data/register.csv``
    the recordings again, one per line, for a spreadsheet.

The bag is validated after it is written, recorded in ``archive_handovers`` (year, who,
when, where, the tag manifest's digest; a second hand-over of the same year names the one
it re-issues) and audited (``archive_handover``), then the audit log is checkpointed.
The footage stays in the archive: the packages are listed with their hashes, not copied.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.evidence.appraisals import AppraisalRegister
from dock.evidence.bagit import make_bag, validate_bag
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_records import purges
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.retention_tables import ArchiveHandoverTable
from dock.storage.store import Store

FORMAT = "bwc-dock yearly hand-over 1"


class HandoverError(Exception):
    """A hand-over that cannot be made (one line); nothing was recorded."""


@dataclass(frozen=True)
class Handover:
    id: int
    year: int
    path: str
    handed_by: str
    handed_at: float
    recordings: int
    packages: int
    tagmanifest_sha256: str
    #: The earlier hand-over of the same year this one re-issues, else None.
    reissue_of: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "year": self.year, "path": self.path, "handed_by": self.handed_by,
            "handed_at": utc_iso(self.handed_at), "recordings": self.recordings,
            "packages": self.packages, "tagmanifest_sha256": self.tagmanifest_sha256,
            "reissue_of": self.reissue_of,
        }  # fmt: skip


def year_bounds(year: int, tz: str) -> tuple[float, float]:
    """[1 January 00:00, next 1 January 00:00) of ``year`` in the dock's time zone."""
    zone = ZoneInfo(tz)
    return (
        datetime(year, 1, 1, tzinfo=zone).timestamp(),
        datetime(year + 1, 1, 1, tzinfo=zone).timestamp(),
    )


def handover(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    year: int,
    dest: str,
    handed_by: str,
    tz: str,
    clock: Callable[[], float] = time.time,
) -> Handover:
    """Write the year's hand-over bag at ``dest`` (which must not exist), validate it,
    record and audit it."""
    now = float(clock())
    if not 2000 <= year <= datetime.fromtimestamp(now, ZoneInfo(tz)).year:
        raise HandoverError(f"year {year} is not a year this dock can have records of")
    dest = os.path.abspath(dest)
    if os.path.lexists(dest):
        raise HandoverError(f"{dest} exists already: a hand-over never replaces")
    if not os.path.isdir(os.path.dirname(dest)):
        raise HandoverError(f"{os.path.dirname(dest)} is not a folder")
    register = _register(store, audit, seals, year, tz)
    table = ArchiveHandoverTable(store)
    earlier = table.of_year(year)
    reissue_of = earlier[-1]["id"] if earlier else None
    register["handed_by"] = handed_by
    register["handed_at"] = utc_iso(now)
    register["reissue_of"] = reissue_of
    info: dict[str, str | list[str]] = {
        "Source-Organization": "bwc-dock",
        "External-Description": f"Records of {year} handed to the unit's archivist "
        "(004 att.2 §7)" + (f"; re-issue of hand-over {reissue_of}" if reissue_of else ""),
        "External-Identifier": f"handover-{year}",
        "Bag-Group-Identifier": str(year),
        "Contact-Name": handed_by,
    }
    tmp = tempfile.mkdtemp(prefix=".handover-", dir=os.path.dirname(dest))
    try:
        files = {
            "register.json": json.dumps(register, indent=2, sort_keys=True, ensure_ascii=False),
            "packages.txt": _packages_text(register),
            "register.csv": _csv(register["recordings"]),
        }
        payload = {}
        for name, text in files.items():
            path = os.path.join(tmp, name)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            payload[name] = path
        bag = make_bag(dest, payload, info, link=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = validate_bag(dest)
    if not report.ok:
        shutil.rmtree(dest, ignore_errors=True)
        raise HandoverError(f"the hand-over bag does not validate: {report.problems[0]}")
    values = {"year": year, "handed_by": handed_by, "handed_at": now, "path": dest,
              "manifest_sha256": bag.tagmanifest_sha256,
              "recordings": len(register["recordings"]), "reissue_of": reissue_of}  # fmt: skip
    with table.transaction():  # the record and its audit entry commit together
        handover_id = table.add(values)
        audit.append(
            AuditKind.ARCHIVE_HANDOVER,
            handed_by,
            f"year:{year}",
            {"handover": handover_id, "year": year, "path": dest,
             "tagmanifest_sha256": bag.tagmanifest_sha256,
             "recordings": len(register["recordings"]),
             "packages": len(register["packages"]), "reissue_of": reissue_of},
        )  # fmt: skip
    audit.checkpoint()
    return Handover(handover_id, year, dest, handed_by, now, len(register["recordings"]),
                    len(register["packages"]), bag.tagmanifest_sha256, reissue_of)  # fmt: skip


def handovers(store: Store) -> list[dict[str, Any]]:
    """Every hand-over made, oldest first."""
    return ArchiveHandoverTable(store).every()


def _register(
    store: Store, audit: AuditLog, seals: SealRegister, year: int, tz: str
) -> dict[str, Any]:
    start, end = year_bounds(year, tz)
    table = ArchiveHandoverTable(store)
    holds = HoldRegister(store, audit)  # read only
    sealed = seals.table.audited()
    links: dict[tuple[str, str], list[str]] = {}
    for link in table.case_links():
        links.setdefault((link["serial"], link["recording_id"]), []).append(link["case_number"])
    recordings, unsealed, officers = [], [], {}
    packages: dict[int, dict[str, Any]] = {}
    for e in store.archive_entries():
        began = e["start_ms"] / 1000 if e["start_ms"] and e["start_ms"] > 0 else e["archived_at"]
        if not start <= began < end:
            continue
        key = (e["serial"], e["recording_id"])
        officer = store.officer(e["officer_id"]) if e["officer_id"] else None
        if e["officer_id"]:
            officers[e["officer_id"]] = officer.name if officer is not None else ""
        seal = sealed.get(e["bag_id"])
        row = {
            "serial": e["serial"], "recording": e["recording_id"],
            "officer": e["officer_id"], "officer_name": officer.name if officer else "",
            "start": utc_iso(e["start_ms"] / 1000) if e["start_ms"] > 0 else None,
            "end": utc_iso(e["end_ms"] / 1000) if e["end_ms"] > 0 else None,
            "size": e["size"], "sha256": bytes(e["sha256"]).hex(), "path": e["path"],
            "package": None if seal is None else seal["bag"],
            "cases": sorted(links.get(key, [])),
            "holds": [h.id for h in holds.covering(*key)],
        }  # fmt: skip
        if seal is None:
            unsealed.append(f"{e['serial']}/{e['recording_id']}")
            continue
        recordings.append(row)
        pkg = packages.setdefault(
            seal["id"],
            {"bag": seal["bag"], "tagmanifest_sha256": seal["tagmanifest_sha256"], "members": []},
        )
        pkg["members"].append(row)
    cases = sorted({c for r in recordings for c in r["cases"]})
    held = [h.as_dict() for h in holds.records() if start <= h.placed_at < end]
    purged = [
        {k: (utc_iso(v) if k == "purged_at" else v) for k, v in p.items()}
        for p in purges(store)
        if start <= p["purged_at"] < end
    ]
    appraised = [
        a.as_dict() for a in AppraisalRegister(store, audit).every() if start <= a.proposed_at < end
    ]
    return {
        "format": FORMAT,
        "year": year,
        "time_zone": tz,
        "from": utc_iso(start),
        "to": utc_iso(end),
        "recordings": recordings,
        "packages": [
            {
                "bag": p["bag"],
                "tagmanifest_sha256": p["tagmanifest_sha256"],
                "recordings": [f"{m['serial']}/{m['recording']}" for m in p["members"]],
            }
            for p in packages.values()
        ],
        "officers": [{"officer": o, "name": n} for o, n in sorted(officers.items())],
        "cases": cases,
        "holds": held,
        "purges": purged,
        "appraisals": appraised,
        "not_sealed_yet": unsealed,
    }


def _packages_text(register: dict[str, Any]) -> str:
    by_key = {f"{r['serial']}/{r['recording']}": r for r in register["recordings"]}
    lines = [f"# {FORMAT}: the sealed packages of {register['year']} and their recordings"]
    for p in register["packages"]:
        lines.append(f"package {p['bag']} tagmanifest-sha256 {p['tagmanifest_sha256']}")
        for key in p["recordings"]:
            lines.append(f"  {by_key[key]['sha256']}  {by_key[key]['path']}")
    return "\n".join(lines) + "\n"


def _csv(recordings: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    cols = ["serial", "recording", "officer", "officer_name", "start", "end", "size", "sha256",
            "package", "cases", "holds"]  # fmt: skip
    w = csv.writer(out)
    w.writerow(cols)
    for r in recordings:
        w.writerow([";".join(map(str, r[c])) if isinstance(r[c], list) else r[c] for c in cols])
    return out.getvalue()


__all__ = ["FORMAT", "Handover", "HandoverError", "handover", "handovers", "year_bounds"]
