"""The supervisor's pages. Reads come from the dock database (``custody_views``); every
action is a daemon request made as the logged-in supervisor (``actions``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from flask import abort, after_this_request, render_template, request, send_file
from werkzeug.wrappers import Response

from dock.domain.roles import SUPERVISOR
from dock.services import custody_views, handover_views
from dock.storage.audit.reader import AuditFilter, AuditReader
from web_status.auth import dock, require_role
from web_status.i18n import t
from web_status.officer.acting import Problem
from web_status.supervisor import actions, bp

Page = tuple[str, int]


def _page(template: str, **extra: Any) -> str:
    return render_template(f"supervisor/{template}.html", **extra)


def _do(
    template: str,
    step: Callable[[], Any],
    done_key: str,
    reads: Callable[[], dict[str, Any]],
    **kw: Any,
) -> Page:
    """Run ``step``; the page again with what was done, or with the one-line refusal
    (what was typed, but never a PIN, stays in the form)."""
    try:
        result = step()
    except Problem as p:
        typed = {k: v for k, v in request.form.items() if "pin" not in k}
        return _page(template, **reads(), problem=p.message, typed=typed, **kw), p.status
    return _page(template, **reads(), done=t(done_key), result=result, **kw), 200


def _now() -> float:
    return time.time()


# --------------------------------------------------------------------------- overview
@bp.get("/")
@require_role(SUPERVISOR)
def index() -> str:
    store = dock().store
    counts = {
        "gaps": len(custody_views.gap_items(store)),
        "holds": sum(1 for h in custody_views.holds(store, _now()) if h["active"]),
        "access": sum(1 for r in custody_views.access_requests(store, _now())
                      if r["state"] == "pending"),
    }  # fmt: skip
    # returns handed back by someone else or not signed for (001 art.19(3), 003 art.21(2))
    flagged = [h for h in handover_views.register(store) if h["state"] != "signed"][:20]
    return _page("index", counts=counts, alerts=custody_views.gap_alerts(store), handovers=flagged)


# --------------------------------------------------------------------------- override
@bp.get("/override")
@require_role(SUPERVISOR)
def override_form() -> str:
    return _page("override")


@bp.post("/override")
@require_role(SUPERVISOR)
def override() -> Page:
    return _do("override", lambda: actions.override(request.form), "supervisor.override.sent",
               dict)  # fmt: skip


# --------------------------------------------------------------------------- gaps
def _gaps() -> dict[str, Any]:
    store = dock().store
    return {"items": custody_views.gap_items(store), "alerts": custody_views.gap_alerts(store)}


@bp.get("/gaps")
@require_role(SUPERVISOR)
def gaps() -> str:
    return _page("gaps", **_gaps())


@bp.post("/gaps/close")
@require_role(SUPERVISOR)
def close_gaps() -> Page:
    return _do("gaps", lambda: actions.close_gaps(request.form), "supervisor.gaps.closed", _gaps)


@bp.post("/gaps/return")
@require_role(SUPERVISOR)
def return_gaps() -> Page:
    return _do("gaps", lambda: actions.return_gaps(request.form), "supervisor.gaps.returned",
               _gaps)  # fmt: skip


# --------------------------------------------------------------------------- holds
def _holds() -> dict[str, Any]:
    return {"holds": custody_views.holds(dock().store, _now()),
            "kinds": actions.HOLD_KINDS, "scopes": actions.HOLD_SCOPES}  # fmt: skip


@bp.get("/holds")
@require_role(SUPERVISOR)
def holds() -> str:
    return _page("holds", **_holds())


@bp.post("/holds")
@require_role(SUPERVISOR)
def place_hold() -> Page:
    return _do("holds", lambda: actions.place_hold(request.form), "supervisor.holds.placed",
               _holds)  # fmt: skip


@bp.post("/holds/<int:hold_id>/release")
@require_role(SUPERVISOR)
def release_hold(hold_id: int) -> Page:
    return _do("holds", lambda: actions.release_hold(hold_id, request.form),
               "supervisor.holds.released", _holds)  # fmt: skip


# --------------------------------------------------------------------------- purge
@bp.get("/purge")
@require_role(SUPERVISOR)
def purge() -> str:
    return _page("purge")


@bp.post("/purge/preview")
@require_role(SUPERVISOR)
def purge_preview() -> Page:
    return _do("purge", actions.purge_preview, "supervisor.purge.previewed", dict)


@bp.post("/purge/apply")
@require_role(SUPERVISOR)
def purge_apply() -> Page:
    return _do("purge", lambda: actions.purge_apply(request.form), "supervisor.purge.applied",
               dict)  # fmt: skip


# --------------------------------------------------------------------------- access
def _access() -> dict[str, Any]:
    return {"requests": custody_views.access_requests(dock().store, _now()),
            "exports": actions.exports().listing(), "kinds": actions.ACCESS_KINDS}  # fmt: skip


@bp.get("/access")
@require_role(SUPERVISOR)
def access() -> str:
    return _page("access", **_access())


@bp.post("/access")
@require_role(SUPERVISOR)
def request_access() -> Page:
    return _do("access", lambda: actions.request_access(request.form),
               "supervisor.access.requested", _access)  # fmt: skip


@bp.post("/access/<int:request_id>/approve")
@require_role(SUPERVISOR)
def approve(request_id: int) -> Page:
    return _do("access", lambda: actions.approve(request_id, request.form),
               "supervisor.access.approved", _access)  # fmt: skip


@bp.post("/access/<int:request_id>/refuse")
@require_role(SUPERVISOR)
def refuse(request_id: int) -> Page:
    return _do("access", lambda: actions.refuse(request_id, request.form),
               "supervisor.access.refused", _access)  # fmt: skip


@bp.post("/access/<int:request_id>/export")
@require_role(SUPERVISOR)
def export(request_id: int) -> Page:
    return _do("access", lambda: actions.start_export(request_id, request.form),
               "supervisor.export.started", _access)  # fmt: skip


@bp.get("/exports/<export_id>/iso")
@require_role(SUPERVISOR)
def export_iso(export_id: str) -> Response:
    path = actions.exports().iso_file(export_id)
    if path is None:
        abort(404)
    return send_file(path, as_attachment=True, download_name=f"export-{export_id}.iso")


@bp.get("/exports/<export_id>/bag.zip")
@require_role(SUPERVISOR)
def export_zip(export_id: str) -> Response:
    made = actions.exports().bag_zip(export_id)
    if made is None:
        abort(404)
    path, name = made
    response = send_file(path, as_attachment=True, download_name=name)

    @after_this_request
    def remove(r: Response) -> Response:
        os.unlink(path)  # the open file stays readable while it is sent
        return r

    return response


# --------------------------------------------------------------------------- chain
@bp.get("/chain")
@require_role(SUPERVISOR)
def chain() -> str:
    serial = request.args.get("serial", "").strip()[:64]
    recording = request.args.get("recording", "").strip()[:128]
    found: dict[str, Any] | None = None
    entries: list[Any] = []
    if serial and recording:
        found = custody_views.chain_of_recording(dock().store, serial, recording, _now())
    elif serial:
        found = custody_views.chain_of_recorder(dock().store, serial, _now())
        if not found["known"]:
            found = None
    if found is not None:
        entries = chain_entries(serial, recording)
    return _page("chain", serial=serial, recording=recording, chain=found, entries=entries)


def chain_entries(serial: str, recording: str) -> list[Any]:
    """The audit log's entries about the recorder (newest 200), or about the recording."""
    page = AuditReader(dock().audit_db_path).page(AuditFilter(subject=serial), limit=200)
    out = list(page.entries)
    if recording:
        out = [
            e
            for e in out
            if recording in (e.data.get("recording"), e.data.get("recording_id"))
            or any(str(v).endswith(f"/{recording}") for v in _values(e.data))
        ]
    return out


def _values(data: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in data.values():
        out.extend(v if isinstance(v, list) else [v])
    return out
