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
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.storage.pins import verify as verify_pin
from dock.storage.register_tables import AccessTable

__all__ = [
    "ACTIONS",
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
    ) -> AccessRequest:
        """Record who asks for which archived recordings, why, and for what kind of use."""
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
        if kind not in KINDS:
            raise self.deny(requester, None, "request", f"kind must be one of {KINDS}")
        if not pairs:
            raise self.deny(requester, None, "request", "name at least one recording")
        missing = [_what(p) for p in pairs if self.store.archived(*p) is None]
        if missing:
            raise self.deny(requester, None, "request", f"not in the archive: {missing}")
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

    def authorised(
        self, request_id: int, who: str, action: str, recordings: Sequence[tuple[str, str]] = ()
    ) -> AccessRequest:
        """The request if it is approved, unexpired and covers ``action`` on ``recordings``;
        otherwise the refusal is audited and :class:`AccessError` raised."""
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
