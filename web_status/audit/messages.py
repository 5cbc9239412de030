"""The audit viewer's words, in English and Chinese."""

MESSAGES: dict[str, dict[str, str]] = {
    "audit.title": {"en": "Audit log", "zh": "审计日志"},
    "audit.filter": {"en": "Filter", "zh": "筛选"},
    "audit.kind": {"en": "Kind", "zh": "类型"},
    "audit.any_kind": {"en": "any kind", "zh": "全部类型"},
    "audit.actor": {"en": "By (officer number, dock, hq:...)", "zh": "操作人（警号、dock、hq:…）"},
    "audit.subject": {
        "en": "About (recorder serial, officer, ...)",
        "zh": "对象（记录仪序列号、警号等）",
    },
    "audit.from": {"en": "From (local time)", "zh": "起（本地时间）"},
    "audit.to": {"en": "Until (local time)", "zh": "止（本地时间）"},
    "audit.apply": {"en": "Show", "zh": "查询"},
    "audit.clear": {"en": "Clear", "zh": "清除"},
    "audit.seq": {"en": "#", "zh": "序号"},
    "audit.time": {"en": "Time", "zh": "时间"},
    "audit.who": {"en": "By", "zh": "操作人"},
    "audit.about": {"en": "About", "zh": "对象"},
    "audit.data": {"en": "Data", "zh": "内容"},
    "audit.none": {"en": "No entry matches.", "zh": "没有符合条件的记录。"},
    "audit.head": {
        "en": "The log holds {n} entries; newest first, {page} per page.",
        "zh": "日志共 {n} 条记录；按时间倒序，每页 {page} 条。",
    },
    "audit.older": {"en": "Older entries →", "zh": "更早的记录 →"},
    "audit.newest": {"en": "← Newest", "zh": "← 最新"},
    "audit.bad_time": {
        "en": "Not a time: {value} (write 2026-05-01 08:00)",
        "zh": "无法识别的时间：{value}（格式如 2026-05-01 08:00）",
    },
    "audit.verify": {"en": "Verify the chain", "zh": "校验哈希链"},
    "audit.verify_help": {
        "en": "Checks every entry's hash, every link and every signed checkpoint, in the "
        "dock service (which knows the dock's key). Nothing is changed.",
        "zh": "由坞站服务（持有坞站公钥）逐条校验哈希、链接与签名检查点，不做任何修改。",
    },
    "audit.sound": {
        "en": "Sound: {entries} entries and {checkpoints} checkpoints verified; signed up to "
        "entry {signed}.",
        "zh": "完好：已校验 {entries} 条记录、{checkpoints} 个检查点；已签名至第 {signed} 条。",
    },
    "audit.unsigned": {
        "en": "{n} newer entries are not signed yet.",
        "zh": "另有 {n} 条较新的记录尚未签名。",
    },
    "audit.tampered": {
        "en": "TAMPERED: the log is not as written, from entry {first} on ({reason}).",
        "zh": "已被篡改：自第 {first} 条起与写入时不符（{reason}）。",
    },
    "audit.tampered_nowhere": {
        "en": "TAMPERED: the log cannot be trusted ({reason}).",
        "zh": "已被篡改：日志不可信（{reason}）。",
    },
    "audit.no_outside": {
        "en": "No checkpoint kept outside the log was compared: a cut of the newest entries "
        "would not show here (headquarters' copy would).",
        "zh": "未与日志之外保存的检查点比对："
        "若最新的记录被整段删去，此处无法发现（总部保存的副本可以）。",
    },
    "audit.outside": {
        "en": "Matches the checkpoints kept outside: {where}",
        "zh": "与日志之外保存的检查点一致：{where}",
    },
    "audit.show_bad": {"en": "Show entry {seq}", "zh": "查看第 {seq} 条"},
    "audit.key": {"en": "Key fingerprint", "zh": "密钥指纹"},
    "audit.export": {"en": "Signed export", "zh": "签名导出"},
    "audit.export_help": {
        "en": "A signed copy of the whole log (JSON lines) for an auditor; the export "
        "itself is audited with your name.",
        "zh": "导出整份日志的签名副本（JSON 行格式）供审计；导出操作本身会以您的名义记入日志。",
    },
    "audit.export_button": {"en": "Export now", "zh": "立即导出"},
    "audit.exported": {
        "en": "Exported {entries} entries and {checkpoints} checkpoints.",
        "zh": "已导出 {entries} 条记录、{checkpoints} 个检查点。",
    },
    "audit.download": {"en": "Download the export", "zh": "下载导出文件"},
    "audit.export_failed": {"en": "Not exported: {why}", "zh": "导出失败：{why}"},
    "audit.daemon_down": {
        "en": "The dock service does not answer: verification and export are unavailable.",
        "zh": "坞站服务无响应：无法校验或导出。",
    },
    "audit.slow": {
        "en": "This filter is too slow on a log this size: narrow it.",
        "zh": "日志过大，此条件查询过慢：请缩小范围。",
    },
}
