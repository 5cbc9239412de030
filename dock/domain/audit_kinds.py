"""The kinds of audit entry the requirements name (000 §10).

Pure, so the domain can name them; :class:`dock.storage.audit.AuditLog` stores a
member as its plain value and accepts any ``[a-z][a-z0-9_.]*`` besides.
"""

from __future__ import annotations

from enum import StrEnum


class AuditKind(StrEnum):
    """The kinds the requirements name; ``append`` accepts any ``[a-z][a-z0-9_.]*``."""

    CUSTODY = "custody"
    CHECK = "check"
    OVERRIDE = "override"
    CLOCK_SET = "clock_set"
    ENROLMENT = "enrolment"
    CONFIG = "config"
    ADMIN = "admin"


__all__ = ["AuditKind"]
