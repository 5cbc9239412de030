"""The start page's and login's words (web_status/i18n.py)."""

MESSAGES: dict[str, dict[str, str]] = {
    "home.title": {"en": "Start", "zh": "首页"},
    "home.welcome": {"en": "Logged in as {name}", "zh": "当前用户：{name}"},
    "home.roles": {"en": "Your roles", "zh": "您的角色"},
    "home.areas": {"en": "Where to go", "zh": "功能"},
    "home.no_areas": {
        "en": "Nothing else is open to your role yet.",
        "zh": "您的角色暂无其他可用功能。",
    },
    "home.slots": {"en": "Slots", "zh": "槽位"},
    "home.slot": {"en": "Slot", "zh": "槽位"},
    "home.state": {"en": "State", "zh": "状态"},
    "home.device": {"en": "Recorder", "zh": "记录仪"},
    "home.detail": {"en": "Detail", "zh": "详情"},
    "home.empty": {"en": "empty", "zh": "空"},
    "home.ready": {"en": "ready", "zh": "可领用"},
    "home.offloading": {"en": "offloading {percent}%", "zh": "正在采集 {percent}%"},
    "home.state.empty": {"en": "empty", "zh": "空闲"},
    "home.state.identifying": {"en": "identifying", "zh": "识别中"},
    "home.state.charging": {"en": "charging", "zh": "充电中"},
    "home.state.offloading": {"en": "offloading", "zh": "采集中"},
    "home.state.ready": {"en": "ready", "zh": "可领用"},
    "home.state.failed_check": {"en": "failed a check", "zh": "检查未通过"},
    "home.state.checked_out": {"en": "granted, not yet taken", "zh": "已授权，待取走"},
    "home.state.fault": {"en": "fault", "zh": "故障"},
    "home.dock_time": {"en": "Dock time", "zh": "采集站时间"},
    "home.fleet": {
        "en": "Recorders: {recorders} for {officers} officer(s) who carry one, {per} per "
        "officer; the minimum is {minimum} (one per two officers, 001 art.18).",
        "zh": "记录仪 {recorders} 台，配备对象执法人员 {officers} 名，人均 {per} 台；"
        "最低要求人均 {minimum} 台（每两名执法人员不少于一台，001 第十八条）。",
    },
    "home.fleet.shortfall": {"en": "SHORTFALL", "zh": "配备不足"},
    "home.fleet.met": {"en": "met", "zh": "达标"},
    "home.not_returned": {
        "en": "NOT RETURNED: recorder {serial} of officer {officer}, checked out {out}, "
        "due back by {due}.",
        "zh": "未归还：执法人员 {officer} 的记录仪 {serial}，领用于 {out}，应于 {due} 前归还。",
    },
    "home.slots_unavailable": {
        "en": "The slots cannot be shown: the dock's service is not answering.",
        "zh": "无法显示槽位：采集站服务无响应。",
    },
    "login.title": {"en": "Log in", "zh": "登录"},
    "login.officer": {"en": "Officer number", "zh": "警号"},
    "login.pin": {"en": "PIN", "zh": "密码"},
    "login.submit": {"en": "Log in", "zh": "登录"},
    "login.refused": {
        "en": "Wrong officer number or PIN ({left} tries left).",
        "zh": "警号或密码错误（还可尝试 {left} 次）。",
    },
    "login.locked": {
        "en": "This PIN is locked after too many wrong tries: ask a supervisor to unlock it.",
        "zh": "密码错误次数过多，已锁定：请联系主管解锁。",
    },
    "login.missing": {
        "en": "Enter your officer number and PIN.",
        "zh": "请输入警号和密码。",
    },
    "login.too_long": {"en": "That is too long.", "zh": "输入过长。"},
    "logout.done": {"en": "You have logged out.", "zh": "您已退出。"},
}
