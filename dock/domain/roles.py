"""Who may do what: the four roles a person on the dock can hold (issue 12).

An officer checks recorders out and accounts for their own footage; a supervisor decides
(overrides, holds, purges, approvals) and is an officer too; maintenance looks after the
recorders and the dock; an admin manages accounts. Pure, so every layer can name them.
"""

from __future__ import annotations

OFFICER = "officer"
SUPERVISOR = "supervisor"
MAINTENANCE = "maintenance"
ADMIN = "admin"

#: Every role, in the order they are shown.
ROLES: tuple[str, ...] = (OFFICER, SUPERVISOR, MAINTENANCE, ADMIN)


def roles_of(role: str) -> tuple[str, ...]:
    """The roles a person with the stored ``role`` holds: a supervisor is an officer too
    (they carry a recorder), the others hold their one role."""
    if role == SUPERVISOR:
        return (OFFICER, SUPERVISOR)
    if role in ROLES:
        return (role,)
    return ()
