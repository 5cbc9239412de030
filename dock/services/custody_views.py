"""What the officer's and the supervisor's pages read: a person's recorder now, their
returns against the offload deadline, their open explanation items; the hold, access and
explanation registers; the custody chain of a recorder or a recording.

Read-only, from the dock database (and the audit log, read by the caller): the web
process may read the evidence registers but not import ``dock.evidence`` (it holds no
key and writes nothing), so the rows it shows are made here, by the same code
(``HoldRecord``, ``AccessRequest``, ``deadline_report``) that the CLI shows them with.
"""

from __future__ import annotations

from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.explanations import State, state_of
from dock.domain.policy import Policy
from dock.evidence.access import AccessRegister
from dock.evidence.deadlines import deadline_report
from dock.evidence.holds import HoldRecord, HoldRegister, episode_recordings, episodes_of
from dock.services.handover_views import handover_of
from dock.storage.evidence_tables import HoldTable, SealTable
from dock.storage.register_tables import AccessTable, GapTable
from dock.storage.store import Custody, Store


def _episode(c: Custody) -> dict[str, Any]:
    return {
        "custody_id": c.id,
        "serial": c.serial,
        "officer_id": c.officer_id,
        "slot": c.slot_id,
        "out_at": utc_iso(c.out_at),
        "in_at": None if c.in_at is None else utc_iso(c.in_at),
        "override_by": c.override_by,
        "override_reason": c.override_reason,
    }


def recorder_now(store: Store, officer_id: str) -> dict[str, Any] | None:
    """The officer's open custody episode (one recorder each), or None."""
    c = store.open_custody_of_officer(officer_id)
    return None if c is None else _episode(c)


def returns(
    store: Store, officer_id: str, policy: Policy, tz: str, now: float, limit: int = 50
) -> list[dict[str, Any]]:
    """The officer's returned episodes, newest first, each with its offload deadline
    state (``done``, ``done_late``, ``on_time``, ``at_risk``, ``overdue``) and how many
    recordings of it are archived: what "is my footage safe" means to them."""
    report = {r["custody_id"]: r for r in deadline_report(store, policy, tz, now)}
    episodes = [e for e in store.custody_episodes() if e.officer_id == officer_id]
    out = []
    for e in sorted(episodes, key=lambda e: e.out_at, reverse=True):
        if e.in_at is None:
            continue
        d = report.get(e.id, {})
        rows = episode_recordings(store, e)
        out.append(
            {
                **_episode(e),
                "deadline": d.get("deadline_utc"),
                "offloaded_at": d.get("offloaded_at"),
                "state": d.get("state", "unknown"),
                "archived": len(rows),
                "erased_on_device": sum(1 for r in rows if r["erased_at"] is not None),
                "sealed": sum(1 for r in rows if r.get("bag_id") is not None),
                # who handed it back (001 art.19(3)), or that it waits for a signature
                "handover": handover_of(store, e.id),
            }
        )
        if len(out) >= limit:
            break
    return out


def footage_summary(store: Store, officer_id: str) -> dict[str, int]:
    """Counts over the officer's archived recordings (named as theirs by the recorder)."""
    rows = [r for r in store.archive_entries() if r["officer_id"] == officer_id]
    return {
        "archived": len(rows),
        "sealed": sum(1 for r in rows if r.get("bag_id") is not None),
        "erased_on_device": sum(1 for r in rows if r["erased_at"] is not None),
    }


def gap_items(
    store: Store, officer_id: str | None = None, open_only: bool = True
) -> list[dict[str, Any]]:
    """Explanation items (of one officer, or all), oldest first; only open ones unless
    told. Times stay epoch seconds here (``start_ms`` in ms, the recorder's clock)."""
    out = []
    for row in GapTable(store).items(officer_id, open_only):
        item = dict(row)
        item["recording_id"] = item["recording_id"] or None  # stored as ''
        item["state"] = str(state_of(item))  # where it is in the three steps
        out.append(item)
    return out


def gap_alerts(store: Store) -> list[dict[str, Any]]:
    """Items whose at-once alert stands (recording could not continue: 002 art.20) until
    a supervisor accepts the account, oldest first."""
    waiting = (str(State.OPEN), str(State.ACCOUNTED))
    return [g for g in gap_items(store) if g["alerted_at"] is not None and g["state"] in waiting]


def gap_items_in(store: Store, *states: State) -> list[dict[str, Any]]:
    """Items not yet done in one of ``states`` (the keeper's: reviewed), oldest first."""
    wanted = {str(s) for s in states}
    return [g for g in gap_items(store) if g["state"] in wanted]


def gaps_filed(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The last items filed by the keeper, newest first."""
    done = [g for g in gap_items(store, open_only=False) if g["state"] == str(State.FILED)]
    return sorted(done, key=lambda g: g["filed_at"], reverse=True)[:limit]


def holds(store: Store, now: float) -> list[dict[str, Any]]:
    """Every hold, newest first, with what it is on in words and whether it is active."""
    out = []
    for row in reversed(HoldTable(store).every()):
        record = HoldRecord(**row)
        out.append({**record.as_dict(), "active": record.active(now)})
    return out


def access_requests(store: Store, now: float) -> list[dict[str, Any]]:
    """Every access request, newest first, with its state at ``now``."""
    register = AccessRegister(store, None, clock=lambda: now)
    out = []
    for req in reversed(register.requests()):
        d = req.as_dict(now)
        d["log"] = AccessTable(store).log(req.id)
        out.append(d)
    return out


def access_request(store: Store, request_id: int, now: float) -> dict[str, Any] | None:
    req = AccessRegister(store, None, clock=lambda: now).get(request_id)
    return None if req is None else req.as_dict(now)


def request_size(store: Store, request_id: int) -> int:
    """Bytes of the archived recordings an access request names (for an export's progress)."""
    req = AccessRegister(store, None).get(request_id)
    if req is None:
        return 0
    total = 0
    for serial, rid in req.recordings:
        row = store.archived(serial, rid)
        total += 0 if row is None else int(row["size"])
    return total


def chain_of_recorder(store: Store, serial: str, now: float) -> dict[str, Any]:
    """A recorder's custody chain from the tables: its episodes with the recordings
    archived in each, its packages, and the holds on its recordings."""
    device = store.device(serial)
    episodes = []
    for e in store.custody_episodes(serial):
        rows = episode_recordings(store, e)
        episodes.append(
            {
                **_episode(e),
                "recordings": [r["recording_id"] for r in rows],
                "handover": handover_of(store, e.id),  # who handed it back (001 art.19(3))
            }
        )
    seals = [
        {k: s[k] for k in ("id", "bag", "state", "tagmanifest_sha256", "created_at")}
        for s in _seals_of(store, serial)
    ]
    held = [h for h in holds(store, now) if h["serial"] == serial or h["scope"] != "recording"]
    return {
        "serial": serial,
        "known": device is not None or bool(episodes),
        "device": None if device is None else {
            "model": device.model, "firmware": device.firmware, "lost": device.lost,
            "maintenance": device.maintenance, "enrolled_at": utc_iso(device.enrolled_at),
        },
        "episodes": episodes,
        "seals": seals,
        "holds": held,
    }  # fmt: skip


def chain_of_recording(
    store: Store, serial: str, recording_id: str, now: float
) -> dict[str, Any] | None:
    """One archived recording's chain: the episodes it belongs to, its archive row, its
    package, the holds covering it and the access requests naming it; None if unknown."""
    row = store.archived(serial, recording_id)
    if row is None:
        return None
    seal = None if row.get("bag_id") is None else SealTable(store).by_id(row["bag_id"])
    covering = _covering(store, serial, recording_id, now)
    name = f"{serial}/{recording_id}"
    return {
        "serial": serial,
        "recording_id": recording_id,
        "episodes": [_episode(e) for e in episodes_of(store, row)],
        "archive": {
            "officer_id": row["officer_id"],
            "start": utc_iso(row["start_ms"] / 1000),
            "end": utc_iso(row["end_ms"] / 1000),
            "size": row["size"],
            "sha256": bytes(row["sha256"]).hex(),
            "archived_at": utc_iso(row["archived_at"]),
            "erased_at": None if row["erased_at"] is None else utc_iso(row["erased_at"]),
            "second_copy_where": row["second_copy_where"],
        },
        "seal": None if seal is None else {
            "bag": seal["bag"], "state": seal["state"],
            "tagmanifest_sha256": seal["tagmanifest_sha256"],
        },
        "holds": covering,
        "access": [r for r in access_requests(store, now) if name in r["recordings"]],
    }  # fmt: skip


def _seals_of(store: Store, serial: str) -> list[dict[str, Any]]:
    ids = {r["bag_id"] for r in store.archive_by_start(serial) if r.get("bag_id") is not None}
    table = SealTable(store)
    found = [table.by_id(i) for i in sorted(ids)]
    return [s for s in found if s is not None]


def _covering(store: Store, serial: str, recording_id: str, now: float) -> list[dict[str, Any]]:
    register = HoldRegister(store, None, lambda: now)  # type: ignore[arg-type]  # reads only
    found = register.covering(serial, recording_id)
    return [{**h.as_dict(), "active": h.active(now)} for h in found]
