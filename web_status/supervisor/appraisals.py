"""Appraisals before destruction (issue 17; 004 att.2 §6): a keeper or supervisor proposes
recordings for destruction (listed, or every recording a purge now would take) with a
reason, on their own PIN; a supervisor other than the proposer approves or rejects it.
A purge applied on the purge page cites an approved appraisal by its number. Each step is
a daemon request as the person (``appraisal.propose``, ``.approve``, ``.reject``): the
daemon checks the PIN, the role and the four eyes, and audits it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import render_template

from dock.domain.roles import KEEPER, SUPERVISOR
from dock.services import appraisals
from web_status import i18n
from web_status.auth import dock, person, require_role
from web_status.home.views import AREAS
from web_status.i18n import t
from web_status.officer.acting import Problem, act, form_or_json, pin, text
from web_status.supervisor import bp

_RECORDING = re.compile(r"^[^\s:/]{1,64}[:/][^\s:/]{1,128}$")
REASON_MAX = 500


def propose(fields: Mapping[str, Any]) -> Any:
    raw = fields.get("recordings", "")
    recordings = [x for x in str(raw).split() if x][:500]
    candidates = bool(fields.get("candidates"))
    if bool(recordings) == candidates or not all(_RECORDING.match(r) for r in recordings):
        raise Problem(t("appraisals.err.what"))
    args: dict[str, Any] = {
        "proposer": person().id,
        "pin": pin(fields, "pin", "supervisor.your_pin"),
        "reason": text(fields, "reason", "appraisals.reason", limit=REASON_MAX),
    }
    if candidates:
        args["candidates"] = True
    else:
        args["recordings"] = recordings
    return act("appraisal.propose", args)


def decide(appraisal_id: int, fields: Mapping[str, Any], approve: bool) -> Any:
    args: dict[str, Any] = {"appraisal_id": appraisal_id, "supervisor": person().id,
                            "pin": pin(fields, "pin", "supervisor.your_pin")}  # fmt: skip
    if approve:
        return act("appraisal.approve", args)
    args["reason"] = text(fields, "reason", "appraisals.reason", limit=REASON_MAX)
    return act("appraisal.reject", args)


def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    page = render_template(
        "supervisor/appraisals.html", appraisals=appraisals.rows(dock().store),
        may_decide=SUPERVISOR in person().roles, **extra,
    )  # fmt: skip
    return page, status


@bp.get("/appraisals")
@require_role(SUPERVISOR, KEEPER)
def appraisals_page() -> tuple[str, int]:
    return _page()


@bp.post("/appraisals")
@require_role(SUPERVISOR, KEEPER)
def propose_appraisal() -> tuple[str, int]:
    fields = form_or_json()
    try:
        made = propose(fields)
    except Problem as p:
        typed = {k: v for k, v in fields.items() if "pin" not in k}
        return _page(p.status, problem=p.message, typed=typed)
    return _page(done=t("appraisals.proposed", id=made["id"], n=len(made["recordings"])))


@bp.post("/appraisals/<int:appraisal_id>/<any(approve, reject):step>")
@require_role(SUPERVISOR)
def decide_appraisal(appraisal_id: int, step: str) -> tuple[str, int]:
    try:
        decide(appraisal_id, form_or_json(), step == "approve")
    except Problem as p:
        return _page(p.status, problem=p.message)
    done = "appraisals.approved" if step == "approve" else "appraisals.rejected"
    return _page(done=t(done, id=appraisal_id))


MESSAGES: dict[str, dict[str, str]] = {
    "appraisals.title": {"en": "Appraisals", "zh": "鉴定销毁"},
    "appraisals.hint": {
        "en": "Footage is destroyed only after an approved appraisal: a keeper or supervisor "
        "proposes the recordings with a reason, a supervisor other than the proposer approves "
        "it; a purge then cites the appraisal's number and deletes only what it lists, and "
        "only what retention, holds and open cases let go. An approval is valid for 30 days.",
        "zh": "录像须经鉴定批准后方可销毁：由档案管理员或主管提请所列录像并说明理由，"
        "由提请人以外的主管批准；清理时须填写鉴定编号，仅清理其中所列、且保存期已满、"
        "无保全、无未结案件的录像。批准有效期 30 天。",
    },
    "appraisals.list": {"en": "Appraisals", "zh": "鉴定记录"},
    "appraisals.none": {"en": "No appraisal yet.", "zh": "暂无鉴定记录。"},
    "appraisals.recordings": {"en": "Recordings", "zh": "录像"},
    "appraisals.reason": {"en": "Reason", "zh": "理由"},
    "appraisals.proposed_by": {"en": "Proposed by", "zh": "提请人"},
    "appraisals.state": {"en": "State", "zh": "状态"},
    "appraisals.state.proposed": {"en": "proposed", "zh": "待审批"},
    "appraisals.state.approved": {"en": "approved", "zh": "已批准"},
    "appraisals.state.rejected": {"en": "rejected", "zh": "已驳回"},
    "appraisals.decided_by": {"en": "by {who}", "zh": "审批人 {who}"},
    "appraisals.expires": {"en": "valid until {time}", "zh": "有效期至 {time}"},
    "appraisals.new": {"en": "Propose for destruction", "zh": "提请鉴定销毁"},
    "appraisals.candidates": {
        "en": "every recording a purge would now take",
        "zh": "当前可清理的全部录像",
    },
    "appraisals.listed": {
        "en": "or these recordings (SERIAL:RECORDING)",
        "zh": "或下列录像（序列号:录像编号）",
    },
    "appraisals.send": {"en": "Propose", "zh": "提请"},
    "appraisals.approve": {"en": "Approve", "zh": "批准"},
    "appraisals.reject": {"en": "Reject", "zh": "驳回"},
    "appraisals.proposed": {
        "en": "Appraisal {id} proposed ({n} recordings).",
        "zh": "已提请鉴定 {id}（{n} 条录像）。",
    },
    "appraisals.approved": {"en": "Appraisal {id} approved.", "zh": "鉴定 {id} 已批准。"},
    "appraisals.rejected": {"en": "Appraisal {id} rejected.", "zh": "鉴定 {id} 已驳回。"},
    "appraisals.err.what": {
        "en": "Tick 'every recording a purge would now take' or list recordings "
        "(SERIAL:RECORDING), not both.",
        "zh": "请勾选“当前可清理的全部录像”或列出录像（序列号:录像编号），二者择一。",
    },
}
i18n.register(MESSAGES, "web_status.supervisor.appraisals")

#: The keeper's start page links here (a supervisor reaches it from their pages' menu).
if not any(a[0] == "supervisor.appraisals_page" for a in AREAS):
    AREAS.append(("supervisor.appraisals_page", "appraisals.title", (KEEPER,)))
