"""Pre-shift checks: may this recorder be checked out? (REQUIREMENTS.md section 1.)

Pure: a :class:`~dock.domain.snapshot.DeviceSnapshot`, the :class:`~dock.domain.policy.Policy` and
the dock clock's ``(synchronised, reason)`` go in, one :class:`CheckResult` per
check comes out. Every check is always run, so the slot screen and the audit log
show the whole picture, not only the first failure.

Each result carries a stable machine ``code``, a ``detail`` dict of plain values
(JSON-friendly: numbers, strings, booleans, lists, None) and a ``message`` rendered
from the table :data:`MESSAGES`. Because the message is rendered only from the
code, the outcome and the detail, it can be rendered again in another language
from an audit record: ``message_for(r.code, "en", passed=r.passed, **r.detail)``.

English messages fit a 20-column LCD line for realistic values. Where a message
carries free text of unbounded length (the clock's reason, a firmware version, a
list of faults) its first 20 columns still say what is wrong and the rest follows.

Comparisons fail closed: a NaN or otherwise nonsensical reading fails its check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dock.domain.policy import ASSUMED_BATTERY_HEALTH_PERCENT, Policy
from dock.domain.snapshot import DeviceSnapshot
from firmware_protocol.messages import FaultFlag

#: Every check, in the order results are returned (identity first: those two can
#: never be overridden, so they head the screen).
CODES: tuple[str, ...] = (
    "device_unknown",
    "device_lost",
    "battery_low",
    "battery_runtime",
    "storage_low",
    "clock_untrusted",
    "clock_drift",
    "firmware_not_allowed",
    "footage_pending",
    "device_fault",
    "maintenance_flag",
    "self_test_failed",
)


LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"


@dataclass(frozen=True)
class CheckResult:
    code: str
    passed: bool
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def message_in(self, locale: str) -> str:
        """This result's message in another locale."""
        return message_for(self.code, locale, passed=self.passed, **self.detail)


# --- the message table ----------------------------------------------------------------
# code -> locale -> variant -> template. The variant is "ok" or "fail", or
# "ok:<case>" / "fail:<case>" when the detail names a ``case``. Templates are
# str.format templates over the detail plus the display fields that
# ``_display_fields`` derives from it (already formatted, already localised).

MESSAGES: dict[str, dict[str, dict[str, str]]] = {
    "device_unknown": {
        "en": {"ok": "Device enrolled", "fail": "Device not enrolled"},
        "zh": {"ok": "设备已登记", "fail": "设备未登记，不可领用"},
    },
    "device_lost": {
        "en": {"ok": "Not reported lost", "fail": "Device reported lost"},
        "zh": {"ok": "设备未报失", "fail": "设备已报失，不可领用"},
    },
    "battery_low": {
        "en": {
            "ok": "Battery {percent}% OK",
            "fail": "Battery {percent}% <{minimum}%",
            "ok:unknown": "Battery unknown (allowed)",
            "fail:unknown": "Battery not reported",
        },
        "zh": {
            "ok": "电量{percent}%，正常",
            "fail": "电量不足：{percent}%，需≥{minimum}%",
            "ok:unknown": "电量未知（策略允许）",
            "fail:unknown": "记录仪不报告电量",
        },
    },
    "battery_runtime": {
        "en": {
            "ok": "Runtime {hours_text}h OK",
            "fail": "Runtime {hours_text}h <{needed_text}h",
            "ok:unknown": "Runtime unknown (allowed)",
            "fail:unknown": "Runtime unknown",
        },
        "zh": {
            "ok": "续航约{hours_text}小时，够用",
            "fail": "续航不足：约{hours_text}小时，需{needed_text}小时",
            "ok:unknown": "续航未知（策略允许）",
            "fail:unknown": "续航未知",
        },
    },
    "storage_low": {
        "en": {"ok": "Storage {free_text}G OK", "fail": "Storage {free_text}G <{needed_text}G"},
        "zh": {"ok": "存储剩余{free_text}G", "fail": "存储不足：剩{free_text}G，需{needed_text}G"},
    },
    "clock_untrusted": {
        "en": {"ok": "Dock clock trusted", "fail": "Dock clock untrusted: {reason}"},
        "zh": {"ok": "本机时钟已同步", "fail": "本机时钟不可信：{reason}"},
    },
    "clock_drift": {
        "en": {
            "ok": "Drift {offset_text}s OK",
            "fail": "Drift {offset_text}s >{max_text}s",
            "fail:unknown": "Device clock not set",
            "fail:not_set": "Unset clock {offset_text}s",
            "ok:unreadable": "Device clock unknown (allowed)",
            "fail:unreadable": "Device clock unknown",
        },
        "zh": {
            "ok": "时钟误差{offset_text}秒",
            "fail": "时钟误差{offset_text}秒，超过{max_text}秒",
            "fail:unknown": "记录仪时钟未校准",
            "fail:not_set": "无法校时，误差{offset_text}秒",
            "ok:unreadable": "记录仪时钟未知（策略允许）",
            "fail:unreadable": "记录仪时钟未知",
        },
    },
    "firmware_not_allowed": {
        "en": {"ok": "FW {firmware} OK", "fail": "FW not allowed: {firmware}"},
        "zh": {"ok": "固件{firmware}可用", "fail": "固件版本未获准：{firmware}"},
    },
    "footage_pending": {
        "en": {"ok": "No footage pending", "fail": "Footage pending: {pending}"},
        "zh": {"ok": "无未导出录像", "fail": "有{pending}个录像未导出"},
    },
    "device_fault": {
        "en": {"ok": "No device faults", "fail": "Fault: {faults_text}"},
        "zh": {"ok": "设备无故障", "fail": "设备故障：{faults_text}"},
    },
    "maintenance_flag": {
        "en": {
            "ok": "No maintenance flag",
            "fail": "Needs maintenance",
            "fail:overdue": "Maintenance overdue since {since}",
        },
        "zh": {
            "ok": "无待维修标记",
            "fail": "设备已标记待维修",
            "fail:overdue": "维护保养已逾期（自{since}起）",
        },
    },
    "self_test_failed": {
        "en": {"ok": "Self-test OK", "ok:unsupported": "Self-test n/a", "fail": "Self-test failed"},
        "zh": {"ok": "自检通过", "ok:unsupported": "设备不支持自检", "fail": "自检未通过"},
    },
}

_FAULT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "SENSOR": "sensor",
        "STORAGE": "storage",
        "BATTERY": "battery",
        "CLOCK": "clock",
        "MICROPHONE": "mic",
        "OVERHEAT": "overheat",
    },
    "zh": {
        "SENSOR": "图像传感器",
        "STORAGE": "存储",
        "BATTERY": "电池",
        "CLOCK": "时钟",
        "MICROPHONE": "麦克风",
        "OVERHEAT": "过热",
    },
}


class _Blank(dict):
    """Format arguments that render a missing key as "?" instead of raising."""

    def __missing__(self, key: str) -> str:
        return "?"


def _locale(locale: str) -> str:
    """ "zh_CN.UTF-8" -> "zh", "en-GB" -> "en"; anything unknown -> English."""
    base = str(locale).replace("-", "_").split("_")[0].split(".")[0].lower()
    return base if base in LOCALES else "en"


def _as_float(x: Any) -> float | None:
    """``x`` as a float (huge integers become +-inf); None if it is not a number."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _num(x: Any, small: int = 1) -> str:
    """A number short enough for an LCD: 8.4, 14.4, 144, 1.5e+06."""
    v = _as_float(x)
    if v is None:
        return "?"
    if not math.isfinite(v):
        return str(v)
    if abs(v) >= 1e6:
        return f"{v:.1e}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{small}f}"


def _signed(x: Any) -> str:
    """A clock offset: +0.02, -3.50, +47.0, +3600."""
    v = _as_float(x)
    if v is None:
        return "?"
    if not math.isfinite(v):
        return f"{v:+}"
    if abs(v) >= 1e6:
        return f"{v:+.1e}"
    if abs(v) >= 100:
        return f"{v:+.0f}"
    if abs(v) >= 10:
        return f"{v:+.1f}"
    return f"{v:+.2f}"


def _short(x: Any) -> str:
    """A limit as the policy spells it: 10, 12.5, 0.5."""
    v = _as_float(x)
    return "?" if v is None else f"{v:g}"


def _display_fields(code: str, loc: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Formatted, localised strings derived from the detail, for the templates."""
    out: dict[str, Any] = {}
    if code == "battery_runtime":
        out["hours_text"] = _num(detail.get("expected_hours"))
        out["needed_text"] = _short(detail.get("shift_hours"))
    elif code == "storage_low":
        out["free_text"] = _num(_gb(detail.get("free_bytes")))
        out["needed_text"] = _num(_gb(detail.get("needed_bytes")))
    elif code == "clock_drift":
        out["offset_text"] = _signed(detail.get("offset_s"))
        out["max_text"] = _short(detail.get("max_s"))
    elif code == "device_fault":
        names = _FAULT_NAMES[loc]
        faults = detail.get("faults") or []
        sep = "、" if loc == "zh" else ","
        out["faults_text"] = sep.join(names.get(str(f), str(f)) for f in faults)
    return out


def _gb(n: Any) -> float | None:
    v = _as_float(n)
    return None if v is None else v / 1e9


def message_for(
    code: str, locale: str = DEFAULT_LOCALE, *, passed: bool = False, **detail: Any
) -> str:
    """The message for ``code`` in ``locale`` ("zh" or "en"; others fall back to
    English), for a passed or failed check, filled in from ``detail``.

    Never raises for a known code: a missing detail value shows as "?". Raises
    KeyError for an unknown code.
    """
    loc = _locale(locale)
    table = MESSAGES[code][loc]
    state = "ok" if passed else "fail"
    case = detail.get("case")
    template = table.get(f"{state}:{case}", table[state]) if case else table[state]
    values = _Blank(detail)
    values.update(_display_fields(code, loc, detail))
    return template.format_map(values)


# --- the checks -----------------------------------------------------------------------


def _fault_names(flags: int) -> list[str]:
    """FaultFlag names set in ``flags``, then any unknown bits as "0x..."."""
    names = [f.name for f in FaultFlag if f.name and flags & f.value]
    known = 0
    for f in FaultFlag:
        known |= f.value
    unknown = flags & ~known
    if unknown:
        names.append(hex(unknown))
    return names


def _clamp_percent(x: Any) -> float:
    # A reading outside 0..100 must not inflate the runtime estimate; NaN stays NaN
    # (and fails the check).
    v = _as_float(x)
    if v is None or math.isnan(v):
        return math.nan
    return min(max(v, 0.0), 100.0)


def _checks(
    snap: DeviceSnapshot, policy: Policy, clock: tuple[bool, str]
) -> Iterable[tuple[str, bool, dict[str, Any]]]:
    yield "device_unknown", bool(snap.enrolled), {"serial": snap.serial}
    yield "device_lost", not snap.reported_lost, {"serial": snap.serial}

    pct = snap.battery_percent
    if pct < 0:  # not reported (a mass-storage camera): the policy decides, stated
        allowed = policy.allow_unknown_clock_and_battery
        unknown = {"percent": None, "minimum": policy.min_battery_percent, "case": "unknown"}
        yield "battery_low", allowed, unknown
        yield "battery_runtime", allowed, {"expected_hours": None, "case": "unknown",
                                           "shift_hours": policy.shift_hours}  # fmt: skip
    else:
        yield from _battery(snap, policy)

    needed = policy.recording_hours_per_shift * policy.bytes_per_recording_hour
    needed_bytes = int(needed) if math.isfinite(needed) else needed
    yield (
        "storage_low",
        snap.storage_free_bytes >= needed,
        {"free_bytes": snap.storage_free_bytes, "needed_bytes": needed_bytes},
    )
    yield from _after_storage(snap, policy, clock)


def _battery(snap: DeviceSnapshot, policy: Policy) -> Iterable[tuple[str, bool, dict[str, Any]]]:
    pct = snap.battery_percent
    yield (
        "battery_low",
        pct >= policy.min_battery_percent,
        {"percent": pct, "minimum": policy.min_battery_percent},
    )

    health = snap.battery_health_percent
    detail: dict[str, Any] = {"battery_percent": pct, "health_percent": health}
    if health is None:
        health = policy.assumed_battery_health_percent
        detail["health_percent"] = health
        detail["health_assumed"] = True
        detail["note"] = f"battery health not reported; assumed {health}%"
    else:
        detail["health_assumed"] = False
    hours = policy.battery_hours_when_new * _clamp_percent(health) / 100 * _clamp_percent(pct) / 100
    detail["expected_hours"] = round(hours, 2) if math.isfinite(hours) else hours
    detail["shift_hours"] = policy.shift_hours
    detail["hours_when_new"] = policy.battery_hours_when_new
    yield "battery_runtime", hours >= policy.shift_hours, detail


def _after_storage(
    snap: DeviceSnapshot, policy: Policy, clock: tuple[bool, str]
) -> Iterable[tuple[str, bool, dict[str, Any]]]:
    synced, reason = clock
    yield "clock_untrusted", synced is True, {"reason": str(reason)}

    offset = snap.clock_offset_after_sync_s
    limit = policy.max_clock_drift_after_sync_s
    if offset is None and snap.clock_not_set_reason is not None:
        # the device states no clock (a mass-storage camera): the policy decides, stated
        detail = {"offset_s": None, "max_s": limit, "not_set": snap.clock_not_set_reason}
        unread_ok = policy.allow_unknown_clock_and_battery
        yield "clock_drift", unread_ok, detail | {"case": "unreadable"}
    elif offset is None:
        yield "clock_drift", False, {"offset_s": None, "max_s": limit, "case": "unknown"}
    elif snap.clock_not_set_reason is not None:
        # Not settable (PROTOCOL.md 6.7): passes only if already within the limit.
        detail = {"offset_s": offset, "max_s": limit, "not_set": snap.clock_not_set_reason}
        yield "clock_drift", abs(offset) <= limit, detail | {"case": "not_set"}
    else:
        yield "clock_drift", abs(offset) <= limit, {"offset_s": offset, "max_s": limit}

    allowed = list(policy.allowed_firmware)
    yield (
        "firmware_not_allowed",
        not allowed or snap.firmware in allowed,
        {"firmware": snap.firmware, "allowed": allowed},
    )

    yield "footage_pending", snap.recordings_pending <= 0, {"pending": snap.recordings_pending}

    flags = snap.fault_flags
    yield "device_fault", flags == 0, {"flags": flags, "faults": _fault_names(flags)}

    overdue = snap.maintenance_overdue_since  # 000 §14.1: maintained on a schedule
    if snap.maintenance_flag or overdue is None:
        yield "maintenance_flag", not snap.maintenance_flag, {}
    else:
        yield "maintenance_flag", False, {"case": "overdue", "since": overdue}

    st = snap.self_test_passed
    if st is None:
        yield "self_test_failed", True, {"self_test": "not supported", "case": "unsupported"}
    else:
        yield "self_test_failed", st is True, {"self_test": "passed" if st else "failed"}


def run_checks(
    snap: DeviceSnapshot,
    policy: Policy,
    clock: tuple[bool, str],
    locale: str = DEFAULT_LOCALE,
) -> list[CheckResult]:
    """Every pre-shift check on ``snap``, one result per code in :data:`CODES` order.

    ``clock`` is the dock's own ``ClockSource.synchronised()``: an untrusted dock
    clock fails ``clock_untrusted`` whatever the recorder says.
    """
    results = []
    for code, passed, detail in _checks(snap, policy, clock):
        passed = bool(passed)
        results.append(
            CheckResult(code, passed, message_for(code, locale, passed=passed, **detail), detail)
        )
    return results


def failed(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The failed results, in their order."""
    return [r for r in results if not r.passed]


__all__ = [
    "ASSUMED_BATTERY_HEALTH_PERCENT",
    "CODES",
    "MESSAGES",
    "CheckResult",
    "failed",
    "message_for",
    "run_checks",
]
