"""The officer's pages' words, and the refusals both the officer's and the supervisor's
pages show (``officer.err.*``: web_status/officer/acting.py)."""

MESSAGES: dict[str, dict[str, str]] = {
    "officer.link": {"en": "My recorder and footage", "zh": "我的记录仪与视音频"},
    "officer.title": {"en": "My recorder and footage", "zh": "我的记录仪与视音频"},
    "officer.now": {"en": "My recorder now", "zh": "当前领用的记录仪"},
    "officer.now_have": {
        "en": "Recorder {serial} (from slot {slot})",
        "zh": "记录仪 {serial}（{slot} 号槽位领取）",
    },
    "officer.now_none": {"en": "You have no recorder checked out.", "zh": "您当前没有领用记录仪。"},
    "officer.since": {"en": "Checked out {time}", "zh": "领用时间 {time}"},
    "officer.override_by": {
        "en": "Handed out on supervisor {who}'s override: {reason}",
        "zh": "经主管 {who} 越权批准领用：{reason}",
    },
    "officer.footage": {"en": "My footage in the archive", "zh": "我的视音频归档情况"},
    "officer.footage_counts": {
        "en": "{archived} recordings archived and verified, {sealed} sealed in packages, "
        "{erased} erased from the recorder after verification.",
        "zh": "已归档并校验 {archived} 条，已封存 {sealed} 条，校验后已从记录仪删除 {erased} 条。",
    },
    "officer.returns": {"en": "My returns and their offload", "zh": "我的归还记录与上传状态"},
    "officer.returns_none": {"en": "No returns yet.", "zh": "暂无归还记录。"},
    "officer.recorder": {"en": "Recorder", "zh": "记录仪"},
    "officer.out": {"en": "Checked out", "zh": "领用时间"},
    "officer.in": {"en": "Returned", "zh": "归还时间"},
    "officer.archived": {"en": "Recordings archived", "zh": "已归档条数"},
    "officer.deadline": {"en": "Offload deadline", "zh": "上传期限"},
    "officer.state": {"en": "Offload", "zh": "上传状态"},
    # Who handed each recorder back (001 art.19(3); 003 art.21(2)): services/handover_views.py
    "officer.handover": {"en": "Handed back by", "zh": "交回人"},
    "officer.handover.signed": {"en": "{name} ({how})", "zh": "{name}（{how}）"},
    "officer.handover.by_other": {
        "en": "{name} ({how}), not the holder",
        "zh": "{name}（{how}），非领用人",
    },
    "officer.handover.unsigned": {"en": "not signed for", "zh": "未签收"},
    "officer.handover.waiting": {"en": "waiting for a signature", "zh": "待签收"},
    "officer.handover.how.badge": {"en": "badge", "zh": "刷卡"},
    "officer.handover.how.pin": {"en": "PIN", "zh": "密码"},
    "officer.deadline_state.done": {"en": "archived in time", "zh": "已按时归档"},
    "officer.deadline_state.done_late": {"en": "archived late", "zh": "已归档（超期）"},
    "officer.deadline_state.on_time": {"en": "pending", "zh": "待上传"},
    "officer.deadline_state.at_risk": {"en": "pending, deadline near", "zh": "待上传，即将超期"},
    "officer.deadline_state.overdue": {"en": "overdue", "zh": "已超期未上传"},
    "officer.deadline_state.unknown": {"en": "unknown", "zh": "未知"},
    "officer.gaps": {"en": "My open explanation items", "zh": "我待说明的事项"},
    "officer.gaps_hint": {
        "en": "The dock found an interruption in recording. Write what happened, in your own "
        "words, signed by your PIN; a supervisor then reviews it (and may return it to you), "
        "and the records keeper files it.",
        "zh": "采集站发现录像中断。请用自己的话说明情况，并以您的密码确认；"
        "由主管审核（可退回重写），再由档案保管员归档。",
    },
    "officer.gaps_none": {"en": "Nothing to explain.", "zh": "没有待说明的事项。"},
    "officer.item": {"en": "Item {item}", "zh": "事项 {item}"},
    "officer.gap_kind.interrupted": {"en": "recording interrupted", "zh": "录像中断"},
    "officer.gap_kind.fault": {"en": "device fault", "zh": "设备故障"},
    "officer.gap_kind.manual_stop": {"en": "stopped by hand", "zh": "手动停止"},
    # the three steps (001 art.19(2); dock/domain/explanations.py), said on every page
    "officer.gap_state.open": {"en": "account needed", "zh": "待民警说明"},
    "officer.gap_state.accounted": {"en": "waiting for review", "zh": "待主管审核"},
    "officer.gap_state.reviewed": {"en": "reviewed, to be filed", "zh": "已审核，待归档"},
    "officer.gap_state.filed": {"en": "filed", "zh": "已归档"},
    "officer.gap_state.closed": {"en": "closed", "zh": "已关闭"},
    "officer.gap_reason.battery": {"en": "battery exhausted", "zh": "电量耗尽"},
    "officer.gap_reason.storage_full": {"en": "storage full", "zh": "存储空间已满"},
    "officer.gap_reason.fault": {"en": "device fault", "zh": "设备故障"},
    "officer.gap_reason.other": {"en": "other or no stated reason", "zh": "其他或未说明原因"},
    "officer.gap_reason.manual": {"en": "stopped by hand", "zh": "手动停止"},
    "officer.gap_returned": {
        "en": "Returned by supervisor {who} (reason: {reason}); write your account again.",
        "zh": "主管 {who} 已退回（理由：{reason}），请重新填写说明。",
    },
    "officer.gap_reviewed": {
        "en": "Reviewed by supervisor {who}; the records keeper files it.",
        "zh": "主管 {who} 已审核，由档案保管员归档。",
    },
    "officer.gap_kind.missing": {
        "en": "recording missing (deleted before docking?)",
        "zh": "录像缺失（入站前被删除？）",
    },
    "officer.gap_kind.outside_episode": {
        "en": "recorded outside the custody period",
        "zh": "录像时间不在领用期间内",
    },
    "officer.gap_kind.unsigned": {
        "en": "recording not signed by the device",
        "zh": "录像无设备签名",
    },
    "officer.account": {"en": "Your account", "zh": "情况说明"},
    "officer.your_account": {"en": "Your account ({time})", "zh": "您的说明（{time}）"},
    "officer.pin": {"en": "Your PIN", "zh": "您的密码"},
    "officer.account_send": {"en": "Send my account", "zh": "提交说明"},
    "officer.account_saved": {
        "en": "Your account of item {item} is recorded; a supervisor will review it.",
        "zh": "事项 {item} 的说明已记录，等待主管审核。",
    },
    "officer.err.not_yours": {
        "en": "Item {item} is not one of your open items.",
        "zh": "事项 {item} 不是您的待说明事项。",
    },
    "officer.err.missing": {"en": "{field}: please fill this in.", "zh": "{field}：请填写。"},
    "officer.err.too_long": {
        "en": "{field}: at most {limit} characters.",
        "zh": "{field}：最多 {limit} 个字符。",
    },
    "officer.err.too_short": {
        "en": "{field}: at least {minimum} characters.",
        "zh": "{field}：至少 {minimum} 个字符。",
    },
    "officer.err.daemon": {
        "en": "The dock's service is not answering; nothing was done. Try again in a minute.",
        "zh": "采集站服务无响应，未执行任何操作。请稍后重试。",
    },
    "officer.err.not_allowed": {
        "en": "Your role may not do this.",
        "zh": "您的角色无权执行此操作。",
    },
    "officer.err.invalid": {"en": "Not done: {detail}", "zh": "未执行：{detail}"},
    "officer.err.bad_request": {"en": "Not done: {detail}", "zh": "未执行：{detail}"},
    "officer.err.refused": {"en": "Refused: {detail}", "zh": "被拒绝：{detail}"},
    "officer.err.locked": {
        "en": "This PIN is locked: a supervisor must unlock it.",
        "zh": "该密码已被锁定，需由主管解锁。",
    },
    "officer.err.busy": {"en": "The dock is busy; try again.", "zh": "采集站正忙，请重试。"},
    "officer.err.timeout": {
        "en": "The dock did not answer in time; check before trying again.",
        "zh": "采集站未及时响应，请先核实再重试。",
    },
    "officer.err.failed": {"en": "Not done: {detail}", "zh": "未执行：{detail}"},
}
