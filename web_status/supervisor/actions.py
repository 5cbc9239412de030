"""What the supervisor's pages and ``/api/v1/supervisor/...`` do, once for both: read the
fields (bounded, worded refusals), then one daemon request as the logged-in supervisor.
The supervisor named in every request is the session's person, never a form field; only
a purge's second supervisor is typed (with their PIN: the service checks both)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app

from dock.domain.hold_kinds import KIND_VALUES
from dock.services import custody_views
from web_status.auth import dock, person
from web_status.i18n import t
from web_status.officer.acting import (
    MIN_EXPLANATION,
    TEXT_MAX,
    Problem,
    act,
    item_ids,
    pin,
    text,
)
from web_status.supervisor.exports import Exports

HOLD_KINDS = KIND_VALUES  # every long-term trigger: dock/domain/hold_kinds.py
HOLD_SCOPES = ("recording", "case", "officer", "episode")
ACCESS_KINDS = ("view", "copy", "export")
_RECORDING = re.compile(r"^[^\s:/]{1,64}[:/][^\s:/]{1,128}$")


def exports() -> Exports:
    """This app's exports, under ``<state_dir>/exports`` (made on first use)."""
    found = current_app.extensions.get("supervisor_exports")
    if found is None:
        view = dock()
        root = os.path.join(view.cfg.dock.state_dir, "exports")
        found = current_app.extensions.setdefault(
            "supervisor_exports", Exports(root, view.audit_db_path)
        )
    assert isinstance(found, Exports)
    return found


def _int(fields: Mapping[str, Any], name: str, label_key: str) -> int:
    raw = fields.get(name)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    value = raw.strip() if isinstance(raw, str) else ""
    if not value.isdigit() or len(value) > 9:
        raise Problem(t("supervisor.err.number", field=t(label_key)))
    return int(value)


def _ids(fields: Any) -> list[int]:
    return item_ids(
        fields,
        t("supervisor.err.number", field=t("supervisor.gaps.items")),
        t("supervisor.err.none_selected"),
    )


def override(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A check-out the dock refused, granted on this supervisor's override: the officer
    (number and PIN, at the dock with them), the supervisor's PIN and a reason."""
    args = {
        "officer": text(fields, "officer", "supervisor.override.officer"),
        "pin": pin(fields, "officer_pin", "supervisor.override.officer_pin"),
        "supervisor": person().id,
        "supervisor_pin": pin(fields, "pin", "supervisor.your_pin"),
        "reason": text(fields, "reason", "supervisor.reason", limit=TEXT_MAX, minimum=4),
    }
    result: dict[str, Any] = act("custody.checkout", args)
    return result


def close_gaps(fields: Any) -> list[dict[str, Any]]:
    ids = _ids(fields)
    words = text(fields, "text", "supervisor.gaps.explanation", limit=TEXT_MAX,
                 minimum=MIN_EXPLANATION)  # fmt: skip
    args = {"supervisor": person().id, "pin": pin(fields, "pin", "supervisor.your_pin"),
            "text": words, "ids": ids}  # fmt: skip
    result: list[dict[str, Any]] = act("gaps.explain", args)
    return result


def return_gaps(fields: Any) -> list[dict[str, Any]]:
    """Accounts returned to their officers with the reason (001 art.19(2))."""
    ids = _ids(fields)
    words = text(fields, "text", "supervisor.gaps.explanation", limit=TEXT_MAX, minimum=3)
    args = {"supervisor": person().id, "pin": pin(fields, "pin", "supervisor.your_pin"),
            "text": words, "ids": ids}  # fmt: skip
    result: list[dict[str, Any]] = act("gaps.return", args)
    return result


def place_hold(fields: Mapping[str, Any]) -> dict[str, Any]:
    kind = text(fields, "kind", "supervisor.holds.kind")
    scope = text(fields, "scope", "supervisor.holds.scope")
    if kind not in HOLD_KINDS or scope not in HOLD_SCOPES:
        raise Problem(t("supervisor.err.choice"))
    args: dict[str, Any] = {"kind": kind,
                            "reference": text(fields, "reference", "supervisor.holds.reference",
                                              limit=200)}  # fmt: skip
    target_key = "supervisor.holds.target"
    if scope == "recording":
        target = text(fields, "target", target_key, limit=200)
        if not _RECORDING.match(target):
            raise Problem(t("supervisor.err.recording", given=target[:80]))
        serial, rid = re.split(r"[:/]", target, maxsplit=1)
        args.update(serial=serial, recording=rid)
    elif scope == "case":
        args["case"] = text(fields, "target", target_key, limit=200)
    elif scope == "officer":
        args["officer"] = text(fields, "target", target_key)
        for name in ("date_from", "date_to"):
            value = text(fields, name, f"supervisor.holds.{name}", required=False, limit=32)
            if value:
                args[name] = value
    else:
        args["episode"] = _int(fields, "target", target_key)
    until = text(fields, "until", "supervisor.holds.until", required=False, limit=32)
    if until:
        args["until"] = until
    result: dict[str, Any] = act("hold.add", args)
    return result


def release_hold(hold_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    args = {"hold_id": hold_id, "supervisor": person().id,
            "pin": pin(fields, "pin", "supervisor.your_pin"),
            "reason": text(fields, "reason", "supervisor.reason", limit=TEXT_MAX)}  # fmt: skip
    result: dict[str, Any] = act("hold.release", args)
    return result


def purge_preview() -> dict[str, Any]:
    result: dict[str, Any] = act("purge.run", {"apply": False})
    return result


def purge_apply(fields: Mapping[str, Any]) -> dict[str, Any]:
    args = {"apply": True, "supervisor": person().id,
            "supervisor_pin": pin(fields, "pin", "supervisor.your_pin"),
            "second_supervisor": text(fields, "second", "supervisor.purge.second"),
            "second_pin": pin(fields, "second_pin", "supervisor.purge.second_pin")}  # fmt: skip
    if str(fields.get("appraisal") or "").strip():  # 004 att.2 §6: the daemon refuses without
        args["appraisal"] = _int(fields, "appraisal", "supervisor.purge.appraisal")
    result: dict[str, Any] = act("purge.run", args)
    return result


def request_access(fields: Any) -> dict[str, Any]:
    kind = text(fields, "kind", "supervisor.access.kind")
    if kind not in ACCESS_KINDS:
        raise Problem(t("supervisor.err.choice"))
    raw = fields.get("recordings", "")
    lines = raw if isinstance(raw, list) else str(raw).split()
    recordings = [str(x).strip() for x in lines if str(x).strip()][:200]
    if not recordings:
        raise Problem(t("officer.err.missing", field=t("supervisor.access.recordings")))
    for r in recordings:
        if not _RECORDING.match(r):
            raise Problem(t("supervisor.err.recording", given=r[:80]))
    args = {"purpose": text(fields, "purpose", "supervisor.access.purpose", limit=TEXT_MAX),
            "kind": kind, "recordings": recordings}  # fmt: skip
    result: dict[str, Any] = act("access.request", args)
    return result


def approve(request_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {"request_id": request_id, "supervisor": person().id,
                            "pin": pin(fields, "pin", "supervisor.your_pin")}  # fmt: skip
    days = text(fields, "days", "supervisor.access.days", required=False, limit=4)
    if days:
        if not days.isdigit() or not 1 <= int(days) <= 90:
            raise Problem(t("supervisor.err.days"))
        args["days"] = int(days)
    result: dict[str, Any] = act("access.approve", args)
    return result


def refuse(request_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    args = {"request_id": request_id, "supervisor": person().id,
            "pin": pin(fields, "pin", "supervisor.your_pin"),
            "reason": text(fields, "reason", "supervisor.reason", limit=TEXT_MAX)}  # fmt: skip
    result: dict[str, Any] = act("access.refuse", args)
    return result


def start_export(request_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Start the export of an approved 'export' request; its progress is polled."""
    extractor = text(fields, "extractor", "supervisor.export.extractor", limit=200)
    place = text(fields, "place", "supervisor.export.place", limit=200)
    iso = fields.get("iso") in ("1", "on", True)
    found = custody_views.access_request(dock().store, request_id, time.time())
    if found is None or found["state"] != "approved" or found["kind"] != "export":
        raise Problem(t("supervisor.err.not_exportable", request=request_id))
    size = custody_views.request_size(dock().store, request_id)
    token, view = person().token, dock()  # the thread has no request context
    # recordings marked confidential go out only when this box was ticked (002 art.26)
    confirm = fields.get("confirm") in ("1", "on", True)

    def run(args: dict[str, Any]) -> Any:
        if confirm:
            args = {**args, "confirm_confidential": True}
        return view.act(token, "access.export", args)

    job = exports().start(request_id, person().id, size, run, extractor, place, iso)
    progress = exports().progress(job.export_id)
    assert progress is not None
    return progress
