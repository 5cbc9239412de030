"""What the services need of a running dock, as a protocol: ``dock.daemon``'s
``DockService`` is one (the services may not import the layer above them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dock.domain.policy import Policy
from dock.storage.audit import AuditLog
from dock.storage.store import Store

#: An offload's progress: (recording id, bytes done, bytes in all).
Progress = Callable[[str, int, int], None]


class Clock(Protocol):
    def now(self) -> float: ...

    def synchronised(self) -> tuple[bool, str]: ...


class DockContext(Protocol):
    """The dock the services act on: its database, audit log, clock and slots.
    Read-only properties, so that any object with these attributes is one."""

    @property
    def dock_id(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def min_pin_length(self) -> int: ...
    @property
    def store(self) -> Store: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def offloader(self) -> Any: ...  # evidence_dir, seals, organization
    @property
    def views(self) -> Mapping[str, Any]: ...
    @property
    def slot_status(self) -> Mapping[str, Any]: ...
    @property
    def offload_progress(self) -> Mapping[str, Any]: ...
    @property
    def offload_outcomes(self) -> Mapping[str, Any]: ...
    @property
    def badge_decision(self) -> Mapping[str, Any] | None: ...
    @property
    def grant_expiry_s(self) -> float: ...

    def enrol(self, slot_id: str, actor: str) -> str: ...

    def enrol_vendor(self, slot_id: str, actor: str, password: str, model: str) -> str: ...

    def checkout(
        self,
        officer_id: str | None = None,
        pin: str | None = None,
        badge: str | None = None,
        override: Any = None,
        refresh: bool = True,
    ) -> Any: ...

    def offload(self, slot_id: str, progress: Progress | None = None) -> Any: ...

    def cancel_grant(
        self, officer_id: str | None = None, pin: str | None = None, badge: str | None = None
    ) -> Any: ...

    def sign_handover(self, slot_id: str, officer_id: str, pin: str) -> dict[str, Any]: ...

    def arm_handover(self, slot_id: str) -> dict[str, Any]: ...
