"""The keeper's page: reviewed explanation items to file, filed on the keeper's PIN
through the daemon (request ``gaps.file``), and the last ones filed."""

from __future__ import annotations

from typing import Any

from flask import render_template

from dock.domain.explanations import State
from dock.domain.roles import KEEPER
from dock.services import custody_views
from web_status.auth import dock, person, require_role
from web_status.i18n import t
from web_status.keeper import bp
from web_status.officer.acting import (
    TEXT_MAX,
    Problem,
    act,
    form_or_json,
    item_ids,
    pin,
    text,
)

#: Most items filed in one go (the daemon files them all or none).


def waiting() -> dict[str, Any]:
    """What the keeper's page (and ``/api/v1/keeper/gaps``) shows."""
    store = dock().store
    return {
        "items": custody_views.gap_items_in(store, State.REVIEWED),
        "filed": custody_views.gaps_filed(store),
    }


def _ids(fields: Any) -> list[int]:
    return item_ids(
        fields, t("keeper.err.number", field=t("keeper.items")), t("keeper.err.none_selected")
    )


def file_items(fields: Any) -> list[dict[str, Any]]:
    """File the selected items as the logged-in keeper, on their PIN (asked again: the
    filing is signed by it). The keeper is the session's person, never a field."""
    ids = _ids(fields)
    note = text(fields, "note", "keeper.note", limit=TEXT_MAX, required=False)
    args = {"keeper": person().id, "pin": pin(fields, "pin", "keeper.pin"), "ids": ids}
    if note:
        args["note"] = note
    result: list[dict[str, Any]] = act("gaps.file", args)
    return result


@bp.get("/")
@require_role(KEEPER)
def index() -> str:
    return render_template("keeper/index.html", **waiting())


@bp.post("/file")
@require_role(KEEPER)
def file() -> tuple[str, int]:
    fields = form_or_json()
    try:
        file_items(fields)
    except Problem as p:
        typed = fields.get("note", "") if isinstance(fields.get("note"), str) else ""
        page = render_template(
            "keeper/index.html", **waiting(), problem=p.message, typed=typed[:TEXT_MAX]
        )
        return page, p.status
    return render_template("keeper/index.html", **waiting(), done=t("keeper.filed")), 200
