"""The daemon's verification report in the page's language, at display time.

``audit_verify`` (docs/CONTROL.md) answers with a reason code (``changed``, ``bad
checkpoint signature``...) and a detail line in English, written by
``dock/storage/audit/chain.py`` and ``log.py``; they stay as the daemon wrote them (the
API and the command line show them as they are). For a Chinese page the code is looked
up and each known detail message is matched against its English pattern and said again
in Chinese with the same numbers, hashes and names (web_status/daemon_words.py, which
says the services' refusals the same way); a message not known here is shown as the
daemon wrote it, never guessed at.
"""

from __future__ import annotations

from typing import Any

from web_status.daemon_words import Words
from web_status.i18n import language

#: Reason codes (dock/storage/audit/model.py) -> Chinese.
REASONS_ZH = {
    "changed": "内容被改动",
    "removed": "记录被删除",
    "reordered": "顺序被调换",
    "bad checkpoint signature": "检查点签名无效",
    "checkpoint does not match chain": "检查点与链不符",
    "signed by another key": "由其他密钥签名",
    "malformed export": "导出文件格式错误",
    "bad export signature": "导出文件签名无效",
    "meta changed": "元数据被改动",
    "bad outside checkpoint": "外部检查点无效",
}

#: (the daemon's English, the same in Chinese); ``{name}`` is any text, the same name
#: twice is the same text. One detail may be several joined by "; ".
_DETAILS = (
    ("entry {s} is intact but does not follow entry {p}: entry {b} was rewritten and "
     "re-hashed, or the link stored in entry {s} was changed",
     "第 {s} 条本身完好，但不接续第 {p} 条：第 {b} 条被改写并重新计算了哈希，"
     "或第 {s} 条中保存的链接被改动"),
    ("the row at position {s} holds entry {t}", "第 {s} 行存放的是第 {t} 条"),
    ("entry {s} holds the content of entry {o}", "第 {s} 条存放的是第 {o} 条的内容"),
    ("1 entry from {s} on were removed and the rest renumbered (the row now numbered {s} "
     "was entry {n})",
     "自第 {s} 条起删除了 1 条，其余被重新编号（现编号为 {s} 的行原为第 {n} 条）"),
    ("{k} entries from {s} on were removed and the rest renumbered (the row now numbered "
     "{s} was entry {n})",
     "自第 {s} 条起删除了 {k} 条，其余被重新编号（现编号为 {s} 的行原为第 {n} 条）"),
    ("entry {s} does not match its hash, nor link to entry {p}",
     "第 {s} 条与其哈希不符，也不链接到第 {p} 条"),
    ("entry {s}'s content does not match its hash", "第 {s} 条的内容与其哈希不符"),
    ("checkpoint {n} names key {k}, not the dock's key {d}",
     "第 {n} 号检查点标明的密钥为 {k}，不是本坞站的密钥 {d}"),
    ("the checkpoint at entry {n} in {src} names key {k}, not the dock's key {d}",
     "{src} 中第 {n} 条处的检查点标明的密钥为 {k}，不是本坞站的密钥 {d}"),
    ("the signature of checkpoint {n} is not valid", "第 {n} 号检查点的签名无效"),
    ("the signature of the checkpoint at entry {n} in {src} is not valid",
     "{src} 中第 {n} 条处的检查点签名无效"),
    ("checkpoint {n} signed a head hash the chain no longer has: an entry up to {n} was "
     "rewritten and the later hashes recomputed",
     "第 {n} 号检查点签名的链头哈希已不在链中："
     "第 {n} 条及之前的某条记录被改写，其后的哈希被重新计算"),
    ("the checkpoint at entry {n} in {src} is for dock {d}",
     "{src} 中第 {n} 条处的检查点属于坞站 {d}"),
    ("the log ends at entry {h}, but the checkpoint kept in {src} (signed {at}) vouches for "
     "entries up to {n}: entries {a}..{n} were removed",
     "日志止于第 {h} 条，但保存在 {src} 的检查点（签于 {at}）担保至第 {n} 条："
     "第 {a} 至 {n} 条被删除"),
    ("entry {n} is {x} in the log, {y} in the checkpoint kept in {src} (signed {at}): entries "
     "{a}..{n} were rewritten (entries up to {b} are vouched for by a checkpoint in the log)",
     "第 {n} 条在日志中为 {x}，在保存于 {src} 的检查点（签于 {at}）中为 {y}：第 {a} 至 {n} "
     "条被改写（第 {b} 条及之前由日志内的检查点担保）"),
    ("entries {a}..{n} are not vouched for", "第 {a} 至 {n} 条无检查点担保"),
    ("checkpoint before entry 1", "检查点位于第 1 条之前"),
    ("{src}: checkpoint before entry 1", "{src}：检查点位于第 1 条之前"),
    ("entry {n} is missing", "第 {n} 条缺失"),
    ("entries {a}..{b} are missing", "第 {a} 至 {b} 条缺失"),
    ("entry {s} appears again after entry {p}", "第 {s} 条在第 {p} 条之后再次出现"),
    ("checkpoint {n} covers entries up to {n} but the log ends at {e}: entries {a}..{n} "
     "were removed",
     "第 {n} 号检查点覆盖至第 {n} 条，但日志止于第 {e} 条：第 {a} 至 {n} 条被删除"),
    ("the checkpoint kept in {src} cannot be read: {why}",
     "无法读取保存在 {src} 的检查点：{why}"),
    ("{k} is missing", "{k} 缺失"),
    ("{k} = {v} should not be there", "{k} = {v} 不应存在"),
    ("{k} is {v}, not {w}", "{k} 为 {v}，应为 {w}"),
    ("entry {n} ({src})", "第 {n} 条（{src}）"),
)  # fmt: skip

_WORDS = Words(_DETAILS)


def detail(text: Any, lang: str | None = None) -> str:
    """The daemon's detail line (or an ``outside`` item) in ``lang`` (the page's)."""
    return _WORDS.say(text, lang)


def reason(code: Any, lang: str | None = None) -> str:
    """A reason code in ``lang`` (the page's); an unknown code as it is."""
    code = "" if code is None else str(code)
    if (lang or language()) != "zh":
        return code
    return REASONS_ZH.get(code, code)


def shown(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """The daemon's report with ``reason``, ``detail`` and ``outside`` in the page's
    language (a copy: the report itself is not changed)."""
    if verdict is None:
        return None
    return {
        **verdict,
        "reason": reason(verdict.get("reason")),
        "detail": detail(verdict.get("detail")),
        "outside": [detail(o) for o in verdict.get("outside") or []],
    }
