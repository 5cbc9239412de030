"""Check-out: the dock decides (``DockService.checkout``); this is its one entry for
the CLI, the web and a daemon link alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.services.context import DockContext
from dock.services.errors import RequestError


@dataclass(frozen=True)
class Override:
    """A supervisor's override of failed checks (the daemon's ``Override`` has these
    fields; the services may not import it)."""

    supervisor_id: str
    supervisor_pin: str
    reason: str


def checkout(
    dock: DockContext,
    actor: str,
    officer: str | None = None,
    pin: str | None = None,
    badge: str | None = None,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    reason: str | None = None,
) -> Any:
    """The dock's decision (granted or refused, with reasons), as ``Decision``."""
    if badge is None and officer is None:
        raise RequestError("give --officer ID (and a PIN) or --badge")
    override = None
    if supervisor:
        if not reason:
            raise RequestError("an override needs --reason")
        override = Override(supervisor, supervisor_pin or "", reason)
    return dock.checkout(officer, None if badge else pin, badge, override)


def cancel_grant(
    dock: DockContext,
    actor: str,
    officer: str | None = None,
    pin: str | None = None,
    badge: str | None = None,
) -> Any:
    """The officer (PIN or badge, checked by the dock as for a check-out) cancels their
    grant whose recorder is still in its slot; ``Withdrawal``, cancelled or refused."""
    if badge is None and officer is None:
        raise RequestError("give --officer ID (and a PIN) or --badge")
    return dock.cancel_grant(officer, None if badge else pin, badge)


def handover(dock: DockContext, actor: str, slot: str, officer: str, pin: str) -> dict[str, Any]:
    """Whoever returned the recorder docked in ``slot`` signs the handover register with
    their number and PIN (001 art.19(3); the check-out's PIN lockout): ``signed`` and the
    register's entry (``by_custodian`` false for a return by someone else, 003 art.21(2)),
    or ``signed`` false with a ``code`` and the dock's words. Never holds up the offload."""
    return dock.sign_handover(slot, officer, pin)


def handover_badge(dock: DockContext, actor: str, slot: str) -> dict[str, Any]:
    """The next badge read at the dock (within a short while) signs the return waiting in
    ``slot``, whoever's badge it is: how someone other than the custodian signs by badge."""
    return dock.arm_handover(slot)
