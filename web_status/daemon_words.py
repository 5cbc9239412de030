"""The daemon's English in the page's language, at display time.

The daemon's services (``dock/services/*.py``) and registers (``dock/evidence/holds.py``,
``gaps.py``, ``access.py``, ``purging.py``) refuse in English; that text is what they audit
and what the API and the command line show, and it is never changed. A Chinese page
matches each known message against its English pattern and says it again in Chinese with
the same numbers, ids and names; a message not known here is shown as the daemon wrote it,
never guessed at. ``web_status/audit/verdict_words.py`` uses the same matching for the
audit chain's verification report.

A pattern's ``{name}`` is any text (the same name twice is the same text); a name that
starts with ``_`` is itself a message, said again in Chinese where it is known (``release
refused: {_why}``). One message may be several joined by ``"; "``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from web_status.i18n import CATALOGUE, language, t

_FIELD = re.compile(r"\{(\w+)\}")


def pattern(english: str) -> re.Pattern[str]:
    """The regular expression matching ``english`` with each ``{name}`` as any text."""
    out, seen, at = [], set(), 0
    for m in _FIELD.finditer(english):
        out.append(re.escape(english[at : m.start()]))
        name = m.group(1)
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        at = m.end()
    out.append(re.escape(english[at:]))
    return re.compile("".join(out), re.DOTALL)


class Words:
    """Known English messages (``(english, chinese)`` pairs, the first that matches wins)
    said again in Chinese."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs: Sequence[tuple[str, str]] = tuple(pairs)
        self._matchers = [(pattern(en), zh) for en, zh in self.pairs]

    def one(self, text: str) -> str:
        """One message in Chinese, or as it is when not known."""
        for found_pattern, zh in self._matchers:
            found = found_pattern.fullmatch(text)
            if found:
                return self._fill(zh, found)
        return text

    def _fill(self, template: str, found: re.Match[str]) -> str:
        def value(field: re.Match[str]) -> str:
            name = field.group(1)
            text = found.group(name)
            return self.one(text) if name.startswith("_") else text

        return _FIELD.sub(value, template)

    def say(self, text: Any, lang: str | None = None) -> str:
        """``text`` (possibly several joined by "; ") in ``lang`` (the page's)."""
        text = "" if text is None else str(text)
        if (lang or language()) != "zh" or not text:
            return text
        return "；".join(self.one(part) for part in text.split("; "))


#: Every refusal the services and registers raise (RequestError, Refused, HoldError,
#: GapError, AccessError and the ValueErrors passed on as RequestError), and the reasons
#: they put in them (dock/storage/pins.py ``authorise``, dock/evidence/purge_records.py
#: ``purge_state``). More specific patterns come first.
REFUSALS = Words((
    # --- a refusal with a reason inside: before the reasons' own patterns
    ("release refused: {_why}", "解除被拒绝：{_why}"),
    ("request {req} is already {_state}", "申请 {req} 的状态已是“{_state}”"),
    ("request {req} allows {kind}, not {action}", "申请 {req} 允许{kind}，不允许{action}"),
    ("request {req} is {_state}", "申请 {req} 的状态为“{_state}”"),
    # --- PINs and who may (dock/storage/pins.py, dock/services/officers.py)
    ("PIN of {who} locked: ask a supervisor", "{who} 的密码已锁定：请联系主管解锁"),
    ("{who}: wrong ID/PIN ({n} left)", "{who}：警号或密码错误（还可尝试 {n} 次）"),
    ("{who} is not a supervisor", "{who} 不是主管"),
    ("{who} is not a officer or supervisor", "{who} 既不是民警也不是主管"),
    ("{who} is not an active supervisor", "{who} 不是在职主管"),
    ("supervisor PIN locked: another supervisor unlocks it",
     "主管密码已锁定：需由另一名主管解锁"),
    ("supervisor not verified (wrong PIN, not a supervisor or disabled)",
     "主管未通过验证（密码错误、不是主管或已停用）"),
    ("supervisor PIN locked", "主管密码已锁定"),
    ("not verified", "未通过验证"),
    ("unknown supervisor or wrong PIN", "主管未知或密码错误"),
    ("wrong supervisor PIN", "主管密码错误"),
    ("officer number or PIN not recognised ({n} tries left)",
     "警号或密码无法识别（还可尝试 {n} 次）"),
    ("PIN locked: ask a supervisor (dock officer unlock)",
     "密码已锁定：请联系主管解锁（dock officer unlock）"),
    ("officer {who} is disabled", "民警 {who} 已停用"),
    ("no officer {who} is known to this dock", "本采集站没有民警 {who}"),
    ("no officer {who}", "没有民警 {who}"),
    ("no role {role}: one of {roles}", "没有角色 {role}：应为 {roles} 之一"),
    ("both --supervisor and role {role}: give one",
     "同时给出了 --supervisor 和角色 {role}：只能给出其一"),
    ("a token's name is 1 to 64 printable characters", "令牌名称须为 1 至 64 个可打印字符"),
    # --- recordings already purged or being purged (dock/evidence/purge_records.py)
    ("recording {serial}/{rec} is not in the archive", "录像 {serial}/{rec} 不在档案库中"),
    ("recording {serial}/{rec} was already purged", "录像 {serial}/{rec} 已被清除"),
    ("recording {serial}/{rec} is being purged (purge {token}, completed by `dock purge "
     "--apply`)",
     "录像 {serial}/{rec} 正在清除中（清除批次 {token}，由 `dock purge --apply` 完成）"),
    ("{serial}/{rec} was already purged", "{serial}/{rec} 已被清除"),
    ("{serial}/{rec} is being purged (purge {token}, completed by `dock purge --apply`)",
     "{serial}/{rec} 正在清除中（清除批次 {token}，由 `dock purge --apply` 完成）"),
    # --- purging (dock/services/purge.py, dock/evidence/purging.py)
    ("the two supervisors must be two different people", "两名主管必须是不同的两个人"),
    ("applying a purge needs two supervisors (four eyes)", "执行清除需要两名主管（双人复核）"),
    ("a purge needs two different supervisors (four eyes)",
     "清除需要两名不同的主管（双人复核）"),
    ("the clock is not trusted ({why})", "时钟不可信（{why}）"),
    # --- holds (dock/evidence/holds.py, dock/services/holds.py)
    ("a release needs a reason", "解除保全需要理由"),
    ("hold {hold} was already released", "保全 {hold} 已被解除"),
    ("no hold {hold}", "没有保全 {hold}"),
    ("a hold on a case needs the case number", "案件保全需要案件编号"),
    ("the hold's period ends before it starts", "保全时段的结束早于开始"),
    ("no custody episode {custody}", "没有领用记录 {custody}"),
    ("a hold needs a reference (case, complaint, ...) and who places it",
     "保全需要依据编号（案件、投诉等）及设立人"),
    ("until {until} is not a time after now", "截止时间 {until} 不晚于当前时间"),
    ("--from and --to must be times", "--from 和 --to 必须是时间"),
    ("unknown hold kind {kind} (one of {known})", "未知的保全原因 {kind}（应为 {known} 之一）"),
    # appraisals before destruction (dock/evidence/appraisals.py, 004 att.2 §6)
    ("an appraisal needs a reason", "鉴定需要理由"),
    ("an appraisal lists at least one recording", "鉴定至少须列出一条录像"),
    ("a rejection must say why", "驳回须说明理由"),
    ("no appraisal {id}", "没有鉴定 {id}"),
    ("appraisal {id} is already {state}", "鉴定 {id} 已处理（{state}）"),
    ("appraisal {id} was proposed by {who}: another supervisor decides",
     "鉴定 {id} 由 {who} 提请：须由另一位主管决定"),
    ("appraisal {id} was decided meanwhile", "鉴定 {id} 已被他人处理"),
    ("appraisal {id} is not approved ({state})", "鉴定 {id} 未获批准（{state}）"),
    ("appraisal {id} has no approval time or expiry", "鉴定 {id} 没有批准时间或有效期"),
    ("appraisal {id} was approved by its own proposer", "鉴定 {id} 由提请人自行批准"),
    ("appraisal {id} expired at {at}: propose it again", "鉴定 {id} 已于 {at} 过期：请重新提请"),
    ("appraisal {id} is approved after now", "鉴定 {id} 的批准时间晚于当前时间"),
    ("give the recordings (SERIAL:RECORDING ...) or --candidates",
     "请给出录像（序列号:录像编号 ...）或 --candidates"),
    ("no recording is past its retention and free to purge", "没有保存期已满且可清理的录像"),
    ("{due} is not an ISO date (2027-01-31) or none", "{due} 不是 ISO 日期（2027-01-31）或 none"),
    ("device {serial} is not enrolled", "设备 {serial} 未登记"),
    ("year {year} is not a year this dock can have records of",
     "{year} 年不是本设备可能有记录的年份"),
    ("{path} exists already: a hand-over never replaces", "{path} 已存在：移交从不覆盖"),
    ("{path} is not a folder", "{path} 不是文件夹"),
    ("the hand-over bag does not validate: {why}", "移交包校验未通过：{why}"),
    ("applying a purge needs an approved appraisal: --appraisal ID (004 att.2 §6)",
     "执行清理须有已批准的鉴定：--appraisal 编号（004 附件2 第六条）"),
    ("a purge needs an approved appraisal (004 att.2 §6)",
     "清理须有已批准的鉴定（004 附件2 第六条）"),
    ("give one of: SERIAL RECORDING, --case CASE, --officer ID [--from D] [--to D], "
     "--episode CUSTODY_ID",
     "请给出其一：序列号 录像编号、--case 案件编号、--officer 警号 [--from 日期] "
     "[--to 日期]、--episode 领用编号"),
    ("--from and --to go with --officer", "--from 和 --to 只能与 --officer 一起使用"),
    ("{flag} {text} is not an ISO date (2027-01-31) or date-time",
     "{flag} {text} 不是 ISO 日期（2027-01-31）或日期时间"),
    ("--from {text} is not an ISO date (2027-01-31)", "--from {text} 不是 ISO 日期（2027-01-31）"),
    # --- explanation items (dock/evidence/gaps.py, dock/services/gaps.py)
    ("no item to review", "没有要审核的事项"),
    ("no item to file", "没有要归档的事项"),
    ("nothing was done", "未执行任何操作"),
    ("the explanation must be at least {n} characters", "说明至少需要 {n} 个字"),
    ("the account must be at least {n} characters", "陈述至少需要 {n} 个字"),
    ("the {_what} must be at least {n} characters", "{_what}至少需要 {n} 个字"),
    ("the {_what} must be at most {n} characters", "{_what}最多 {n} 个字"),
    ("the {_what} must be text", "{_what}必须是文字"),
    ("the {_what} holds a control character: write plain text",
     "{_what}含有控制字符：请只写普通文字"),
    ("account", "陈述"),
    ("explanation", "审核意见"),
    ("reason for returning it", "退回理由"),
    ("filing note", "归档备注"),
    ("no explanation item {item}", "没有待说明事项 {item}"),
    # the three steps (dock/domain/explanations.py): out of order, or not this person
    ("item {item} is officer {who}'s: only they write its account",
     "事项 {item} 属于民警 {who}：只有本人可以填写陈述"),
    ("item {item} is {_state}: an account is written only while the item waits for it",
     "事项 {item} {_state}：只有在等待陈述时才能填写陈述"),
    ("item {item} is {_state}: a supervisor reviews only an item with the officer's account",
     "事项 {item} {_state}：主管只审核已有民警陈述的事项"),
    ("item {item} is {_state}: the keeper files only an item a supervisor accepted",
     "事项 {item} {_state}：保管员只归档主管已审核通过的事项"),
    ("waiting for the officer's account", "正在等待民警陈述"),
    ("waiting for a supervisor's review", "正在等待主管审核"),
    ("reviewed and waiting to be filed", "已审核，等待归档"),
    ("filed", "已归档"),
    ("closed before the three steps", "已在三步流程之前关闭"),
    ("item {item} is {who}'s own: another supervisor reviews it",
     "事项 {item} 是 {who} 本人的：须由另一位主管审核"),
    ("{who} accounted for or reviewed item {item}: another keeper files it",
     "{who} 陈述或审核过事项 {item}：须由另一位保管员归档"),
    ("only the item's officer writes its account", "只有事项所属民警可以填写陈述"),
    ("only a supervisor reviews an account", "只有主管可以审核陈述"),
    ("only a records keeper files an explanation item", "只有档案保管员可以归档说明事项"),
    ("item {item} changed meanwhile: nothing was reviewed",
     "事项 {item} 刚被他人更改：未审核任何事项"),
    ("item {item} changed meanwhile: nothing was filed",
     "事项 {item} 刚被他人更改：未归档任何事项"),
    ("no account of officer {who} waits for review", "民警 {who} 没有等待审核的陈述"),
    ("give the ids of the items to return", "请给出要退回的事项编号"),
    ("give the ids of the items to file", "请给出要归档的事项编号"),
    ("give item ids (12 14 20-25) or --all-open-for OFFICER",
     "请给出事项编号（12 14 20-25）或 --all-open-for 警号"),
    ("scan_episode needs an authenticated recorder client", "scan_episode 需要已认证的记录仪连接"),
    ("custody {custody} is of {serial}, client of {seen}",
     "领用记录 {custody} 属于 {serial}，连接的是 {seen}"),
    # --- access requests (dock/evidence/access.py, dock/evidence/export.py)
    ("no access request {req}", "没有调阅申请 {req}"),
    ("pending", "待审批"),
    ("approved", "已批准"),
    ("refused", "已拒绝"),
    ("expired", "已过期"),
    ("a supervisor cannot approve their own request", "主管不能批准自己的申请"),
    ("already decided", "已有决定"),
    ("a refusal must say why", "拒绝必须说明理由"),
    ("the requester must be named", "必须写明申请人"),
    ("a request must say why (purpose)", "申请必须说明理由（用途）"),
    ("kind must be one of {kinds}", "类型必须为 {kinds} 之一"),
    ("name at least one recording", "请至少指定一段录像"),
    ("not in the archive: {what}", "不在档案库中：{what}"),
    ("not covered by the request: {what}", "不在申请范围内：{what}"),
    ("{text}: give a recording as SERIAL:RECORDING", "{text}：请以 序列号:录像编号 的形式给出录像"),
    ("the new bag does not validate: {problems}", "新的导出包未通过校验：{problems}"),
    # --- who runs a request, direct access, confidentiality (issue 17: 003 art.17, 20;
    # 002 art.25, 26; dock/evidence/access.py, working_copies.py, export.py)
    ("request {req} names {runner} to {action}, not {who}",
     "申请 {req} 指定由 {runner} 执行{action}，而不是 {who}"),
    ("{what} must be one line of at most {n} printable characters",
     "{what}须为一行、至多 {n} 个可打印字符"),
    ("extractor {who} is not an active person", "提取人 {who} 不是在职人员"),
    ("{what} is marked confidential: only its own officer, a supervisor, the keeper or a "
     "supervisory body may ask for it",
     "{what} 已作保密标记：只有拍摄民警本人、主管、保管人或监督部门可以申请"),
    ("a confidential request needs a supervisor other than its extractor",
     "涉密申请须由提取人以外的主管批准"),
    ("PIN locked: another supervisor unlocks it", "密码已锁定：需由主管解锁"),
    ("{who} is not an active supervisor or keeper", "{who} 不是在职主管或保管人"),
    ("wrong PIN", "密码错误"),
    ("category must be one of {cats}", "类别必须为 {cats} 之一"),
    ("a mark must say why", "保密标记必须说明理由"),
    ("mark either recordings or one case", "请标记录像或一个案件，二者择一"),
    ("no confidentiality mark {mark}", "没有保密标记 {mark}"),
    ("mark {mark} was already released", "保密标记 {mark} 已被解除"),
    ("action must be one of {actions}", "操作必须为 {actions} 之一"),
    ("{n} recording(s) are marked confidential: confirm the copy to go on",
     "{n} 段录像已作保密标记：确认后方可复制"),
    ("{n} recording(s) are marked confidential: confirm the export to go on",
     "{n} 段录像已作保密标记：确认后方可导出"),
    ("a copy may not be written into the archive", "复制件不得写入档案库"),
    ("an export may not be written into the archive", "导出包不得写入档案库"),
    ("{what} left the archive", "{what} 已不在档案库中"),
    ("copy failed: {why}", "复制失败：{why}"),
    ("the copy of {name} does not match the archive", "{name} 的复制件与档案库不一致"),
    ("export failed: {why}", "导出失败：{why}"),
    ("bag not built: {why}", "导出包未能生成：{why}"),
    ("name the extractor", "请写明提取人"),
    ("the extractor named ({name}) is not {who}", "所写提取人（{name}）不是 {who}"),
    ("{path} already exists", "{path} 已存在"),
    # --- cases, custody, devices, maintenance
    ("needs the keeper's credentials: an officer or supervisor and PIN",
     "需要保管人的凭据：民警或主管及其密码"),
    # case files (cause, party, open/closed) and filing a shift under a case
    ("the case number must not be empty", "案件编号不能为空"),
    ("the party must not be empty", "执法对象不能为空"),
    ("the {what} must not be empty", "{what} 不能为空"),
    ("the {what} must be printable text of at most {n} characters",
     "{what} 须为可打印文字，最多 {n} 个字符"),
    ("needs the credentials of an officer or supervisor and PIN", "需要民警或主管的凭据及其密码"),
    ("officer {officer} carries no recorder now", "警员 {officer} 当前未领用记录仪"),
    ("case {case} is closed: reopen it first", "案件 {case} 已结案：请先重新立卷"),
    ("case {case} is already closed", "案件 {case} 已结案"),
    ("no case {case}", "没有案件 {case}"),
    ("give --officer ID (and a PIN) or --badge", "请给出 --officer 警号（及密码）或 --badge"),
    ("an override needs --reason", "超控需要理由（--reason）"),
    ("give lost/found or maintenance/repaired", "请给出 lost/found 或 maintenance/repaired"),
    ("slot {slot} is being inspected or offloaded: try again shortly",
     "{slot} 号槽位正在检查或导出：请稍后重试"),
    ("a test of slot {slot} is running already", "{slot} 号槽位的测试已在进行"),
    ("no slot {slot}", "没有 {slot} 号槽位"),
    # --- archive, audit export, statistics
    ("the sample must be in (0, 1]", "抽样比例须在 (0, 1] 之内"),
    ("the export needs a file name", "导出需要文件名"),
    ("{path} is a directory: name the file to write", "{path} 是目录：请指定要写入的文件"),
    ("{what} must be a date YYYY-MM-DD", "{what} 必须是 YYYY-MM-DD 格式的日期"),
    ("{what} is not a date: {text}", "{what} 不是日期：{text}"),
    ("to is before from", "结束日期早于开始日期"),
    ("a period is at most {n} days", "时段最长 {n} 天"),
    ("the period is outside the years 2000 to 9000", "时段超出 2000 至 9000 年"),
    ("by must be one of {groupings}", "by 必须为 {groupings} 之一"),
    ("no statistics table {name}", "没有统计表 {name}"),
    # --- replication to central storage (dock/services/replication.py)
    ("name one package, or ask for all failed ones (--all-failed)",
     "请指定一个证据包，或选择全部失败的证据包（--all-failed）"),
    ("no replicated or queued package {package}", "没有已复制或排队中的证据包 {package}"),
    ("{package} names several packages: give its path", "{package} 对应多个证据包：请给出其路径"),
    # --- the request layer (dock/services/requests.py)
    ("no request {name}", "没有请求 {name}"),
    ("{name}: who asks (the actor) must be named", "{name}：必须写明请求人"),
    ("{req}: no exports folder to write into", "{req}：没有可写入的导出目录"),
    ("{req}: {path} is not a plain path in the exports folder",
     "{req}：{path} 不是导出目录中的普通路径"),
    ("{req}: {path} is not inside the exports folder", "{req}：{path} 不在导出目录内"),
    ("{req}: {path} exists already: an export never replaces",
     "{req}：{path} 已存在：导出从不覆盖已有文件"),
    ("{name}: unknown argument(s) {args}", "{name}：未知参数 {args}"),
    ("{name}: {arg} is required", "{name}：{arg} 为必填项"),
    ("{name}: {arg} must be {what}", "{name}：{arg} 必须是 {what}"),
))  # fmt: skip


def refusal(text: Any, lang: str | None = None) -> str:
    """A refusal from the daemon in ``lang`` (the page's); unknown ones as written."""
    return REFUSALS.say(text, lang)


def kind_label(kind: Any, lang: str | None = None) -> str:
    """An audit kind (dock/domain/audit_kinds.py, stored as its plain value) by its name in
    ``lang`` (``audit.kind.<value>`` in web_status/audit/messages.py); a kind without one
    (an old log's) as stored."""
    value = "" if kind is None else str(kind)
    if f"audit.kind.{value}" not in CATALOGUE:
        return value
    return t(f"audit.kind.{value}", lang)


#: What can be wrong with a hold (dock/evidence/retention.py ``_hold``): kept, and why.
_HOLD_PROBLEMS = (
    ("lacks a reference or who placed it", "缺少依据编号或设立人"),
    ("has no valid placed_at", "没有有效的设立时间"),
    ("placed in the future ({at})", "的设立时间在将来（{at}）"),
    ("has an invalid until", "的截止时间无效"),
    ("ends ({at}) before it was placed", "的截止时间（{at}）早于设立时间"),
    ("has an invalid released_at", "的解除时间无效"),
    ("released before it was placed", "的解除时间早于设立时间"),
    ("released in the future ({at})", "的解除时间在将来（{at}）"),
    ("released without a reason", "被解除但没有理由"),
    ("has a release reason but no released_at", "有解除理由但没有解除时间"),
)

#: The reasons a purge run gives for each recording (dock/evidence/retention.py ``decide``,
#: dock/evidence/purging.py): a code, then words with dates, names and numbers.
PURGE_REASONS = Words((
    ("retention: {days} days ({cls}) run until {until}", "保存期：{days} 天（{cls}），至 {until}"),
    ("retention: {days} days run until {until}", "保存期：{days} 天，至 {until}"),
    ("retention: {days} days ({cls}) reach beyond the calendar",
     "保存期：{days} 天（{cls}），超出日历范围"),
    ("retention: {days} days reach beyond the calendar", "保存期：{days} 天，超出日历范围"),
    ("case_open: evidence in an open case", "案件未结：未结案件的证据"),
    ("case_retention: {days} days reach beyond the calendar",
     "案卷保存期：{days} 天，超出日历范围"),
    ("case_retention: case file kept until {until}", "案卷保存期：案卷保存至 {until}"),
    ("hold: {_kind} {ref} on {_scope} placed by {who}, permanent",
     "保全：{_kind} {ref}（{_scope}），由 {who} 设立，永久"),
    ("hold: {_kind} {ref} placed by {who}, permanent", "保全：{_kind} {ref}，由 {who} 设立，永久"),
    ("hold: {_kind} {ref} on {_scope} placed by {who}, until {until}",
     "保全：{_kind} {ref}（{_scope}），由 {who} 设立，至 {until}"),
    ("hold: {_kind} {ref} placed by {who}, until {until}",
     "保全：{_kind} {ref}，由 {who} 设立，至 {until}"),
    ("purge: retention ended, no active hold since {since}",
     "可清除：保存期已满，自 {since} 起无有效保全"),
    ("unsealed: in no sealed package yet (sealed at the next offload)",
     "未封存：尚未封入封存包（下次导出时封存）"),
    ("pending: an unfinished purge of its package comes first",
     "待处理：其封存包有未完成的清除，须先完成"),
    ("missing: file gone but no purge was ever recorded", "缺失：文件不存在，但从未记录过清除"),
    ("unappraised: not in appraisal {id}", "未经鉴定：不在鉴定 {id} 中"),
    ("nothing of it purged", "其中未清除任何录像"),
    ("invalid: {_why}", "无效：{_why}"),
    # why a decision could not be made: kept (retention.py, purging.py)
    ("case look-up failed: {exc}", "案件查询失败：{exc}"),
    ("package {bag} cannot be read ({exc}): run dock archive verify",
     "封存包 {bag} 无法读取（{exc}）：请运行 dock archive verify"),
    ("package {bag} no longer matches its seal (tag manifest SHA-256 {digest}): run dock "
     "archive verify",
     "封存包 {bag} 与其封存记录不再一致（标签清单 SHA-256 {digest}）：请运行 dock archive verify"),
    ("remaining recording {serial}/{rec}: {why}", "保留的录像 {serial}/{rec}：{why}"),
    ("recording_start is missing or not an aware time", "录像开始时间缺失或不带时区"),
    ("now is missing or not an aware time", "当前时间缺失或不带时区"),
    ("now {now} is before the recording started {start}",
     "当前时间 {now} 早于录像开始时间 {start}"),
    ("case closed but its case file's retention is unknown", "案件已结，但案卷保存期未知"),
    ("case_closed_at is not an aware time", "结案时间不带时区"),
    ("case closed in the future ({at})", "结案时间在将来（{at}）"),
    ("case closed ({at}) before the recording started", "结案时间（{at}）早于录像开始"),
    ("hold of unknown kind {kind}", "未知类型的保全 {kind}"),
    *(
        pair
        for en, zh in _HOLD_PROBLEMS
        for pair in (
            (
                f"hold {{_kind}} {{ref}} on {{_scope}} {en}",
                f"保全 {{_kind}} {{ref}}（{{_scope}}）{zh}",
            ),
            (f"hold {{_kind}} {{ref}} {en}", f"保全 {{_kind}} {{ref}} {zh}"),
        )
    ),
    # last: what a hold is (dock/domain HoldKind) and what it is on (dock/evidence/holds.py)
    ("evidence_case", "案件证据"),
    ("complaint", "投诉"),
    ("petition", "信访"),
    ("litigation", "诉讼"),
    ("officers_obstructed", "妨碍执法"),
    ("emergency_incident", "突发事件"),
    ("supervisor_hold", "主管保全"),
    ("case {case}", "案件 {case}"),
    ("officer {who} from {start} to {end}", "民警 {who}，{start} 至 {end}"),
    ("officer {who} from {start}", "民警 {who}，自 {start} 起"),
    ("officer {who} to {end}", "民警 {who}，至 {end}"),
    ("officer {who}", "民警 {who}"),
    ("episode {custody}", "领用记录 {custody}"),
))  # fmt: skip


def purge_reason(text: Any, lang: str | None = None) -> str:
    """A purge run's reason for one recording in ``lang`` (the page's); the known parts in
    Chinese, the rest as the daemon wrote it."""
    return PURGE_REASONS.say(text, lang)
