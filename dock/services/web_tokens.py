"""API tokens for machines that use the web site's ``/api/v1`` (``dock web-token``).

A token is made here, shown once, and only its SHA-256 is kept (``web_tokens`` in
dock.db): the daemon resolves ``Authorization: Bearer`` to the token's name and role,
and every action it causes is audited as ``token:NAME``. Each add and revoke is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from dock.domain.audit_kinds import AuditKind
from dock.domain.roles import ROLES
from dock.services.context import DockContext
from dock.services.errors import RequestError
from dock.storage.store import StoreError

#: Every machine token starts with this (a session token never does).
PREFIX = "bwcm_"


def token_digest(token: str) -> bytes:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class TokenMade:
    name: str
    role: str
    token: str  # shown once; not kept


@dataclass(frozen=True)
class TokenRevoked:
    name: str


def add(dock: DockContext, actor: str, name: str, role: str) -> TokenMade:
    if role not in ROLES:
        raise RequestError(f"no role {role!r}: one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 64 or not name.isprintable():
        raise RequestError("a token's name is 1 to 64 printable characters")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        dock.store.add_web_token(
            name, role, token_digest(token),
            audit=lambda: dock.audit.append(
                AuditKind.WEB_TOKEN_ADD, actor, f"token:{name}", {"role": role}
            ),
        )  # fmt: skip
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return TokenMade(name, role, token)


def revoke(dock: DockContext, actor: str, name: str) -> TokenRevoked:
    try:
        dock.store.revoke_web_token(
            name,
            audit=lambda: dock.audit.append(AuditKind.WEB_TOKEN_REVOKE, actor, f"token:{name}", {}),
        )
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return TokenRevoked(name)
