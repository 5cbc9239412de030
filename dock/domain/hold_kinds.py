"""Why footage is kept long-term: every kind of hold, with the article that names it and
its words in English and Chinese (REQUIREMENTS.md §6; 000 §14.4; 001 art.20; 004 att.1
art.5). One table: the evidence rules (``retention.HoldKind``), the command line's
choices and the web pages' labels are all read from it. Pure, so every layer can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HoldKind(StrEnum):
    """Why footage is kept beyond its retention (000 §14.4; 001 art.20; 004 att.1 art.5)."""

    EVIDENCE_CASE = "evidence_case"
    DISPUTED = "disputed"
    COMPLAINT = "complaint"
    PETITION = "petition"
    APPEAL = "appeal"
    LITIGATION = "litigation"
    RECONSIDERATION = "reconsideration"
    REVIEW = "review"
    STATE_COMPENSATION = "state_compensation"
    OFFICERS_OBSTRUCTED = "officers_obstructed"
    EMERGENCY_INCIDENT = "emergency_incident"
    MAJOR_CASE = "major_case"
    SUPERVISOR_HOLD = "supervisor_hold"


@dataclass(frozen=True)
class KindInfo:
    kind: HoldKind
    en: str
    zh: str
    #: The articles that make it a reason to keep footage long-term.
    articles: str


#: Every kind, in the order the pages offer them.
KINDS: tuple[KindInfo, ...] = (
    KindInfo(HoldKind.EVIDENCE_CASE, "evidence in a case", "案件证据",
             "000 §14.3; 001 art.20(1)1; 004 att.1 art.5"),
    KindInfo(HoldKind.DISPUTED, "disputed", "有异议或争议", "000 §14.4(1); 004 att.1 art.5"),
    KindInfo(HoldKind.COMPLAINT, "complaint", "投诉", "000 §14.4(1)"),
    KindInfo(HoldKind.PETITION, "petition", "信访", "000 §14.4(1); 001 art.20(1)4"),
    KindInfo(HoldKind.APPEAL, "appeal (grievance)", "申诉", "001 art.20(1)4"),
    KindInfo(HoldKind.LITIGATION, "litigation", "诉讼", "001 art.20(1)4"),
    KindInfo(HoldKind.RECONSIDERATION, "administrative reconsideration", "行政复议",
             "001 art.20(1)4"),
    KindInfo(HoldKind.REVIEW, "administrative review", "复核", "001 art.20(1)4"),
    KindInfo(HoldKind.STATE_COMPENSATION, "state compensation", "国家赔偿", "001 art.20(1)4"),
    KindInfo(HoldKind.OFFICERS_OBSTRUCTED, "officers obstructed or assaulted", "妨碍执法",
             "000 §14.4(2); 001 art.20(1)2"),
    KindInfo(HoldKind.EMERGENCY_INCIDENT, "emergency or mass incident", "突发或群体性事件",
             "000 §14.4(3); 001 art.20(1)3; 004 att.1 art.5"),
    KindInfo(HoldKind.MAJOR_CASE, "major, difficult or complex case", "重大疑难复杂情况",
             "001 art.20(1)5"),
    KindInfo(HoldKind.SUPERVISOR_HOLD, "supervisor's hold", "主管保全",
             "000 §14.4(4); 001 art.20(1)5"),
)  # fmt: skip

#: The kinds' values, in the order above.
KIND_VALUES: tuple[str, ...] = tuple(k.kind.value for k in KINDS)


def parse_kind(kind: object) -> HoldKind:
    """The kind named, or ValueError with one line listing the valid ones."""
    try:
        return HoldKind(kind)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"unknown hold kind {kind!r} (one of {', '.join(KIND_VALUES)})") from None


__all__ = ["KINDS", "KIND_VALUES", "HoldKind", "KindInfo", "parse_kind"]
