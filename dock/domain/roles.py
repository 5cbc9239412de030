"""Who may do what: the roles a person on the dock can hold (issues 12 and 17).

An officer checks recorders out and accounts for their own footage; a supervisor decides
(overrides, holds, purges, approvals; the head of the keeping unit) and is an officer
too; maintenance looks after the recorders and the dock; an admin manages accounts; the
keeper (records administrator, 002 art.22, 25; 001 art.15, 19; 003 art.12) files
explanations, registers access and prepares appraisals and hand-overs; oversight is a
supervisory body (纪检, 法制, 信访: 001 art.20(3); 002 art.25) that reads records directly,
every read registered. Pure, so every layer can name them.
"""

from __future__ import annotations

OFFICER = "officer"
SUPERVISOR = "supervisor"
MAINTENANCE = "maintenance"
ADMIN = "admin"
KEEPER = "keeper"
OVERSIGHT = "oversight"

#: Every role, in the order they are shown.
ROLES: tuple[str, ...] = (OFFICER, SUPERVISOR, MAINTENANCE, ADMIN, KEEPER, OVERSIGHT)


def roles_of(role: str) -> tuple[str, ...]:
    """The roles a person with the stored ``role`` holds: a supervisor is an officer too
    (they carry a recorder), the others hold their one role."""
    if role == SUPERVISOR:
        return (OFFICER, SUPERVISOR)
    if role in ROLES:
        return (role,)
    return ()
