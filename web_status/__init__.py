"""The dock's local web site (issue 12): Flask, one blueprint per area.

``create_app(cfg)`` is the app factory (Flask's tutorial layout): the areas in
:data:`BLUEPRINTS`, each a package ``web_status/<area>/`` with its blueprint ``bp``,
``views.py``, ``messages.py`` and ``templates/<area>/``; the JSON API (``api.py``) under
``/api/v1``. The site holds neither the recorders nor the signing key: it reads the
dock database and asks the daemon (``context.py``) for everything else, as the person
who logged in (``auth.py``). ``server.py`` serves it (``dock-web``).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from flask import Flask, Response, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from dock.config import DockConfig
from dock.services.daemon_link import DaemonError, DaemonLink, DaemonUnavailable
from web_status import daemon_words, i18n
from web_status.auth import (
    CsrfRefused,
    check_request,
    csrf_field,
    csrf_token,
    current_person,
    is_api,
)
from web_status.context import DockView

log = logging.getLogger("web_status")

#: The areas, each a package with its Blueprint ``bp`` (and ``messages.MESSAGES``). An
#: area adds its line here when it lands; ``api`` comes last, after every area declared
#: its API routes.
BLUEPRINTS: list[str] = [
    "web_status.home",
    "web_status.kiosk",
    "web_status.officer",
    "web_status.supervisor",
    "web_status.keeper",
    "web_status.stats",
    "web_status.maintenance",
    "web_status.audit",
    "web_status.replication",
]

#: Largest request body read (forms and JSON); more is refused with 413.
MAX_CONTENT_LENGTH = 256 * 1024
#: The file in the state directory holding the key that signs session cookies.
SECRET_FILE = "web-secret.key"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


class SafeJSON(DefaultJSONProvider):
    """JSON with ``<``, ``>``, ``&`` and ``'`` escaped (``\\u003c``...) and every non-ASCII
    character too: recorder text in the API can never be read as markup or control
    characters, whatever a client does with it."""

    ensure_ascii = True

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        return (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("'", "\\u0027")
        )


def secret_key(state_dir: str) -> bytes:
    """The cookie-signing key: ``<state_dir>/web-secret.key``, made 0600 on first start
    (O_EXCL: two processes starting at once cannot both write one)."""
    path = os.path.join(state_dir, SECRET_FILE)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32).hex().encode())
            f.flush()
            os.fsync(f.fileno())
    with open(path, "rb") as f:
        key = f.read().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} is too short to sign sessions: remove it and start again")
    return key


def create_app(cfg: DockConfig, *, link: DaemonLink | None = None, testing: bool = False) -> Flask:
    """The site for the dock of ``cfg``; ``link`` the daemon's (default: its socket)."""
    app = Flask(__name__)
    app.json = SafeJSON(app)
    app.config.update(
        TESTING=testing,
        SECRET_KEY=secret_key(cfg.dock.state_dir),
        SESSION_COOKIE_NAME="dock_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.web.tls,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        MAX_FORM_MEMORY_SIZE=MAX_CONTENT_LENGTH,
        MAX_FORM_PARTS=200,
        DOCK_LOCALE=cfg.dock.locale,
        DOCK_TIMEZONE=cfg.dock.timezone,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["dock"] = DockView(cfg, link)
    app.extensions["dock_config"] = cfg

    i18n.register(importlib.import_module("web_status.messages").MESSAGES, "web_status")
    for name in BLUEPRINTS:
        package = importlib.import_module(name)
        i18n.register(importlib.import_module(f"{name}.messages").MESSAGES, name)
        app.register_blueprint(package.bp)
    from web_status.api import bp as api_bp

    app.register_blueprint(api_bp)

    app.jinja_env.autoescape = True
    app.jinja_env.globals.update(
        t=i18n.t,
        fmt_time=i18n.fmt_time,
        kind_label=daemon_words.kind_label,
        purge_reason=daemon_words.purge_reason,
        language=i18n.language,
        csrf_field=csrf_field,
        csrf_token=csrf_token,
        current_person=current_person,
    )
    app.before_request(check_request)
    app.after_request(_headers)
    _errors(app)
    return app


def _headers(response: Response) -> Response:
    """Security headers on every answer; personal pages never cached."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _page(status: int, title_key: str, text: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=i18n.t(title_key), text=text), status


def _errors(app: Flask) -> None:
    """Errors as pages in the person's language (JSON under /api/), never a traceback."""

    def answer(status: int, code: str, key: str, text: str | None = None) -> Any:
        words = text or i18n.t(f"error.{key}.text")
        if is_api():
            from web_status.api import json_error

            return json_error(status, code, i18n.t(f"error.{key}.title") + ": " + words)
        return _page(status, f"error.{key}.title", words)

    @app.errorhandler(CsrfRefused)
    def csrf(_exc: CsrfRefused) -> Any:
        return answer(400, "csrf", "400", i18n.t("error.csrf"))

    @app.errorhandler(DaemonUnavailable)
    def daemon_down(exc: DaemonUnavailable) -> Any:
        log.warning("the dock daemon is not answering: %s", exc)
        return answer(503, "daemon_unavailable", "daemon")

    @app.errorhandler(DaemonError)
    def daemon_error(exc: DaemonError) -> Any:
        if exc.code == "not_allowed":
            return answer(403, "not_allowed", "403")
        if exc.code in ("timeout", "link_failed", "forbidden", "busy", "bad_reply"):
            log.warning("the dock daemon failed: %s", exc)
            return answer(503, exc.code, "daemon")
        return answer(400, exc.code, "400", exc.message)

    @app.errorhandler(HTTPException)
    def http(exc: HTTPException) -> Any:
        status = exc.code or 500
        key = str(status) if status in (400, 403, 404, 413) else "400"
        if status == 405:
            key = "404"
        if status >= 500:
            key = "500"
        return answer(status, exc.name.lower().replace(" ", "_"), key)

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Any:
        log.exception("page %s failed", request.path)
        return answer(500, "internal", "500")
