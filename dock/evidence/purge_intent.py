"""A purge batch's intent: its record (who approved, the rule, the holds checked, each
purged file and the package) written with its ``purge_intent`` audit entry in one
transaction, before anything on disk changes (:mod:`.purging`'s docstring).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.policy import Policy
from dock.evidence.appraisals import Appraisal
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_batches import RECORD_FILE, Group, package_dir
from dock.evidence.retention import Instant
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import PurgeTable
from dock.storage.store import Store
from dock.support import crashpoints

RECORD_FORMAT = "bwc-dock purge record 1"


@dataclass(frozen=True)
class CaseFile:
    """The case file a recording is evidence in: it is kept as long as the case file
    (open: ``closed_at`` None)."""

    closed_at: Instant | None
    retention_days: int


#: ``(serial, recording_id) -> CaseFile | None``: where the dock learns about cases.
CaseLookup = Callable[[str, str], CaseFile | None]


def recording_start(entry: dict[str, Any]) -> float | None:
    """Seconds since the epoch, or None when the recorder gave no usable start."""
    start_ms = entry["start_ms"]
    ok = isinstance(start_ms, int) and not isinstance(start_ms, bool) and start_ms > 0
    return start_ms / 1000 if ok else None


def intent(
    store: Store,
    audit: AuditLog,
    seals: SealRegister,
    root: str,
    policy: Policy | None,
    at: float,
    group: Group,
    staying: list[dict[str, Any]],
    approved_by: tuple[str, ...],
    actor: str,
    holds: HoldRegister | None,
    case: CaseLookup | None,
    legacy: list[dict[str, Any]] | None = None,
    *,
    appraisal: Appraisal | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Write the batch and its ``purge_intent`` entry (one transaction); None when the
    package already has a batch (another process). ``extra``: more of the record (a
    copy freed after replication names its replicas)."""
    seal = group.seal
    token = f"{datetime.fromtimestamp(at, UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    new_bag = _new_bag_path(seal["bag"], token) if staying else None
    recordings = []
    for entry, reason in group.leaving:
        item: dict[str, Any] = {
            "serial": entry["serial"],
            "recording": entry["recording_id"],
            "officer": entry["officer_id"],
            "start": utc_iso(entry["start_ms"] / 1000) if recording_start(entry) else None,
            "path": entry["path"],
            "size": entry["size"],
            "sha256": bytes(entry["sha256"]).hex(),
            "reason": reason,
        }
        if holds is not None:
            item["holds_checked"] = [
                h.as_dict() for h in holds.covering(entry["serial"], entry["recording_id"])
            ]
        if case is not None:
            with contextlib.suppress(Exception):  # decided with it a moment ago
                found = case(entry["serial"], entry["recording_id"])
                item["case_file"] = None if found is None else asdict(found)
        recordings.append(item)
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "purge": token,
        "at": utc_iso(at),
        "approved_by": list(approved_by),
        "requested_by": actor,
        "rule": None
        if policy is None
        else {
            "policy": policy.name,
            "retention_days": policy.retention_days,
            "counted_from": "recording start",
        },
        "package": {
            "bag": seal["bag"],
            "tagmanifest_sha256": seal["tagmanifest_sha256"],
            "recordings": [m["recording_id"] for m in seals.members(seal["id"])],
        },
        "resealed_as": new_bag,
        "recordings": recordings,
    }
    if appraisal is not None:  # 004 att.2 §6: the approved appraisal it follows
        record["appraisal"] = {
            "id": appraisal.id,
            "proposed_by": appraisal.proposed_by,
            "approved_by": appraisal.decided_by,
            "approved_at": None if appraisal.decided_at is None else utc_iso(appraisal.decided_at),
            "reason": appraisal.reason,
        }
    if legacy is not None:
        record["earlier_purges"] = legacy
    if extra is not None:
        record.update(extra)
    record_json = json.dumps(record, sort_keys=True, ensure_ascii=False)
    record_sha = hashlib.sha256(record_json.encode("utf-8")).hexdigest()
    package_record = None
    if new_bag is not None:
        earlier = _earlier_records(package_dir(root, seal["bag"]))
        package_record = (
            json.dumps(
                {"format": RECORD_FORMAT, "package": new_bag, "purges": [*earlier, record]},
                sort_keys=True,
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        ).encode("utf-8")
    leaving_ids = [e["recording_id"] for e, _ in group.leaving]
    who = approved_by[0] if approved_by else "dock"
    table = PurgeTable(store)
    values = {"token": token, "serial": seal["serial"], "seal_id": seal["id"],
              "old_bag": seal["bag"], "old_digest": seal["tagmanifest_sha256"],
              "new_bag": new_bag, "actor": who, "record": record_json,
              "package_record": package_record, "created_at": at}  # fmt: skip
    with seals.exclusive():
        try:
            with table.transaction():  # the batch and its purge_intent entry: together
                batch_id = table.add_batch(values)
                for entry, reason in group.leaving:
                    table.add_member(batch_id, entry["serial"], entry["recording_id"], reason)
                audit.append(
                    AuditKind.PURGE_INTENT,
                    who,
                    seal["serial"],
                    {
                        "purge": token,
                        "bag": seal["bag"],
                        "tagmanifest_sha256": seal["tagmanifest_sha256"],
                        "resealed_as": new_bag,
                        "recordings": leaving_ids,
                        "approved_by": list(approved_by),
                        "appraisal": None if appraisal is None else appraisal.id,
                        "by": actor,
                        "record": record,
                        "record_sha256": record_sha,
                    },
                )
        except sqlite3.IntegrityError:
            return None
    crashpoints.reach("purge.intent.after")
    return table.batch(batch_id)


def _new_bag_path(old: str, token: str) -> str:
    """Beside the old package: its name with the purge's token (never a seal's name)."""
    base = os.path.basename(old).split("-purged-")[0]
    return os.path.join(os.path.dirname(old), f"{base}-purged-{token}")


def _earlier_records(bag_dir: str) -> list[Any]:
    """The purge records the old package carries (it was re-sealed before)."""
    try:
        with open(os.path.join(bag_dir, RECORD_FILE), encoding="utf-8") as f:
            found = json.load(f).get("purges", [])
    except (OSError, ValueError, AttributeError):
        return []
    return found if isinstance(found, list) else []
