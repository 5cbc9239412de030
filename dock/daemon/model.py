"""What the dock's service says back: slot views, check-out decisions, reasons.

Plain values shared by every part of the daemon (inspection fills views, check-out
reads them and returns decisions), kept apart so no part imports another for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dock.devices.recorder_client import Status
from dock.domain import slot_state as sm
from dock.domain.checks import CheckResult
from dock.domain.snapshot import DeviceSnapshot

#: Slot states from which a device may be handed out (READY), or handed out by a
#: supervisor's override (FAILED_CHECK); not while offloading, faulty or taken.
HANDOUT_STATES = (sm.SlotState.READY, sm.SlotState.FAILED_CHECK)

#: States in which a slot's recorder must be fully inspected: just docked or faulty.
FRESH_STATES = (sm.SlotState.EMPTY, sm.SlotState.IDENTIFYING, sm.SlotState.FAULT)

#: Reasons a check-out is refused that are about the officer or the dock, not one
#: device (those come from dock.domain.checks). Short enough for a 20-column screen line.
DECISION_MESSAGES: dict[str, dict[str, str]] = {
    "officer_unknown": {"zh": "身份无法识别", "en": "Officer not recognised"},
    # An officer number with a wrong PIN and a number that does not exist read the same,
    # tries left included (docs/OPERATIONS.md, "PINs"); only a locked PIN says so.
    "pin_wrong": {"zh": "警号或密码错误，还可试{left}次", "en": "Wrong ID/PIN: {left} left"},
    "pin_locked": {"zh": "密码已锁定，请找主管解锁", "en": "PIN locked: ask a supervisor"},
    "override_pin_locked": {"zh": "主管密码已锁定", "en": "Supervisor PIN locked"},
    "officer_disabled": {"zh": "该警员已停用", "en": "Officer disabled"},
    "officer_has_device": {"zh": "已领用设备 {serial}", "en": "Already holds {serial}"},
    "no_device_ready": {"zh": "无可用设备", "en": "No recorder ready"},
    "override_not_allowed": {"zh": "政策不允许越权", "en": "Override not allowed"},
    "override_refused": {"zh": "主管身份验证失败", "en": "Supervisor not verified"},
    "override_reason_missing": {"zh": "请填写越权理由", "en": "Give a reason"},
    "take_slot": {"zh": "请取 {slot} 号槽位", "en": "Take slot {slot}"},
    "no_room": {"zh": "证据存储空间不足", "en": "Evidence disk full"},
    "gaps_opened": {"zh": "录像中断{n}处待说明", "en": "{n} gap(s) to explain"},
    "not_assigned": {"zh": "警员未写入记录仪", "en": "Officer not on device"},
    "no_grant": {"zh": "没有待取的记录仪", "en": "No recorder to collect"},
    "grant_expired": {"zh": "{slot}号槽位领用已超时", "en": "Slot {slot}: grant expired"},
    "grant_cancelled": {"zh": "{slot}号槽位领用已取消", "en": "Slot {slot}: cancelled"},
    # The handover on return (001 art.19(3)): who hands the recorder back signs for it.
    "handover_sign": {"zh": "{slot}号槽位请刷卡签收", "en": "Slot {slot}: badge/PIN"},
    "handover_signed": {"zh": "{slot}号槽位已签收", "en": "Slot {slot}: signed"},
    "handover_by_other": {"zh": "非领用人归还", "en": "Not the holder's"},
}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    #: The words for the dock's screen when it cannot draw the dock's language (an
    #: HD44780 with locale "zh"); None: ``message`` itself. Not part of the answer.
    screen: str | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class SlotView:
    """What the dock last learnt about one slot."""

    slot_id: str
    port: str
    serial: str | None = None
    snapshot: DeviceSnapshot | None = None
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    status: Status | None = None
    #: Recordings archived and verified, due to be erased, that the recorder can erase:
    #: an offload still has work even when nothing is left to copy.
    erasures_owed: int = 0
    #: Why the dock cannot write an officer into this recorder (None: it can).
    assign_blocked: str | None = None
    #: The recorder's driver and which guarantees it allows (capture or offload hash, erase
    #: or keep, clock set/read/none, identity proven or claimed): status shows them.
    guarantees: dict[str, str] | None = None

    @property
    def ready(self) -> bool:
        return (
            self.snapshot is not None and bool(self.results) and all(r.passed for r in self.results)
        )

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


@dataclass(frozen=True)
class Decision:
    granted: bool
    slot: str | None
    device: str | None
    reasons: list[Reason]
    officer_id: str
    override_by: str | None = None
    #: For a grant: whether the officer was written into the recorder (ASSIGN), and
    #: why not where it was not (PROTOCOL.md 6.7). None for a refusal.
    assigned_on_device: bool | None = None
    not_assigned_why: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "granted": self.granted,
            "slot": self.slot,
            "device": self.device,
            "officer": self.officer_id,
            "override_by": self.override_by,
            "assigned_on_device": self.assigned_on_device,
            "not_assigned_why": self.not_assigned_why,
            "reasons": [r.as_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class Override:
    supervisor_id: str
    supervisor_pin: str
    reason: str
