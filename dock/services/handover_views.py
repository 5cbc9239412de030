"""What the pages, the kiosk and ``dock status`` show of the handover on return
(001 art.19(3); 003 art.21(2)): a return still waiting for its signature, and who
handed each recorder back (the custodian, someone else, or nobody signed).

Read-only, from the dock database: the web process may read these rows.
"""

from __future__ import annotations

from typing import Any

from dock.devices.clock import utc_iso
from dock.storage.handover_table import HandoverTable
from dock.storage.store import Store


def _name(store: Store, officer_id: str | None) -> str | None:
    if not officer_id:
        return None
    officer = store.officer(officer_id)
    return officer.name if officer else None


def state_of(row: dict[str, Any]) -> str:
    """``signed`` (by the custodian), ``by_other`` or ``unsigned``."""
    if row["how"] == "none":
        return "unsigned"
    return "signed" if row["by_custodian"] else "by_other"


def handover_of(store: Store, custody_id: int) -> dict[str, Any] | None:
    """A custody episode's handover: waiting, or its register entry; None when the
    episode has neither (still out, or returned before the register existed)."""
    table = HandoverTable(store)
    row = table.of_custody(custody_id)
    if row is not None:
        return {
            "state": state_of(row),
            "entry": row["id"],
            "serial": row["serial"],
            "slot": row["slot_id"],
            "custodian": row["custodian"],
            "custodian_name": _name(store, row["custodian"]),
            "returned_by": row["returned_by"],
            "returned_by_name": _name(store, row["returned_by"]),
            "how": row["how"],
            "by_custodian": None if row["by_custodian"] is None else bool(row["by_custodian"]),
            "docked_utc": utc_iso(row["docked_at"]),
            "at_utc": utc_iso(row["at"]),
        }
    waiting = table.pending_one(custody_id)
    if waiting is None:
        return None
    return {
        "state": "waiting",
        "serial": waiting["serial"],
        "slot": waiting["slot_id"],
        "custodian": waiting["custodian"],
        "custodian_name": _name(store, waiting["custodian"]),
        "docked_utc": utc_iso(waiting["docked_at"]),
        "due_utc": utc_iso(waiting["due_at"]),
    }


def handover_in_slot(store: Store, serial: str | None) -> dict[str, Any] | None:
    """The handover of the docked recorder's last return (its last closed episode)."""
    if not serial:
        return None
    last = store.last_closed_episode(serial)  # every sweep: never the whole history
    return handover_of(store, last.id) if last is not None else None


def register(store: Store, serial: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The handover register, newest first, each row with its state and names."""
    out = []
    for row in HandoverTable(store).entries(serial, limit):
        view = handover_of(store, row["custody_id"])
        if view is not None:
            out.append({**view, "custody_id": row["custody_id"]})
    return out
