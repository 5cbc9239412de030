"""Cases: file archived recordings under a case (or event) number, on the keeper's own
credentials, and show what a case holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.evidence.purge_records import purge_state
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError
from dock.storage.pins import authorise
from dock.storage.store import StoreError


@dataclass(frozen=True)
class Attached:
    case: str
    #: "SERIAL:RECORDING" newly filed under the case, and those that already were.
    attached: list[str]
    already: list[str]


def attach(
    dock: DockContext, actor: str, case: str, recordings: Sequence[str], officer: str, pin: str
) -> Attached:
    """Attaching only adds protection (a hold on the case keeps what is attached), so an
    officer or a supervisor may, with their PIN (dock.storage.pins, with its lockout);
    the audit names that person, and ``actor`` (who typed it) beside them. Each link is
    written with its ``case_attach`` entry in one transaction."""
    if not officer:
        raise RequestError("needs the keeper's credentials: an officer or supervisor and PIN")
    ok = authorise(dock.store, dock.audit, officer, pin, "case_attach", ("officer", "supervisor"))
    if not ok.ok:
        dock.audit.append(AuditKind.CASE_ATTACH_REFUSED, officer, "",
                          {"case": case, "why": ok.why, "by": actor})  # fmt: skip
        raise Refused(ok.why)
    done: list[str] = []
    already: list[str] = []
    for item in recordings:
        serial, _, rec = item.partition(":")
        gone = purge_state(dock.store, serial, rec)
        if gone is not None:
            raise RequestError(f"{serial}/{rec} {gone}")
        data = {"case": case, "recording": rec, "by": actor}

        def audit(serial: str = serial, data: dict[str, str] = data) -> None:
            dock.audit.append(AuditKind.CASE_ATTACH, officer, serial, data)

        try:
            new = dock.store.attach_case(case, serial, rec, officer, audit=audit)
        except StoreError as exc:
            raise RequestError(str(exc)) from None
        (done if new else already).append(item)
    return Attached(case, done, already)


def recordings(dock: DockContext, case: str) -> list[dict[str, Any]]:
    """What the case holds, as JSON-ready rows (hashes in hex)."""
    return [
        {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()}
        for r in dock.store.case_recordings(case)
    ]
