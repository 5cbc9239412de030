"""The dock as the web site sees it: what it may read (the dock database on the state
directory, the audit log read-only) and how it acts (a request to the daemon over the
control socket, made as the person logged in: the daemon resolves who from the token it
issued at login; the site never says who acts).

The site holds neither the recorders nor the signing key: every change goes through
``dock.services.requests`` in the daemon (``call``), with the daemon's role check.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from dock.config import DockConfig
from dock.services.daemon_link import (
    DaemonError,
    DaemonLink,
    DaemonUnavailable,
    control_socket_path,
)
from dock.storage.store import Store

__all__ = ["DaemonError", "DaemonUnavailable", "DockView", "NotLoggedIn"]


class NotLoggedIn(Exception):
    """No session, or the daemon no longer knows it (ended, idle, daemon restarted)."""


class DockView:
    """One per app: the configuration, the daemon link and the reads."""

    def __init__(self, cfg: DockConfig, link: DaemonLink | None = None) -> None:
        self.cfg = cfg
        self.link = link or DaemonLink(control_socket_path(cfg.dock.state_dir))
        self._store: Store | None = None
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ reads
    @property
    def store(self) -> Store:
        """The dock database (opened on first use; per-thread connections inside)."""
        with self._guard:
            if self._store is None:
                self._store = Store(os.path.join(self.cfg.dock.state_dir, "dock.db"))
            return self._store

    @property
    def audit_db_path(self) -> str:
        """The audit log's file, for ``dock.storage.audit.reader`` (read-only)."""
        return os.path.join(self.cfg.dock.state_dir, "audit.db")

    def status(self) -> dict[str, Any]:
        """The daemon's status report (``dock status --json``, last sweep)."""
        return self.link.request("status", {})

    # ------------------------------------------------------------------ the daemon
    def login(self, officer: str, pin: str) -> dict[str, Any]:
        """``{token, person, expires}``, or DaemonError (``refused``, ``locked``)."""
        return self.link.request("login", {"officer": officer, "pin": pin})

    def logout(self, token: str) -> None:
        self.link.request("logout", {"token": token})

    def whoami(self, token: str) -> dict[str, Any]:
        """``{person: {id, name, roles}, expires}``; NotLoggedIn when the daemon says so."""
        try:
            return self.link.request("whoami", {"token": token})
        except DaemonError as exc:
            if exc.code == "not_logged_in":
                raise NotLoggedIn(exc.message) from None
            raise

    def act(self, token: str, request: str, args: dict[str, Any]) -> Any:
        """Run ``dock.services.requests`` entry ``request`` in the daemon as the person
        of ``token``; its result as JSON data. DaemonError: ``not_allowed`` (roles),
        ``invalid``, ``refused``, ``locked``, ``bad_request``; NotLoggedIn."""
        try:
            reply = self.link.request("call", {"token": token, "request": request, "args": args})
        except DaemonError as exc:
            if exc.code == "not_logged_in":
                raise NotLoggedIn(exc.message) from None
            raise
        return reply.get("result")
