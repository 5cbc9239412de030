"""Login, logout, the language switch and the start page by role."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from typing import Any

from flask import flash, make_response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from web_status.auth import (
    ANY_ROLE,
    current_person,
    dock,
    person,
    public,
    require_role,
    safe_next,
)
from web_status.context import DaemonError, DaemonUnavailable
from web_status.home import bp
from web_status.i18n import CATALOGUE, LANGUAGES, t

#: Longest officer number or PIN read from the form.
FIELD_MAX = 64
_TRIES = re.compile(r"\((\d+) tries left\)")

#: The areas linked from the start page: (endpoint, message key, roles that see it).
#: An area adds its line when its blueprint lands; endpoints not registered are left out.
AREAS: list[tuple[str, str, tuple[str, ...]]] = []


def _links() -> list[tuple[str, str]]:
    from flask import current_app

    who = person()
    out = []
    for endpoint, key, roles in AREAS:
        if endpoint in current_app.view_functions and who.has(*roles):
            out.append((url_for(endpoint), t(key)))
    return out


@bp.get("/")
@require_role(*ANY_ROLE)
def index() -> str:
    """The start page: who is logged in, the areas their roles open, the slot grid."""
    slots: list[dict[str, Any]] | None
    try:
        report = dock().status()
        slots, now = report.get("slots", []), report.get("time_utc")
        fleet = report.get("fleet")  # recorders per officer against the minimum (001 art.18)
        # recorders not back by the end of their shift (000 §14.1; 002 art.22; 003 art.21)
        away = report.get("not_returned") or []
    except (DaemonUnavailable, DaemonError):
        slots, now, fleet, away = None, None, None, []
    states = {k for k in CATALOGUE if k.startswith("home.state.")}
    return render_template(
        "home/index.html",
        links=_links(),
        slots=slots,
        now=now,
        fleet=fleet,
        not_returned=away,
        replication=_replication_line(),
        state_keys=states,
        live_labels=_live_labels(states),
    )


def _replication_line() -> dict[str, Any] | None:
    """Packages waiting for central storage (issue 16), or None: none configured, or the
    queue cannot be read now (the rest of the page still shows)."""
    from web_status.replication.views import start_page_line

    try:
        return start_page_line(time.time())
    except sqlite3.Error:
        return None


def _live_labels(states: set[str]) -> dict[str, str]:
    """The words home.js needs to redraw the grid in the page's language."""
    labels = {key.removeprefix("home.state."): t(key) for key in states}
    labels |= {"": t("home.empty"), "%": t("home.offloading", percent="{percent}")}
    return labels


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response:
    """Officer number and PIN, checked by the daemon (its lockout, its audit)."""
    error = None
    officer = ""
    if session.pop("flash_ended", False):
        error = t("error.session_ended")
    if request.method == "POST":
        officer = request.form.get("officer", "").strip()
        pin = request.form.get("pin", "")
        if not officer or not pin:
            error = t("login.missing")
        elif len(officer) > FIELD_MAX or len(pin) > FIELD_MAX:
            error = t("login.too_long")
            officer = officer[:FIELD_MAX]
        else:
            try:
                reply = dock().login(officer, pin)
            except DaemonError as exc:
                if exc.code == "locked":
                    error = t("login.locked")
                elif exc.code == "refused":
                    found = _TRIES.search(exc.message)
                    error = t("login.refused", left=found.group(1) if found else "?")
                else:
                    raise
            else:
                lang = session.get("lang")
                session.clear()  # a new session: nothing from before the login carries over
                if lang:
                    session["lang"] = lang
                session["token"] = reply["token"]
                target = safe_next(request.args.get("next")) or url_for("home.index")
                return redirect(target)
    page = render_template("home/login.html", error=error, officer=officer)
    return make_response(page, 400 if request.method == "POST" else 200)


@bp.post("/logout")
@public
def logout() -> Response:
    """End the daemon's session and this cookie's (CSRF-checked: a POST)."""
    token = session.get("token")
    if isinstance(token, str):
        # The cookie goes anyway; the daemon's session then ends with its idle time.
        with contextlib.suppress(DaemonUnavailable, DaemonError):
            dock().logout(token)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(t("logout.done"))
    return redirect(url_for("home.login"))


@bp.get("/lang/<code>")
@public
def language(code: str) -> Response:
    """Switch this session's language; back to the page it came from (on this site)."""
    if code in LANGUAGES:
        session["lang"] = code
    target = safe_next(request.args.get("next"))
    if target is None:
        target = url_for("home.index") if current_person() else url_for("home.login")
    return redirect(target)
