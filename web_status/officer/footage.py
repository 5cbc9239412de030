"""Footage access for the person logged in (issue 17, REQUIREMENTS section 7): ask to view,
copy or export recordings, and view or copy what an approved request names them to.

For officers, supervisors, the keeper and supervisory bodies (oversight, whose requests
are in force at once: 001 art.20(3)). Every step is a daemon request as the person
(``access.request``, ``access.view``, ``access.copy``): the daemon registers a view or copy
BEFORE it writes the copy (003 art.17) into a folder the site chooses under
``<state_dir>/exports`` (never a path from the browser); the site hands the copy out by
an id of its own, only to the person who made it, and only from inside that folder. The
recordings listed are those the person may see: another officer's recordings marked
confidential are not (003 art.20).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app, render_template, send_file
from werkzeug.wrappers import Response

from dock.domain.roles import KEEPER, OFFICER, OVERSIGHT, SUPERVISOR
from dock.services import access
from web_status import i18n
from web_status.auth import dock, person, require_role
from web_status.home.views import AREAS
from web_status.i18n import t
from web_status.officer import bp
from web_status.officer.acting import Problem, act, form_or_json, text

READERS = (OFFICER, SUPERVISOR, KEEPER, OVERSIGHT)
_RECORDING = re.compile(r"^[^\s:/]{1,64}[:/][^\s:/]{1,128}$")
_COPY_ID = re.compile(r"^[0-9a-f]{16}$")
#: A purpose is one line of at most this many characters (dock.evidence.access).
PURPOSE_MAX = 500


@dataclass
class Made:
    """A view or copy the daemon wrote for one person: their files, by number."""

    copy_id: str
    person: str
    action: str
    request_id: int
    folder: str
    files: list[dict[str, str]] = field(default_factory=list)
    at: float = 0.0


class Copies:
    """This app's working copies, by id (kept for the life of the site's process)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.made: dict[str, Made] = {}
        self._lock = threading.Lock()

    def folder(self) -> str:
        return os.path.join(self.root, f"access-{secrets.token_hex(6)}")

    def add(self, who: str, action: str, request_id: int, result: Mapping[str, Any]) -> Made:
        folder = str(result.get("folder", ""))
        files = [f for f in result.get("files", []) if isinstance(f, dict)]
        made = Made(secrets.token_hex(8), who, action, request_id, folder, files, time.time())
        with self._lock:
            self.made[made.copy_id] = made
        return made

    def of(self, who: str) -> list[Made]:
        with self._lock:
            return [m for m in reversed(self.made.values()) if m.person == who]

    def file(self, who: str, copy_id: str, n: int) -> tuple[Made, str] | None:
        """The n-th file of a copy of ``who``'s, inside the exports folder; else None."""
        if not _COPY_ID.match(copy_id):
            return None
        with self._lock:
            made = self.made.get(copy_id)
        if made is None or made.person != who or not 0 <= n < len(made.files):
            return None
        path = os.path.realpath(str(made.files[n].get("path", "")))
        if os.path.commonpath([path, self.root]) != self.root or not os.path.isfile(path):
            return None
        return made, path


def copies() -> Copies:
    found = current_app.extensions.get("access_copies")
    if found is None:
        root = os.path.join(dock().cfg.dock.state_dir, "exports")
        found = current_app.extensions.setdefault("access_copies", Copies(root))
    assert isinstance(found, Copies)
    return found


def _reads() -> dict[str, Any]:
    who = person().id
    store = dock().store
    return {
        "recordings": access.recordings_for(store, who),
        "requests": access.requests_of(store, who, time.time()),
        "made": copies().of(who),
        "kinds": access.KINDS,
        "categories": access.CATEGORIES,
        "direct": OVERSIGHT in person().roles,
    }


def ask(fields: Any) -> dict[str, Any]:
    kind = text(fields, "kind", "footage.kind")
    if kind not in access.KINDS:
        raise Problem(t("footage.err.choice"))
    raw = fields.getlist("recordings") if hasattr(fields, "getlist") else fields.get(
        "recordings", [])  # fmt: skip
    chosen = [str(x).strip() for x in (raw if isinstance(raw, list) else [raw]) if str(x).strip()]
    if not chosen:
        raise Problem(t("officer.err.missing", field=t("footage.recordings")))
    if len(chosen) > 200 or not all(_RECORDING.match(r) for r in chosen):
        raise Problem(t("footage.err.recording"))
    purpose = text(fields, "purpose", "footage.purpose", limit=PURPOSE_MAX)
    args: dict[str, Any] = {"purpose": purpose, "kind": kind, "recordings": chosen}
    extractor = text(fields, "extractor", "footage.extractor", required=False)
    if extractor:
        args["extractor"] = extractor
    result: dict[str, Any] = act("access.request", args)
    return result


def produce(action: str, request_id: int, fields: Mapping[str, Any]) -> Made:
    """A view or copy into a new folder of the site's choosing; the daemon registers it
    first (003 art.17) and refuses anyone the request does not name."""
    args: dict[str, Any] = {"request_id": request_id, "to": copies().folder()}
    if action == "copy" and fields.get("confirm") in ("1", "on", True):
        args["confirm_confidential"] = True
    result = act(f"access.{action}", args)
    return copies().add(person().id, action, request_id, result or {})


def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    return render_template("officer/footage.html", **_reads(), **extra), status


@bp.get("/footage")
@require_role(*READERS)
def footage() -> tuple[str, int]:
    return _page()


@bp.post("/footage/request")
@require_role(*READERS)
def footage_request() -> tuple[str, int]:
    fields = form_or_json()
    try:
        made = ask(fields)
    except Problem as p:
        return _page(p.status, problem=p.message)
    key = "footage.asked_direct" if made.get("state") == "approved" else "footage.asked"
    return _page(done=t(key, request=made.get("id")))


@bp.post("/footage/<int:request_id>/<action>")
@require_role(*READERS)
def footage_produce(request_id: int, action: str) -> tuple[str, int]:
    if action not in ("view", "copy"):
        abort(404)
    try:
        made = produce(action, request_id, form_or_json())
    except Problem as p:
        return _page(p.status, problem=p.message)
    return _page(done=t(f"footage.made.{action}", request=request_id, n=len(made.files)))


@bp.get("/footage/copies/<copy_id>/<int:n>")
@require_role(*READERS)
def footage_file(copy_id: str, n: int) -> Response:
    found = copies().file(person().id, copy_id, n)
    if found is None:
        abort(404)
    made, path = found
    # a view plays in the browser; a copy is a download
    response = send_file(path, as_attachment=made.action == "copy",
                         download_name=os.path.basename(path))  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


MESSAGES: dict[str, dict[str, str]] = {
    "footage.link": {"en": "Footage access", "zh": "视音频调阅"},
    "footage.title": {"en": "Footage access", "zh": "视音频调阅"},
    "footage.hint": {
        "en": "Viewing and copying need an approved request; each is registered before it "
        "happens, and you get a copy, never the sealed original.",
        "zh": "查阅、复制须经批准；每次查阅、复制在进行前登记，所得为复制件，绝不提供封存原件。",
    },
    "footage.hint_direct": {
        "en": "As a supervisory body you read directly, without approval; every read is "
        "registered with its purpose.",
        "zh": "监督部门可直接调阅，无需批准；每次调阅均登记事由。",
    },
    "footage.recordings": {"en": "Recordings", "zh": "录像"},
    "footage.none": {"en": "No recordings you may see.", "zh": "没有您可查看的录像。"},
    "footage.officer": {"en": "Officer", "zh": "拍摄民警"},
    "footage.start": {"en": "Recorded", "zh": "拍摄时间"},
    "footage.mark": {"en": "Confidential", "zh": "保密标记"},
    "footage.kind": {"en": "Kind", "zh": "类型"},
    "footage.kind.view": {"en": "view", "zh": "查阅"},
    "footage.kind.copy": {"en": "copy", "zh": "复制"},
    "footage.kind.export": {"en": "export", "zh": "导出"},
    "footage.purpose": {"en": "Purpose", "zh": "事由"},
    "footage.extractor": {
        "en": "Who runs it (number; default you)",
        "zh": "执行人（警号，默认本人）",
    },
    "footage.send": {"en": "Ask", "zh": "提交申请"},
    "footage.new": {"en": "Ask for recordings", "zh": "申请调阅"},
    "footage.requests": {"en": "My requests", "zh": "我的申请"},
    "footage.requests_none": {"en": "No requests yet.", "zh": "暂无申请。"},
    "footage.state": {"en": "State", "zh": "状态"},
    "footage.state.pending": {"en": "pending", "zh": "待审批"},
    "footage.state.approved": {"en": "approved", "zh": "已批准"},
    "footage.state.refused": {"en": "refused", "zh": "已拒绝"},
    "footage.state.expired": {"en": "expired", "zh": "已过期"},
    "footage.direct": {"en": "direct access", "zh": "直接调阅"},
    "footage.runner": {"en": "run by {who}", "zh": "由 {who} 执行"},
    "footage.view": {"en": "View (registered first)", "zh": "查阅（先登记）"},
    "footage.copy": {"en": "Copy (registered first)", "zh": "复制（先登记）"},
    "footage.confirm": {"en": "confidential too", "zh": "含保密录像"},
    "footage.made": {
        "en": "Copies made for you (removed from the dock when their request expires)",
        "zh": "为您制作的复制件（申请到期后从本机删除）",
    },
    "footage.made.line": {
        "en": "{action} under request {request}",
        "zh": "申请 {request} 的{action}",
    },
    "footage.made.view": {
        "en": "Registered, then {n} working copies made for viewing (request {request}); "
        "the dock removes them when the request expires.",
        "zh": "已登记，随后为查阅制作了 {n} 份复制件（申请 {request}）；申请到期后本机删除。",
    },
    "footage.made.copy": {
        "en": "Registered, then {n} copies made (request {request}): take them before the "
        "request expires; the dock then removes them.",
        "zh": "已登记，随后制作了 {n} 份复制件（申请 {request}）：请在申请到期前取走，"
        "到期后本机删除。",
    },
    "footage.asked": {
        "en": "Request {request} is recorded: a supervisor other than you decides it.",
        "zh": "申请 {request} 已记录：须由您以外的主管审批。",
    },
    "footage.asked_direct": {
        "en": "Request {request} is recorded and in force (direct access, registered).",
        "zh": "申请 {request} 已记录并即时生效（直接调阅，已登记）。",
    },
    "footage.category.state_secret": {"en": "state secret", "zh": "国家秘密"},
    "footage.category.commercial_secret": {"en": "commercial secret", "zh": "商业秘密"},
    "footage.category.personal_privacy": {"en": "personal privacy", "zh": "个人隐私"},
    "footage.err.choice": {"en": "Choose one of the offered kinds.", "zh": "请选择所列类型之一。"},
    "footage.err.recording": {
        "en": "Recordings are SERIAL:RECORDING, at most 200.",
        "zh": "录像应写作 序列号:录像编号，最多 200 条。",
    },
}
i18n.register(MESSAGES, "web_status.officer.footage")

#: The start page links here for those who hold one of the roles (home.views.AREAS).
if not any(a[0] == "officer.footage" for a in AREAS):
    AREAS.append(("officer.footage", "footage.link", READERS))
