"""The words of the site's frame: navigation, errors, forms (web_status/i18n.py)."""

MESSAGES: dict[str, dict[str, str]] = {
    "site.title": {"en": "Recorder dock", "zh": "执法记录仪采集站"},
    "site.logout": {"en": "Log out", "zh": "退出"},
    "site.login": {"en": "Log in", "zh": "登录"},
    "site.logged_in_as": {"en": "{name} ({id})", "zh": "{name}（{id}）"},
    "site.language": {"en": "Language", "zh": "语言"},
    "site.home": {"en": "Home", "zh": "首页"},
    "role.officer": {"en": "Officer", "zh": "民警"},
    "role.supervisor": {"en": "Supervisor", "zh": "主管"},
    "role.maintenance": {"en": "Maintenance", "zh": "维护"},
    "role.admin": {"en": "Administrator", "zh": "管理员"},
    "role.keeper": {"en": "Records keeper", "zh": "档案保管员"},
    "role.oversight": {"en": "Oversight", "zh": "监督部门"},
    "error.400.title": {"en": "Bad request", "zh": "请求无效"},
    "error.400.text": {
        "en": "The form could not be read. Go back and try again.",
        "zh": "无法读取表单。请返回重试。",
    },
    "error.csrf": {
        "en": "This form has expired or did not come from this site. "
        "Reload the page and try again.",
        "zh": "表单已过期或并非来自本站。请刷新页面后重试。",
    },
    "error.403.title": {"en": "Not allowed", "zh": "无权访问"},
    "error.403.text": {
        "en": "Your role may not open this page.",
        "zh": "您的角色无权打开此页面。",
    },
    "error.404.title": {"en": "Not found", "zh": "页面不存在"},
    "error.404.text": {"en": "There is no such page.", "zh": "没有这个页面。"},
    "error.413.title": {"en": "Too large", "zh": "内容过大"},
    "error.413.text": {"en": "What was sent is too large.", "zh": "提交的内容过大。"},
    "error.500.title": {"en": "Something went wrong", "zh": "出现错误"},
    "error.500.text": {
        "en": "The page could not be shown. It has been logged; try again.",
        "zh": "页面无法显示，已记录。请重试。",
    },
    "error.daemon.title": {"en": "The dock is not answering", "zh": "采集站服务无响应"},
    "error.daemon.text": {
        "en": "The dock's service is not running or not reachable. Nothing was done. "
        "Try again in a minute; if it persists, call maintenance.",
        "zh": "采集站服务未运行或无法连接，未执行任何操作。"
        "请稍后重试；如持续出现，请联系维护人员。",
    },
    "error.back": {"en": "Back to the start page", "zh": "返回首页"},
    "error.session_ended": {
        "en": "Your session has ended. Log in again.",
        "zh": "会话已结束，请重新登录。",
    },
}
