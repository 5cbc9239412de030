"""The officer's page: what the dock holds of them, and their account of a gap."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import render_template, send_from_directory
from werkzeug.wrappers import Response

from dock.domain.roles import OFFICER
from dock.services import custody_views
from web_status.auth import dock, person, public, require_role
from web_status.i18n import t
from web_status.officer import bp
from web_status.officer.acting import (
    MIN_EXPLANATION,
    TEXT_MAX,
    Problem,
    act,
    form_or_json,
    pin,
    text,
)


def mine(officer_id: str) -> dict[str, Any]:
    """Everything the officer's page (and ``/api/v1/officer/me``) shows, only theirs."""
    view = dock()
    now = time.time()
    store = view.store
    return {
        "officer_id": officer_id,
        "now": custody_views.recorder_now(store, officer_id),
        "footage": custody_views.footage_summary(store, officer_id),
        "returns": custody_views.returns(
            store, officer_id, view.cfg.policy, view.cfg.dock.timezone, now, limit=20
        ),
        "gaps": custody_views.gap_items(store, officer_id, open_only=True),
    }


def add_account(item_id: int, fields: Any) -> dict[str, Any]:
    """The officer's own account of their item, on their PIN (asked again: the account
    is signed by it, as at the dock). The officer is the session's person, never a field."""
    words = text(fields, "text", "officer.account", limit=TEXT_MAX, minimum=MIN_EXPLANATION)
    secret = pin(fields)
    mine_ids = {g["id"] for g in custody_views.gap_items(dock().store, person().id)}
    if item_id not in mine_ids:
        raise Problem(t("officer.err.not_yours", item=item_id), 404)
    result: dict[str, Any] = act(
        "gaps.account",
        {"item_id": item_id, "officer": person().id, "pin": secret, "text": words},
    )
    return result


@bp.get("/")
@require_role(OFFICER)
def index() -> str:
    return render_template("officer/index.html", **mine(person().id))


@bp.post("/gaps/<int:item_id>/account")
@require_role(OFFICER)
def account(item_id: int) -> tuple[str, int]:
    fields = form_or_json()
    try:
        add_account(item_id, fields)
    except Problem as p:
        typed = fields.get("text", "") if isinstance(fields.get("text"), str) else ""
        page = render_template(
            "officer/index.html", **mine(person().id), problem=p.message,
            problem_item=item_id, typed=typed[:TEXT_MAX],
        )  # fmt: skip
        return page, p.status
    done = t("officer.account_saved", item=item_id)
    return render_template("officer/index.html", **mine(person().id), done=done), 200


@bp.get("/pages.css")
@public
def stylesheet() -> Response:
    """The officer's and supervisor's pages' few styles (a fixed file, no data)."""
    return send_from_directory(os.path.join(os.path.dirname(__file__), "static"), "pages.css")
