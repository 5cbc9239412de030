"""The kiosk's words."""

MESSAGES: dict[str, dict[str, str]] = {
    "kiosk.title": {"en": "Recorder check-out", "zh": "记录仪领用"},
    "kiosk.idle": {"en": "Swipe your badge or enter your number", "zh": "请刷卡或输入警号"},
    "kiosk.enter_number": {"en": "Officer number", "zh": "警号"},
    "kiosk.enter_pin": {"en": "PIN", "zh": "密码"},
    "kiosk.next": {"en": "Next", "zh": "下一步"},
    "kiosk.ok": {"en": "OK", "zh": "确定"},
    "kiosk.clear": {"en": "Clear", "zh": "清除"},
    "kiosk.back": {"en": "⌫", "zh": "⌫"},
    "kiosk.cancel_grant": {"en": "Cancel my grant", "zh": "取消我的领用"},
    "kiosk.cancel_mode": {
        "en": "Cancel a grant: your number, then PIN",
        "zh": "取消领用：请输入警号和密码",
    },
    "kiosk.checkout_mode": {"en": "Back to check-out", "zh": "返回领用"},
    "kiosk.asking": {"en": "Checking…", "zh": "正在核验…"},
    "kiosk.granted": {"en": "Take slot {slot}", "zh": "请取 {slot} 号槽位"},
    "kiosk.granted_detail": {
        "en": "Recorder {serial} for {name}",
        "zh": "记录仪 {serial}，领用人 {name}",
    },
    "kiosk.not_assigned": {
        "en": "The recorder could not be given your name; the dock's record names you.",
        "zh": "警员信息未写入记录仪；领用记录已登记您的姓名。",
    },
    "kiosk.refused": {"en": "Not granted", "zh": "未能领用"},
    "kiosk.cancelled": {"en": "Grant cancelled: slot {slot}", "zh": "已取消 {slot} 号槽位的领用"},
    "kiosk.not_cancelled": {"en": "Nothing cancelled", "zh": "未取消"},
    "kiosk.failed": {
        "en": "The dock did not answer. Try again or ask a supervisor.",
        "zh": "扩展坞无响应，请重试或联系主管。",
    },
    "kiosk.slots": {"en": "Slots", "zh": "槽位"},
    "kiosk.slot": {"en": "Slot {slot}", "zh": "{slot} 号"},
    "kiosk.state.empty": {"en": "Empty", "zh": "空"},
    "kiosk.state.identifying": {"en": "Reading…", "zh": "识别中…"},
    "kiosk.state.charging": {"en": "Charging", "zh": "充电中"},
    "kiosk.state.offloading": {"en": "Offloading", "zh": "上传中"},
    "kiosk.state.ready": {"en": "Ready", "zh": "可领用"},
    "kiosk.state.failed_check": {"en": "Not ready", "zh": "检查未通过"},
    "kiosk.state.checked_out": {"en": "Take this one", "zh": "请取走"},
    "kiosk.state.fault": {"en": "Fault", "zh": "故障"},
    "kiosk.state.checked_out_gone": {"en": "Checked out", "zh": "已领出"},
    "kiosk.out_with": {"en": "Out with {name}", "zh": "已由 {name} 领用"},
    "kiosk.waiting_for": {"en": "For {name}", "zh": "待 {name} 领取"},
    "kiosk.percent_left": {
        "en": "{percent}% · about {left} left",
        "zh": "{percent}% · 约剩 {left}",
    },
    "kiosk.percent": {"en": "{percent}%", "zh": "{percent}%"},
    "kiosk.minutes": {"en": "{n} min", "zh": "{n} 分钟"},
    "kiosk.seconds": {"en": "{n} s", "zh": "{n} 秒"},
    "kiosk.safe": {
        "en": "Footage safe: {n} recordings verified, you may go",
        "zh": "录像已安全保存：{n} 段已校验，您可以离开",
    },
    "kiosk.nothing_new": {
        "en": "Returned: no new footage, you may go",
        "zh": "已归还：没有新录像，您可以离开",
    },
    "kiosk.notice_for": {"en": "{name}: {notice}", "zh": "{name}：{notice}"},
    "kiosk.not_safe": {
        "en": "{n} verified, {failed} not: stays on the recorder, see a supervisor",
        "zh": "{n} 段已校验，{failed} 段未完成：录像留在记录仪上，请联系主管",
    },
    "kiosk.battery": {"en": "Battery {n}%", "zh": "电量 {n}%"},
    "kiosk.not_here": {
        "en": "The kiosk opens only on the dock's own screen.",
        "zh": "领用终端仅能在扩展坞本机屏幕上使用。",
    },
    # The handover on return (001 art.19(3)): whoever returned the recorder signs for it.
    "kiosk.handover_ask": {
        "en": "Who returned it? Sign the handover",
        "zh": "谁归还的？请签收移交",
    },
    "kiosk.handover_pin": {"en": "Sign with PIN", "zh": "警号密码签收"},
    "kiosk.handover_badge": {"en": "Sign with badge", "zh": "刷卡签收"},
    "kiosk.handover_mode": {
        "en": "Slot {slot}: who returned it? Your number, then PIN",
        "zh": "{slot} 号槽位：谁归还的？请输入警号和密码",
    },
    "kiosk.handover_swipe": {
        "en": "Slot {slot}: swipe your badge at the reader now",
        "zh": "{slot} 号槽位：请现在在读卡器上刷卡",
    },
    "kiosk.handover_signed": {
        "en": "Handover signed: slot {slot}",
        "zh": "{slot} 号槽位已签收移交",
    },
    "kiosk.handover_by": {
        "en": "Recorder {serial} handed back by {name}",
        "zh": "记录仪 {serial} 由 {name} 交回",
    },
    "kiosk.handover_other": {
        "en": "Not its holder {holder}: recorded and shown to the supervisor",
        "zh": "并非领用人 {holder}：已登记并提示主管",
    },
    "kiosk.handover_not_signed": {"en": "Not signed", "zh": "未能签收"},
    "kiosk.handover_wrong": {
        "en": "Wrong number or PIN: {n} tries left",
        "zh": "警号或密码错误，还可尝试 {n} 次",
    },
    "kiosk.handover_locked": {
        "en": "PIN locked: ask a supervisor",
        "zh": "密码已锁定，请联系主管解锁",
    },
    "kiosk.handover_nothing": {
        "en": "Nothing waits to be signed in that slot",
        "zh": "该槽位没有待签收的归还",
    },
    "kiosk.handover_disabled": {"en": "This officer is disabled", "zh": "该警员已停用"},
    "kiosk.handed_back": {"en": "Handed back by {name}", "zh": "由 {name} 交回"},
    "kiosk.handed_back_other": {
        "en": "Handed back by {name}, not its holder {holder}",
        "zh": "由 {name} 交回，非领用人 {holder}",
    },
    "kiosk.handover_unsigned": {"en": "Return not signed for", "zh": "归还未签收"},
    "kiosk.bad_input": {
        "en": "Enter digits only: a number and a PIN.",
        "zh": "只能输入数字：警号和密码。",
    },
}
