"""The control socket's requests for a front end that logs people in (the web site):
``login``, ``logout``, ``whoami`` and ``call`` (docs/CONTROL.md).

The web process holds neither the recorders nor the signing key, and never says who
acts: it passes the token the daemon issued at ``login`` (or a machine's API token from
``dock web-token add``), and the daemon resolves the person, checks that their roles may
make the request (``dock.services.requests``' ``roles``) and runs it as them, so every
audit entry names the authenticated person. A PIN is checked by ``dock.storage.pins``,
with the same lockout as every other PIN on the dock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from dock.daemon.control_server import Handler, RequestFailed, SendProgress
from dock.daemon.service import DockService
from dock.daemon.web_sessions import WebSession, WebSessions
from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import roles_of
from dock.evidence.access import AccessError
from dock.evidence.gaps import GapError
from dock.evidence.holds import HoldError
from dock.services import requests
from dock.services.errors import Refused, RequestError
from dock.services.requests import RequestNotAllowed
from dock.services.results import plain
from dock.services.web_tokens import PREFIX as MACHINE_PREFIX
from dock.services.web_tokens import token_digest
from dock.storage.pins import verify

#: Longest officer number, PIN or token taken (longer ones are refused unread).
MAX_FIELD = 200
#: Requests that may run for minutes: not under the sweep lock (as the CLI's offload).
LONG_REQUESTS = frozenset(
    {"device.offload", "archive.verify", "access.export", "access.view", "access.copy"}
)


def _field(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise RequestFailed("bad_request", f"{name} is required (a string)")
    if len(value) > MAX_FIELD:
        raise RequestFailed("bad_request", f"{name} is longer than {MAX_FIELD} characters")
    return value


def _only(raw: Mapping[str, Any], *names: str) -> None:
    unknown = set(raw) - set(names)
    if unknown:
        raise RequestFailed("bad_request", f"unknown argument(s): {', '.join(sorted(unknown))}")


def web_handlers(
    svc: DockService, busy: threading.Lock, sessions: WebSessions
) -> dict[str, Handler]:
    """``login``, ``logout``, ``whoami`` and ``call`` on ``svc``; ``busy`` as for the
    other requests (a check-out's decision and a sweep never overlap)."""

    #: Where a logged-in person's exports may be written (requests.confined_path).
    exports = os.path.join(os.path.dirname(os.path.abspath(svc.store.path)), "exports")

    def person(session: WebSession) -> dict[str, Any]:
        return {"id": session.person, "name": session.name, "roles": list(session.roles)}

    def resolve(token: str) -> WebSession:
        """The person behind ``token``, still enabled and in the same role; else
        ``not_logged_in`` (and a session whose person changed is ended)."""
        if token.startswith(MACHINE_PREFIX):
            machine = svc.store.web_token(token_digest(token))
            if machine is None:
                raise RequestFailed("not_logged_in", "unknown or revoked API token")
            name = f"token:{machine.name}"
            return WebSession(name, machine.name, roles_of(machine.role), 0.0, b"")
        session = sessions.find(token)
        if session is None:
            raise RequestFailed("not_logged_in", "not logged in, or the session has ended")
        officer = svc.store.officer(session.person)
        if officer is None or officer.disabled or roles_of(officer.role) != session.roles:
            sessions.close_person(session.person)
            raise RequestFailed("not_logged_in", "the session has ended: log in again")
        return session

    def login(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        _only(raw, "officer", "pin")
        officer_id, pin = _field(raw, "officer"), _field(raw, "pin")
        check = verify(svc.store, svc.audit, officer_id, pin, "web login")
        officer = svc.store.officer(officer_id)
        roles = roles_of(officer.role) if officer is not None else ()
        if check.locked or not check.ok or officer is None or officer.disabled or not roles:
            why = "locked" if check.locked else "not verified"
            svc.audit.append(
                AuditKind.WEB_LOGIN_REFUSED, "dock", officer_id,
                {"why": why, "tries_left": check.tries_left},
            )  # fmt: skip
            if check.locked:
                raise RequestFailed(
                    "locked", f"the PIN of {officer_id} is locked: ask a supervisor"
                )
            # A wrong PIN, an unknown number and a disabled officer read alike (pins.py).
            raise RequestFailed(
                "refused", f"wrong officer number or PIN ({check.tries_left} tries left)"
            )
        token, session = sessions.open(officer.officer_id, officer.name, roles)
        svc.audit.append(
            AuditKind.WEB_LOGIN, officer.officer_id, officer.officer_id, {"roles": list(roles)}
        )
        return {"token": token, "person": person(session), "expires": utc_iso(session.expires),
                "idle_s": sessions.idle_s}  # fmt: skip

    def logout(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        _only(raw, "token")
        session = sessions.close(_field(raw, "token"))
        if session is not None:
            svc.audit.append(AuditKind.WEB_LOGOUT, session.person, session.person, {})
        return {"logged_out": session is not None}

    def whoami(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        _only(raw, "token")
        session = resolve(_field(raw, "token"))
        expires = utc_iso(session.expires) if session.expires else None
        return {"person": person(session), "expires": expires}

    def call(raw: dict[str, Any], _progress: SendProgress) -> dict[str, Any]:
        _only(raw, "token", "request", "args")
        session = resolve(_field(raw, "token"))
        name, args = _field(raw, "request"), raw.get("args") or {}
        if not isinstance(args, dict):
            raise RequestFailed("bad_request", "args must be an object")
        try:
            if name in LONG_REQUESTS:
                result = requests.call(
                    svc, name, args, actor=session.person, roles=session.roles, exports=exports
                )
            else:
                with busy:
                    result = requests.call(
                        svc, name, args, actor=session.person, roles=session.roles, exports=exports
                    )
        except RequestNotAllowed as exc:
            raise RequestFailed("not_allowed", str(exc)) from None
        except (GapError, HoldError, AccessError) as exc:
            # The registers' refusals (a wrong PIN, a closed item, a released hold), each
            # already audited by the register: a refusal to word, not a daemon failure.
            raise RequestFailed("refused", str(exc)) from None
        except Refused as exc:
            raise RequestFailed("locked" if exc.locked else "refused", str(exc)) from None
        except RequestError as exc:
            raise RequestFailed("invalid", str(exc)) from None
        return {"result": plain(result)}

    return {"login": login, "logout": logout, "whoami": whoami, "call": call}
