"""Who is asking, and may they: login through the daemon, roles on every route, CSRF.

The daemon checks the PIN (the same lockout and audit as the command line) and issues a
token; the Flask session (a signed, HttpOnly cookie) holds that token, never a PIN or a
role. Each request asks the daemon who the token is (``whoami``), so a session the daemon
ended, or a person disabled meanwhile, is logged out at once. Machines send their API
token as ``Authorization: Bearer``; the daemon resolves it the same way.

Every view declares who may open it, with :func:`require_role` or :func:`public`; the
check runs in ``before_request`` for every endpoint, and an endpoint that declares
nothing is refused to everyone (deny by default), so a forgotten decorator cannot open
a page. Every request that is not GET/HEAD/OPTIONS carries the session's CSRF token, as
the form field ``csrf_token`` or the ``X-CSRF-Token`` header (bearer-token requests
excepted: a browser never adds that header by itself).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from dock.domain.roles import ROLES
from web_status.context import DockView, NotLoggedIn

F = TypeVar("F", bound=Callable[..., Any])

#: What a public view declares instead of roles.
PUBLIC: tuple[str, ...] = ("public",)
#: Every role: any logged-in person.
ANY_ROLE: tuple[str, ...] = ROLES
_ATTR = "__web_roles__"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True)
class Person:
    """The person (or machine) the daemon says the session or token is."""

    id: str
    name: str
    roles: tuple[str, ...]
    token: str

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def require_role(*roles: str) -> Callable[[F], F]:
    """Only a person holding one of ``roles`` may open the view (checked before it runs)."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"require_role: roles must be some of {ROLES}, got {roles}")

    def mark(view: F) -> F:
        setattr(view, _ATTR, tuple(roles))
        return view

    return mark


def public(view: F) -> F:
    """Anyone may open the view, logged in or not (login, language, static files)."""
    setattr(view, _ATTR, PUBLIC)
    return view


def declared_roles(view: Callable[..., Any] | None) -> tuple[str, ...] | None:
    """What ``view`` declared (PUBLIC, or its roles); None: nothing (refused to all)."""
    return getattr(view, _ATTR, None)


def routes_and_roles(app: Flask) -> dict[str, tuple[str, ...] | None]:
    """Each URL rule of ``app`` with its view's declared roles (tests enumerate these)."""
    return {
        rule.rule: PUBLIC
        if rule.endpoint == "static"
        else declared_roles(app.view_functions.get(rule.endpoint))
        for rule in app.url_map.iter_rules()
    }


def dock() -> DockView:
    view: DockView = current_app.extensions["dock"]
    return view


def current_person() -> Person | None:
    """The person of this request, once ``before_request`` has resolved them."""
    return g.get("person")


def person() -> Person:
    """The logged-in person of a view that requires a role."""
    found = current_person()
    if found is None:  # a view reached without its role check: never serve it
        abort(403)
    return found


# --------------------------------------------------------------------------- CSRF
def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_field() -> Markup:
    """The hidden form field every template puts in every form: ``{{ csrf_field() }}``."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf_token()))


def _check_csrf() -> None:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise CsrfRefused()


# --------------------------------------------------------------------------- the check
def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def is_api() -> bool:
    return request.path.startswith("/api/")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (no open redirect), else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return None
    return target


def check_request() -> Response | None:
    """``before_request``: CSRF for state-changing requests, then the route's roles."""
    bearer = _bearer() if is_api() else None
    if request.method not in SAFE_METHODS and bearer is None:
        _check_csrf()
    if request.endpoint is None or request.endpoint == "static":
        return None  # no such route (the 404 handler answers), or a static file: public
    roles = declared_roles(current_app.view_functions.get(request.endpoint))
    if roles is None:
        current_app.logger.error("view %s declares no roles: refused", request.endpoint)
        abort(403)
    token = bearer or session.get("token")
    if roles == PUBLIC:
        if isinstance(token, str) and not bearer:
            _resolve(token, quiet=True)
        return None
    if not isinstance(token, str):
        return _not_logged_in()
    if not _resolve(token, quiet=False):
        if not bearer:
            session.pop("token", None)
        return _not_logged_in(ended=True)
    who = current_person()
    if who is None or not who.has(*roles):
        abort(403)
    return None


def _resolve(token: str, quiet: bool) -> bool:
    """Ask the daemon who ``token`` is; sets ``g.person``. False: not logged in. A daemon
    that does not answer raises (the error page says so) unless ``quiet``."""
    try:
        reply = dock().whoami(token)
    except NotLoggedIn:
        return False
    except Exception:  # DaemonUnavailable, DaemonError: the error page says so
        if quiet:
            return False
        raise
    p = reply.get("person") or {}
    roles = tuple(r for r in p.get("roles", ()) if r in ROLES)
    g.person = Person(str(p.get("id", "")), str(p.get("name", "")), roles, token)
    return True


def _not_logged_in(ended: bool = False) -> Response:
    if is_api():
        from web_status.api import json_error  # the API answers in JSON

        return json_error(401, "not_logged_in", "log in, or send Authorization: Bearer TOKEN")
    if ended:
        session["flash_ended"] = True
    here = request.full_path if request.query_string else request.path
    return redirect(url_for("home.login", next=here))
