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
* :func:`dock.evidence.export.export` builds a NEW BagIt package of copies (never hard
  links into the archive or the sealed bags), with ``data/description.txt`` in Chinese
  and English, and optionally an ISO 9660 image (:mod:`dock.evidence.iso`: Joliet and
  Rock Ridge names) read back and compared file by file before it is published.

Every step, granted or refused, is appended to the tamper-evident audit log.

Issue 17 adds:

* the register is written BEFORE the bytes exist (003 art.17): :meth:`AccessRegister.register`
  commits the ``access_log`` rows and their audit entries in one transaction, and only
  then do :mod:`dock.evidence.working_copies` or :mod:`dock.evidence.export` write a
  file; a failed register write produces nothing;
* only the person the approved request names runs it: its requester, or the extractor
  the request designates (:attr:`AccessRequest.runner`); anyone else is refused, audited;
* a supervisory body (role ``oversight``: 纪检, 法制, 信访) reads directly, without an
  approval (001 art.20(3); 002 art.25): its request is in force at once (basis
  'oversight'), with the same purpose, register and audit as any other; it may view,
  copy and export (an export is a registered copy) and changes nothing;
* confidentiality marks (002 art.26; 003 art.20; 001 art.17(3)) on recordings or a
  case: placed by a supervisor or keeper, released only by a supervisor; an officer may
  not ask for another officer's marked recordings, a marked request's approver is
  neither its requester nor its extractor, and copies or exports of marked recordings
  need an explicit confirmation (the package's description states the mark).
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import KEEPER, OFFICER, OVERSIGHT, SUPERVISOR
from dock.storage.pins import verify as verify_pin
from dock.storage.register_tables import AccessTable, ConfidentialTable

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "KINDS",
    "AccessError",
    "AccessRegister",
    "AccessRequest",
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
#: The confidentiality categories (002 art.26; 003 art.20; 001 art.17(3)), zh and en.
CATEGORIES: dict[str, tuple[str, str]] = {
    "state_secret": ("国家秘密", "state secret"),
    "commercial_secret": ("商业秘密", "commercial secret"),
    "personal_privacy": ("个人隐私", "personal privacy"),
}
#: A purpose or reason is one line of at most this many characters.
TEXT_LIMIT = 500


def one_line(text: str, what: str) -> str:
    """``text`` on one line (runs of white space made one space), at most TEXT_LIMIT
    printable characters; ValueError otherwise (a browser's bytes are not trusted)."""
    line = " ".join(str(text).split())
    if len(line) > TEXT_LIMIT or any(unicodedata.category(c)[0] == "C" for c in line):
        raise ValueError(f"{what} must be one line of at most {TEXT_LIMIT} printable characters")
    return line


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
    #: Who the request names to run it (an officer number); None: the requester.
    extractor: str | None = None
    #: 'approval' (a supervisor approved it) or 'oversight' (a supervisory body's
    #: direct access, 001 art.20(3): in force from the moment it was made).
    basis: str = "approval"

    @property
    def runner(self) -> str:
        """The one person who may view, copy or export under this request."""
        return self.extractor or self.requester

    def state(self, now: float) -> str:
        """'pending', 'approved', 'refused' or 'expired'."""
        if self.refused_reason is not None:
            return "refused"
        if self.approved_by is None:
            return "pending"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "approved"

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        out = asdict(self)
        out["recordings"] = [_what(r) for r in self.recordings]
        out["state"] = self.state(time.time() if now is None else now)
        out["runner"] = self.runner
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
        extractor=row["extractor"],
        basis=row["basis"] or "approval",
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
        self.marks_table = ConfidentialTable(store)

    # ------------------------------------------------------------------ reading
    def get(self, request_id: int) -> AccessRequest | None:
        row = self.table.request(request_id)
        return None if row is None else _request(row)

    def requests(self) -> list[AccessRequest]:
        return [_request(r) for r in self.table.requests()]

    def log(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """The register: who did what to which recording, under which request, when, where."""
        return self.table.log(request_id)

    def role(self, who: str) -> str | None:
        """The stored role of an active person, or None (unknown, disabled: the dock's
        own Unix user on the command line is none of them)."""
        person = self.store.officer(who)
        return None if person is None or person.disabled else str(person.role)

    def marks(self, active_only: bool = True) -> list[dict[str, Any]]:
        return self.marks_table.marks(active_only)

    def marks_on(self, recording: tuple[str, str]) -> list[dict[str, Any]]:
        """The confidentiality marks in force on a recording (its own and its cases')."""
        return self.marks_table.active_for(*recording)

    def visible_to(self, who: str, recording: tuple[str, str], officer_id: str | None) -> bool:
        """Whether ``who`` may see a recording's details: a marked recording only by its
        own officer, a supervisor, keeper or supervisory body (003 art.20)."""
        if self.role(who) not in (OFFICER, None) or who == officer_id:
            return True
        return not self.marks_on(recording)

    # ------------------------------------------------------------------ steps
    def deny(self, actor: str, request_id: int | None, step: str, why: str) -> AccessError:
        """Audit a refusal and return the exception to raise: refusals leave a trace too
        (:mod:`dock.evidence.export` refuses through it as well)."""
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
        *,
        extractor: str | None = None,
    ) -> AccessRequest:
        """Record who asks for which archived recordings, why, and for what kind of use;
        ``extractor``: who is to run it (default the requester). A supervisory body's
        request is in force at once (direct access, 001 art.20(3)); an officer may not
        ask for another officer's recordings marked confidential."""
        pairs: list[tuple[str, str]] = []
        try:
            for r in recordings:
                pair = parse_recording(r) if isinstance(r, str) else (str(r[0]), str(r[1]))
                if pair not in pairs:
                    pairs.append(pair)
        except (ValueError, IndexError, TypeError) as exc:
            raise self.deny(requester, None, "request", str(exc)) from None
        if not requester.strip():
            raise self.deny(requester, None, "request", "the requester must be named")
        if not purpose.strip():
            raise self.deny(requester, None, "request", "a request must say why (purpose)")
        try:
            purpose = one_line(purpose, "the purpose")
        except ValueError as exc:
            raise self.deny(requester, None, "request", str(exc)) from None
        extractor = " ".join((extractor or "").split()) or None
        if extractor is not None and self.role(extractor) is None:
            raise self.deny(
                requester, None, "request", f"extractor {extractor} is not an active person"
            )
        if kind not in KINDS:
            raise self.deny(requester, None, "request", f"kind must be one of {KINDS}")
        if not pairs:
            raise self.deny(requester, None, "request", "name at least one recording")
        missing = [_what(p) for p in pairs if self.store.archived(*p) is None]
        if missing:
            raise self.deny(requester, None, "request", f"not in the archive: {missing}")
        role = self.role(requester)
        if role == OFFICER:
            for p in pairs:
                entry = self.store.archived(*p)
                if entry["officer_id"] != requester and self.marks_on(p):
                    raise self.deny(
                        requester, None, "request",
                        f"{_what(p)} is marked confidential: only its own officer, a "
                        "supervisor, the keeper or a supervisory body may ask for it",
                    )  # fmt: skip
        now = self.clock()
        direct = role == OVERSIGHT
        data: dict[str, Any] = {
            "kind": kind,
            "purpose": purpose,
            "recordings": [_what(p) for p in pairs],
        }
        if extractor is not None:
            data["extractor"] = extractor
        if direct:
            data["basis"] = "oversight: direct access without approval (001 art.20(3))"
            data["expires_at"] = utc_iso(now + self.validity_s)

        def audit(request_id: int) -> None:
            self.audit.append(
                AuditKind.ACCESS_REQUEST, requester, f"access_request:{request_id}", data
            )

        request_id = self.table.add_request(
            requester, purpose, json.dumps(pairs), kind, now, extractor=extractor,
            direct_until=now + self.validity_s if direct else None, audit=audit,
        )  # fmt: skip
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
        elif step == "approve" and req.runner == supervisor_id and self.confidential(req):
            why = "a confidential request needs a supervisor other than its extractor"
        if why is not None:
            raise self.deny(supervisor_id, request_id, step, why)
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
            raise self.deny(supervisor_id, request_id, "approve", "already decided")
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
            raise self.deny(supervisor_id, request_id, "refuse", "a refusal must say why")
        self._supervisor_decides(request_id, supervisor_id, supervisor_pin, "refuse")
        decided = self.table.refuse(request_id, supervisor_id, self.clock(), reason.strip())
        if not decided:
            raise self.deny(supervisor_id, request_id, "refuse", "already decided")
        self.audit.append(
            AuditKind.ACCESS_REFUSE,
            supervisor_id,
            f"access_request:{request_id}",
            {"reason": reason.strip()},
        )
        return self.get(request_id)  # type: ignore[return-value]

    def confidential(self, req: AccessRequest) -> dict[str, list[dict[str, Any]]]:
        """The request's recordings under a confidentiality mark, with their marks."""
        found = {_what(p): self.marks_on(p) for p in req.recordings}
        return {what: marks for what, marks in found.items() if marks}

    def authorised(
        self, request_id: int, who: str, action: str, recordings: Sequence[tuple[str, str]] = ()
    ) -> AccessRequest:
        """The request if it is approved, unexpired, covers ``action`` on ``recordings``
        and names ``who`` to run it; otherwise the refusal is audited and
        :class:`AccessError` raised."""
        req = self.get(request_id)
        if req is None:
            raise self.deny(who, request_id, action, f"no access request {request_id}")
        state = req.state(self.clock())
        if state != "approved":
            raise self.deny(who, request_id, action, f"request {request_id} is {state}")
        if action not in ACTIONS[req.kind]:
            raise self.deny(
                who, request_id, action, f"request {request_id} allows {req.kind}, not {action}"
            )
        if who != req.runner:
            raise self.deny(
                who, request_id, action,
                f"request {request_id} names {req.runner} to {action}, not {who}",
            )  # fmt: skip
        outside = [_what(r) for r in recordings if r not in req.recordings]
        if outside:
            raise self.deny(who, request_id, action, f"not covered by the request: {outside}")
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
        (entry,) = self.register(request_id, who, [pair], action, place=place)
        return entry

    def register(
        self,
        request_id: int,
        who: str,
        recordings: Sequence[tuple[str, str]],
        action: str,
        *,
        place: str | None = None,
    ) -> list[int]:
        """Register ``action`` on ``recordings`` under an approved request BEFORE it
        happens (003 art.17): the ``access_log`` rows and their ``access_record`` audit
        entries in one transaction, committed when this returns. Returns the entry ids."""
        pairs = [(str(r[0]), str(r[1])) for r in recordings]
        self.authorised(request_id, who, action, pairs)
        where = place or f"dock {self.audit.dock_id}"

        def audit(what: str, entry: int) -> None:
            self.audit.append(
                AuditKind.ACCESS_RECORD,
                who,
                what,
                {"request": request_id, "action": action, "place": where, "entry": entry},
            )

        return self.table.add_entries(
            request_id, who, [_what(p) for p in pairs], action, self.clock(), where, audit
        )

    # ------------------------------------------------------------------ confidentiality
    def mark(
        self,
        by: str,
        pin: str,
        category: str,
        reason: str,
        *,
        recordings: Iterable[tuple[str, str] | str] = (),
        case: str | None = None,
    ) -> list[int]:
        """A supervisor or the keeper, proving who they are with their PIN, marks
        recordings (or a case's recordings) confidential; returns the marks' ids."""
        check = verify_pin(self.store, self.audit, by, pin, "confidential_mark")
        why = None
        pairs: list[tuple[str, str]] = []
        try:
            pairs = [parse_recording(r) if isinstance(r, str) else (str(r[0]), str(r[1]))
                     for r in recordings]  # fmt: skip
            reason = one_line(reason, "the reason")
        except (ValueError, IndexError, TypeError) as exc:
            why = str(exc)
        case = " ".join((case or "").split()) or None
        if why is not None:
            pass
        elif check.locked:
            why = "PIN locked: another supervisor unlocks it"
        elif self.role(by) not in (SUPERVISOR, KEEPER):
            why = f"{by} is not an active supervisor or keeper"
        elif not check.ok:
            why = "wrong PIN"
        elif category not in CATEGORIES:
            why = f"category must be one of {tuple(CATEGORIES)}"
        elif not reason:
            why = "a mark must say why"
        elif bool(pairs) == bool(case):
            why = "mark either recordings or one case"
        elif missing := [_what(p) for p in pairs if self.store.archived(*p) is None]:
            why = f"not in the archive: {missing}"
        if why is not None:
            raise self.deny(by, None, "confidential_mark", why)
        now = self.clock()
        targets: list[dict[str, Any]] = (
            [{"serial": s, "recording_id": r} for s, r in pairs]
            if pairs
            else [{"case_number": case}]
        )
        ids = []
        for target in targets:
            values = {**target, "category": category, "reason": reason,
                      "marked_by": by, "marked_at": now}  # fmt: skip
            subject = f"case:{case}" if case else f"{target['serial']}/{target['recording_id']}"

            def audit(mark_id: int, subject: str = subject) -> None:
                self.audit.append(
                    AuditKind.CONFIDENTIAL_MARK, by, subject,
                    {"mark": mark_id, "category": category, "reason": reason},
                )  # fmt: skip

            ids.append(self.marks_table.add(values, audit))
        return ids

    def release_mark(self, mark_id: int, supervisor_id: str, pin: str, reason: str) -> None:
        """Only a supervisor, with their PIN and a reason, releases a mark."""
        check = verify_pin(self.store, self.audit, supervisor_id, pin, "confidential_release")
        why = None
        mark = self.marks_table.mark(mark_id)
        try:
            reason = one_line(reason, "the reason")
        except ValueError as exc:
            why = str(exc)
        if why is not None:
            pass
        elif mark is None:
            why = f"no confidentiality mark {mark_id}"
        elif check.locked:
            why = "supervisor PIN locked: another supervisor unlocks it"
        elif self.role(supervisor_id) != SUPERVISOR:
            why = f"{supervisor_id} is not an active supervisor"
        elif not check.ok:
            why = "wrong supervisor PIN"
        elif not reason:
            why = "a release needs a reason"
        elif mark["released_at"] is not None:
            why = f"mark {mark_id} was already released"
        if why is not None:
            raise self.deny(supervisor_id, None, "confidential_release", why)

        def audit() -> None:
            self.audit.append(
                AuditKind.CONFIDENTIAL_RELEASE, supervisor_id, f"confidential_mark:{mark_id}",
                {"reason": reason},
            )  # fmt: skip

        if not self.marks_table.release(mark_id, supervisor_id, self.clock(), reason, audit):
            raise self.deny(
                supervisor_id, None, "confidential_release", f"mark {mark_id} was already released"
            )
