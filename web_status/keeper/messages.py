"""The records keeper's words (web_status/i18n.py)."""

MESSAGES: dict[str, dict[str, str]] = {
    "keeper.link": {"en": "Records keeper", "zh": "档案保管"},
    "keeper.title": {"en": "Explanations to file", "zh": "待归档的情况说明"},
    "keeper.hint": {
        "en": "Each item below was accounted for by its officer and reviewed by a supervisor "
        "(001 art.19(2)). File it: note where it is kept, and sign with your PIN.",
        "zh": "以下事项均已由民警填写说明并经主管审核（001 第十九条第二项）。"
        "请归档：注明存放位置，并以您的密码确认。",
    },
    "keeper.none": {"en": "Nothing waits to be filed.", "zh": "没有待归档的事项。"},
    "keeper.account": {"en": "Officer's account", "zh": "民警说明"},
    "keeper.review": {"en": "Review", "zh": "审核意见"},
    "keeper.reviewed_by": {"en": "by {who}, {time}", "zh": "{who}，{time}"},
    "keeper.note": {"en": "Where it is filed (optional)", "zh": "存放位置（可选）"},
    "keeper.pin": {"en": "Your PIN", "zh": "您的密码"},
    "keeper.file": {"en": "File the selected items", "zh": "归档所选事项"},
    "keeper.filed": {"en": "The selected items are filed.", "zh": "所选事项已归档。"},
    "keeper.items": {"en": "Items", "zh": "事项"},
    "keeper.recent": {"en": "Filed lately", "zh": "最近归档"},
    "keeper.filed_by": {"en": "Filed by {who}, {time}", "zh": "{who} 于 {time} 归档"},
    "keeper.err.number": {"en": "{field}: give item numbers", "zh": "{field}：请给出事项编号"},
    "keeper.err.none_selected": {"en": "Select at least one item.", "zh": "请至少选择一项。"},
}
