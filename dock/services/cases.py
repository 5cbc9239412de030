"""Cases: file archived recordings under a case (or event) number, on the keeper's own
credentials, and show what a case holds.

A case has a file (``cases``): its cause (案由), the party subject to enforcement (执法对象)
and whether it is open. Footage attached to an open case is never purged (000 §14.4; 001
art.20; 004 att.1 art.5): :func:`case_lookup` tells the purge; once the case is closed
ordinary retention applies again. An officer may file their current custody episode under
a case before returning the recorder: its footage is named with the case as it is archived
(姓名加案由, 001 art.19(4)) and linked to it. Everything of one party across its cases,
footage and explanation items alike, is listed together (一户式: 000 §14.2; 003 art.14).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.evidence.purge_intent import CaseFile, CaseLookup
from dock.evidence.purge_records import purge_state
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError
from dock.storage.pins import authorise
from dock.storage.store import Store, StoreError


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


#: Longest case number, cause or party kept (characters).
CASE_TEXT_MAX = 200


def _text(what: str, value: str | None, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise RequestError(f"the {what} must not be empty")
    if len(text) > CASE_TEXT_MAX or any(not ch.isprintable() for ch in text):
        raise RequestError(
            f"the {what} must be printable text of at most {CASE_TEXT_MAX} characters"
        )
    return text


def _credentials(
    dock: DockContext,
    actor: str,
    case: str,
    officer: str,
    pin: str,
    action: str,
    roles: tuple[str, ...],
) -> None:
    """The person's PIN (with its lockout) and role, or Refused (audited)."""
    if not officer:
        raise RequestError("needs the credentials of an officer or supervisor and PIN")
    ok = authorise(dock.store, dock.audit, officer, pin, action, roles)
    if not ok.ok:
        dock.audit.append(
            AuditKind.CASE_REFUSED,
            officer,
            "",
            {"case": case, "action": action, "why": ok.why, "by": actor},
        )
        raise Refused(ok.why)


def open_case(
    dock: DockContext,
    actor: str,
    case: str,
    officer: str,
    pin: str,
    cause: str | None = None,
    party: str | None = None,
) -> dict[str, Any]:
    """Open (or reopen) a case's file with its cause and party, on an officer's or a
    supervisor's PIN: opening only adds protection. Audited (``case_open``) in the same
    transaction."""
    case = _text("case number", case, required=True)
    cause_text, party_text = _text("cause", cause), _text("party", party)
    _credentials(dock, actor, case, officer, pin, "case_open", ("officer", "supervisor"))
    data = {"case": case, "cause": cause_text, "party": party_text, "by": actor}
    dock.store.open_case(
        case,
        cause_text,
        party_text,
        officer,
        audit=lambda: dock.audit.append(AuditKind.CASE_OPEN, officer, "", data),
    )
    found = dock.store.case_file(case)
    assert found is not None
    return found


def close_case(dock: DockContext, actor: str, case: str, officer: str, pin: str) -> dict[str, Any]:
    """Close a case on a supervisor's PIN (the head of the keeping unit): its footage then
    follows ordinary retention (and any hold) again. Audited (``case_close``)."""
    case = _text("case number", case, required=True)
    _credentials(dock, actor, case, officer, pin, "case_close", ("supervisor",))
    data = {"case": case, "by": actor}
    try:
        dock.store.close_case(
            case, officer, audit=lambda: dock.audit.append(AuditKind.CASE_CLOSE, officer, "", data)
        )
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    found = dock.store.case_file(case)
    assert found is not None
    return found


def attach_episode(
    dock: DockContext, actor: str, case: str, officer: str, pin: str
) -> dict[str, Any]:
    """File the officer's current custody episode (the recorder they carry now) under a
    case, on their own PIN: its footage is named with the case and linked to it as it is
    archived. Audited (``case_episode``)."""
    case = _text("case number", case, required=True)
    _credentials(dock, actor, case, officer, pin, "case_episode", ("officer", "supervisor"))
    held = dock.store.open_custody_of_officer(officer)
    if held is None:
        raise RequestError(f"officer {officer} carries no recorder now")
    data = {"case": case, "custody": held.id, "by": actor}

    def audit() -> None:
        dock.audit.append(AuditKind.CASE_EPISODE, officer, held.serial, data)

    try:
        new = dock.store.attach_episode(case, held.id, officer, audit=audit)
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return {"case": case, "serial": held.serial, "custody": held.id, "new": new}


def case_lookup(dock: DockContext) -> CaseLookup:
    """For the purge: the case file a recording is evidence in. Attached to any open case:
    open (kept); to closed ones only: closed when the last closed, with no retention of
    its own beyond the policy's (the footage's ordinary retention then applies)."""

    def look(serial: str, recording_id: str) -> CaseFile | None:
        found = dock.store.cases_of_recording(serial, recording_id)
        if not found:
            return None
        if any(c["closed_at"] is None for c in found):
            return CaseFile(None, 0)
        return CaseFile(max(float(c["closed_at"]) for c in found), 0)

    return look


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in row.items()}


def party(dock: DockContext, name: str) -> dict[str, Any]:
    """Everything kept of one party subject to enforcement across its cases (一户式):
    the cases, their recordings and the explanation items, JSON-ready."""
    return party_in(dock.store, name)


def party_in(store: Store, name: str) -> dict[str, Any]:
    """:func:`party` from the database alone (the web site's reads)."""
    name = _text("party", name, required=True)
    found = store.party_records(name)
    return {
        "party": name,
        "cases": [_plain(c) for c in found["cases"]],
        "recordings": [_plain(r) for r in found["recordings"]],
        "explanations": [_plain(i) for i in found["explanations"]],
    }


def files(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    """The case files (number, cause, party, opened and closed), open ones first."""
    return [_plain(c) for c in store.case_files(limit)]


def recordings(dock: DockContext, case: str) -> list[dict[str, Any]]:
    """What the case holds, as JSON-ready rows (hashes in hex)."""
    return [
        {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()}
        for r in dock.store.case_recordings(case)
    ]
