"""The replication page's words, and the start page's backlog line."""

MESSAGES: dict[str, dict[str, str]] = {
    "replication.title": {"en": "Central storage", "zh": "上传中心存储"},
    "replication.intro": {
        "en": "Sealed packages are copied to the unit's central storage and read back "
        "there before they count as the second copy. Deadline: {hours} h after the seal.",
        "zh": "封装的证据包复制到单位中心存储，并在目标处回读核验后才算作第二份副本。"
        "时限：封装后 {hours} 小时内。",
    },
    "replication.not_configured": {
        "en": "No central storage is configured on this dock ([replication] in its "
        "configuration): footage stays on the dock only.",
        "zh": "本采集站未配置中心存储（配置文件中的 [replication]）：视音频仅保存在采集站上。",
    },
    "replication.targets": {"en": "Targets", "zh": "存储目标"},
    "replication.target": {"en": "Target", "zh": "目标"},
    "replication.waiting": {"en": "Waiting", "zh": "等待上传"},
    "replication.sending": {"en": "Sending", "zh": "正在上传"},
    "replication.failed": {"en": "Failed", "zh": "失败"},
    "replication.done_24h": {"en": "Verified (24 h)", "zh": "已核验（24 小时）"},
    "replication.oldest": {"en": "Oldest waiting", "zh": "最早等待"},
    "replication.last_success": {"en": "Last verified copy", "zh": "最近一次核验成功"},
    "replication.last_error": {"en": "Last error", "zh": "最近错误"},
    "replication.age": {"en": "{hours} h ago", "zh": "{hours} 小时前"},
    "replication.never": {"en": "never", "zh": "从未"},
    "replication.none": {"en": "none", "zh": "无"},
    "replication.late": {"en": "past the deadline", "zh": "已超时限"},
    "replication.packages": {"en": "Packages", "zh": "证据包"},
    "replication.filter": {"en": "Show", "zh": "显示"},
    "replication.filter.all": {"en": "all", "zh": "全部"},
    "replication.filter.open": {"en": "not yet copied", "zh": "尚未复制"},
    "replication.filter.failed": {"en": "failed", "zh": "失败"},
    "replication.filter.replicated": {"en": "copied and verified", "zh": "已复制并核验"},
    "replication.package": {"en": "Package", "zh": "证据包"},
    "replication.state": {"en": "State", "zh": "状态"},
    "replication.sealed": {"en": "Sealed", "zh": "封装时间"},
    "replication.attempts": {"en": "Attempts", "zh": "尝试次数"},
    "replication.reason": {"en": "Reason", "zh": "原因"},
    "replication.urgent": {"en": "urgent", "zh": "优先"},
    "replication.state.pending": {"en": "waiting", "zh": "等待"},
    "replication.state.sending": {"en": "sending", "zh": "上传中"},
    "replication.state.verifying": {"en": "verifying at the target", "zh": "目标处核验中"},
    "replication.state.replicated": {"en": "copied and verified", "zh": "已复制并核验"},
    "replication.state.failed": {"en": "failed (tried again later)", "zh": "失败（稍后重试）"},
    "replication.state.superseded": {
        "en": "replaced by a newer package before it left",
        "zh": "上传前已被新证据包取代",
    },
    "replication.no_packages": {"en": "No package in this list.", "zh": "此列表中没有证据包。"},
    "replication.more": {
        "en": "Only the first {count} are listed.",
        "zh": "仅列出前 {count} 个。",
    },
    "replication.home_line": {
        "en": "{count} packages waiting for central storage (oldest {hours} h)",
        "zh": "{count} 个证据包等待上传中心存储（最早 {hours} 小时）",
    },
    "replication.home_line_one": {
        "en": "1 package waiting for central storage (oldest {hours} h)",
        "zh": "1 个证据包等待上传中心存储（{hours} 小时）",
    },
    "replication.apply": {"en": "Apply", "zh": "应用"},
    "replication.home_clear": {
        "en": "All packages are at central storage.",
        "zh": "所有证据包均已上传中心存储。",
    },
    "replication.home_late": {
        "en": "Past the {hours} h deadline: tell maintenance.",
        "zh": "已超过 {hours} 小时时限：请通知维护人员。",
    },
    "replication.home_failed": {"en": "{count} failed", "zh": "{count} 个失败"},
}
