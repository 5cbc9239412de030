"""Officers: add, disable or enable, unlock a locked PIN, list. Each change is written
with its audit entry in one store transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import OFFICER, ROLES, SUPERVISOR
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError
from dock.storage.pins import verify
from dock.storage.store import StoreError


@dataclass(frozen=True)
class OfficerAdded:
    officer_id: str
    role: str


@dataclass(frozen=True)
class OfficerDisabled:
    officer_id: str
    disabled: bool


@dataclass(frozen=True)
class PinUnlocked:
    officer_id: str
    supervisor: str
    was_locked: bool


@dataclass(frozen=True)
class OfficerRow:
    """An officer as listed: no PIN material."""

    officer_id: str
    name: str
    unit: str
    badge: str | None
    role: str
    disabled: bool
    pin_locked: bool


def add(
    dock: DockContext,
    actor: str,
    officer_id: str,
    name: str,
    unit: str,
    pin: str,
    badge: str | None = None,
    supervisor: bool = False,
    role: str | None = None,
) -> OfficerAdded:
    """``role`` one of dock.domain.roles.ROLES; ``supervisor`` (older callers) is the
    same as ``role="supervisor"``, and with another role is refused."""
    if role is None:
        role = SUPERVISOR if supervisor else OFFICER
    elif role not in ROLES:
        raise RequestError(f"no role {role!r}: one of {', '.join(ROLES)}")
    elif supervisor and role != SUPERVISOR:
        raise RequestError(f"both --supervisor and role {role!r}: give one")
    data = {"role": role, "unit": unit}
    try:
        dock.store.add_officer(
            officer_id, name, unit, pin, badge, role, dock.min_pin_length,
            audit=lambda: dock.audit.append(AuditKind.OFFICER_ADD, actor, officer_id, data),
        )  # fmt: skip
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return OfficerAdded(officer_id, role)


def set_disabled(dock: DockContext, actor: str, officer_id: str, disabled: bool) -> OfficerDisabled:
    kind = AuditKind.OFFICER_DISABLE if disabled else AuditKind.OFFICER_ENABLE
    try:
        dock.store.set_officer_disabled(
            officer_id, disabled, audit=lambda: dock.audit.append(kind, actor, officer_id, {})
        )
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return OfficerDisabled(officer_id, disabled)


def disable(dock: DockContext, actor: str, officer_id: str) -> OfficerDisabled:
    return set_disabled(dock, actor, officer_id, True)


def enable(dock: DockContext, actor: str, officer_id: str) -> OfficerDisabled:
    return set_disabled(dock, actor, officer_id, False)


def unlock(
    dock: DockContext, actor: str, officer_id: str, supervisor: str, supervisor_pin: str
) -> PinUnlocked:
    """A supervisor, on their own PIN (itself under the lockout), unlocks an officer's
    PIN: audited as ``pin_unlocked`` with both names and who asked (``actor``)."""
    if dock.store.officer(officer_id) is None:
        raise RequestError(f"no officer {officer_id}")
    check = verify(dock.store, dock.audit, supervisor, supervisor_pin, "unlock")
    sup = dock.store.officer(supervisor)
    if not check.ok or sup is None or sup.role != "supervisor" or sup.disabled:
        why = "supervisor PIN locked" if check.locked else "not verified"
        dock.audit.append(AuditKind.PIN_UNLOCK_REFUSED, supervisor, officer_id,
                          {"officer": officer_id, "why": why, "by": actor})  # fmt: skip
        if check.locked:
            raise Refused("supervisor PIN locked: another supervisor unlocks it", locked=True)
        raise Refused("supervisor not verified (wrong PIN, not a supervisor or disabled)")

    def audit(was_locked: bool) -> None:
        dock.audit.append(
            AuditKind.PIN_UNLOCKED,
            supervisor,
            officer_id,
            {"officer": officer_id, "supervisor": supervisor, "by": actor,
             "was_locked": was_locked},
        )  # fmt: skip

    was = dock.store.unlock_pin(officer_id, audit=audit)
    return PinUnlocked(officer_id, supervisor, was)


def listing(dock: DockContext) -> list[OfficerRow]:
    locked = dock.store.locked_pins()
    return [
        OfficerRow(**asdict(o), pin_locked=o.officer_id in locked) for o in dock.store.officers()
    ]
